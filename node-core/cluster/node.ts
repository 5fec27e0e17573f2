// EtcdNode: one member. Owns the backend, the MVCC store, the domain stores
// and the log. A write is encoded as an InternalRaftRequest, appended to the
// log, made durable (one fsync shared by every proposal that arrived while
// the previous one ran: group commit), applied in log order, and only then
// acknowledged. Reads go straight to the store once the read barrier passes.
import path from 'node:path';
import { Backend } from '../backend/backend';
import { Errors } from '../errors';
import { MvccStore } from '../mvcc/store';
import type { KVStore, LeaseHooks } from '../mvcc/types';
import { encodeInternalRaftRequest, type InternalRaftRequestInit, type ResponseHeaderInit } from '../proto/gen/etcdserverpb';
import { authAppliers } from './apply-auth';
import { kvAppliers } from './apply-kv';
import { leaseAppliers } from './apply-lease';
import type { ApplyServices } from './apply-types';
import { Applier } from './applier';
import type { NodeConfig } from './config';
import { parseInitialCluster } from './config';
import { computeClusterId, computeMemberId, type Member } from './membership';
import type { Logger } from './logger';
import { Metrics } from './metrics';

/** A proposal's outcome: the applier's result and the store revision right after it applied. */
export interface Applied {
  result: unknown;
  rev: number;
}

interface Waiter {
  resolve(v: Applied): void;
  reject(e: Error): void;
}

interface PendingEntry {
  index: number;
  data: Buffer;
  id: bigint;
}

const u64 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

const HARD_STATE = Buffer.from('hardstate');
/** Entries kept behind the applied index, for followers catching up (etcd's SnapshotCatchUpEntries). */
const LOG_RETAIN = 5000;

export class EtcdNode {
  readonly config: NodeConfig;
  readonly backend: Backend;
  readonly mvcc: KVStore;
  readonly services: ApplyServices = {};
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly members: Member[];
  readonly log: Logger;
  readonly metrics = new Metrics();
  private readonly alarms: { memberId: bigint; alarm: number }[] = [];
  private readonly applier: Applier;
  private term = 0;
  private lastIndex = 0;
  private reqSeq: bigint;
  private readonly waiters = new Map<bigint, Waiter>();
  private queue: PendingEntry[] = [];
  private flushScheduled = false;
  private readonly leaderListeners = new Set<(isLeader: boolean) => void>();
  private inflight: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastLogTrim = 0;

  private constructor(config: NodeConfig, log: Logger) {
    this.config = config;
    this.log = log;
    const cluster = parseInitialCluster(config.initialCluster);
    this.members = [...cluster.entries()].map(([name, urls]) => ({
      id: computeMemberId(urls, config.initialClusterToken),
      name,
      peerURLs: urls,
      clientURLs: name === config.name ? config.advertiseClientUrls : [],
      isLearner: false,
    }));
    const me = this.members.find((m) => m.name === config.name);
    if (!me) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
    this.memberId = me.id;
    this.clusterId = computeClusterId(this.members.map((m) => m.id));
    this.backend = Backend.open(path.join(config.dataDir, 'member'), {
      sync: !config.unsafeNoFsync,
      mapSize: Math.max(config.quotaBackendBytes * 2, 8 * 1024 * 1024 * 1024),
    });
    const leases: LeaseHooks | undefined = undefined;
    this.mvcc = MvccStore.open(this.backend, { leases });
    this.applier = new Applier(this.backend, this.mvcc, this.services, [kvAppliers, leaseAppliers, authAppliers]);
    // ids unique across restarts: member bits, then a time-based counter (etcd's idutil)
    this.reqSeq = ((this.memberId & 0xffffn) << 48n) | (BigInt(Date.now()) << 8n);
  }

  static async open(config: NodeConfig, log: Logger): Promise<EtcdNode> {
    const node = new EtcdNode(config, log);
    await node.recover();
    return node;
  }

  /** Replays log entries the store has not applied yet (a crash between fsync and apply). */
  private async recover(): Promise<void> {
    const hs = this.backend.get('raftState', HARD_STATE);
    this.term = hs ? Number(hs.readBigUInt64BE(0)) : 0;
    // a restart is a new election in a single-member cluster: a new term, as etcd
    this.term += this.term === 0 ? 2 : 1;
    this.backend.put('raftState', HARD_STATE, u64(this.term));
    let replayed = 0;
    const from = this.applier.appliedIndex + 1;
    for (const [k, v] of this.backend.range('raftLog', u64(from))) {
      const index = Number(k.readBigUInt64BE(0));
      this.applier.apply(index, Number(v.readBigUInt64BE(0)), v.subarray(9));
      replayed++;
    }
    const last = [...this.backend.range('raftLog', undefined, undefined, { reverse: true, limit: 1 })][0];
    this.lastIndex = Math.max(last ? Number(last[0].readBigUInt64BE(0)) : 0, this.applier.appliedIndex);
    if (replayed) this.log.info('replayed log entries after restart', { replayed, applied: this.applier.appliedIndex });
    this.applier.persistAppliedIndex();
    await this.backend.commit();
  }

