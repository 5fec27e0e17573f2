// The start-up check of a member's own store (checkLocalIntegrity): a record
// that does not hold what its revision says refuses the start, with or
// without the clean-close checkpoint, whether the check rides on the index
// rebuild's scan (as EtcdNode opens a store) or scans on its own. Records are
// changed through the backend, checksums included, as a buggy write would
// leave them; or a byte is flipped with the stored checksum left as it was,
// as a bad disk would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { Backend } from '../backend/backend';
import { MvccStore } from '../mvcc';
import { decodeKeyValue, encodeKeyValue } from '../proto/gen/mvccpb';
import { tempDir } from '../testing/processes';
import { Errors } from '../errors';
import { CorruptionError, StartScan, checkLocalIntegrity, writeIntegrityCheckpoint } from './corruption';
import type { EtcdNode } from './node';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The parts of a node the check reads. */
function nodeOf(backend: Backend): EtcdNode {
  const mvcc = MvccStore.open(backend);
  return { backend, mvcc, memberId: 0xabcn, log: { info: () => undefined } } as unknown as EtcdNode;
}

/** The check as a start runs it: within the index rebuild's scan (EtcdNode), or scanning on its own. */
async function check(be: Backend, withinOpen: boolean): Promise<void> {
  if (!withinOpen) return checkLocalIntegrity(nodeOf(be));
  const scan = new StartScan(be.dir, be);
  const mvcc = MvccStore.open(be, { eachRecord: scan.record });
  await checkLocalIntegrity({ backend: be, mvcc, memberId: 0xabcn, log: { info: () => undefined } } as unknown as EtcdNode, scan);
}

const put = (node: EtcdNode, k: string): void => {
  node.mvcc.put({ key: Buffer.from(k), value: Buffer.from(`v-${k}`), lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false });
};

/** A store with three puts (revisions 2..4), committed; with the clean-close checkpoint if asked. */
async function store(checkpoint: boolean): Promise<Backend> {
  const dir = tempDir('integrity');
  dirs.push(dir);
  const be = Backend.open(dir);
  const node = nodeOf(be);
  for (const k of ['a', 'b', 'c']) put(node, k);
  await be.commit();
  if (checkpoint) await writeIntegrityCheckpoint(node);
  return be;
}

/** Flips a byte of the value at `rev` as a bad disk would: the record's stored checksum stays as it was. */
async function flip(be: Backend, rev: number): Promise<void> {
  for (const [k, v] of [...be.range('key')]) {
    if (Number(k.readBigInt64BE(0)) !== rev) continue;
    const [[, sum]] = [...be.range('keyChecksum', k, undefined, { limit: 1 })];
    const bad = Buffer.from(v);
    bad[bad.length - 1] ^= 0x01;
    be.put('key', Buffer.from(k), bad);
    be.put('keyChecksum', Buffer.from(k), Buffer.from(sum));
  }
  await be.commit();
}

/** Rewrites the record at `rev` (checksum included) with what `change` makes of its bytes. */
async function rewrite(be: Backend, rev: number, change: (bytes: Buffer) => Buffer): Promise<void> {
  for (const [k, v] of [...be.range('key')]) {
    if (Number(k.readBigInt64BE(0)) !== rev) continue;
    be.put('key', Buffer.from(k), change(Buffer.from(v)));
  }
  await be.commit();
}

for (const [checkpoint, withinOpen] of [[true, true], [false, true], [true, false], [false, false]]) {
  const how = `${checkpoint ? 'with' : 'without'} a checkpoint, ${withinOpen ? 'within the index rebuild' : 'a scan of its own'}`;

  test(`a clean store passes (${how})`, async () => {
    const be = await store(checkpoint);
    await check(be, withinOpen);
    await be.close();
  });

  test(`a record holding another revision refuses the start (${how})`, async () => {
    const be = await store(checkpoint);
    await rewrite(be, 3, (b) => Buffer.from(encodeKeyValue({ ...decodeKeyValue(b), mod_revision: 2 })));
    await assert.rejects(check(be, withinOpen), (e: unknown) => e instanceof CorruptionError && /revision 3 holds a record of revision 2/.test(e.message));
    await be.close();
  });

  test(`a cut-short record refuses the start (${how})`, async () => {
    const be = await store(checkpoint);
    // the value field's length says more bytes than the record holds
    await rewrite(be, 4, (b) => b.subarray(0, b.length - 2));
    await assert.rejects(check(be, withinOpen), (e: unknown) => e instanceof CorruptionError && /found corrupted records in its store:\nkey bucket: [0-9a-f]+: unexpected EOF/.test(e.message));
    await be.close();
  });

  test(`a byte flipped on disk refuses the start (${how})`, async () => {
    const be = await store(checkpoint);
    await flip(be, 3);
    if (checkpoint) {
      // the checkpoint's hash finds it (its records' checksums were verified when it was written)
      await assert.rejects(check(be, withinOpen), (e: unknown) => e instanceof CorruptionError && /found data corruption: the store hashes to \d+ at revision 4, but hashed to \d+ when it was last closed/.test(e.message));
    } else {
      await assert.rejects(check(be, withinOpen), (e: unknown) => e === Errors.Corrupt);
    }
    await be.close();
  });
}

test('records written after the checkpoint (a kill after the last clean close) have their checksums verified', async () => {
  for (const [rev, found] of [[5, 'checksum'], [3, 'hash'], [0, 'nothing']] as const) {
    const be = await store(true);
    const node = nodeOf(be);
    put(node, 'd'); // revision 5, past the checkpoint at 4
    await be.commit();
    if (rev) await flip(be, rev);
    if (found === 'checksum') await assert.rejects(check(be, true), (e: unknown) => e === Errors.Corrupt);
    else if (found === 'hash') await assert.rejects(check(be, true), (e: unknown) => e instanceof CorruptionError && /the store hashes to \d+ at revision 4/.test(e.message));
    else await check(be, true);
    await be.close();
  }
});

test('a member stopped while a compaction deletes in batches starts again (the checkpoint hashes what the close leaves)', { timeout: 120_000 }, async () => {
  const { startNode } = await import('../server/start');
  const { EtcdClient } = await import('../client/client');
  const { silentLogger } = await import('../support/logger');
  const { freePort } = await import('../testing/processes');
  const dataDir = tempDir('integrity-compact');
  dirs.push(dataDir);
  const peer = `http://127.0.0.1:${await freePort()}`;
  const config = { dataDir, name: 'm', listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [peer], initialAdvertisePeerUrls: [peer], initialCluster: `m=${peer}` };
  const first = await startNode(config, { logger: silentLogger });
  const c = new EtcdClient({ endpoints: [first.clientUrls[0]] });
  let rev = 0;
  try {
    // 100 keys rewritten 100 times: ~10,000 superseded records, a batch of 1,000 deleted per turn
    for (let round = 0; round < 100; round++) {
      const success = Array.from({ length: 100 }, (_, i) => ({ request_put: { key: Buffer.from(`k${i}`), value: Buffer.from(`v${round}`) } }));
      rev = (await c.txn({ success })).header!.revision;
    }
    await c.compact(rev);
  } finally {
    c.close();
    await first.stop();
  }
  assert.ok(fs.existsSync(`${dataDir}/member/integrity.json`), 'a clean stop writes the checkpoint');
  const again = await startNode(config, { logger: silentLogger });
  const c2 = new EtcdClient({ endpoints: [again.clientUrls[0]] });
  try {
    assert.equal((await c2.range({ key: Buffer.from('k7') })).kvs[0].value.toString(), 'v99');
  } finally {
    c2.close();
    await again.stop();
  }
});
