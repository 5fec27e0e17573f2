// Membership, leadership, and the app's local three-member cluster.
import { EtcdPb, type EtcdClient } from '../../../node-core/index';
import { ContractError, type ClusterInfo } from '../../contract/index';
import { serializeError } from '../errors';
import type { LocalControl } from '../node-host';
import type { HandlerDeps, HandlersFor } from './context';

export async function clusterInfo(client: EtcdClient, local?: LocalControl | null): Promise<ClusterInfo> {
  // Cluster RPC headers carry no revision (as etcd): a count-only range gives the store's.
  const [ml, alarms, head] = await Promise.all([
    client.memberList(),
    client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET }).catch(() => null),
    client.range({ key: Buffer.from([0]), count_only: true, serializable: true }).catch(() => null),
  ]);
  let leader = 0n;
  const members = await Promise.all(
    ml.members.map(async (m) => {
      const url = m.clientURLs[0];
      let status: ClusterInfo['members'][number]['status'];
      if (url) {
        const one = client.forEndpoint(url);
        try {
          const s = await one.status();
          if (s.leader) leader = s.leader;
          status = { version: s.version, dbSize: s.dbSize, raftIndex: s.raftIndex, raftTerm: s.raftTerm, errors: s.errors };
        } catch (e) {
          status = { error: serializeError(e).message };
        } finally {
          one.close();
        }
      }
      return { id: m.ID.toString(), name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner, isLeader: false, status };
    }),
  );
  for (const m of members) m.isLeader = m.id === leader.toString();
  return {
    clusterId: ml.header?.cluster_id.toString() ?? '',
    members,
    revision: head?.header?.revision || ml.header?.revision || 0,
    alarms: (alarms?.alarms ?? []).map((a) => ({ memberId: a.memberID.toString(), alarm: EtcdPb.AlarmType[a.alarm] ?? String(a.alarm) })),
    local: local?.members().map((x) => ({ index: x.index, name: x.name, clientUrl: x.clientUrl, running: x.running })),
  };
}

type ClusterChannels = 'cluster:info' | 'cluster:member-add' | 'cluster:member-remove' | 'cluster:member-promote' | 'cluster:move-leader' | 'cluster:local-stop' | 'cluster:local-restart';

export function clusterHandlers(deps: HandlerDeps): HandlersFor<ClusterChannels> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  const info = (): Promise<ClusterInfo> => clusterInfo(c(), m.localControl());
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
      const target = leader?.clientUrls[0] ? c().forEndpoint(leader.clientUrls[0]) : c();
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
  };
}
