// Maintenance: defragment, HashKV across members at one revision, alarms.
import { EtcdPb, type EtcdClient } from '../../../node-core/index';
import { serializeError } from '../errors';
import { clusterInfo } from './cluster';
import { memberClient } from '../member-dialer';
import type { HandlerDeps, HandlersFor } from './context';

export function maintenanceHandlers(deps: HandlerDeps): HandlersFor<'maint:defragment' | 'maint:hashkv' | 'maint:alarm-disarm'> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  return {
    'maint:defragment': async ({ endpoint }) => {
      // `endpoint` is a member's advertised client URL (the cluster view's row).
      const target = endpoint ? await memberClient(c(), m.memberDialer(), endpoint) : c();
      try {
        await target.defragment();
      } finally {
        if (endpoint) target.close();
      }
      return { ok: true };
    },
    'maint:hashkv': async ({ revision }) => {
      const members = (await c().memberList()).members.filter((x) => x.clientURLs.length);
      // One revision for all: hashes at different revisions never agree.
      const rev = revision && revision > 0 ? revision : ((await c().range({ key: Buffer.from([0]), count_only: true })).header?.revision ?? 0);
      const hashes = await Promise.all(
        members.map(async (mem) => {
          const url = mem.clientURLs[0];
          const base = { endpoint: url, memberId: mem.ID.toString(), name: mem.name };
          let one: EtcdClient | null = null;
          try {
            one = await memberClient(c(), m.memberDialer(), url);
            const h = await one.hashKV(rev);
            return { ...base, hash: h.hash, compactRevision: h.compact_revision };
          } catch (e) {
            return { ...base, hash: 0, compactRevision: 0, error: serializeError(e).message };
          } finally {
            one?.close();
          }
        }),
      );
      return { revision: rev, hashes };
    },
    'maint:alarm-disarm': async () => {
      const client = c();
      const al = await client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET });
      for (const a of al.alarms) await client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm });
      return clusterInfo(client, m.localControl(), m.connectionId, m.memberDialer());
    },
  };
}
