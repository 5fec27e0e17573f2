// Export/import against our backend alone (no etcd process): consistency of
// an export taken while writes keep committing, and imports refusing bad
// files without touching the backend.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Backend } from '../backend/backend';
import { encodeLease } from '../proto/gen/leasepb';
import { encodeKeyValue } from '../proto/gen/mvccpb';
import { readBoltFile } from './bolt-reader';
import { writeBoltFile, type BoltBucketSource } from './bolt-writer';
import { ETCD_BUCKETS, exportEtcdSnapshot, importEtcdSnapshot, saveEtcdSnapshot } from './etcd-snapshot';

let dir: string;
const backends: Backend[] = [];
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-backup-'));
});
after(async () => {
  for (const b of backends) await b.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function open(name: string): Backend {
  const b = Backend.open(path.join(dir, name), { sync: false });
  backends.push(b);
  return b;
}

function revKey(main: number, sub = 0): Buffer {
  const b = Buffer.alloc(17);
  b.writeBigInt64BE(BigInt(main), 0);
  b[8] = 0x5f;
  b.writeBigInt64BE(BigInt(sub), 9);
  return b;
}

function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

const CI = Buffer.from('consistent_index');

describe('etcd snapshot export/import over the backend', () => {
  test('an export taken while applies keep committing is one consistent state', async () => {
    const be = open('live');
    let rev = 1;
    // what an apply does: the revision record and the applied index in one batch
    const apply = (): void => {
      rev++;
      be.put('key', revKey(rev), encodeKeyValue({ key: Buffer.from(`k${rev % 500}`), value: Buffer.alloc(200, 1), create_revision: rev, mod_revision: rev, version: 1 }));
      be.put('lease', u64((rev % 50) + 1), encodeLease({ ID: BigInt((rev % 50) + 1), TTL: rev }));
      be.put('meta', CI, u64(rev));
    };
    for (let i = 0; i < 30_000; i++) apply();
    await be.commit();
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        for (let j = 0; j < 50; j++) apply();
        await be.commit();
      }
    })();
    try {
      for (let round = 0; round < 2; round++) {
        const file = path.join(dir, `live-${round}.db`);
        if (round === 0) await saveEtcdSnapshot(be, file);
        else {
          const image = await exportEtcdSnapshot(be, { tmpDir: dir });
          const fh = await fs.promises.open(file, 'w');
          for await (const c of image) await fh.write(c);
          await fh.close();
        }
        const f = await readBoltFile(file);
        try {
          let last = 0;
          let n = 0;
          for (const [k] of f.entries(['key'])) {
            last = Number(k.readBigInt64BE(0));
            n++;
          }
          assert.equal(n, last - 1, 'no revision missing');
          const ci = new Map([...f.entries(['meta'])].map(([k, v]) => [k.toString(), v])).get('consistent_index');
          assert.equal(Number(ci!.readBigUInt64BE(0)), last, 'meta.consistent_index matches the key data it describes');
          const ttlOfLast = [...f.entries(['lease'])].find(([k]) => k.equals(u64((last % 50) + 1)));
          assert.ok(ttlOfLast);
          assert.ok(ttlOfLast[1].equals(encodeLease({ ID: BigInt((last % 50) + 1), TTL: last })), 'leases from the same state');
        } finally {
          f.close();
        }
      }
      assert.ok(rev > 30_001, 'writes went on during the exports');
    } finally {
      stop = true;
      await writer;
    }
  });

  test('a bad file is refused before the backend is touched', async () => {
    const be = open('target');
    be.put('key', revKey(5), encodeKeyValue({ key: Buffer.from('mine'), value: Buffer.from('v'), create_revision: 5, mod_revision: 5, version: 1 }));
    await be.commit();
    const mine = (): [Buffer, Buffer][] => [...be.range('key')];
    const before = mine();
    const write = async (name: string, buckets: BoltBucketSource[], hash = true): Promise<string> => {
      const file = path.join(dir, name);
      await writeBoltFile(buckets, file, { appendSha256: hash });
      return file;
    };

    const notRevision = await write('not-revision.db', [{ name: 'key', entries: [[Buffer.from('plain-key'), Buffer.from('x')]] }]);
    await assert.rejects(importEtcdSnapshot(notRevision, be), /is not a revision/);

    const wrongRev = await write('wrong-rev.db', [
      { name: 'key', entries: [[revKey(3), encodeKeyValue({ key: Buffer.from('a'), mod_revision: 4, create_revision: 4, version: 1 })]] },
    ]);
    await assert.rejects(importEtcdSnapshot(wrongRev, be), /holds a KeyValue of revision 4/);

    const badLease = await write('bad-lease.db', [{ name: 'lease', entries: [[Buffer.from('short'), Buffer.from('x')]] }]);
    await assert.rejects(importEtcdSnapshot(badLease, be), /not a lease id/);

    const noHash = await write('no-hash.db', [{ name: 'key' }], false);
    await assert.rejects(importEtcdSnapshot(noHash, be), /missing hash/);

    const good = await write('good.db', [
      { name: 'key', entries: [[revKey(2), encodeKeyValue({ key: Buffer.from('a'), value: Buffer.from('1'), mod_revision: 2, create_revision: 2, version: 1 })]] },
    ]);
    const bytes = fs.readFileSync(good);
    bytes[3 * 4096 + 200] ^= 1;
    fs.writeFileSync(good, bytes);
    await assert.rejects(importEtcdSnapshot(good, be), /expected sha256/);

    assert.deepEqual(mine(), before);
  });

  test('import replaces the etcd buckets, keeps ours and the raft buckets, reports unknown buckets', async () => {
    const be = open('replace');
    be.put('key', revKey(9), Buffer.from('old'));
    be.put('members', Buffer.from('1'), Buffer.from('ours'));
    be.put('keyChecksum', u64(1), Buffer.from('entry'));
    await be.commit();
    const file = path.join(dir, 'replace.db');
    const kv = (rev: number, key: string): [Buffer, Buffer] => [
      revKey(rev),
      encodeKeyValue({ key: Buffer.from(key), value: Buffer.from(key), create_revision: rev, mod_revision: rev, version: 1 }),
    ];
    await writeBoltFile(
      [
        { name: 'key', entries: [kv(2, 'a'), kv(3, 'b')] },
        { name: 'meta', entries: [[CI, u64(77)], [Buffer.from('finishedCompactRev'), revKey(5)]] },
        { name: 'members', entries: [[Buffer.from('2'), Buffer.from('theirs')]] },
        { name: 'future', entries: [[Buffer.from('x'), Buffer.from('y')]] },
      ],
      file,
      { appendSha256: true },
    );
    const r = await importEtcdSnapshot(file, be, { consistentIndex: 3 });
    assert.equal(r.hashVerified, true);
    assert.equal(r.snapshotConsistentIndex, 77n);
    assert.equal(r.compactRevision, 5);
    assert.equal(r.revision, 5, 'the compaction revision when it is above the last record');
    assert.deepEqual(r.skippedBuckets, ['future']);
    assert.deepEqual(
      [...be.range('key')].map(([k]) => Number(k.readBigInt64BE(0))),
      [2, 3],
    );
    assert.deepEqual(be.get('meta', CI), u64(3));
    assert.deepEqual(be.get('members', Buffer.from('1')), Buffer.from('ours'));
    assert.equal(be.get('members', Buffer.from('2')), undefined);
    assert.deepEqual(be.get('keyChecksum', u64(1)), Buffer.from('entry'));
    assert.deepEqual(Object.keys(r.buckets).sort(), ETCD_BUCKETS.filter((b) => !b.startsWith('members')).sort());
  });
});
