// Damage to the write-ahead log, as etcd tells it apart: a tail that was
// never synced (torn by a crash) is cut and everything before it comes back;
// damage anywhere before it (a flipped byte in an acknowledged record, in the
// last segment or an earlier one) refuses the open with the file and offset,
// and leaves the file as it was.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { StorageError } from '../backend/storage-error';
import { tempDir } from '../testing/processes';
import { decodeEntry } from '../proto/gen/raftpb';
import { RecordType, Wal } from './wal';

const SEG = 256 * 1024;
const HEADER = 8;

interface Rec {
  off: number;
  end: number;
  type: number;
  index: number;
}

/** The records of one segment file, as laid out on disk. */
function records(file: string): Rec[] {
  const b = fs.readFileSync(file);
  const out: Rec[] = [];
  for (let pos = 0; pos + HEADER <= b.length; ) {
    const len = b.readUInt32LE(pos);
    if (len === 0) break;
    const type = b[pos + HEADER];
    out.push({ off: pos, end: pos + HEADER + len, type, index: type === RecordType.Entry ? decodeEntry(b.subarray(pos + HEADER + 1, pos + HEADER + len)).Index : 0 });
    pos += HEADER + len;
  }
  return out;
}

const segments = (dir: string): string[] =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort()
    .map((f) => path.join(dir, f));

const entry = (index: number, size = 40): { index: number; term: number; type: number; data: Buffer } => ({
  index,
  term: 1,
  type: 0,
  data: Buffer.from(`value-${index}-`.padEnd(size, 'x')),
});

