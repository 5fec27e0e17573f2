// The chaos lab on the app's real local cluster (three worker-thread members):
// each fault has an effect a user would see (a leader change in the timeline,
// a slower WAL fsync in the member's own /metrics), a healthy run is judged
// linearizable, and the checker flags a history that is not (negative control).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, type KvOperation } from '../../node-core/index';
import type { ChaosState } from '../contract/index';
import { ChaosLab, lostAcknowledgedWrites } from './chaos-lab';
import { nodeCoreEngine, type HostedNode, type LocalControl } from './node-host';

let hosted: HostedNode;
let local: LocalControl;
let client: EtcdClient;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-chaos-'));

/** A lab whose pushes can be awaited: `until` resolves on the first state pred accepts. */
function lab(): { lab: ChaosLab; until(pred: (s: ChaosState) => boolean, what: string): Promise<ChaosState> } {
  const waiters: { pred: (s: ChaosState) => boolean; resolve: (s: ChaosState) => void }[] = [];
  const l = new ChaosLab({
    client,
    local,
    clients: 3,
    timeoutMs: 1000,
    onChange: (s) => {
      for (const w of [...waiters])
        if (w.pred(s)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(s);
        }
    },
  });
  return {
    lab: l,
    until: (pred, what) =>
      new Promise((resolve, reject) => {
        const now = l.state();
        if (pred(now)) return resolve(now);
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(l.state().timeline)}`)), 30_000);
        waiters.push({ pred, resolve: (s) => (clearTimeout(t), resolve(s)) });
      }),
  };
}

const leaderIndex = (s: ChaosState): number => s.members.find((m) => m.isLeader)!.index;
const changes = (s: ChaosState): string[] => s.timeline.filter((e) => e.kind === 'leader' && e.text.includes('→')).map((e) => e.text);

/** How many WAL fsyncs one member has timed, and how many of them took longer than 256 ms, from its own /metrics. */
async function fsyncTotals(url: string): Promise<{ count: number; slow: number }> {
  const body = await (await fetch(`${url}/metrics`)).text();
  const num = (re: RegExp): number => Number(re.exec(body)?.[1] ?? NaN);
  const count = num(/^etcd_disk_wal_fsync_duration_seconds_count (\S+)$/m);
  return { count, slow: count - num(/^etcd_disk_wal_fsync_duration_seconds_bucket\{le="0\.256"\} (\S+)$/m) };
}

describe('chaos lab on the local cluster', { timeout: 180_000 }, () => {
  before(async () => {
    hosted = await nodeCoreEngine().startCluster!(dir, 0);
    local = hosted.local!;
    client = new EtcdClient({ endpoints: hosted.clientUrls, timeoutMs: 5000 });
  });
  after(async () => {
    client?.close();
    await hosted?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a healthy run is linearizable, with nothing lost, and says so in its summary', async () => {
    const { lab: l, until } = lab();
    l.start();
    await until((s) => s.leader !== null && s.counts.ok >= 60, '60 acknowledged operations');
    const s = await l.stop();
    assert.equal(s.verdict.result, 'linearizable');
    assert.ok(s.verdict.ops >= 60);
    assert.equal(s.counts.failed, 0);
    assert.ok(s.summary?.includes('0 acknowledged writes lost'), s.summary?.join('\n'));
    assert.ok(s.summary?.includes(`history linearizable (${s.verdict.ops.toLocaleString('en-US')} ops)`), s.summary?.join('\n'));
  });

  it('killing the leader records a leader change in the timeline and the summary; still linearizable', async () => {
    const { lab: l, until } = lab();
    l.start();
    const s0 = await until((s) => s.leader !== null && s.counts.ok >= 10, 'a leader and some operations');
    const old = s0.members[leaderIndex(s0)];
    await l.fault(old.index, 'kill');
    const s1 = await until((s) => changes(s).length > 0, 'a leader change');
    assert.match(changes(s1)[0], new RegExp(`^leader ${old.name}→local\\d in \\d+\\.\\d s$`));
    assert.notEqual(s1.leader, old.name);
    await until((s) => s.counts.ok >= s1.counts.ok + 10, 'operations under the new leader');
    await l.fault(old.index, 'restart');
    const s = await l.stop();
    assert.ok(s.summary?.some((x) => x.startsWith(`${old.name} killed (the leader) at `)), s.summary?.join('\n'));
    assert.ok(s.summary?.includes(changes(s1)[0]));
    assert.ok(s.counts.failed > 0, 'the clients bound to the killed member saw errors');
    // errored writes are reported as of unknown outcome, never as not applied
    const w = s.counts.writesFailedLeaderless;
    assert.ok(s.summary?.some((x) => x.startsWith(`${w.toLocaleString('en-US')} write${w === 1 ? '' : 's'} ended in an error while leaderless (outcome unknown`)), s.summary?.join('\n'));
    assert.ok(s.timeline.some((e) => e.kind === 'errors'));
    assert.equal(s.verdict.result, 'linearizable');
  });

  it('pausing the leader (its thread silent) moves leadership', async () => {
    const { lab: l, until } = lab();
    l.start();
    const s0 = await until((s) => s.leader !== null && s.counts.ok >= 5, 'a leader');
    const old = s0.members[leaderIndex(s0)];
    await l.fault(old.index, 'pause', { seconds: 4 });
    const s1 = await until((s) => changes(s).length > 0, 'a leader change');
    assert.notEqual(s1.leader, old.name);
    assert.ok(s1.members[old.index].paused);
    await until((s) => !s.members[old.index].paused, 'the pause to end');
    const s = await l.stop();
    assert.equal(s.verdict.result, 'linearizable');
  });

  it('isolating the leader from its peers moves leadership; heal brings it back as a follower', async () => {
    const { lab: l, until } = lab();
    l.start();
    const s0 = await until((s) => s.leader !== null && s.counts.ok >= 5, 'a leader');
    const old = s0.members[leaderIndex(s0)];
    await l.fault(old.index, 'isolate');
    const s1 = await until((s) => changes(s).length > 0, 'a leader change');
    assert.notEqual(s1.leader, old.name);
    await l.fault(old.index, 'heal');
    await until((s) => s.counts.ok >= s1.counts.ok + 10, 'operations after the heal');
    const s = await l.stop();
    assert.ok(!s.members[old.index].isolated);
    assert.equal(s.verdict.result, 'linearizable');
  });

  it("a slow disk raises that member's WAL fsync time in its own /metrics", async () => {
    const { lab: l, until } = lab();
    l.start();
    const s0 = await until((s) => s.leader !== null && s.counts.ok >= 5, 'a leader');
    const slow = s0.members.find((m) => !m.isLeader)!;
    const url = local.members()[slow.index].clientUrl;
    const before = await fsyncTotals(url);
    await l.fault(slow.index, 'slow-disk', { delayMs: 300 });
    // the workload's writes reach the member's log; each sync now waits 300 ms first
    const deadline = Date.now() + 20_000;
    let now = before;
    while (now.slow < before.slow + 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      now = await fsyncTotals(url);
    }
    await l.fault(slow.index, 'fast-disk');
    await l.stop();
    assert.ok(now.slow >= before.slow + 3, `WAL fsyncs over 256 ms on ${slow.name}: ${before.slow} before, ${now.slow} while slowed`);
  });

  it('the checker flags an illegal history: a read of a value never written (negative control)', async () => {
    const { lab: l, until } = lab();
    l.start();
    await until((s) => s.counts.ok >= 10, 'some operations');
    // a fabricated read after everything, of a value no client wrote
    const t = performance.now();
    l.history().push({ clientId: 999, input: { op: 'get', key: l.keys()[0] }, output: { op: 'get', value: 'never-written' }, call: t + 1e6, return: t + 1e6 + 1 });
    const s = await l.stop();
    assert.equal(s.verdict.result, 'not linearizable');
    assert.ok(s.summary?.some((x) => x.startsWith('history not linearizable')), s.summary?.join('\n'));
  });

  it('an acknowledged write the final read does not show counts as lost', () => {
    const put = (value: string, call: number, ret: number | undefined): KvOperation => ({ clientId: 0, input: { op: 'put', key: 'k', value }, output: ret === undefined ? undefined : { op: 'put' }, call, return: ret });
    const h = [put('a', 0, 1), put('b', 2, 3)];
    assert.equal(lostAcknowledgedWrites(h, new Map([['k', 'b']])), 0);
    assert.equal(lostAcknowledgedWrites(h, new Map([['k', 'a']])), 1, 'a was superseded by the acknowledged b');
    assert.equal(lostAcknowledgedWrites(h, new Map([['k', undefined]])), 1);
    // a write whose outcome is unknown (pending) may be the last one
    assert.equal(lostAcknowledgedWrites([...h, put('c', 4, undefined)], new Map([['k', 'c']])), 0);
  });
});
