// The cluster view's source of truth: on the local three-member cluster (each
// member in its own thread), stopping the leader is pushed at once (the
// member stopped, no longer leader) before its stop has completed, and a
// later push names the new leader; a leader reported only by stale followers
// or by a dead member is no leader.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EtcdClient, type EtcdPb } from '../../node-core/index';
import type { ClusterInfo } from '../contract/index';
import { ClusterMonitor, pickLeader, STOPPED } from './cluster-monitor';
import { nodeCoreEngine } from './node-host';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const status = (leader: bigint, raftTerm: number): EtcdPb.StatusResponse => ({ leader, raftTerm }) as EtcdPb.StatusResponse;

describe('pickLeader', () => {
  it('believes the newest term, and never a member that is down', () => {
    // a follower still in term 2 names the old leader 1; one in term 3 names 2
    assert.equal(pickLeader([{ id: 2n, status: status(2n, 3) }, { id: 3n, status: status(1n, 2) }, { id: 1n }], new Set([1n])), 2n);
    // both followers still name the stopped leader: no leader yet
    assert.equal(pickLeader([{ id: 2n, status: status(1n, 2) }, { id: 3n, status: status(1n, 2) }, { id: 1n }], new Set([1n])), 0n);
  });
});

/** Resolves with the first pushed read that satisfies `pred`. */
function pushes(): { emit(i: ClusterInfo): void; next(pred: (i: ClusterInfo) => boolean, what: string): Promise<ClusterInfo>; all: ClusterInfo[] } {
  const all: ClusterInfo[] = [];
  const waiters: { pred: (i: ClusterInfo) => boolean; resolve(i: ClusterInfo): void }[] = [];
  return {
    all,
    emit(i) {
      all.push(i);
      for (const w of [...waiters]) if (w.pred(i)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(i);
      }
    },
    next(pred, what) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no push with ${what}`)), 30_000);
        waiters.push({ pred, resolve: (i) => (clearTimeout(t), resolve(i)) });
      });
    },
  };
}

describe('cluster monitor on the local cluster', { timeout: 120_000 }, () => {
  it('stopping the leader is pushed at once, then the new leader', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-monitor-'));
    dirs.push(dir);
    const hosted = await nodeCoreEngine().startCluster!(dir, 0);
    const local = hosted.local!;
    const client = new EtcdClient({ endpoints: hosted.clientUrls, timeoutMs: 5000 });
    const p = pushes();
    const monitor = new ClusterMonitor(client, local, 7, (i) => p.emit(i));
    try {
      const first = await p.next((i) => i.members.some((m) => m.isLeader), 'a leader');
      assert.equal(first.connectionId, 7);
      const leader = first.members.find((m) => m.isLeader)!;
      const index = local.members().find((m) => m.clientUrl === leader.clientUrls[0])!.index;
      const seen = p.all.length;
      const stopping = local.stopMember(index);
      // pushed synchronously from the stop's start: the stop has not completed yet
      const told = p.all[seen];
      assert.ok(told, 'a push as the stop starts');
      const was = told.members.find((m) => m.id === leader.id)!;
      assert.deepEqual(was.status, { error: STOPPED });
      assert.equal(was.isLeader, false, 'a stopped member is never shown leading');
      assert.equal(told.local?.[index].running, false);
      await stopping;
      const after = await p.next((i) => i.members.some((m) => m.isLeader && m.id !== leader.id), 'a new leader');
      assert.ok(!after.members.find((m) => m.id === leader.id)!.isLeader);
    } finally {
      monitor.close();
      client.close();
      await hosted.stop();
    }
  });
});
