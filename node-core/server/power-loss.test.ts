// Power loss, not only kill -9: the page cache survives a killed process but
// not a power cut. Members run with the fault journal (backend/fault-hooks.ts);
// after a kill -9 under write load, testing/power-loss.ts drops what was not
// synced (unsynced WAL sectors, LMDB's unsynced last commit). After a restart
// every acknowledged put is there, and the members start cleanly (a torn
// tail is cut, never reported as corruption).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ackLoad, exited, lostKeys, membersConverged, presentKeys } from '../testing/ack-load';
import { powerLoss, type PowerLossOptions, type PowerLossReport } from '../testing/power-loss';
import { findLeader, freePort, hasEtcd, httpGet, startCluster, startEtcdesk, tempDir, waitFor, type ServerProc } from '../testing/processes';

function assertNoneLost(acked: Set<string>, present: Set<string>, what: string): void {
  const lost = lostKeys(acked, present);
  assert.equal(lost.length, 0, `${what}: lost ${lost.length} of ${acked.size} acknowledged puts, e.g. ${lost.slice(0, 5).join(' ')}`);
}

function assertCleanStart(m: ServerProc): void {
  assert.doesNotMatch(m.output(), /corrupt|damaged/i, `${m.name} reported damage after a power cut:\n${m.output().slice(-2000)}`);
}

const unsyncedBytes = (r: PowerLossReport): number => r.wal.reduce((a, f) => a + f.written, 0);

describe('power loss', () => {
  it('single member: every acknowledged put survives two power cuts under load', { timeout: 120_000 }, async () => {
    const dataDir = tempDir('powerloss');
    const journal = path.join(dataDir, '..', `${path.basename(dataDir)}.journal`);
    const clientPort = await freePort();
    const peerPort = await freePort();
    const acked = new Set<string>();
    const cuts: PowerLossOptions['wal'][] = [{ seed: 1 }, 'drop-all'];
    const reports: PowerLossReport[] = [];
    let repaired = 0;
    for (let round = 0; round <= cuts.length; round++) {
      // the member kills itself as the fdatasync of its n-th batch returns, before anything learns of it:
      // the power went during that sync, so the cut always finds written, unsynced bytes (a timed
      // kill mostly lands between syncs), and a put acknowledged before its sync would be lost
      const killAt = round < cuts.length ? `wal-sync:${30 * (round + 1) + 7}` : '';
      const node = await startEtcdesk({ dataDir, clientPort, peerPort, extraArgs: ['--log-level', 'info'], env: { ETCDESK_FAULT_FS: journal, ETCDESK_FAULT_KILL_AT: killAt } });
      try {
        assertCleanStart(node);
        if (/repaired the write-ahead log/.test(node.output())) repaired++;
        assertNoneLost(acked, await presentKeys(node.endpoint), `after power cut ${round}`);
      } catch (e) {
        await node.kill();
        throw e;
      }
      if (round === cuts.length) {
        await node.stop();
        break;
      }
      // round 1 with one client: every fsync then runs on the loop's own thread (raft-loop's inline flush)
      const load = ackLoad([node.endpoint], `r${round}`, { workers: round === 1 ? 1 : 16 });
      await exited(node);
      await load.stop();
      for (const k of load.acked) acked.add(k);
      const report = await powerLoss(dataDir, journal, { wal: cuts[round] });
      assert.deepEqual(report.fired, ['wal-sync'], 'the member was killed at its fault point');
      assert.ok(unsyncedBytes(report) > 0, `the cut found no written, unsynced WAL bytes: ${JSON.stringify(report)}`);
      reports.push(report);
    }
    // and LMDB's last commit was undone every time
    for (const r of reports) assert.ok(r.lmdb.length === 1 && r.lmdb[0].after < r.lmdb[0].before, `LMDB's last commit not undone: ${JSON.stringify(r.lmdb)}`);
    // informational: how many restarts found (and cut) a torn tail
    console.log(`power cuts: ${reports.map((r) => `${unsyncedBytes(r)} unsynced WAL bytes`).join(', ')}; torn tails cut: ${repaired}`);
  });

  it('three members: every acknowledged put survives a power cut of the whole cluster, and the members converge', { skip: !hasEtcd() && 'etcdctl not installed', timeout: 120_000 }, async () => {
    const journal = path.join(tempDir('powerloss-cluster'), 'journal');
    // the first member to sync its 60th batch dies as that sync returns (the power went during it); the test cuts the others' power then
    const c = await startCluster('etcdesk', 3, ['--log-level', 'info'], { ETCDESK_FAULT_FS: journal, ETCDESK_FAULT_KILL_AT: 'wal-sync:60' });
    let stopped = false;
    try {
      const leader = await (async () => {
        let l = -1;
        await waitFor('a leader', async () => (l = await findLeader(c)) >= 0);
        return l;
      })();
      // through the leader and a follower (the follower forwards): both paths must be durable
      const load = ackLoad([c.members[leader].endpoint, c.members[(leader + 1) % 3].endpoint], 'c');
      await Promise.race(c.members.map(exited));
      await Promise.all(c.members.map((m) => m.kill()));
      await load.stop();
      stopped = true;
      const report = await powerLoss(
        c.members.map((m) => m.dataDir),
        journal,
        { wal: { seed: 7 } },
      );
      // two members can reach their 60th sync in the same instant (the followers sync the same batches), so more than one may fire
      assert.ok(report.fired.length >= 1 && report.fired.every((f) => f === 'wal-sync'), `a member was killed at its fault point: ${JSON.stringify(report.fired)}`);
      assert.ok(unsyncedBytes(report) > 0, `the cut found no written, unsynced WAL bytes: ${JSON.stringify(report)}`);
      assert.ok(load.acked.size > 0, 'some puts were acknowledged before the cut');
      assert.equal(report.lmdb.length, 3);
      for (const l of report.lmdb) assert.ok(l.after < l.before, `LMDB's last commit not undone: ${JSON.stringify(l)}`);
      // restarted without the kill point
      await Promise.all(c.members.map((_, i) => c.restart(i, [], false, { ETCDESK_FAULT_KILL_AT: '' })));
      await waitFor('the three members healthy again', async () => {
        for (const m of c.members) assert.equal(m.proc.exitCode, null, `${m.name} exited after the power cut:\n${m.output().slice(-3000)}`);
        return (await Promise.all(c.members.map((m) => httpGet(`${m.clientUrl}/health`).then((r) => r.status === 200, () => false)))).every(Boolean);
      }, 30_000);
      stopped = false;
      for (const m of c.members) assertCleanStart(m);
      for (const m of c.members) {
        // a linearizable read on each: it answers once the member caught up with the leader's commit
        assertNoneLost(load.acked, await presentKeys(m.endpoint), `member ${m.name}`);
      }
      await waitFor('equal HashKV on the three members', () => membersConverged(c.members));
    } finally {
      if (!stopped) await c.stop();
    }
  });
});
