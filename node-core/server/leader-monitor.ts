// etcd 3.4's stream interceptor for clientv3.WithRequireLeader (v3rpc's
// newStreamInterceptor + monitorLeader): a stream whose metadata carries
// `hasleader: true` is refused at once when the member has no leader, and
// once running it is cancelled with `etcdserver: no leader` after the member
// has been without one for maxNoLeaderCnt election timeouts, so the client
// reconnects to a member that has a leader. Every streaming service (Watch,
// LeaseKeepAlive, Election Observe, Maintenance Snapshot) goes through here.
import type { ClusterNode } from '../cluster';
import { Errors, type EtcdError } from '../errors';

/** etcd's maxNoLeaderCnt: election timeouts without a leader before require-leader streams are cancelled. */
const MAX_NO_LEADER_CHECKS = 3;

interface MetadataCall {
  metadata: { get(k: string): unknown[] };
}

/** Whether the call asked for a leader (clientv3.WithRequireLeader sets `hasleader: true`). */
export function requiresLeader(call: MetadataCall): boolean {
  return call.metadata.get('hasleader')[0] === 'true';
}

/** A stream that asks for a leader is refused without one (etcd's stream interceptor). */
export function refuseWithoutLeader(node: ClusterNode, call: MetadataCall): boolean {
  return requiresLeader(call) && node.leaderId === 0n;
}

/**
 * etcd's monitorLeader: once per election timeout, counts how long the
 * member has been without a leader; at MAX_NO_LEADER_CHECKS every tracked
 * stream is cancelled with etcdserver: no leader. The timer runs only
 * while such streams exist. One per member (ServerContext).
 */
export class LeaderMonitor {
  private readonly cancels = new Set<(e: EtcdError) => void>();
  private timer?: NodeJS.Timeout;
  private noLeaderChecks = 0;

  constructor(readonly node: ClusterNode) {}

  /** Tracks a stream's cancel; returns the (idempotent) untrack to call when the stream ends. */
  track(cancel: (e: EtcdError) => void): () => void {
    const entry = (e: EtcdError): void => cancel(e);
    this.cancels.add(entry);
    if (!this.timer) {
      this.noLeaderChecks = 0;
      this.timer = setInterval(() => this.check(), this.node.config.electionTimeout);
      this.timer.unref();
    }
    return () => {
      this.cancels.delete(entry);
      if (!this.cancels.size && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** The member stopped: no more checks (its streams end with the server). */
  stop(): void {
    this.cancels.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    this.noLeaderChecks = this.node.leaderId === 0n ? this.noLeaderChecks + 1 : 0;
    if (this.noLeaderChecks < MAX_NO_LEADER_CHECKS) return;
    // etcd empties its stream map after cancelling: each stream is cancelled once
    const cancels = [...this.cancels];
    this.cancels.clear();
    clearInterval(this.timer);
    this.timer = undefined;
    for (const c of cancels) c(Errors.NoLeader);
  }
}

/**
 * Runs a new stream through etcd's require-leader check. Returns undefined
 * when the stream must be refused (answer it with Errors.NoLeader);
 * otherwise an untrack function to call when the stream ends (a no-op when
 * the stream did not ask for a leader). `cancel` ends the stream with the
 * given error once the member has been leaderless too long.
 */
export function leaderBoundStream(monitor: LeaderMonitor, call: MetadataCall, cancel: (e: EtcdError) => void): (() => void) | undefined {
  if (!requiresLeader(call)) return () => undefined;
  if (monitor.node.leaderId === 0n) return undefined;
  return monitor.track(cancel);
}
