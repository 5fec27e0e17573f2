// The doctor and the space plan through the contract's handlers, against
// node-core's in-process three-member cluster: every member reported (with
// every metric name the doctor reads), HashKV agreeing; the plan runs
// through with every step verified while a write probe keeps succeeding;
// an abort stops between steps; a raised NOSPACE is disarmed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, EtcdPb, Errors, startLocalCluster, type LocalCluster } from '../../node-core/index';
import { type Channel, type EventChannel, type EventMap, type Req, type Res, type SpacePlan } from '../contract/index';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { ProfileStore } from './profile-store';
import { PlanRunner } from './space-plan';
import { SessionSecrets } from './secrets';

const ctx: HandlerContext = { clientId: 'test', emit: () => undefined };

describe('doctor and space plan on the local three-member cluster', { timeout: 180_000 }, () => {
  let dir: string;
  let cluster: LocalCluster;
  let manager: ConnectionManager;
  let h: Handlers;
  let client: EtcdClient;
  const planListeners = new Set<(p: SpacePlan) => void>();
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw new Error(env.error.message);
    return env.value as Res<C>;
  };
  /** Resolves with the first space:plan event of `planId` that `pred` accepts. */
  const planEvent = (planId: string, pred: (p: SpacePlan) => boolean): Promise<SpacePlan> =>
    new Promise((resolve) => {
      const l = (p: SpacePlan): void => {
        if (p.planId !== planId || !pred(p)) return;
        planListeners.delete(l);
        resolve(p);
      };
      planListeners.add(l);
    });
  const leaderId = async (): Promise<bigint> => (await client.status()).leader;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-space-'));
    cluster = await startLocalCluster({ dir: path.join(dir, 'cluster'), config: { heartbeatInterval: 50, electionTimeout: 500 } });
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), false);
    manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'none' } },
      broadcast: <E extends EventChannel>(event: E, payload: EventMap[E]) => {
        if (event === 'space:plan') for (const l of [...planListeners]) l(payload as SpacePlan);
      },
      chooseSnapshotPath: async () => null,
    });
    const saved = await call('conn:save', { id: '', name: 'three', kind: 'remote', endpoints: cluster.clientUrls });
    const s = await call('conn:connect', { id: saved.id });
    assert.equal(s.state, 'connected', s.error?.message);
    client = new EtcdClient({ endpoints: cluster.clientUrls });
    // History to compact and pages to free: many versions of a few keys.
    const v = Buffer.alloc(2048, 'x');
    for (let i = 0; i < 300; i++) await client.put({ key: Buffer.from(`/space/${i % 10}`), value: v });
  });
  after(async () => {
    client?.close();
    await manager?.shutdown();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the doctor lists every member with status, /health and every metric it reads, and their HashKV agree', async () => {
    const r = await call('doctor:report', { hash: true });
    assert.equal(r.members.length, 3);
    for (const m of r.members) {
      assert.ok(m.status, `${m.name}: ${m.statusError}`);
      assert.equal(m.status.raftAppliedIndex > 0, true);
      assert.equal(m.health?.ok, true, `${m.name} /health`);
      assert.ok(m.metrics, `${m.name}: ${m.metricsError}`);
      assert.deepEqual(m.metrics.missing, [], `${m.name} exports every metric the doctor reads`);
      assert.ok(m.metrics.quotaBytes! > 0, 'the quota is exported');
      // The first report counts since start: 300 writes were fsynced to the WAL and committed to the backend.
      assert.notEqual(m.metrics.walFsyncP99Ms, null, `${m.name} observes WAL fsyncs`);
      assert.notEqual(m.metrics.backendCommitP99Ms, null, `${m.name} observes backend commits`);
      assert.ok(m.hash, `${m.name}: ${m.hashError}`);
    }
    assert.equal(r.members.filter((m) => m.isLeader).length, 1);
    assert.ok(r.hashRevision >= 300, `hash revision ${r.hashRevision}`);
    assert.equal(new Set(r.members.map((m) => m.hash!.hash)).size, 1, 'HashKV agrees');
    assert.deepEqual(r.findings.filter((f) => f.severity === 'critical'), []);
    // A second report differences against the first: an interval, not since start.
    const again = await call('doctor:report', {});
    assert.ok(again.members.every((m) => m.metrics!.intervalSec > 0), 'the second report is over an interval');
    const sp = await call('space:report', {});
    assert.equal(sp.quotaSource, 'metrics');
    assert.ok(sp.dbSize > 0 && sp.members.length === 3, 'space report of three members');
  });

  it('the doctor hashes one member at a time: never two members reading their whole store at once', async () => {
    // Observed at the client every member's HashKV goes through (the handler makes one per member).
    const original = EtcdClient.prototype.hashKV;
    let inFlight = 0;
    let most = 0;
    let calls = 0;
    EtcdClient.prototype.hashKV = async function (this: EtcdClient, revision?: number) {
      calls++;
      most = Math.max(most, ++inFlight);
      try {
        return await original.call(this, revision);
      } finally {
        inFlight--;
      }
    };
    try {
      const r = await call('doctor:report', { hash: true });
      assert.ok(r.members.every((m) => m.hash), 'every member hashed');
      assert.equal(calls, 3);
      assert.equal(most, 1, 'HashKV requests overlapped');
    } finally {
      EtcdClient.prototype.hashKV = original;
    }
  });

  it('runs the plan through, every step verified, while the write probe keeps succeeding', async () => {
    const before = await leaderId();
    const plan = await call('space:plan', { retention: 20, probe: true });
    assert.equal(plan.state, 'review');
    assert.deepEqual(plan.steps.map((s) => s.kind), ['compact', 'defrag', 'defrag', 'move-leader', 'defrag', 'disarm']);
    assert.equal(plan.steps[4].memberId, before.toString(), 'the leader is defragmented last');
    const done = planEvent(plan.planId, (p) => p.state !== 'running');
    await call('space:run', { planId: plan.planId });
    const end = await done;
    assert.equal(end.state, 'done', JSON.stringify(end.steps));
    for (const s of end.steps) {
      if (s.kind === 'disarm') assert.equal(s.state, 'skipped');
      else assert.equal(s.state, 'done', `${s.title}: ${s.error}`);
      assert.ok(s.verification, `${s.title} says how it was verified`);
    }
    assert.deepEqual(/refused as compacted on (.*)$/.exec(end.steps[0].verification!)?.[1].split(', ').sort(), ['local1', 'local2', 'local3']);
    // The leader moved to the first follower defragmented, and the old one was done as a follower.
    const after = await leaderId();
    assert.notEqual(after, before);
    assert.equal(after.toString(), end.steps[3].memberId);
    await assert.rejects(client.range({ key: Buffer.from('/space/0'), revision: end.compactTo - 1 }), (e) => e === Errors.Compacted);
    const probe = end.probe!;
    assert.equal(probe.failures, 0, probe.lastError);
    assert.ok(probe.writes > 0, 'the probe wrote while the plan ran');
    assert.equal(probe.running, false);
    assert.equal(await client.get('/etcdesk/space-plan/write-probe'), null, 'the probe cleans up its key');
  });

  it('an abort stops between steps: the running step finishes, the rest never run', async () => {
    const leader = await leaderId();
    const plan = await call('space:plan', { retention: 0 });
    const firstDefrag = plan.steps.findIndex((s) => s.kind === 'defrag');
    const running = planEvent(plan.planId, (p) => p.steps[firstDefrag].state === 'running');
    const done = planEvent(plan.planId, (p) => p.state !== 'running');
    await call('space:run', { planId: plan.planId });
    await running;
    const asked = await call('space:abort', { planId: plan.planId });
    assert.equal(asked.abortRequested, true);
    const end = await done;
    assert.equal(end.state, 'aborted');
    assert.equal(end.steps[firstDefrag].state, 'done', 'the step in progress completes and is verified');
    for (const s of end.steps.slice(firstDefrag + 1)) {
      assert.equal(s.state, 'skipped');
      assert.match(s.verification!, /aborted/);
    }
    assert.equal(await leaderId(), leader, 'leadership never moved');
    await assert.rejects(call('space:run', { planId: plan.planId }), /already run/);
  });

  it('disarms a raised NOSPACE alarm, and writes are accepted again', async () => {
    const { ACTIVATE, GET } = EtcdPb.AlarmRequest_AlarmAction;
    const m = (await client.memberList()).members[0];
    await client.alarm({ action: ACTIVATE, memberID: m.ID, alarm: EtcdPb.AlarmType.NOSPACE });
    await assert.rejects(client.put({ key: Buffer.from('/space/x'), value: Buffer.from('1') }), (e) => e === Errors.NoSpace);
    const doc = await call('doctor:report', {});
    assert.ok(doc.findings.some((f) => f.severity === 'critical' && f.text.includes('NOSPACE alarm')), doc.findings.map((f) => f.text).join(' | '));
    assert.equal((await call('space:report', {})).nospaceAlarm, true);
    const plan = await call('space:plan', { retention: 1000, probe: false });
    const done = planEvent(plan.planId, (p) => p.state !== 'running');
    await call('space:run', { planId: plan.planId });
    const end = await done;
    assert.equal(end.state, 'done', JSON.stringify(end.steps));
    const disarm = end.steps.find((s) => s.kind === 'disarm')!;
    assert.equal(disarm.state, 'done');
    assert.deepEqual((await client.alarm({ action: GET })).alarms, []);
    await client.put({ key: Buffer.from('/space/x'), value: Buffer.from('1') });
  });
});

