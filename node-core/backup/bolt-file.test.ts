// Writer → reader round trips of the bolt format, checked against the page
// layout itself and, where etcdctl is installed, against bbolt's own
// consistency check (`etcdctl snapshot status` runs tx.Check()).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  BoltFormatError,
  BRANCH_PAGE_FLAG,
  BUCKET_LEAF_FLAG,
  LEAF_PAGE_FLAG,
  PAGE_HEADER_SIZE,
  readPageHeader,
  readPgid,
} from './bolt-format';
import { BoltFile, readBoltFile } from './bolt-reader';
import { buildBoltImage, writeBoltFile, type BoltBucketSource, type BoltEntry } from './bolt-writer';
import { snapshotStatus } from './etcd-snapshot';

const ETCDCTL = '/usr/bin/etcdctl';
const hasEtcdctl = fs.existsSync(ETCDCTL);
let dir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-bolt-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function revKey(main: number, sub = 0): Buffer {
  const b = Buffer.alloc(17);
  b.writeBigInt64BE(BigInt(main), 0);
  b[8] = 0x5f;
  b.writeBigInt64BE(BigInt(sub), 9);
  return b;
}

function sortedEntries(entries: BoltEntry[]): [Buffer, Buffer][] {
  return entries.map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as [Buffer, Buffer]).sort((a, b) => Buffer.compare(a[0], b[0]));
}

function readAll(f: BoltFile, bucket: string[]): [Buffer, Buffer][] {
  return [...f.entries(bucket)];
}

