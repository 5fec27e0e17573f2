// Jepsen-style check of a three-member etcdesk cluster: concurrent clients do
// get / put / compare-and-set on a few keys while members are killed,
// restarted, paused and cut off the peer network; the recorded history must
// be linearizable. A deliberately broken variant (serializable reads from a
// follower cut off from its leader) must be caught, or the check proves
// nothing.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../client';
import { HistoryRecorder, kvGet, kvPut, runKvWorkload } from '../testing/history-recorder';
import { checkKvHistory, describeReport, kvModel } from '../testing/linearizability';
import { findLeader, hasEtcd, type ClusterProcs } from '../testing/processes';
import { startProxiedCluster, type ProxiedCluster } from '../testing/proxied-cluster';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForLeader(c: ClusterProcs, among: number[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const l = await findLeader(c, among);
    if (l >= 0) return l;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no leader among ${among.join(',')} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function signal(c: ClusterProcs, i: number, sig: 'SIGSTOP' | 'SIGCONT'): void {
  try {
    process.kill(c.members[i].proc.pid!, sig);
  } catch {
    // already exited
  }
}

describe('linearizability of a three-member etcdesk cluster', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let c: ProxiedCluster;
  before(async () => {
    // Short timeouts so several elections fit in a few seconds of load.
    c = await startProxiedCluster(3, ['--log-level', 'warn', '--heartbeat-interval', '50', '--election-timeout', '500']);
  });
  after(async () => {
    for (let i = 0; i < (c?.members.length ?? 0); i++) signal(c, i, 'SIGCONT');
    await c?.stop();
  });

  it('get/put/cas from 9 clients stay linearizable through SIGSTOP, peer cuts, kill -9 and restart', { timeout: 90_000 }, async (t) => {
    await waitForLeader(c, [0, 1, 2], 15_000);
    const recorder = new HistoryRecorder();
    let stop!: () => void;
    const until = new Promise<void>((r) => (stop = r));
    const workload = runKvWorkload({
      recorder,
      endpoints: Array.from({ length: 9 }, (_, i) => c.members[i % 3].endpoint),
      // Eight keys: the checker searches each key's history alone, and on four keys a faster node's
      // ~1,400 operations per key (many left pending by the faults) could exceed its step budget ('unknown').
      keys: ['lin/a', 'lin/b', 'lin/c', 'lin/d', 'lin/e', 'lin/f', 'lin/g', 'lin/h'],
      until,
      timeoutMs: 3000,
      seed: 7,
    });
    const t0 = performance.now();
    const timeline: string[] = [];
    const note = (s: string): void => {
      timeline.push(`${Math.round(performance.now() - t0)} ms: ${s}`);
    };
    const others = (i: number): number[] => [0, 1, 2].filter((j) => j !== i);
    try {
      await sleep(1500);

      let leader = await waitForLeader(c, [0, 1, 2], 10_000);
      note(`SIGSTOP leader m${leader + 1}`);
      signal(c, leader, 'SIGSTOP');
      await sleep(2000);
      signal(c, leader, 'SIGCONT');
      note(`SIGCONT m${leader + 1}`);
      await sleep(1000);

      leader = await waitForLeader(c, [0, 1, 2], 10_000);
      const follower = others(leader)[0];
      note(`SIGSTOP follower m${follower + 1}`);
      signal(c, follower, 'SIGSTOP');
      await sleep(1500);
      signal(c, follower, 'SIGCONT');
      note(`SIGCONT m${follower + 1}`);
      await sleep(1000);

      leader = await waitForLeader(c, [0, 1, 2], 10_000);
      note(`cut (hold) peer traffic into leader m${leader + 1}`);
      c.proxies[leader].cut('hold');
      await sleep(2500);
      c.proxies[leader].heal();
      note(`heal m${leader + 1}`);
      await sleep(1000);

      leader = await waitForLeader(c, [0, 1, 2], 10_000);
      note(`kill -9 leader m${leader + 1}`);
      await c.members[leader].kill();
      await sleep(1000);
      await c.restart(leader);
      note(`m${leader + 1} restarted`);
      await sleep(1000);

      leader = await waitForLeader(c, [0, 1, 2], 10_000);
      const f2 = others(leader)[1];
      note(`cut (reset) peer traffic into follower m${f2 + 1}`);
      c.proxies[f2].cut('reset');
      await sleep(1500);
      c.proxies[f2].heal();
      note(`heal m${f2 + 1}`);
      await sleep(1000);
    } finally {
      stop();
      await workload;
    }
    note('clients stopped');

    const counts = recorder.counts();
    const c0 = performance.now();
    const report = checkKvHistory(recorder.ops);
    const checkMs = Math.round(performance.now() - c0);
    t.diagnostic(`timeline:\n${timeline.join('\n')}`);
    t.diagnostic(`history: ${JSON.stringify(counts)}; checked in ${checkMs} ms: ${report.result}`);
    // Without enough completed operations of every kind the check would be vacuous.
    assert.ok(counts.completed >= 200, `only ${counts.completed} operations completed`);
    assert.ok((counts.byOp['cas:ok'] ?? 0) >= 10, `too few successful compare-and-sets: ${JSON.stringify(counts.byOp)}`);
    assert.ok((counts.byOp.get ?? 0) >= 50, `too few reads: ${JSON.stringify(counts.byOp)}`);
    if (report.result !== 'ok') assert.fail(`history is ${report.result}\n${timeline.join('\n')}\n${describeReport(kvModel, report)}`);
  });

  it('the checker catches stale serializable reads from a follower cut off from the leader', { timeout: 60_000 }, async (t) => {
    const leader = await waitForLeader(c, [0, 1, 2], 15_000);
    const lagging = [0, 1, 2].find((i) => i !== leader)!;
    const keys = ['stale/a', 'stale/b'];
    // Seed the keys and let the follower apply them, so its stale answers are old values rather than "absent".
    const w = new EtcdClient({ endpoints: [c.members[leader].endpoint], timeoutMs: 10_000 });
    const r = new EtcdClient({ endpoints: [c.members[lagging].endpoint], timeoutMs: 10_000 });
    const recorder = new HistoryRecorder();
    try {
      for (const k of keys) await recorder.record(100, { op: 'put', key: k, value: `${k}-seed` }, () => kvPut(w, k, `${k}-seed`));
      for (const k of keys) {
        for (let i = 0; ; i++) {
          const got = await kvGet(r, k, true);
          if (got.op === 'get' && got.value === `${k}-seed`) break;
          if (i > 100) throw new Error(`m${lagging + 1} never applied ${k}`);
          await sleep(50);
        }
      }
      c.proxies[lagging].cut('hold');
      let stop!: () => void;
      const until = new Promise<void>((res) => (stop = res));
      // Three clients on the leader keep writing and reading; three on the cut-off follower read
      // serializably (odd client indexes; ids after a failure keep their parity).
      const onLagging = (i: number): boolean => i % 2 === 1;
      const workload = runKvWorkload({
        recorder,
        endpoints: [0, 1, 2, 3, 4, 5].map((i) => c.members[onLagging(i) ? lagging : leader].endpoint),
        keys,
        until,
        timeoutMs: 2000,
        serializableReads: onLagging,
        seed: 11,
      });
      await sleep(2500);
      stop();
      await workload;
      // A linearizable read on the same follower while still cut off: it may time out, or answer
      // if it can learn the leader's commit index, but never from its stale state (checked below).
      const lin = await recorder.record(200, { op: 'get', key: keys[0] }, async () => {
        const rr = new EtcdClient({ endpoints: [c.members[lagging].endpoint], timeoutMs: 2000 });
        try {
          return await kvGet(rr, keys[0]);
        } finally {
          rr.close();
        }
      });
      t.diagnostic(`linearizable read on the cut-off follower: ${lin.ok ? JSON.stringify(lin.output) : lin.error.message}`);
    } finally {
      c.proxies[lagging].heal();
      w.close();
      r.close();
    }
    // Everything but the follower's serializable reads is linearizable...
    const honest = recorder.ops.filter((op) => !(op.input.op === 'get' && op.clientId < 100 && op.clientId % 2 === 1));
    const honestReport = checkKvHistory(honest);
    if (honestReport.result !== 'ok') assert.fail(`without the serializable follower reads the history is ${honestReport.result}\n${describeReport(kvModel, honestReport)}`);
    // ...and with them it is not: the checker must say so.
    const counts = recorder.counts();
    const report = checkKvHistory(recorder.ops);
    t.diagnostic(`history: ${JSON.stringify(counts)}: ${report.result}`);
    assert.equal(report.result, 'illegal', `stale reads went unnoticed:\n${describeReport(kvModel, report)}`);
    t.diagnostic(describeReport(kvModel, report).split('\n').slice(0, 12).join('\n'));
  });
});
