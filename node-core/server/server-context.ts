// The server layer's own state for one member: the watch hub every watching
// service shares, the lease id generator, the client to the current leader
// (leases are renewed there) and the require-leader stream monitor. startNode
// creates it once when the member starts, hands it to the service factories,
// and closes it when the member stops; nothing of a member lives in module
// globals, so two members in one process (the desktop app's local cluster,
// the tests) never share or leak any of it.
import { EtcdClient } from '../client/client';
import type { ClusterNode } from '../cluster';
import { Errors } from '../errors';
import { WatchHub } from '../watch/hub';
import { LeaderMonitor } from './leader-monitor';

const MASK63 = (1n << 63n) - 1n;
const LOW40 = (1n << 40n) - 1n;
const LOW48 = (1n << 48n) - 1n;

/**
 * etcd's idutil.Generator as used for lease ids: 16 bits of member id, then
 * a counter seeded with the start time in ms (so ids do not repeat across
 * restarts), kept positive.
 */
export class LeaseIdGenerator {
  private readonly prefix: bigint;
  private suffix: bigint;

  constructor(memberId: bigint, nowMs: number = Date.now()) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.suffix = (BigInt(nowMs) & LOW40) << 8n;
  }

  next(): bigint {
    for (;;) {
      this.suffix++;
      const id = (this.prefix | (this.suffix & LOW48)) & MASK63;
      if (id !== 0n) return id;
    }
  }
}

/**
 * A client to the current leader's client URLs: only the leader's lessor
 * knows expiries, so a follower forwards renew and time-to-live there, as
 * etcd does (it uses the leader's peer URL; the effect is the same). One
 * client, replaced when the leader (or its URLs) changes.
 */
export class LeaderClient {
  private cached: { url: string; client: EtcdClient } | undefined;
  private closed = false;

  constructor(private readonly node: ClusterNode) {}

  get(): EtcdClient {
    if (this.closed) throw Errors.Stopped;
    const lead = this.node.leaderId;
    if (lead === 0n) throw Errors.NoLeader;
    const m = this.node.members.find((x) => x.id === lead);
    if (!m || m.clientURLs.length === 0) throw Errors.NoLeader;
    const url = m.clientURLs.join(',');
    if (this.cached && this.cached.url === url) return this.cached.client;
    this.cached?.client.close();
    const client = new EtcdClient({ endpoints: m.clientURLs, timeoutMs: 5000 });
    this.cached = { url, client };
    return client;
  }

  close(): void {
    this.closed = true;
    this.cached?.client.close();
    this.cached = undefined;
  }
}

export class ServerContext {
  /** The member's watch hub, shared by Watch, Lock and Election. */
  readonly hub: WatchHub;
  readonly leaseIds: LeaseIdGenerator;
  readonly leaderClient: LeaderClient;
  readonly leaderMonitor: LeaderMonitor;
  private readonly offRestored: () => void;

  constructor(readonly node: ClusterNode) {
    this.hub = new WatchHub(node.mvcc);
    // a raft snapshot replaced the store: every watcher catches up from history
    this.offRestored = node.onStateRestored(() => this.hub.resync());
    this.leaseIds = new LeaseIdGenerator(node.memberId);
    this.leaderClient = new LeaderClient(node);
    this.leaderMonitor = new LeaderMonitor(node);
  }

  close(): void {
    this.offRestored();
    this.leaderMonitor.stop();
    this.leaderClient.close();
    this.hub.close();
  }
}
