// The write-ahead log: what was flushed comes back after reopening, a torn
// tail is cut off (damage before it refuses the open: see
// ./wal-corruption.test.ts), a newer leader's entries replace an old tail,
// and old segments go only when asked.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/processes';
import { StorageError } from '../backend/storage-error';
import zlib from 'node:zlib';
import { decodeEntry, decodeHardState } from '../proto/gen/raftpb';
import { Wal } from './wal';

const e = (index: number, term: number, s = `v${index}`): { index: number; term: number; type: number; data: Buffer } => ({ index, term, type: 0, data: Buffer.from(s) });

describe('wal', () => {
  it('segments are preallocated; records start a new segment when one is full', async () => {
    const dir = tempDir('wal-rotate');
    const { wal } = Wal.open(dir);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    wal.saveSnapshot(0, Buffer.from('meta0'));
    wal.setHardState({ term: 1, vote: 1n, commit: 0 });
    for (let i = 1; i <= 12; i++) {
      wal.appendEntries([{ index: i, term: 1, type: 0, data: big }]);
      await wal.flush();
    }
    await wal.close();
    const segs = fs.readdirSync(dir).filter((f) => f.endsWith('.wal'));
    assert.ok(segs.length >= 2, `segments: ${segs.join(',')}`);
    const { replay, wal: w2 } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => x.index), Array.from({ length: 12 }, (_, i) => i + 1));
    assert.ok(replay.entries.every((x) => x.data.length === big.length && x.data[100] === 7));
    w2.releaseTo(5);
    await w2.close();
    assert.ok(fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).length < segs.length, 'a segment holding only old entries is released');
    // every segment begins with the snapshot and hard state: releasing old ones loses neither
    const { replay: r3, wal: w3 } = Wal.open(dir);
    assert.equal(r3.snapshot?.toString(), 'meta0');
    assert.deepEqual(r3.hardState, { term: 1, vote: 1n, commit: 0 });
    assert.equal(r3.entries.at(-1)?.index, 12);
    await w3.close();
  });

  it('replays entries, the last hard state and snapshot after reopening', async () => {
    const dir = tempDir('wal');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1), e(2, 1), e(3, 1)]);
    wal.setHardState({ term: 1, vote: 7n, commit: 2 });
    await wal.flush();
    wal.setHardState({ term: 2, vote: 9n, commit: 3 });
    wal.saveSnapshot(1, Buffer.from('meta1'));
    await wal.close();
    const { replay, wal: w2 } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => [x.index, x.term, x.data.toString()]), [[2, 1, 'v2'], [3, 1, 'v3']]);
    assert.deepEqual(replay.hardState, { term: 2, vote: 9n, commit: 3 });
    assert.equal(replay.snapshotIndex, 1);
    assert.equal(replay.snapshot?.toString(), 'meta1');
    await w2.close();
  });

  it('entries and hard state are written as etcd writes them: raftpb.Entry and raftpb.HardState record payloads', async () => {
    const dir = tempDir('wal-pb');
    const { wal } = Wal.open(dir);
    wal.appendEntries([{ index: 300, term: 7, type: 1, data: Buffer.from('conf') }, { index: 301, term: 7, type: 0, data: Buffer.alloc(0) }]);
    wal.setHardState({ term: 7, vote: 0xfedcba9876543210n, commit: 300 });
    await wal.close();
    const seg = fs.readFileSync(path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).sort()[0]));
    const bodies: Buffer[] = [];
    for (let pos = 0; pos + 8 <= seg.length; ) {
      const len = seg.readUInt32LE(pos);
      if (!len) break;
      bodies.push(seg.subarray(pos + 8, pos + 8 + len));
      pos += 8 + len;
    }
    const entries = bodies.filter((b) => b[0] === 5).map((b) => decodeEntry(b.subarray(1)));
    assert.deepEqual(entries.map((x) => [x.Index, x.Term, x.Type, x.Data.toString()]), [[300, 7, 1, 'conf'], [301, 7, 0, '']]);
    const hs = bodies.filter((b) => b[0] === 6).map((b) => decodeHardState(b.subarray(1)));
    assert.deepEqual(hs, [{ term: 7, vote: 0xfedcba9876543210n, commit: 300 }]);
  });

  it('a log written before raftpb records (fixed little-endian entries and hard state) still replays', async () => {
    const dir = tempDir('wal-legacy');
    const rec = (body: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(body.length, 0);
      h.writeUInt32LE(zlib.crc32(body) >>> 0, 4);
      return Buffer.concat([h, body]);
    };
    const entry = (index: number, term: number, data: string): Buffer => {
      const b = Buffer.alloc(18 + data.length);
      b[0] = 1;
      b.writeBigUInt64LE(BigInt(index), 1);
      b.writeBigUInt64LE(BigInt(term), 9);
      b[17] = 0;
      b.write(data, 18);
      return rec(b);
    };
    const hard = Buffer.alloc(25);
    hard[0] = 2;
    hard.writeBigUInt64LE(3n, 1);
    hard.writeBigUInt64LE(5n, 9);
    hard.writeBigUInt64LE(2n, 17);
    const records = Buffer.concat([entry(1, 3, 'a'), entry(2, 3, 'b'), rec(hard)]);
    const batch = Buffer.alloc(5);
    batch[0] = 4;
    batch.writeUInt32LE(records.length, 1);
    const file = Buffer.alloc(1 << 20);
    Buffer.concat([rec(batch), records]).copy(file);
    // the name a segment of this version has: start with what Wal.open itself creates
    const { wal: w0 } = Wal.open(dir);
    await w0.close();
    const name = fs.readdirSync(dir).filter((f) => f.endsWith('.wal')).sort()[0];
    fs.writeFileSync(path.join(dir, name), file);
    const { replay, wal } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => [x.index, x.term, x.data.toString()]), [[1, 3, 'a'], [2, 3, 'b']]);
    assert.deepEqual(replay.hardState, { term: 3, vote: 5n, commit: 2 });
    // and it goes on in the new format after the old records
    wal.appendEntries([e(3, 3)]);
    await wal.close();
    const { replay: r2, wal: w2 } = Wal.open(dir);
    assert.deepEqual(r2.entries.map((x) => x.index), [1, 2, 3]);
    await w2.close();
  });

  it('cuts a torn record at the tail (its write stopped at a sector) and keeps everything before it', async () => {
    const dir = tempDir('wal-torn');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1), e(2, 1)]);
    await wal.flush();
    wal.appendEntries([e(3, 1, 'x'.repeat(2000))]);
    await wal.close();
    const file = path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.wal'))[0]);
    const b = fs.readFileSync(file);
    let end = 0;
    while (b.readUInt32LE(end) !== 0) end += 8 + b.readUInt32LE(end);
    // the crash left the last record's sectors from the second one on unwritten
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(1024), 0, 1024, 1024);
    fs.closeSync(fd);
    const { replay, wal: w2 } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => x.index), [1, 2]);
    assert.equal(fs.readFileSync(file).subarray(replay.repaired!.offset, end).every((x) => x === 0), true, 'the torn record is cleared');
    w2.appendEntries([e(3, 1)]);
    await w2.close();
    assert.deepEqual(Wal.open(dir).replay.entries.map((x) => x.index), [1, 2, 3]);
  });

  it('a flipped byte inside an acknowledged record refuses the open, naming the file and offset', async () => {
    const dir = tempDir('wal-flip');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1, 'aaaa')]);
    await wal.flush();
    wal.appendEntries([e(2, 1, 'bbbb')]);
    await wal.close();
    const file = path.join(dir, fs.readdirSync(dir).filter((f) => f.endsWith('.wal'))[0]);
    const b = fs.readFileSync(file);
    // the record of entry 2 (in the second batch), found by walking the records: flip the last byte of its value
    let second = -1;
    for (let pos = 0; pos + 8 <= b.length; ) {
      const len = b.readUInt32LE(pos);
      if (!len) break;
      if (b[pos + 8] === 5 && decodeEntry(b.subarray(pos + 9, pos + 8 + len)).Index === 2) second = pos;
      pos += 8 + len;
    }
    assert.ok(second > 0, 'entry 2 is on disk');
    b[second + 8 + b.readUInt32LE(second) - 1] ^= 0xff;
    fs.writeFileSync(file, b);
    assert.throws(() => Wal.open(dir), (err: unknown) => err instanceof StorageError && err.kind === 'corrupt' && err.message.includes(`walpb: crc mismatch in ${file} at offset ${second}`));
  });

  it('entries from a newer term replace the uncommitted tail they overlap', async () => {
    const dir = tempDir('wal-overwrite');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1), e(2, 1), e(3, 1), e(4, 1)]);
    await wal.flush();
    wal.appendEntries([e(3, 2, 'new3')]);
    await wal.close();
    const { replay } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => [x.index, x.term, x.data.toString()]), [[1, 1, 'v1'], [2, 1, 'v2'], [3, 2, 'new3']]);
  });
});