describe('the space plan and its write probe', () => {
  it('the plan turns done only after the probe\'s last write came back and its key was removed', async () => {
    let release: () => void = () => undefined;
    const calls: string[] = [];
    // A probe client whose first put is slow: the plan (no steps) ends while that write is in flight.
    const probeClient = {
      put: () => {
        calls.push('put');
        return new Promise<void>((r) => (release = r));
      },
      deleteRange: async () => void calls.push('delete'),
    } as unknown as EtcdClient;
    const plan: SpacePlan = { planId: 'p', state: 'review', retention: 0, compactTo: 0, steps: [], abortRequested: false, probe: { running: false, writes: 0, failures: 0, lastMs: null, maxMs: null } };
    const seen: SpacePlan[] = [];
    const runner = new PlanRunner(probeClient, plan, { onUpdate: (p) => seen.push(p), probeClient });
    const run = runner.run();
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(calls, ['put'], 'the probe\'s write is in flight');
    assert.equal(runner.plan.state, 'running', 'not done while the probe still writes');
    assert.ok(!seen.some((p) => p.state === 'done'));
    release();
    const end = await run;
    assert.equal(end.state, 'done');
    assert.deepEqual(calls, ['put', 'delete'], 'the probe stopped after its write and removed its key');
    const firstDone = seen.find((p) => p.state === 'done')!;
    assert.equal(firstDone.probe!.running, false);
    assert.equal(firstDone.probe!.writes, 1, 'the last write is counted in the plan shown done');
  });
});
