// Whole-cluster randomized simulation of the raft core (see sim-cluster.ts for the model):
// every seed runs 300 chaotic ticks (loss, duplication, reordering, partitions, crash-restarts,
// proposals, ReadIndex reads, conf changes incl. joint consensus, leader transfers, compaction),
// then heals and demands progress. Safety is checked as it happens; the clients' KV history is
// checked for linearizability afterwards.
//   RAFT_SIM_SEEDS=<count>        number of seeds (default 2000), RAFT_SIM_FIRST_SEED=<n> to shift
//   RAFT_SIM_SEED=<n>             replay one seed with an event trace (RAFT_SIM_STEPS=<k> for long runs)
//   RAFT_SIM_LONG_SEEDS=<count>   long runs of 3000 ticks each (default 10)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkKvHistory, describeReport, kvModel } from '../testing/linearizability';
import { type SimResult, runSimulation } from './sim-cluster';

const single = process.env.RAFT_SIM_SEED;
const count = Number(process.env.RAFT_SIM_SEEDS ?? 2000);
const firstSeed = Number(process.env.RAFT_SIM_FIRST_SEED ?? 1);

if (single !== undefined) {
  test(`raft simulation seed ${single}`, () => {
    const r = runSimulation({ seed: Number(single), trace: true, steps: Number(process.env.RAFT_SIM_STEPS ?? 300) });
    const lin = checkKvHistory(r.history);
    const { history, ...rest } = r;
    console.log({ ...rest, operations: history.length, linearizable: lin.result });
    assert.notEqual(lin.result, 'illegal', describeReport(kvModel, lin));
  });
} else {
  test(`raft simulation: ${count} seeds (3 and 5 nodes)`, () => {
    const totals = { operations: 0, linUnknown: 0, jointEntered: 0, jointLeft: 0, committed: 0, leaders: 0, snapshotsSent: 0, confChanges: 0, crashes: 0, reads: 0, three: 0, five: 0 };
    const started = performance.now();
    for (let seed = firstSeed; seed < firstSeed + count; seed++) {
      let r: SimResult;
      try {
        r = runSimulation({ seed });
      } catch (e) {
        const m = e instanceof Error ? e.message : String(e);
        assert.fail(`simulation failed (reproduce with RAFT_SIM_SEED=${seed}): ${m}\n${e instanceof Error ? e.stack : ''}`);
      }
      // End to end: the clients' view of the replicated KV store must be linearizable.
      const lin = checkKvHistory(r.history);
      if (lin.result === 'illegal') assert.fail(`history not linearizable (reproduce with RAFT_SIM_SEED=${seed}):\n${describeReport(kvModel, lin)}`);
      if (lin.result === 'unknown') totals.linUnknown++;
      totals.operations += r.history.length;
      totals.committed += r.committed;
      totals.leaders += r.leaders;
      totals.snapshotsSent += r.snapshotsSent;
      totals.confChanges += r.confChanges;
      totals.crashes += r.crashes;
      totals.reads += r.reads;
      totals.jointEntered += r.jointEntered;
      totals.jointLeft += r.jointLeft;
      if (r.nodes === 3) totals.three++;
      else totals.five++;
    }
    const ms = Math.round(performance.now() - started);
    console.log(`raft simulation: ${count} seeds in ${ms} ms`, totals);
    // The runs must actually exercise the machinery, not pass vacuously.
    assert.ok(totals.committed > count * 10, 'proposals commit');
    assert.ok(totals.snapshotsSent > 0, 'snapshots are sent');
    assert.ok(totals.confChanges > 0, 'conf changes happen');
    assert.ok(totals.jointEntered > 0 && totals.jointLeft > 0, 'joint configs are entered and left');
    assert.ok(totals.three > 0 && totals.five > 0);
  });
}

if (single === undefined) {
  const longCount = Number(process.env.RAFT_SIM_LONG_SEEDS ?? 10);
  test(`raft simulation: ${longCount} long runs (3000 ticks)`, () => {
    for (let seed = 1_000_001; seed < 1_000_001 + longCount; seed++) {
      let r: SimResult;
      try {
        r = runSimulation({ seed, steps: 3000 });
      } catch (e) {
        const m = e instanceof Error ? e.message : String(e);
        assert.fail(`simulation failed (reproduce with RAFT_SIM_SEED=${seed} RAFT_SIM_STEPS=3000): ${m}`);
      }
      const lin = checkKvHistory(r.history);
      if (lin.result === 'illegal') assert.fail(`history not linearizable (reproduce with RAFT_SIM_SEED=${seed} RAFT_SIM_STEPS=3000):\n${describeReport(kvModel, lin)}`);
      assert.ok(r.committed > 100, `seed ${seed}: only ${r.committed} writes committed in 3000 ticks`);
    }
  });
}