  get raftTerm(): number {
    return this.term;
  }

  get appliedIndex(): number {
    return this.applier.appliedIndex;
  }

  get raftIndex(): number {
    return this.lastIndex;
  }

  get leaderId(): bigint {
    return this.memberId;
  }

  isLeader(): boolean {
    return this.leaderId === this.memberId && !this.stopped;
  }

  /** Called with true when this member becomes leader and false when it stops being one. */
  onLeaderChange(cb: (isLeader: boolean) => void): () => void {
    this.leaderListeners.add(cb);
    if (this.isLeader()) queueMicrotask(() => this.leaderListeners.has(cb) && cb(true));
    return () => this.leaderListeners.delete(cb);
  }

  /** Active alarms (etcd's AlarmMember list). */
  alarmList(): { memberId: bigint; alarm: number }[] {
    return this.alarms;
  }

  /** Whether an alarm other than the excluded ones (by name: NOSPACE, CORRUPT) is raised. */
  hasAlarm(exclude: string[] = []): boolean {
    const names = ['NONE', 'NOSPACE', 'CORRUPT'];
    return this.alarms.some((a) => !exclude.includes(names[a.alarm] ?? ''));
  }

  header(rev?: number): ResponseHeaderInit {
    return { cluster_id: this.clusterId, member_id: this.memberId, revision: rev ?? this.mvcc.rev, raft_term: this.term };
  }

  /** Proposes a request through the log; resolves with its apply result once applied on a durable log. */
  propose(req: InternalRaftRequestInit): Promise<Applied> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    const id = ++this.reqSeq;
    const data = encodeInternalRaftRequest({ ...req, header: { ...(req.header ?? {}), ID: id } });
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.RequestTooLarge);
    const entry: PendingEntry = { index: ++this.lastIndex, data, id };
    const p = new Promise<Applied>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    const v = Buffer.allocUnsafe(9 + data.length);
    v.writeBigUInt64BE(BigInt(this.term), 0);
    v[8] = 0;
    data.copy(v, 9);
    this.backend.put('raftLog', u64(entry.index), v);
    this.queue.push(entry);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return p;
  }

  /** Resolves when a linearizable read may be served (every acknowledged write is applied). */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    return Promise.resolve();
  }

  // Group commit, pipelined: every event turn's appends become one backend
  // commit; the next turn's commit may start before the previous one is
  // durable, and entries are applied strictly in log order as their commit
  // completes.
  private flush(): void {
    this.flushScheduled = false;
    if (this.stopped || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const t0 = performance.now();
    const commit = this.backend.commit();
    this.inflight = this.inflight.then(
      () =>
        commit.then(
          () => {
            this.metrics.fsync.observe((performance.now() - t0) / 1000);
            this.metrics.proposalsCommitted += batch.length;
            for (const e of batch) {
              const out = this.applier.apply(e.index, this.term, e.data);
              this.metrics.proposalsApplied++;
              this.settle(e.id, out.error ? undefined : { result: out.result, rev: out.rev }, out.error);
            }
            this.applier.persistAppliedIndex();
            this.maybeTrimLog();
          },
          (err: unknown) => {
            for (const e of batch) this.settle(e.id, undefined, err as Error);
          },
        ),
    );
  }

  private settle(id: bigint, applied: Applied | undefined, error: Error | undefined): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    if (error || !applied) w.reject(error ?? Errors.Stopped);
    else w.resolve(applied);
  }

  private maybeTrimLog(): void {
    const applied = this.applier.appliedIndex;
    if (applied - this.lastLogTrim < Math.max(1000, Math.min(this.config.snapshotCount, 10000))) return;
    const upTo = applied - LOG_RETAIN;
    if (upTo <= 0) return;
    for (const [k] of this.backend.range('raftLog', undefined, u64(upTo + 1))) this.backend.del('raftLog', k);
    this.lastLogTrim = applied;
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const cb of this.leaderListeners) cb(false);
    this.leaderListeners.clear();
    for (const [id] of this.waiters) this.settle(id, undefined, Errors.Stopped);
    await this.backend.close();
  }
}
