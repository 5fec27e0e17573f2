// The write-ahead log: what was flushed comes back after reopening, a torn
// tail is cut off, a newer leader's entries replace an old tail, and old
// segments go only when asked.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/processes';
import { Wal } from './wal';

const e = (index: number, term: number, s = `v${index}`): { index: number; term: number; type: number; data: Buffer } => ({ index, term, type: 0, data: Buffer.from(s) });

describe('wal', () => {
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

  it('cuts a torn record at the tail and keeps everything before it', async () => {
    const dir = tempDir('wal-torn');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1), e(2, 1)]);
    await wal.close();
    const file = path.join(dir, fs.readdirSync(dir)[0]);
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.from([50, 0, 0, 0, 1, 2, 3, 4, 1, 9]));
    const { replay, wal: w2 } = Wal.open(dir);
    assert.deepEqual(replay.entries.map((x) => x.index), [1, 2]);
    assert.equal(fs.statSync(file).size, size);
    w2.appendEntries([e(3, 1)]);
    await w2.close();
    assert.deepEqual(Wal.open(dir).replay.entries.map((x) => x.index), [1, 2, 3]);
  });

  it('a flipped byte inside a record ends the replay there (checksum)', async () => {
    const dir = tempDir('wal-flip');
    const { wal } = Wal.open(dir);
    wal.appendEntries([e(1, 1, 'aaaa'), e(2, 1, 'bbbb')]);
    await wal.close();
    const file = path.join(dir, fs.readdirSync(dir)[0]);
    const b = fs.readFileSync(file);
    b[b.length - 2] ^= 0xff;
    fs.writeFileSync(file, b);
    assert.deepEqual(Wal.open(dir).replay.entries.map((x) => x.index), [1]);
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