/** Writes entries 1..n, each flushed (acknowledged) on its own, and closes. */
async function writeLog(dir: string, n: number, size = 40): Promise<void> {
  const { wal } = Wal.open(dir, { segmentBytes: SEG });
  for (let i = 1; i <= n; i++) {
    wal.appendEntries([entry(i, size)]);
    await wal.flush();
  }
  await wal.close();
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

function openFails(dir: string, file: string, offset: number, why = /walpb: crc mismatch/): void {
  const before = fs.readFileSync(file);
  assert.throws(
    () => Wal.open(dir, { segmentBytes: SEG }),
    (e: unknown) => {
      assert.ok(e instanceof StorageError, String(e));
      assert.equal(e.kind, 'corrupt');
      assert.equal(e.path, file);
      assert.match(e.message, why);
      assert.ok(e.message.includes(`${file} at offset ${offset}`), e.message);
      return true;
    },
  );
  assert.ok(fs.readFileSync(file).equals(before), 'a refused log is left as it was');
}

async function indexes(dir: string): Promise<number[]> {
  const { wal, replay } = Wal.open(dir, { segmentBytes: SEG });
  await wal.close();
  return replay.entries.map((e) => e.index);
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('wal damage: torn tail or corruption', () => {
  for (const [name, pick] of [
    ['first', (n: number) => 1],
    ['middle', (n: number) => Math.floor(n / 2)],
    ['last but one', (n: number) => n - 1],
    ['last', (n: number) => n],
  ] as const) {
    it(`a flipped byte in the ${name} acknowledged record of the last segment refuses the open`, async () => {
      const dir = tempDir('wal-flip-last');
      const n = 30;
      await writeLog(dir, n);
      const file = segments(dir).at(-1)!;
      const rec = records(file).find((r) => r.index === pick(n))!;
      flipByte(file, rec.off + HEADER + 20);
      openFails(dir, file, rec.off);
    });
  }

  for (const [name, pick] of [
    ['first', (ids: number[]) => ids[0]],
    ['middle', (ids: number[]) => ids[Math.floor(ids.length / 2)]],
    ['last but one', (ids: number[]) => ids[ids.length - 2]],
  ] as const) {
    it(`a flipped byte in the ${name} record of an earlier segment refuses the open`, async () => {
      const dir = tempDir('wal-flip-earlier');
      await writeLog(dir, 40, 20_000);
      const segs = segments(dir);
      assert.ok(segs.length >= 2, `segments: ${segs.length}`);
      const file = segs[0];
      const ids = records(file).filter((r) => r.type === RecordType.Entry).map((r) => r.index);
      const rec = records(file).find((r) => r.index === pick(ids))!;
      flipByte(file, rec.off + HEADER + 30);
      openFails(dir, file, rec.off);
    });
  }

  it('a flipped byte in a record of the last batch (all records flushed in one batch) refuses the open', async () => {
    const dir = tempDir('wal-flip-batch');
    const { wal } = Wal.open(dir, { segmentBytes: SEG });
    wal.appendEntries(range(1, 10).map((i) => entry(i)));
    await wal.close();
    const file = segments(dir)[0];
    const rec = records(file).find((r) => r.index === 4)!;
    flipByte(file, rec.off + HEADER + 20);
    openFails(dir, file, rec.off);
  });

  it('a flipped byte in a record length (pointing past the end of the segment) refuses the open', async () => {
    const dir = tempDir('wal-flip-len');
    await writeLog(dir, 10);
    const file = segments(dir)[0];
    const rec = records(file).find((r) => r.index === 5)!;
    flipByte(file, rec.off + 3);
    openFails(dir, file, rec.off, /unexpected end of file/);
  });

  it('a byte flipped at any offset of the acknowledged records refuses the open (never a silent cut)', async () => {
    const base = tempDir('wal-flip-random');
    await writeLog(base, 40);
    const file = segments(base)[0];
    const dataEnd = records(file).at(-1)!.end;
    let seed = 11;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let k = 0; k < 40; k++) {
      const at = Math.floor(rand() * dataEnd);
      const dir = tempDir('wal-flip-random-case');
      const copy = path.join(dir, path.basename(file));
      fs.copyFileSync(file, copy);
      flipByte(copy, at);
      const rec = records(file).find((r) => r.off <= at && at < r.end)!;
      assert.throws(
        () => Wal.open(dir, { segmentBytes: SEG }),
        (e: unknown) => e instanceof StorageError && e.kind === 'corrupt' && e.message.includes(`${copy} at offset ${rec.off}`),
        `byte ${at} (record at ${rec.off}, type ${rec.type})`,
      );
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a torn last batch (a sector of it never written) is cut; every acknowledged record comes back', async () => {
    const dir = tempDir('wal-torn');
    await writeLog(dir, 20);
    // the last batch: never synced when the power went; 3 records of 1.5 KiB
    const { wal } = Wal.open(dir, { segmentBytes: SEG });
    wal.appendEntries([entry(21, 1500), entry(22, 1500), entry(23, 1500)]);
    await wal.close();
    const file = segments(dir)[0];
    const r22 = records(file).find((r) => r.index === 22)!;
    // the disk kept the sectors before r22's second one and also a later one (writeback is unordered)
    const sector = (Math.floor(r22.off / 512) + 2) * 512;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(512), 0, 512, sector);
    fs.closeSync(fd);
    const { replay, wal: w2 } = Wal.open(dir, { segmentBytes: SEG });
    assert.deepEqual(replay.entries.map((e) => e.index), range(1, 21));
    assert.deepEqual(replay.repaired, { file, offset: r22.off });
    // the cut is cleared on disk: new records after it replay, and nothing of the torn batch comes back
    w2.appendEntries([entry(22)]);
    await w2.close();
    assert.deepEqual(await indexes(dir), range(1, 22));
  });

  it('a torn last batch whose first sector never landed but later ones did (a power cut) is cut, not refused', async () => {
    const dir = tempDir('wal-torn-head');
    await writeLog(dir, 20);
    const { wal } = Wal.open(dir, { segmentBytes: SEG });
    wal.appendEntries([entry(21, 1500), entry(22, 1500), entry(23, 1500)]);
    await wal.close();
    const file = segments(dir)[0];
    const head = records(file).filter((r) => r.type === RecordType.Batch).at(-1)!;
    // the sector piece holding the Batch record's start is lost; the rest of the write landed
    const fd = fs.openSync(file, 'r+');
    const lost = (Math.floor(head.off / 512) + 1) * 512 - head.off;
    fs.writeSync(fd, Buffer.alloc(lost), 0, lost, head.off);
    fs.closeSync(fd);
    const { replay, wal: w2 } = Wal.open(dir, { segmentBytes: SEG });
    await w2.close();
    assert.deepEqual(replay.entries.map((e) => e.index), range(1, 20));
    assert.deepEqual(replay.repaired, { file, offset: head.off });
  });

  it('a zeroed Batch record of an acknowledged batch followed by later batches refuses the open', async () => {
    const dir = tempDir('wal-zeroed-head');
    await writeLog(dir, 12, 1500);
    const file = segments(dir)[0];
    const head = records(file).filter((r) => r.type === RecordType.Batch)[5];
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(head.end - head.off), 0, head.end - head.off, head.off);
    fs.closeSync(fd);
    openFails(dir, file, head.off, /wal: zeroed record header/);
  });

  it('a partially written last record followed by zeros is cut', async () => {
    const dir = tempDir('wal-partial');
    await writeLog(dir, 12, 1500);
    const file = segments(dir)[0];
    const last = records(file).find((r) => r.index === 12)!;
    // the write stopped at a sector boundary inside the record
    const stop = (Math.floor(last.off / 512) + 1) * 512;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(last.end - stop), 0, last.end - stop, stop);
    fs.closeSync(fd);
    assert.deepEqual(await indexes(dir), range(1, 11));
  });

  it('a zeroed sector in an acknowledged batch followed by later batches refuses the open', async () => {
    const dir = tempDir('wal-zeroed');
    await writeLog(dir, 12, 1500);
    const file = segments(dir)[0];
    const rec = records(file).find((r) => r.index === 5)!;
    const sector = (Math.floor(rec.off / 512) + 1) * 512;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(512), 0, 512, sector);
    fs.closeSync(fd);
    openFails(dir, file, rec.off);
  });

  it('a truncation at any offset of the last segment is cut, never refused, and keeps every record before it', async () => {
    const base = tempDir('wal-trunc');
    // two segments; the last one holds several batches of varied sizes
    const { wal } = Wal.open(base, { segmentBytes: SEG });
    let i = 0;
    while (segments(base).length < 2 || i < 60) {
      const batch = range(i + 1, i + 1 + (i % 3));
      wal.appendEntries(batch.map((x) => entry(x, 200 + ((x * 977) % 3000))));
      await wal.flush();
      i = batch.at(-1)!;
    }
    wal.setHardState({ term: 1, vote: 1n, commit: i });
    await wal.close();
    const segs = segments(base);
    const lastRecs = records(segs.at(-1)!);
    const dataEnd = lastRecs.at(-1)!.end;
    // seeded offsets, and every record boundary of the last segment +-1
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const cuts = new Set<number>([0, 1, 7, 8, dataEnd, dataEnd + 5]);
    for (const r of lastRecs) for (const d of [-1, 0, 1, HEADER, HEADER + 1]) if (r.off + d >= 0) cuts.add(r.off + d);
    for (let k = 0; k < 40; k++) cuts.add(Math.floor(rand() * dataEnd));
    const before = records(segs[0]).filter((r) => r.type === RecordType.Entry).map((r) => r.index);
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      const dir = tempDir('wal-trunc-case');
      for (const s of segs) fs.copyFileSync(s, path.join(dir, path.basename(s)));
      const last = path.join(dir, path.basename(segs.at(-1)!));
      fs.truncateSync(last, cut);
      const want = [...before, ...lastRecs.filter((r) => r.type === RecordType.Entry && r.end <= cut).map((r) => r.index)];
      let got: number[];
      try {
        got = await indexes(dir);
      } catch (e) {
        assert.fail(`truncated at ${cut}: refused: ${(e as Error).message}`);
      }
      assert.deepEqual(got, [...new Set(want)].sort((a, b) => a - b), `truncated at ${cut}`);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a truncated earlier segment refuses the open', async () => {
    const dir = tempDir('wal-trunc-earlier');
    await writeLog(dir, 40, 20_000);
    const segs = segments(dir);
    assert.ok(segs.length >= 2);
    const recs = records(segs[0]);
    const cutAt = recs[Math.floor(recs.length / 2)].off + 100;
    fs.truncateSync(segs[0], cutAt);
    assert.throws(() => Wal.open(dir, { segmentBytes: SEG }), (e: unknown) => e instanceof StorageError && e.kind === 'corrupt' && e.message.includes(segs[0]));
  });
});
