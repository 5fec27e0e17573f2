// The chaos lab (chaos-lab.ts): only on the app's local cluster, whose members
// run in the app's own threads and can be killed, paused, isolated and slowed.
import { ContractError, type ChaosState } from '../../contract/index';
import { ChaosLab } from '../chaos-lab';
import type { HandlerDeps, HandlersFor } from './context';

type ChaosChannels = 'chaos:state' | 'chaos:start' | 'chaos:stop' | 'chaos:fault';

export const CHAOS_LOCAL_ONLY = 'the chaos lab runs on the app\'s local cluster only: connect to "Local cluster" first';

const idle: ChaosState = {
  running: false,
  elapsed: 0,
  members: [],
  leader: null,
  timeline: [],
  counts: { ops: 0, ok: 0, failed: 0, writesFailedLeaderless: 0 },
  verdict: { result: 'pending', ops: 0 },
  summary: null,
};

export function chaosHandlers(deps: HandlerDeps): HandlersFor<ChaosChannels> {
  const m = deps.manager;
  /** The current (or last) run, with the connection it ran on: another connection starts from nothing. */
  let lab: { lab: ChaosLab; connectionId: number | undefined } | null = null;
  const current = (): ChaosLab | null => (lab && lab.connectionId === m.connectionId ? lab.lab : null);
  const requireLocal = (): NonNullable<ReturnType<typeof m.localControl>> => {
    const local = m.localControl();
    if (!local?.fault) throw new ContractError(-1, CHAOS_LOCAL_ONLY);
    return local;
  };
  return {
    'chaos:state': async () => current()?.state() ?? idle,
    'chaos:start': async () => {
      const local = requireLocal();
      const running = current();
      if (running?.state().running) return running.state();
      // a run left on a previous connection stops first
      if (lab) await lab.lab.stop();
      const l = new ChaosLab({ client: m.requireClient(), local, onChange: (s) => deps.broadcast('chaos:changed', s) });
      lab = { lab: l, connectionId: m.connectionId };
      l.start();
      return l.state();
    },
    'chaos:stop': async () => {
      const l = current();
      return l ? l.stop() : idle;
    },
    'chaos:fault': async ({ member, fault, seconds, delayMs }) => {
      requireLocal();
      const l = current();
      if (!l?.state().running) throw new ContractError(-1, 'start the workload first: faults are injected while it runs');
      try {
        await l.fault(member, fault, { seconds, delayMs });
      } catch (e) {
        throw new ContractError(-1, (e as Error).message);
      }
      return l.state();
    },
  };
}
