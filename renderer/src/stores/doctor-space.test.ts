// The doctor's and space stores with a fake contract API: charts follow the
// cluster, and the plan follows main's space:plan events.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import { ContractError, type Channel, type DoctorMember, type DoctorReport, type EtcdeskApi, type EventMap, type Req, type Res, type SpacePlan } from '../../../electron/contract/index';
import { setApi } from '../api';
import { useDoctorStore } from './doctor';
import { useSpaceStore } from './space';

type Impl = { [C in Channel]?: (req: Req<C>) => Res<C> };

function fakeApi(impl: Impl): EtcdeskApi & { emitPlan(p: SpacePlan): void } {
  const planListeners = new Set<(p: SpacePlan) => void>();
  return {
    async invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
      const f = impl[channel] as ((r: Req<C>) => Res<C>) | undefined;
      if (!f) throw new ContractError(-1, `unexpected ${channel}`);
      return f(req);
    },
    on(e, l) {
      if (e !== 'space:plan') return () => undefined;
      const f = l as (p: EventMap['space:plan']) => void;
      planListeners.add(f);
      return () => planListeners.delete(f);
    },
    emitPlan(p) {
      for (const l of planListeners) l(p);
    },
  };
}

const member = (name: string, wal: number | null, intervalSec = 5): DoctorMember => ({
  id: name,
  name,
  clientUrl: `http://x/${name}`,
  isLeader: false,
  isLearner: false,
  metrics: { intervalSec, walFsyncP99Ms: wal, backendCommitP99Ms: 1, leaderChanges: 0, proposalsFailed: 0, slowApplies: 0, proposalsPending: 0, quotaBytes: null, missing: [] },
});
const report = (clusterId: string, at: number, members: DoctorMember[]): DoctorReport => ({ at, clusterId, revision: 1, hashRevision: 0, members, alarms: [], findings: [], guidance: { walFsyncMs: 10, backendCommitMs: 25 } });

describe('doctor store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('charts each poll’s interval p99 per member; the first scrape (since start) is not charted; another cluster starts afresh', async () => {
    const reports = [report('c1', 1000, [member('m1', 3, 0)]), report('c1', 6000, [member('m1', 48)]), report('c2', 11000, [member('e1', 2)])];
    setApi(fakeApi({ 'doctor:report': () => reports.shift()! }));
    const d = useDoctorStore();
    await d.load();
    assert.deepEqual(d.samples.map((s) => s.wal), [{}]);
    await d.load();
    assert.deepEqual(d.samples.map((s) => s.wal), [{}, { m1: 48 }]);
    await d.load();
    assert.deepEqual(d.samples.map((s) => s.wal), [{ e1: 2 }], 'the other cluster’s samples are dropped');
  });
});

describe('space store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('a plan made, run, and followed through main’s events', async () => {
    const plan: SpacePlan = { planId: 'p1', state: 'review', retention: 10, compactTo: 5, steps: [{ id: 'compact', kind: 'compact', title: 'Compact', detail: '', state: 'pending' }], abortRequested: false, probe: null };
    const api = fakeApi({ 'space:plan': (r) => ({ ...plan, retention: r.retention }), 'space:run': () => ({ ...plan, state: 'running' }) });
    setApi(api);
    const s = useSpaceStore();
    s.retention = 10;
    await s.makePlan();
    assert.equal(s.plan?.state, 'review');
    await s.run();
    assert.equal(s.running, true);
    api.emitPlan({ ...plan, planId: 'other', state: 'done' });
    assert.equal(s.plan?.state, 'running', 'another plan’s event is not this one');
    api.emitPlan({ ...plan, state: 'done', steps: [{ ...plan.steps[0], state: 'done', verification: 'ok' }] });
    assert.equal(s.plan?.state, 'done');
    assert.equal(s.plan?.steps[0].verification, 'ok');
  });
});
