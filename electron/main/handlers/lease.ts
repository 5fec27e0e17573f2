// Leases: list, grant, revoke, keep-alive (one stream per lease, shared by every window), attach a key.
import { Errors, type EtcdClient } from '../../../node-core/index';
import type { LeaseInfo } from '../../contract/index';
import { text } from '../convert';
import type { HandlerDeps, HandlersFor } from './context';

async function leaseInfo(client: EtcdClient, id: bigint, keepingAlive: boolean): Promise<LeaseInfo> {
  const t = await client.leaseTimeToLive(id, true);
  // etcd answers TimeToLive of an unknown lease with TTL -1 rather than an error: say what etcd says elsewhere.
  if (t.TTL === -1) throw Errors.LeaseNotFound;
  return { id: id.toString(), ttl: t.TTL, grantedTtl: t.grantedTTL, keys: t.keys.map((k) => Buffer.from(k).toString('utf8')), keepingAlive, at: Date.now() };
}

export function leaseHandlers(deps: HandlerDeps): HandlersFor<'lease:list' | 'lease:grant' | 'lease:revoke' | 'lease:keepalive-once' | 'lease:keepalive' | 'lease:attach'> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  return {
    'lease:list': async () => {
      const l = await c().leaseLeases();
      const infos = await Promise.all(l.leases.slice(0, 500).map((x) => leaseInfo(c(), x.ID, m.keepAlives.has(x.ID.toString())).catch(() => null)));
      return infos.filter((x): x is LeaseInfo => x !== null).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    },
    'lease:grant': async ({ ttl }) => {
      const g = await c().leaseGrant(ttl);
      return leaseInfo(c(), g.ID, false);
    },
    'lease:revoke': async ({ id }) => {
      m.keepAlives.stop(id);
      await c().leaseRevoke(BigInt(id));
      deps.broadcast('lease:tick', { id, ttl: 0, at: Date.now(), gone: true });
      return { ok: true };
    },
    'lease:keepalive-once': async ({ id }) => {
      await c().leaseKeepAliveOnce(BigInt(id));
      return leaseInfo(c(), BigInt(id), m.keepAlives.has(id));
    },
    'lease:keepalive': async ({ id, on }) => {
      if (!on) m.keepAlives.stop(id);
      else
        m.keepAlives.start(id, () =>
          c().leaseKeepAlive(
            BigInt(id),
            (r) => deps.broadcast('lease:tick', { id, ttl: r.TTL, at: Date.now() }),
            () => {
              m.keepAlives.forget(id);
              deps.broadcast('lease:tick', { id, ttl: 0, at: Date.now(), gone: true });
            },
          ),
        );
      return leaseInfo(c(), BigInt(id), on);
    },
    'lease:attach': async ({ id, key }) => {
      // ignore_value keeps the current value: attaching never rewrites data.
      await c().put({ key: text(key), lease: BigInt(id), ignore_value: true });
      return leaseInfo(c(), BigInt(id), m.keepAlives.has(id));
    },
  };
}
