// The leader-side half of leases (etcd's lessor runLoop and the server's
// expired-lease revoker): while this member leads, every tick it proposes
// revokes for expired leases (rate-limited as etcd: at most half of
// leaseRevokeRate per 500 ms tick) and remaining-TTL checkpoints. The
// decisions go through the log, so every member applies the same revokes.
import { LEASE_REVOKE_RATE, type Lessor } from '../lease/lessor';
import type { InternalRaftRequestInit, LeaseCheckpointInit, RequestHeaderInit } from '../proto/gen/etcdserverpb';

/** What the driver needs of its member (EtcdNode implements it). */
export interface LeaseDriverHost {
  readonly config: { readonly electionTimeout: number };
  propose(req: InternalRaftRequestInit): Promise<unknown>;
  /** Called with true when the member becomes leader, false when it stops being one; returns an unsubscribe. */
  onLeaderChange(cb: (isLeader: boolean) => void): () => void;
}

const TICK_MS = 500;

export interface LeaseDriverOptions {
  tickMs?: number;
  /**
   * The header of the server's own revokes: etcd revokes expired leases as
   * root (authStore.WithRoot), so with auth enabled the applier's check that
   * the caller may write every attached key passes. Without it the revoke
   * would be refused and an expired lease would live on.
   */
  asRoot?: () => RequestHeaderInit | undefined;
}

/** Starts following leadership changes; returns a stop function. */
export function startLeaseDriver(node: LeaseDriverHost, lessor: Lessor, opts: LeaseDriverOptions = {}): () => void {
  const tickMs = opts.tickMs ?? TICK_MS;
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<bigint>();

  const tick = (): void => {
    for (const id of lessor.expired(LEASE_REVOKE_RATE / 2)) {
      if (inFlight.has(id)) continue;
      inFlight.add(id);
      // a failed revoke (lost leadership, lease already gone) is retried by the lessor's retry interval
      node
        .propose({ header: opts.asRoot?.(), lease_revoke: { ID: id } })
        .catch(() => undefined)
        .finally(() => inFlight.delete(id));
    }
    const cps = lessor.dueCheckpoints();
    if (cps.length) node.propose({ lease_checkpoint: { checkpoints: cps } }).catch(() => undefined);
  };

  const checkpointer = (cps: LeaseCheckpointInit[]): Promise<unknown> => node.propose({ lease_checkpoint: { checkpoints: cps } });

  const stopTimer = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  const off = node.onLeaderChange((leader) => {
    stopTimer();
    if (leader) {
      // etcd promotes with the election timeout as grace: clients get a chance to renew after a failover
      lessor.promote(node.config.electionTimeout);
      if (lessor.checkpointEnabled) lessor.checkpointer = checkpointer;
      timer = setInterval(tick, tickMs);
      timer.unref();
    } else {
      lessor.checkpointer = undefined;
      lessor.demote();
    }
  });

  return () => {
    off();
    stopTimer();
  };
}
