// kill -9 inside the windows a timed kill would rarely hit: right after a raft
// snapshot record became durable, in the middle of releasing old WAL segments,
// and while a follower installs a state snapshot from the leader. Members run
// with ETCDESK_FAULT_KILL_AT (backend/fault-hooks.ts): they kill themselves at
// that point and journal that they did, so no test passes without the kill
// landing there. After a restart no acknowledged write is lost and the members
// converge.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ackLoad, exited, lostKeys, membersConverged, presentKeys } from '../testing/ack-load';
import { powerLoss, readJournal } from '../testing/power-loss';
import { findLeader, freePort, hasEtcd, startCluster, startEtcdesk, tempDir, waitFor, type ServerProc } from '../testing/processes';

async function assertAllPresent(endpoint: string, acked: Iterable<string>, what: string): Promise<void> {
  const all = [...acked];
  const lost = lostKeys(all, await presentKeys(endpoint));
  assert.equal(lost.length, 0, `${what}: lost ${lost.length} of ${all.length} acknowledged puts, e.g. ${lost.slice(0, 5).join(' ')}`);
}

/** Test-only knobs (backend/fault-hooks.ts): 64 KiB WAL segments, 100 entries kept after a snapshot, so the windows come within a few hundred puts. */
const SMALL = { ETCDESK_FAULT_WAL_SEGMENT_BYTES: String(64 * 1024), ETCDESK_FAULT_CATCH_UP_ENTRIES: '100' };

describe('kill -9 inside the crash windows', () => {
  it('single member: killed (and its power cut) as a raft snapshot becomes durable, then while releasing WAL segments; restarts with every acknowledged put', { timeout: 180_000 }, async () => {
    const dataDir = tempDir('crash-windows');
    const journal = `${dataDir}.journal`;
    const clientPort = await freePort();
    const peerPort = await freePort();
    // a snapshot every 100 entries; 8 KiB segments (about ten puts each), so the entries LMDB has not
    // committed yet span several segments and releasing one too many loses some
    const start = (killAt: string): Promise<ServerProc> =>
      startEtcdesk({
        dataDir,
        clientPort,
        peerPort,
        extraArgs: ['--log-level', 'info', '--snapshot-count', '100'],
        env: { ETCDESK_FAULT_FS: journal, ETCDESK_FAULT_KILL_AT: killAt, ...SMALL, ETCDESK_FAULT_WAL_SEGMENT_BYTES: '8192' },
      });
    const acked = new Set<string>();
    for (const point of ['wal-snapshot-synced', 'wal-release']) {
      const node = await start(point);
      await assertAllPresent(node.endpoint, acked, `before the kill at ${point}`);
      const load = ackLoad([node.endpoint], point);
      await exited(node);
      await load.stop();
      for (const k of load.acked) acked.add(k);
      // and the power went too: unsynced WAL sectors and LMDB's last commit are gone
      const cut = await powerLoss(dataDir, journal, { wal: 'drop-all' });
      assert.deepEqual(cut.fired, [point], `the member was killed at ${point}:\n${node.output().slice(-2000)}`);
      assert.ok(acked.size > 0);
    }
    const node = await start('');
    try {
      await assertAllPresent(node.endpoint, acked, 'after both kills');
      assert.doesNotMatch(node.output(), /corrupt|damaged/i);
    } finally {
      await node.stop();
    }
  });

  // The follower's WAL records the raft snapshot before the state it names is in LMDB. Killed in between,
  // it used to refuse to start ("applied(7) is out of range [prevApplied(327), committed(327)]"); the
  // received state now waits durably in member/snap/<index>.snap.db until installed, and a restart installs
  // it again before the raft loop runs (etcd's recoverSnapshotBackend).
  it('three members: a follower killed while installing a state snapshot restarts, catches up and converges', { skip: !hasEtcd() && 'etcdctl not installed', timeout: 180_000 }, async () => {
    const journal = path.join(tempDir('crash-install'), 'journal');
    const c = await startCluster('etcdesk', 3, ['--log-level', 'info', '--snapshot-count', '100'], { ETCDESK_FAULT_FS: journal, ...SMALL });
    try {
      let leader = -1;
      await waitFor('a leader', async () => (leader = await findLeader(c)) >= 0);
      const f = (leader + 1) % 3;
      await c.members[f].stop();
      // more than the 100 entries kept after a snapshot: the follower then needs a state snapshot
      const load = ackLoad([c.members[leader].endpoint], 'install');
      await load.reached(400);
      await load.stop();
      const acked = load.acked;
      const killed = await c.restart(f, [], false, { ETCDESK_FAULT_KILL_AT: 'snapshot-install' });
      await exited(killed);
      assert.deepEqual(readJournal(journal).fired, ['snapshot-install'], `the follower was killed installing the snapshot:\n${killed.output().slice(-2000)}`);
      const back = await c.restart(f, [], false, { ETCDESK_FAULT_KILL_AT: '' });
      await waitFor('the follower healthy again', async () => {
        assert.equal(back.proc.exitCode, null, `the follower exited after the kill:\n${back.output().slice(-3000)}`);
        return (await fetch(`${back.clientUrl}/health`).then((r) => r.status, () => 0)) === 200;
      }, 60_000);
      await waitFor('equal HashKV on the three members', () => membersConverged(c.members), 60_000);
      await assertAllPresent(back.endpoint, acked, 'on the follower');
    } finally {
      await c.stop();
    }
  });
});
