// The raft log on disk across WAL segment rotations: snapshots and
// compaction release old segments, and after a restart (or a crash right
// after a release) the snapshot, the hard state and every entry after the
// snapshot are still there.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Backend } from '../backend/backend';
import { EntryType } from '../raft';
import { tempDir } from '../testing/processes';
import { decodeSnapshot } from '../proto/gen/raftpb';
import { DiskStorage } from './raft-storage';
import { Wal } from './wal';

const cs = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
const SEG = 64 * 1024;

describe('raft storage on the WAL', () => {
  it('keeps snapshot, hard state and entries across rotations, releases and a restart', async () => {
    const dir = tempDir('raft-storage');
    const walDir = path.join(dir, 'wal');
    const backend = Backend.open(path.join(dir, 'db'), { sync: false });
    const s = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    const N = 650;
    let snapAt = 0;
    for (let i = 1; i <= N; i++) {
      s.append([{ index: i, term: 2, type: EntryType.Normal, data: Buffer.alloc(1000, i % 251) }]);
      s.setHardState({ term: 2, vote: 1n, commit: i });
      await s.flush();
      if (i % 100 === 0) {
        s.createSnapshot(i, cs, Buffer.from(`state@${i}`));
        snapAt = i;
        s.compact(i - 50);
        // segments go once the state machine is committed
        await backend.commit();
      }
    }
    await s.close();
    const segs = fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort();
    // 600 KB of entries in 64 KiB segments: most were released
    assert.ok(segs.length < 5, `segments left: ${segs.join(',')}`);
    assert.ok(parseInt(segs[0].slice(0, 16), 16) > 5, `the first segments were released: ${segs.join(',')}`);
    const again = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    assert.equal(again.snapshot().metadata.index, snapAt);
    assert.equal(Buffer.from(again.snapshot().data).toString(), `state@${snapAt}`);
    assert.deepEqual(again.getHardState(), { term: 2, vote: 1n, commit: N });
    assert.equal(again.lastIndex(), N);
    const ents = again.entries(snapAt + 1, N + 1);
    assert.deepEqual(ents.map((e) => e.index), Array.from({ length: N - snapAt }, (_, k) => snapAt + 1 + k));
    assert.ok(ents.every((e) => e.term === 2 && e.data.length === 1000 && e.data[0] === e.index % 251));
    await again.close();
    await backend.close();
  });

  it('a crash right after a compaction released segments finds the snapshot that replaced them', async () => {
    const dir = tempDir('raft-storage-crash');
    const walDir = path.join(dir, 'wal');
    const backend = Backend.open(path.join(dir, 'db'), { sync: false });
    const s = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    for (let i = 1; i <= 300; i++) {
      s.append([{ index: i, term: 2, type: EntryType.Normal, data: Buffer.alloc(1000, i % 251) }]);
      s.setHardState({ term: 2, vote: 1n, commit: i });
      await s.flush();
    }
    const before = fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).length;
    s.createSnapshot(300, cs, Buffer.from('state@300'));
    s.compact(250);
    // the raft loop's next flush has not come yet: wait for the release itself, then "crash" (reopen without closing)
    while (fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).length >= before) await new Promise((r) => setImmediate(r));
    const again = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    assert.equal(again.snapshot().metadata.index, 300);
    assert.equal(again.lastIndex(), 300);
    assert.deepEqual(again.getHardState(), { term: 2, vote: 1n, commit: 300 });
    await again.close();
    await s.close();
    await backend.close();
  });

  it('writes the snapshot record as etcd\'s raftpb.Snapshot, and still reads the JSON records of earlier versions', async () => {
    const dir = tempDir('raft-storage-pb');
    const walDir = path.join(dir, 'wal');
    const backend = Backend.open(path.join(dir, 'db'), { sync: false });
    const s = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    for (let i = 1; i <= 5; i++) s.append([{ index: i, term: 3, type: EntryType.Normal, data: Buffer.from([i]) }]);
    s.setHardState({ term: 3, vote: 7n, commit: 5 });
    const conf = { voters: [7n, 0xfedcba9876543210n], learners: [9n], votersOutgoing: [], learnersNext: [], autoLeave: false };
    s.createSnapshot(4, conf, Buffer.from('members@4'));
    await s.flush();
    await s.close();
    // the raw record decodes with etcd's raftpb schema
    const { wal, replay } = Wal.open(walDir, { segmentBytes: SEG });
    await wal.close();
    assert.ok(replay.snapshot);
    const pb = decodeSnapshot(replay.snapshot);
    assert.equal(pb.metadata?.index, 4);
    assert.equal(pb.metadata?.term, 3);
    assert.deepEqual(pb.metadata?.conf_state?.voters, [7n, 0xfedcba9876543210n]);
    assert.deepEqual(pb.metadata?.conf_state?.learners, [9n]);
    assert.equal(Buffer.from(pb.data).toString(), 'members@4');
    const again = DiskStorage.load(walDir, backend, { segmentBytes: SEG });
    assert.deepEqual(again.snapshot().metadata, { index: 4, term: 3, confState: conf });
    assert.equal(Buffer.from(again.snapshot().data).toString(), 'members@4');
    await again.close();

    // a log written by an earlier version: the snapshot record is JSON
    const oldDir = path.join(dir, 'wal-old');
    const old = Wal.open(oldDir, { segmentBytes: SEG }).wal;
    old.appendEntries([{ index: 1, term: 2, type: EntryType.Normal, data: Buffer.from([1]) }, { index: 2, term: 2, type: EntryType.Normal, data: Buffer.from([2]) }]);
    const json = { index: 2, term: 2, voters: ['5'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false, data: Buffer.from('old@2').toString('base64') };
    old.saveSnapshot(2, Buffer.from(JSON.stringify(json)));
    old.setHardState({ term: 2, vote: 5n, commit: 2 });
    await old.flush();
    await old.close();
    const loaded = DiskStorage.load(oldDir, backend, { segmentBytes: SEG });
    assert.equal(loaded.snapshot().metadata.index, 2);
    assert.deepEqual(loaded.snapshot().metadata.confState.voters, [5n]);
    assert.equal(Buffer.from(loaded.snapshot().data).toString(), 'old@2');
    await loaded.close();
    await backend.close();
  });
});
