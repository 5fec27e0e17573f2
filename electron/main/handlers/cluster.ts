// Membership, leadership, and the app's local three-member cluster.
import type { EtcdClient } from '../../../node-core/index';
import { ContractError, type ClusterInfo } from '../../contract/index';
import { ClusterReader } from '../cluster-monitor';
import type { LocalControl } from '../node-host';
import { directDialer, memberClient, type MemberDialer } from '../member-dialer';
import type { HandlerDeps, HandlersFor } from './context';

/** One read of the cluster (member Status calls in parallel, each under a short deadline). */
export async function clusterInfo(client: EtcdClient, local?: LocalControl | null, connectionId?: number, dial: MemberDialer = directDialer): Promise<ClusterInfo> {
  const reader = new ClusterReader(client, local ?? null, connectionId, dial);
  try {
    return await reader.read();
  } finally {
    reader.close();
  }
}

type ClusterChannels =
  | 'cluster:info'
  | 'cluster:member-add'
  | 'cluster:member-remove'
  | 'cluster:member-promote'
  | 'cluster:move-leader'
  | 'cluster:local-stop'
  | 'cluster:local-restart'
  | 'cluster:monitor';

export function clusterHandlers(deps: HandlerDeps): HandlersFor<ClusterChannels> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  const info = (): Promise<ClusterInfo> => clusterInfo(c(), m.localControl(), m.connectionId, m.memberDialer());
  const local = (index: number): LocalControl => {
    const l = m.localControl();
    if (!l) throw new ContractError(-1, 'only members of the app\'s local cluster can be stopped and restarted');
    if (!l.members().some((x) => x.index === index)) throw new ContractError(-1, `no local member ${index}`);
    return l;
  };
  return {
    'cluster:info': async () => info(),
    'cluster:member-add': async ({ peerUrls, learner }) => {
      await c().memberAdd(peerUrls, learner);
      return info();
    },
    'cluster:member-remove': async ({ id }) => {
      await c().memberRemove(BigInt(id));
      return info();
    },
    'cluster:member-promote': async ({ id }) => {
      await c().memberPromote(BigInt(id));
      return info();
    },
    'cluster:move-leader': async ({ id }) => {
      // MoveLeader must reach the current leader.
      const before = await info();
      const leader = before.members.find((x) => x.isLeader);
      const target = leader?.clientUrls[0] ? await memberClient(c(), m.memberDialer(), leader.clientUrls[0]) : c();
      try {
        await target.moveLeader(BigInt(id));
      } finally {
        if (target !== c()) target.close();
      }
      return info();
    },
    'cluster:local-stop': async ({ index }) => {
      await local(index).stopMember(index);
      return info();
    },
    'cluster:local-restart': async ({ index }) => {
      await local(index).restartMember(index);
      return info();
    },
    'cluster:monitor': async ({ on }, ctx) => {
      if (!on) m.stopClusterMonitor(ctx.clientId);
      else m.startClusterMonitor(ctx.clientId, (e) => ctx.emit('cluster:changed', e));
      return { connectionId: m.connectionId ?? null };
    },
  };
}