function etcdctlStatus(file: string): { hash: number; revision: number; totalKey: number; totalSize: number } {
  const r = spawnSync(ETCDCTL, ['snapshot', 'status', file, '-w', 'json'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `etcdctl snapshot status failed: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
}

/** Page headers of every data page, walking the file linearly by overflow counts. */
function pages(file: string): { id: number; flags: number; count: number; overflow: number }[] {
  const buf = fs.readFileSync(file);
  const out = [];
  for (let id = 2; id * 4096 < buf.length - 32; ) {
    const h = readPageHeader(buf, id * 4096);
    out.push(h);
    id += h.overflow + 1;
  }
  return out;
}

/** Depth of a bucket's tree, following the first child from its root page. */
function depth(file: string, rootPage: number): number {
  const buf = fs.readFileSync(file);
  let d = 1;
  for (let id = rootPage; ; d++) {
    const h = readPageHeader(buf, id * 4096);
    if (h.flags & LEAF_PAGE_FLAG) return d;
    assert.ok(h.flags & BRANCH_PAGE_FLAG);
    id = readPgid(buf, id * 4096 + PAGE_HEADER_SIZE + 8);
  }
}

/** The bucket header stored for a top-level bucket: root page (0 if inline). */
function bucketRoot(f: BoltFile, file: string, name: string): number {
  const buf = fs.readFileSync(file);
  const walk = (id: number): number | undefined => {
    const p = buf.subarray(id * 4096);
    const h = readPageHeader(p);
    for (let i = 0; i < h.count; i++) {
      const el = PAGE_HEADER_SIZE + i * 16;
      if (h.flags & BRANCH_PAGE_FLAG) {
        const r = walk(readPgid(p, el + 8));
        if (r !== undefined) return r;
        continue;
      }
      const flags = p.readUInt32LE(el);
      const ks = el + p.readUInt32LE(el + 4);
      const key = p.subarray(ks, ks + p.readUInt32LE(el + 8)).toString('latin1');
      if (key === name) {
        assert.ok(flags & BUCKET_LEAF_FLAG);
        return readPgid(p, ks + key.length);
      }
    }
    return undefined;
  };
  const r = walk(f.meta.root);
  assert.notEqual(r, undefined, `bucket ${name} not found`);
  return r!;
}

describe('bolt writer and reader', () => {
  test('many revision keys round-trip; file and stream outputs are identical', async () => {
    const n = 60_000;
    const gen = function* (): Generator<BoltEntry> {
      for (let i = 1; i <= n; i++) yield [revKey(i, i % 3), Buffer.from(`value-${i}`.repeat((i % 7) + 1))];
    };
    const file = path.join(dir, 'many.db');
    const res = await writeBoltFile(
      [
        { name: 'meta', entries: [[Buffer.from('consistent_index'), Buffer.from('0000000000000009', 'hex')]] },
        { name: 'kv', entries: gen() },
      ],
      file,
      { appendSha256: true },
    );
    const bytes = fs.readFileSync(file);
    assert.equal(bytes.length, res.dbSize + 32);
    assert.equal(res.dbSize % 4096, 0);
    assert.deepEqual(bytes.subarray(res.dbSize), createHash('sha256').update(bytes.subarray(0, res.dbSize)).digest());

    const f = await readBoltFile(file);
    try {
      assert.equal(f.hashVerified, true);
      assert.equal(f.meta.pgid * 4096, res.dbSize);
      assert.deepEqual(
        f.bucketNames().map((b) => b.toString()),
        ['kv', 'meta'],
      );
      let i = 0;
      for (const [k, v] of f.entries(['kv'])) {
        i++;
        assert.deepEqual(k, revKey(i, i % 3));
        assert.equal(v.toString(), `value-${i}`.repeat((i % 7) + 1));
      }
      assert.equal(i, n);
      assert.ok(depth(file, bucketRoot(f, file, 'kv')) >= 3, 'a 60k-key bucket needs branch pages');
    } finally {
      f.close();
    }

    // the stream variant must produce byte-identical output
    const image = await buildBoltImage(
      [
        { name: 'kv', entries: (async function* () { yield* gen(); })() },
        { name: 'meta', entries: [[Buffer.from('consistent_index'), Buffer.from('0000000000000009', 'hex')]] },
      ],
      { appendSha256: true, tmpDir: dir },
    );
    assert.equal(image.dbSize, res.dbSize);
    const chunks: Buffer[] = [];
    for await (const c of image) chunks.push(c);
    assert.deepEqual(image.sha256, res.sha256);
    assert.ok(Buffer.concat(chunks).equals(bytes));
    assert.deepEqual(fs.readdirSync(dir).filter((d) => d.startsWith('bolt-image-')), [], 'spool removed');

    if (hasEtcdctl) {
      assert.deepEqual(await snapshotStatus(file), etcdctlStatus(file));
      assert.equal(etcdctlStatus(file).totalSize, res.dbSize);
    }
  });

  test('large values use overflow pages; binary keys; nested and inline buckets; huge keys', async () => {
    const big: BoltEntry[] = [];
    for (let i = 0; i < 300; i++) {
      const size = i % 30 === 0 ? 100_000 + i * 37 : i % 11 === 0 ? 5000 : 20 + (i % 50);
      big.push([Buffer.from(`big/${String(i).padStart(4, '0')}`), randomBytes(size)]);
    }
    const bin: BoltEntry[] = [[Buffer.from([0]), Buffer.from([1])], [Buffer.from([0xff, 0xff]), Buffer.alloc(0)]];
    for (let i = 0; i < 3000; i++) bin.push([randomBytes(1 + (i % 40)), randomBytes(i % 90)]);
    const binSorted = sortedEntries(bin).filter((e, i, a) => i === 0 || !e[0].equals(a[i - 1]![0]));
    const huge: BoltEntry[] = [];
    for (let i = 0; i < 12; i++) huge.push([Buffer.alloc(20_000 + i, 0x41 + i), Buffer.from([i])]);
    const small: BoltEntry[] = [[Buffer.from('a'), Buffer.from('1')], [Buffer.from('b'), Buffer.from('2')]];
    const buckets: BoltBucketSource[] = [
      { name: 'big', entries: big },
      { name: Buffer.from([0xfe, 0x00, 0x01]), entries: binSorted },
      { name: 'huge-keys', entries: huge },
      { name: 'small', entries: small, sequence: 42n },
      { name: 'empty' },
      {
        name: 'parent',
        entries: [[Buffer.from('m'), Buffer.from('middle')]],
        buckets: [
          { name: 'child-big', entries: big.slice(0, 100) },
          { name: 'child-small', entries: small, buckets: [{ name: 'grandchild', entries: small }] },
          { name: 'z-inline', entries: small },
        ],
      },
    ];
    const file = path.join(dir, 'mixed.db');
    await writeBoltFile(buckets, file, { appendSha256: true });
    const f = await readBoltFile(file);
    try {
      assert.deepEqual(readAll(f, ['big']), sortedEntries(big));
      assert.deepEqual([...f.entries([Buffer.from([0xfe, 0x00, 0x01])])], binSorted);
      assert.deepEqual(readAll(f, ['huge-keys']), sortedEntries(huge));
      assert.deepEqual(readAll(f, ['small']), sortedEntries(small));
      assert.deepEqual(readAll(f, ['empty']), []);
      assert.equal(f.hasBucket(['empty']), true);
      assert.equal(f.hasBucket(['nope']), false);
      assert.deepEqual(readAll(f, ['parent']), [[Buffer.from('m'), Buffer.from('middle')]]);
      assert.deepEqual(
        f.bucketNames(['parent']).map((b) => b.toString()),
        ['child-big', 'child-small', 'z-inline'],
      );
      assert.deepEqual(readAll(f, ['parent', 'child-big']), sortedEntries(big.slice(0, 100)));
      assert.deepEqual(readAll(f, ['parent', 'child-small', 'grandchild']), sortedEntries(small));
      const walked = [...f.walk()].map((e) => e.path.map((p) => p.toString('hex')).join('/'));
      assert.equal(walked.length, 300 + binSorted.length + 12 + 2 + 1 + 100 + 2 + 2 + 2);

      // layout: small buckets inline (root 0), big ones in pages; big values spill into overflow pages
      assert.equal(bucketRoot(f, file, 'small'), 0);
      assert.equal(bucketRoot(f, file, 'empty'), 0);
      assert.notEqual(bucketRoot(f, file, 'big'), 0);
      const ps = pages(file);
      assert.ok(ps.some((p) => p.flags & LEAF_PAGE_FLAG && p.overflow >= 24), 'a 100 KB value spans 25 pages');
      assert.ok(ps.some((p) => p.flags & BRANCH_PAGE_FLAG && p.overflow > 0), '20 KB keys overflow branch pages too');
      assert.equal(ps.reduce((n, p) => n + p.overflow + 1, 2), f.meta.pgid, 'pages tile the file up to the high-water mark');
    } finally {
      f.close();
    }
    if (hasEtcdctl) assert.deepEqual(await snapshotStatus(file), etcdctlStatus(file));
  });

  test('deep trees: long keys make many branch levels that bbolt accepts', async () => {
    const n = 4000;
    const gen = function* (): Generator<BoltEntry> {
      for (let i = 0; i < n; i++) {
        const k = Buffer.alloc(1500, 0x61);
        k.writeUInt32BE(i, 1496);
        yield [k, Buffer.from(String(i))];
      }
    };
    const file = path.join(dir, 'deep.db');
    await writeBoltFile([{ name: 'deep', entries: gen() }], file, { appendSha256: true });
    const f = await readBoltFile(file);
    try {
      assert.ok(depth(file, bucketRoot(f, file, 'deep')) >= 5, `depth ${depth(file, bucketRoot(f, file, 'deep'))}`);
      let i = 0;
      for (const [k, v] of f.entries(['deep'])) {
        assert.equal(k.readUInt32BE(1496), i);
        assert.equal(v.toString(), String(i));
        i++;
      }
      assert.equal(i, n);
      // every branch page has at least two children, as bbolt's own trees do
      for (const p of pages(file)) if (p.flags & BRANCH_PAGE_FLAG) assert.ok(p.count >= 2, `branch page ${p.id} has ${p.count} children`);
    } finally {
      f.close();
    }
    if (hasEtcdctl) assert.deepEqual(await snapshotStatus(file), etcdctlStatus(file));
  });

  test('an image that is closed unread or abandoned part-way removes its spool', async () => {
    const spools = (): string[] => fs.readdirSync(dir).filter((d) => d.startsWith('bolt-image-'));
    const entries: BoltEntry[] = [];
    for (let i = 0; i < 20_000; i++) entries.push([Buffer.from(`k${String(i).padStart(6, '0')}`), Buffer.alloc(100)]);
    const unread = await buildBoltImage([{ name: 'b', entries }], { tmpDir: dir });
    assert.equal(spools().length, 1);
    await unread.close();
    assert.deepEqual(spools(), []);

    const partial = await buildBoltImage([{ name: 'b', entries }], { tmpDir: dir, chunkSize: 4096 });
    let n = 0;
    for await (const chunk of partial) {
      assert.ok(chunk.length <= 4096);
      if (++n === 10) break;
    }
    assert.equal(partial.sha256, undefined);
    assert.deepEqual(spools(), []);
    assert.throws(() => partial[Symbol.asyncIterator](), BoltFormatError);
  });

  test('every tree size from 0 to 700 keys reads back', async () => {
    for (const n of [0, 1, 2, 3, 50, 127, 128, 129, 255, 256, 257, 700]) {
      const entries: BoltEntry[] = [];
      for (let i = 0; i < n; i++) entries.push([Buffer.from(`k${String(i).padStart(5, '0')}`), Buffer.alloc(i % 40, 1)]);
      const file = path.join(dir, `n${n}.db`);
      await writeBoltFile([{ name: 'b', entries }], file);
      const f = await readBoltFile(file);
      try {
        assert.deepEqual(readAll(f, ['b']), entries);
        assert.equal(f.storedSha256, undefined);
      } finally {
        f.close();
      }
    }
  });

  test('random shapes: key and value sizes across page boundaries, nesting, empty buckets', async () => {
    // a fixed-seed generator keeps failures reproducible
    let seed = 0x9e3779b9;
    const rnd = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const bytes = (n: number): Buffer => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = rnd(256);
      return b;
    };
    const sizes = [0, 1, 7, 100, 1000, 1024, 2000, 4000, 4064, 4080, 4096, 5000, 9000, 40_000];
    const bucket = (depth: number, name: Buffer): { src: BoltBucketSource; all: Map<string, [Buffer, Buffer][]> } => {
      const m = new Map<string, Buffer>();
      const count = [0, 1, 3, 40, 400][rnd(5)]!;
      for (let i = 0; i < count; i++) {
        const k = bytes(1 + (rnd(4) === 0 ? sizes[rnd(9)]! : rnd(30)));
        if (k.length) m.set(k.toString('latin1'), Buffer.alloc(sizes[rnd(sizes.length)]!, rnd(256)));
      }
      const entries = [...m].map(([k, v]) => [Buffer.from(k, 'latin1'), v] as [Buffer, Buffer]).sort((a, b) => Buffer.compare(a[0], b[0]));
      const all = new Map<string, [Buffer, Buffer][]>([[name.toString('hex'), entries]]);
      const subs: BoltBucketSource[] = [];
      if (depth < 2) {
        for (let i = rnd(3); i > 0; i--) {
          const subName = Buffer.from(`~sub${depth}-${i}`); // '~' sorts after the printable keys most entries start with
          if (m.has(subName.toString('latin1'))) continue;
          const sub = bucket(depth + 1, Buffer.concat([name, Buffer.from('/'), subName]));
          subs.push({ ...sub.src, name: subName });
          for (const [k, v] of sub.all) all.set(k, v);
        }
      }
      return { src: { name, entries, buckets: subs }, all };
    };
    for (let round = 0; round < 4; round++) {
      const tops = [];
      for (let i = 0; i < 4; i++) tops.push(bucket(0, Buffer.from(`top${round}-${i}`)));
      const file = path.join(dir, `random-${round}.db`);
      await writeBoltFile(
        tops.map((t) => t.src),
        file,
        { appendSha256: true },
      );
      const f = await readBoltFile(file);
      try {
        assert.deepEqual(f.check(), []);
        const read = (names: Buffer[]): [Buffer, Buffer][] => [...f.entries(names)];
        for (const t of tops) {
          for (const [hexPath, entries] of t.all) {
            const parts = Buffer.from(hexPath, 'hex').toString('latin1').split('/').map((p) => Buffer.from(p, 'latin1'));
            assert.deepEqual(read(parts), entries, `round ${round} bucket ${Buffer.from(hexPath, 'hex').toString('latin1')}`);
          }
        }
      } finally {
        f.close();
      }
      if (hasEtcdctl) assert.deepEqual(await snapshotStatus(file), etcdctlStatus(file), `round ${round}`);
    }
  });

  test('rejects unsorted, duplicate and empty keys', async () => {
    const file = path.join(dir, 'bad.db');
    const bad = async (entries: BoltEntry[]): Promise<void> =>
      assert.rejects(writeBoltFile([{ name: 'b', entries }], file), BoltFormatError);
    await bad([[Buffer.from('b'), Buffer.alloc(0)], [Buffer.from('a'), Buffer.alloc(0)]]);
    await bad([[Buffer.from('a'), Buffer.alloc(0)], [Buffer.from('a'), Buffer.alloc(0)]]);
    await bad([[Buffer.alloc(0), Buffer.alloc(0)]]);
    await assert.rejects(writeBoltFile([{ name: 'x' }, { name: 'x' }], file), BoltFormatError);
    await assert.rejects(
      writeBoltFile([{ name: 'p', entries: [[Buffer.from('c'), Buffer.alloc(0)]], buckets: [{ name: 'c' }] }], file),
      BoltFormatError,
    );
    assert.equal(fs.existsSync(file), false, 'a failed write leaves no file behind');
  });

  test("check() finds what bbolt's Tx.Check finds", async () => {
    const file = path.join(dir, 'check.db');
    const entries: BoltEntry[] = [];
    for (let i = 0; i < 3000; i++) entries.push([Buffer.from(`k${String(i).padStart(5, '0')}`), Buffer.alloc(50, i)]);
    await writeBoltFile([{ name: 'b', entries }, { name: 'c', entries: entries.slice(0, 5) }], file);
    const ok = await readBoltFile(file);
    let seen = 0;
    assert.deepEqual(
      ok.check(() => seen++),
      [],
    );
    assert.equal(seen, 3005);
    ok.close();

    // point a branch's second child at its first: one page referenced twice, one orphaned
    const bytes = fs.readFileSync(file);
    const branch = pages(file).find((p) => p.flags & BRANCH_PAGE_FLAG && p.count >= 2)!;
    const at = branch.id * 4096 + PAGE_HEADER_SIZE;
    const orphan = readPgid(bytes, at + 16 + 8);
    bytes.writeBigUInt64LE(BigInt(readPgid(bytes, at + 8)), at + 16 + 8);
    fs.writeFileSync(file, bytes);
    const bad = await readBoltFile(file);
    const problems = bad.check();
    bad.close();
    assert.ok(problems.some((p) => /multiple references/.test(p)), problems.join('; '));
    assert.ok(problems.includes(`page ${orphan}: unreachable unfreed`) || problems.some((p) => /out of order/.test(p)), problems.join('; '));
  });

  test('hash and meta checks: corrupt data, missing hash, damaged meta page', async () => {
    const file = path.join(dir, 'h.db');
    const entries: BoltEntry[] = [];
    for (let i = 0; i < 500; i++) entries.push([Buffer.from(`k${String(i).padStart(4, '0')}`), Buffer.from(`v${i}`)]);
    const res = await writeBoltFile([{ name: 'b', entries }], file, { appendSha256: true });

    const flipped = path.join(dir, 'flipped.db');
    const bytes = fs.readFileSync(file);
    bytes[5 * 4096 + 100] ^= 0xff;
    fs.writeFileSync(flipped, bytes);
    await assert.rejects(readBoltFile(flipped), /expected sha256/);
    (await readBoltFile(flipped, { hash: 'ignore' })).close();

    const bare = path.join(dir, 'bare.db');
    fs.writeFileSync(bare, fs.readFileSync(file).subarray(0, res.dbSize));
    await assert.rejects(readBoltFile(bare, { requireHash: true }), /missing hash/);
    const b = await readBoltFile(bare);
    assert.equal(b.hashVerified, false);
    assert.deepEqual(readAll(b, ['b']), entries);
    b.close();

    // bolt falls back to the other meta page when the newer one fails its checksum
    const m = fs.readFileSync(bare);
    m[16 + 40] ^= 1;
    fs.writeFileSync(bare, m);
    const fb = await readBoltFile(bare);
    assert.equal(fb.meta.txid, 1n);
    assert.deepEqual(readAll(fb, ['b']), entries);
    fb.close();
    m[4096 + 16 + 40] ^= 1;
    fs.writeFileSync(bare, m);
    await assert.rejects(readBoltFile(bare), /invalid bolt database/);
  });
});
