// EtcdNode: one member. Owns the backend, the MVCC store, the domain stores,
// the membership and the raft loop. A write is encoded as an
// InternalRaftRequest and proposed; the raft loop persists it (one fsync per
// Ready, shared by every proposal that arrived meanwhile), replicates it,
// applies it in log order and answers the proposer. Linearizable reads pass
// a ReadIndex barrier first; serializable reads go straight to the store.
import fs from 'node:fs';
import path from 'node:path';
import { Backend } from '../backend/backend';
import type { StorageError } from '../backend/storage-error';
import { Errors } from '../errors';
import { Lessor, minLeaseTTL } from '../lease/lessor';
import { MvccStore } from '../mvcc/store';
import type { KVStore, LeaseHooks } from '../mvcc/types';
import { type ConfChangeType, type Message, type Snapshot } from '../raft';
import { exportEtcdSnapshot, importEtcdSnapshot } from '../backup';
import { openAuthStore } from '../auth';
import type { AuthStore } from '../auth/store';
import { AlarmRequest_AlarmAction, encodeInternalRaftRequest, type AlarmMember, type InternalRaftRequestInit, type ResponseHeaderInit } from '../proto/gen/etcdserverpb';
import type { TransportHandler } from '../transport/transport';
import { AlarmStore, alarmAppliers, AlarmType, costOf, createAlarmGate, Quota } from './alarms';
import { authAppliers } from './apply-auth';
import { kvAppliers } from './apply-kv';
import { leaseAppliers } from './apply-lease';
import { startAutoCompaction } from './compactor';
import { runStartChecks, StartScan, startCorruptionMonitor, writeIntegrityCheckpoint } from './corruption';
import { startLeaseDriver } from './lease-driver';
import { memberAppliers } from './apply-member';
import type { Applied, ApplyServices, ResultOf } from './apply-types';
import type { ClusterNode } from './cluster-node';
import { Applier } from './applier';
import type { NodeConfig } from './config';
import { parseInitialCluster } from './config';
import type { Logger } from '../support/logger';
import { MemberStore, encodeMember } from './members';
import { computeClusterId, computeMemberId, type Member } from './membership';
import { Metrics } from './metrics';
import { RaftLoop, type PeerTransportLike } from './raft-loop';
import { faultPoint } from '../backend/fault-hooks';

export type { Applied } from './apply-types';
// the membership change kinds, for the server's Cluster service (which must not reach into raft)
export { ConfChangeType } from '../raft';

// exported for the snapshot restore, which writes a new member's identity
export const CLUSTER_ID = Buffer.from('etcdesk_cluster_id');
export const MEMBER_ID = Buffer.from('etcdesk_member_id');

export interface NodeOpenOptions {
  /** Builds the peer transport once ids are known (absent: a single member needs none). */
  createTransport?: (node: EtcdNode) => PeerTransportLike;
  /** Injected randomness for raft's election timeouts. */
  random?: () => number;
  /** Ids and membership learned from the running cluster (joining with --initial-cluster-state existing). */
  identity?: { memberId: bigint; clusterId: bigint; members: Member[] };
  /** Lab only: a delay before each WAL fdatasync (the chaos lab's slow disk). */
  syncDelayMs?: () => number;
}

export class EtcdNode implements ClusterNode {
  readonly config: NodeConfig;
  readonly backend: Backend;
  readonly mvcc: KVStore;
  /** The domain stores the appliers work on (the lessor, the auth store, ...). */
  private readonly services: ApplyServices;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  private readonly memberStore: MemberStore;
  readonly log: Logger;
  readonly metrics = new Metrics();
  private readonly raft: RaftLoop;
  readonly alarms: AlarmStore;
  /** The backend quota (--quota-backend-bytes), checked when writes are proposed. */
  readonly quota: Quota;
  private checksPassed = false;
  /** The start-up check's pass over the key bucket, made while the index was rebuilt; finished by open(). */
  private startScan: StartScan | undefined;
  private readonly applier: Applier;
  private reqSeq: bigint;
  private readonly leaderListeners = new Set<(isLeader: boolean) => void>();
  private wasLeader = false;
  private stopped = false;
  private corruptRaised = false;
  private storageFailure: StorageError | undefined;
  private closedResolve!: () => void;
  /** Resolves when the node has closed (stopped, or removed from the cluster). */
  readonly closed = new Promise<void>((r) => (this.closedResolve = r));
  private publishedSettle!: { resolve(): void; reject(e: Error): void };
  /**
   * Resolves once this member's name and client URLs went through the log
   * and were applied here (etcd's ReadyNotify): there is a leader, the
   * membership others see lists this member's client URLs, and this member
   * has applied the log up to its own publish. Rejects (Errors.Stopped) if
   * the member stops first. Serving clients waits for it, as etcd's does.
   */
  readonly published = new Promise<void>((resolve, reject) => (this.publishedSettle = { resolve, reject }));

  private constructor(config: NodeConfig, log: Logger, opts: NodeOpenOptions) {
    // awaited by whoever serves clients; a member stopped before publishing must not leave an unhandled rejection
    this.published.catch(() => undefined);
    this.config = config;
    this.log = log;
    this.backend = Backend.open(path.join(config.dataDir, 'member'), {
      sync: !config.unsafeNoFsync,
      mapSize: Math.max(config.quotaBackendBytes * 2, 8 * 1024 * 1024 * 1024),
    });
    this.memberStore = new MemberStore(this.backend);
    this.backend.onFatal = (e) => this.storageFailed(e);
    this.backend.onCommitted = (s) => this.metrics.backendCommit.observe(s);
    // a record that fails its checksum is never served: the read fails and CORRUPT goes through the log
    this.backend.onCorrupt = (bucket, key) => {
      this.log.error('checksum mismatch on a stored record; refusing to serve it', { bucket, key: key.toString('hex') });
      if (!this.corruptRaised && this.raft) {
        this.corruptRaised = true;
        this.raiseAlarm(AlarmType.CORRUPT);
      }
    };
    const ids = this.resolveIdentity(opts.identity);
    this.memberId = ids.memberId;
    this.clusterId = ids.clusterId;
    // the lessor loads before the store, whose restore re-attaches keys to their leases (as etcd)
    const lessor = Lessor.open(this.backend, { minTTL: minLeaseTTL(config.electionTimeout, config.heartbeatInterval) });
    // auth before anything is applied: the applier checks every request against it
    const auth = openAuthStore(this.backend, { authToken: config.authToken, authTokenTtl: config.authTokenTtl, bcryptCost: config.bcryptCost }, {
      leaseKeys: (id) => lessor.lookup(id)?.keys,
    });
    const leases: LeaseHooks = lessor.hooks;
    // the local integrity check reads the key bucket within the index rebuild's scan (see ./corruption)
    this.startScan = new StartScan(this.backend.dir, this.backend);
    this.mvcc = MvccStore.open(this.backend, { leases, eachRecord: this.startScan.record });
    this.alarms = new AlarmStore(this.backend);
    this.services = { members: this.memberStore, lessor, auth, authGuard: auth, alarmGate: createAlarmGate(this.alarms) };
    // the file grows only when pending writes are committed (every 100 ms): count those too
    this.quota = new Quota(config.quotaBackendBytes, () => this.backend.quotaSize() + this.backend.queuedBytes, log);
    this.applier = new Applier(this.backend, this.mvcc, this.services, [kvAppliers, leaseAppliers, authAppliers, memberAppliers, alarmAppliers(this.alarms, log)]);
    // ids unique across restarts: member bits, then a time-based counter (etcd's idutil)
    this.reqSeq = ((this.memberId & 0xffffn) << 48n) | (BigInt(Date.now()) << 8n);
    this.raft = new RaftLoop({
      config,
      backend: this.backend,
      applier: this.applier,
      members: this.memberStore,
      memberId: this.memberId,
      log,
      metrics: this.metrics,
      random: opts.random,
      onLeaderChange: (_lead, isLeader) => this.leaderChanged(isLeader),
      onRemoved: () => void this.close(),
      installSnapshot: (snap) => this.installSnapshot(snap),
      onFatal: (e) => this.storageFailed(e),
      syncDelayMs: opts.syncDelayMs,
    });
    if (this.raft.isFresh()) {
      if (config.initialClusterState === 'new') this.raft.bootstrap(this.memberStore.list().map((m) => m.id));
      log.info('starting a new member', { 'member-id': this.memberId, 'cluster-id': this.clusterId, state: config.initialClusterState });
    } else {
      log.info('restarting member', { 'member-id': this.memberId, 'cluster-id': this.clusterId, applied: this.applier.appliedIndex, 'last-index': this.raft.lastIndex });
    }
    if (opts.createTransport) this.raft.transport = opts.createTransport(this);
    startLeaseDriver(this, lessor, { asRoot: () => auth.rootHeader() });
    startAutoCompaction(this);
    startCorruptionMonitor(this);
  }

  /**
   * Member and cluster ids: remembered from the first start; on a first start
   * derived from --initial-cluster exactly as etcd does.
   */
  private resolveIdentity(joined?: NodeOpenOptions['identity']): { memberId: bigint; clusterId: bigint } {
    const savedCluster = this.backend.get('meta', CLUSTER_ID);
    const savedMember = this.backend.get('meta', MEMBER_ID);
    if (savedCluster && savedMember) return { memberId: savedMember.readBigUInt64BE(0), clusterId: savedCluster.readBigUInt64BE(0) };
    const b = (v: bigint): Buffer => {
      const x = Buffer.allocUnsafe(8);
      x.writeBigUInt64BE(v);
      return x;
    };
    if (joined) {
      if (this.memberStore.isEmpty()) for (const m of joined.members) this.memberStore.put(m);
      this.backend.put('meta', CLUSTER_ID, b(joined.clusterId));
      this.backend.put('meta', MEMBER_ID, b(joined.memberId));
      return { memberId: joined.memberId, clusterId: joined.clusterId };
    }
    const config = this.config;
    const cluster = parseInitialCluster(config.initialCluster);
    const initial: Member[] = [...cluster.entries()].map(([name, urls]) => ({
      id: computeMemberId(urls, config.initialClusterToken),
      name,
      peerURLs: urls,
      // client URLs become known when each member publishes them through the log
      clientURLs: [],
      isLearner: false,
    }));
    const me = initial.find((m) => m.name === config.name);
    if (!me) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
    if (this.memberStore.isEmpty()) for (const m of initial) this.memberStore.put(m);
    const clusterId = computeClusterId(initial.map((m) => m.id));
    this.backend.put('meta', CLUSTER_ID, b(clusterId));
    this.backend.put('meta', MEMBER_ID, b(me.id));
    return { memberId: me.id, clusterId };
  }

  static async open(config: NodeConfig, log: Logger, opts: NodeOpenOptions = {}): Promise<EtcdNode> {
    const node = new EtcdNode(config, log, opts);
    await node.backend.commit();
    try {
      // a state snapshot whose install a kill interrupted is installed again from member/snap first
      await node.raft.recoverInterruptedInstall();
      const scan = node.startScan;
      node.startScan = undefined;
      await runStartChecks(node, scan);
    } catch (e) {
      await node.close();
      throw e;
    }
    node.checksPassed = true;
    if (node.raft.transport) {
      node.raft.syncPeers();
      await node.raft.transport.start();
    }
    node.raft.start();
    node.publishAttributes();
    return node;
  }

  /** True before the first start wrote anything (decides bootstrap vs. join vs. restart). */
  static isFreshDataDir(dataDir: string): boolean {
    return !fs.existsSync(path.join(dataDir, 'member', 'db', 'data.mdb'));
  }

  get members(): Member[] {
    return this.memberStore.list();
  }

  get lessor(): Lessor {
    return this.services.lessor;
  }

  get auth(): AuthStore {
    return this.services.auth;
  }

  member(id: bigint): Member | undefined {
    return this.memberStore.get(id);
  }

  validateMemberAdd(m: Member): void {
    this.memberStore.validateAdd(m);
  }

  validateMemberUpdate(id: bigint, peerURLs: string[]): void {
    this.memberStore.validateUpdate(id, peerURLs);
  }

  isRemovedMember(id: bigint): boolean {
    return this.memberStore.isRemoved(id);
  }

  matchIndex(id: bigint): number | undefined {
    return this.raft.raw.status().progress?.get(id)?.match;
  }

  transferLeader(target: bigint): void {
    this.raft.transferLeader(target);
  }

  /** What the peer transport delivers to and asks of this member. */
  peerHandler(): TransportHandler {
    return {
      receive: (m) => this.raft.step(m),
      receiveSnapshot: (m, file) => this.receiveSnapshot(m, file),
      openSnapshotData: (m) => this.snapshotData(m),
      reportUnreachable: (id) => this.raft.reportUnreachable(id),
      reportSnapshot: (id, failed) => this.raft.reportSnapshot(id, failed),
      members: () => this.members,
      hashKV: async (rev) => {
        const h = await this.mvcc.hashKV(rev);
        return { header: this.header(h.rev), hash: h.hash, compact_revision: h.compactRev };
      },
    };
  }

  /** The peer network (absent for a single member without one). */
  get peers(): PeerTransportLike | undefined {
    return this.raft.transport;
  }

  /** Epoch ms since which the peer has been reachable without interruption; undefined when it is not. */
  peerActiveSince(id: bigint): number | undefined {
    return this.raft.transport?.activeSince(id);
  }

  get raftTerm(): number {
    return this.raft.term;
  }

  get appliedIndex(): number {
    return this.applier.appliedIndex;
  }

  get raftIndex(): number {
    return this.raft.committedIndex;
  }

  get leaderId(): bigint {
    return this.raft.lead;
  }

  isLeader(): boolean {
    return this.raft.isLeader() && !this.stopped;
  }

  isLearner(): boolean {
    return this.raft.learners().includes(this.memberId);
  }

  /** Called with true when this member becomes leader and false when it stops being one. */
  onLeaderChange(cb: (isLeader: boolean) => void): () => void {
    this.leaderListeners.add(cb);
    if (this.isLeader()) queueMicrotask(() => this.leaderListeners.has(cb) && cb(true));
    return () => this.leaderListeners.delete(cb);
  }

  private leaderChanged(isLeader: boolean): void {
    if (isLeader === this.wasLeader) return;
    this.wasLeader = isLeader;
    for (const cb of this.leaderListeners) cb(isLeader);
  }

  /**
   * Tells the cluster this member's name and client URLs through the log, on
   * every start, as etcd's publish: a proposal made without a leader waits
   * for one; a timed-out one is proposed again until the member stops.
   */
  private publishAttributes(): void {
    if (this.stopped) return;
    this.propose({ member_attr: { ID: this.memberId, name: this.config.name, clientURLs: this.config.advertiseClientUrls } }).then(
      () => {
        this.log.info('published local member to cluster through raft', { 'local-member-id': this.memberId, name: this.config.name, 'client-urls': this.config.advertiseClientUrls });
        this.publishedSettle.resolve();
      },
      (e: unknown) => {
        if (this.stopped || e === Errors.Stopped) return;
        this.log.warn('failed to publish local member to cluster through raft; retrying', { error: (e as Error).message });
        this.publishAttributes();
      },
    );
  }

  /** Active alarms (etcd's AlarmMember list). */
  alarmList(): { memberId: bigint; alarm: number }[] {
    return this.alarms.get().map((a) => ({ memberId: a.memberID, alarm: a.alarm }));
  }

  activeAlarms(): AlarmMember[] {
    return this.alarms.get();
  }

  renderMetrics(): Promise<string> {
    return this.metrics.render(this);
  }

  /** Whether an alarm other than the excluded ones (by name: NOSPACE, CORRUPT) is raised. */
  hasAlarm(exclude: string[] = []): boolean {
    const names = ['NONE', 'NOSPACE', 'CORRUPT'];
    return this.alarms.get().some((a) => !exclude.includes(names[a.alarm] ?? ''));
  }

  /** Raises an alarm for this member through the log (etcd raises NOSPACE this way when a write exceeds the quota). */
  raiseAlarm(alarm: AlarmType): void {
    if (this.alarms.get(alarm).some((a) => a.memberID === this.memberId)) return;
    this.propose({ alarm: { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.memberId, alarm } }).catch((e: unknown) => {
      this.log.warn('failed to raise alarm', { alarm, error: (e as Error).message });
    });
  }

  header(rev?: number): ResponseHeaderInit {
    return { cluster_id: this.clusterId, member_id: this.memberId, revision: rev ?? this.mvcc.rev, raft_term: this.raft.term };
  }

  /** Proposes a request through raft; resolves with its apply result once applied here. */
  propose<R extends InternalRaftRequestInit>(req: R): Promise<Applied<ResultOf<R>>> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    // etcd's quotaKVServer/quotaLeaseServer: a write that would pass the quota raises NOSPACE instead
    const cost = costOf(req);
    if (cost > 0 && !this.quota.available(cost)) {
      this.raiseAlarm(AlarmType.NOSPACE);
      return Promise.reject(Errors.NoSpace);
    }
    const id = ++this.reqSeq;
    const data = encodeInternalRaftRequest({ ...req, header: { ...(req.header ?? {}), ID: id } });
    if (data.length > this.config.maxRequestBytes) return Promise.reject(Errors.RequestTooLarge);
    // the applier ran the table entry of the request's kind, whose result type ApplyResults names
    return this.raft.propose(data, id) as Promise<Applied<ResultOf<R>>>;
  }

  /** Resolves once this member has applied raft index `index` (notified by the apply, never polled). */
  waitApplied(index: number): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    if (this.applier.appliedIndex >= index) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Errors.TimeoutWaitAppliedIndex), 5000 + 2 * this.config.electionTimeout);
    });
    return Promise.race([this.raft.applied.wait(index), timeout]).finally(() => clearTimeout(timer));
  }

  /** Resolves when a linearizable read may be served (ReadIndex confirmed and applied). */
  readBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    return this.raft.readIndex();
  }

  /** Adds, removes, updates or promotes a member through a raft conf change. */
  changeMembership(type: ConfChangeType, id: bigint, member?: Member): Promise<Applied> {
    return this.raft.proposeConfChange({ type, nodeId: id, context: member ? encodeMember(member) : undefined });
  }

  /**
   * The state machine for a follower behind the leader's compacted log: this
   * member's current state as an etcd snapshot stream (it is at or past the
   * raft snapshot's index; the follower's applier skips what it already has).
   */
  async snapshotData(msg: Message): Promise<{ stream: AsyncIterable<Buffer>; done(): void }> {
    this.log.info('sending a state snapshot to a follower behind the compacted log', { to: msg.to, index: msg.snapshot?.metadata.index });
    const image = await exportEtcdSnapshot(this.backend, { tmpDir: path.join(this.config.dataDir, 'member') });
    return { stream: image, done: () => void image.close().catch(() => undefined) };
  }

  private readonly snapFiles = new Map<number, string>();
  private readonly restoredListeners = new Set<() => void>();

  /** Where a received state snapshot waits until installed: etcd's member/snap/<index>.snap.db. */
  private snapDbPath(index: number): string {
    return path.join(this.config.dataDir, 'member', 'snap', `${index.toString(16).padStart(16, '0')}.snap.db`);
  }

  receiveSnapshot(msg: Message, dbFile: string): void {
    const index = msg.snapshot?.metadata.index ?? 0;
    const old = this.snapFiles.get(index);
    if (old) fs.rm(old, { force: true }, () => undefined);
    // Durable under its index before raft sees the message: the WAL records the raft snapshot before
    // the state is in LMDB, so a member killed in between finds the state here at its next start
    // (as etcd keeps <index>.snap.db). The file itself was fsynced by the transport.
    const durable = this.snapDbPath(index);
    fs.mkdirSync(path.dirname(durable), { recursive: true });
    fs.renameSync(dbFile, durable);
    syncDir(path.dirname(durable));
    this.snapFiles.set(index, durable);
    this.raft.step(msg);
  }

  /** Called after a snapshot replaced the state machine (watchers resync from history). */
  onStateRestored(cb: () => void): () => void {
    this.restoredListeners.add(cb);
    return () => this.restoredListeners.delete(cb);
  }

  /** Replaces the state machine with the one received for raft snapshot `snap` (etcd's applySnapshot). */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    const index = snap.metadata.index;
    const kept = this.snapDbPath(index);
    const file = this.snapFiles.get(index) ?? (fs.existsSync(kept) ? kept : undefined);
    if (!file) throw new Error(`no state received for raft snapshot ${index} (expected ${kept})`);
    for (const [i, f] of this.snapFiles) {
      if (i > index) continue;
      this.snapFiles.delete(i);
      if (i !== index) fs.rm(f, { force: true }, () => undefined);
    }
    faultPoint('snapshot-install');
    const keep = [CLUSTER_ID, MEMBER_ID].map((k) => [k, this.backend.get('meta', k)] as const);
    const res = await importEtcdSnapshot(file, this.backend, { includeMembership: true });
    for (const [k, v] of keep) if (v) this.backend.put('meta', k, v);
    const ci = Buffer.allocUnsafe(8);
    ci.writeBigUInt64BE(res.snapshotConsistentIndex > BigInt(index) ? res.snapshotConsistentIndex : BigInt(index));
    this.backend.put('meta', Buffer.from('consistent_index'), ci);
    // durable before the received file goes: after this, a restart needs only the log after the snapshot
    await this.backend.commitDurable();
    // everything that keeps state in memory reloads from the new buckets, leases before the store
    this.memberStore.reload();
    this.services.lessor.recover();
    (this.mvcc as MvccStore).reload();
    this.services.auth.recover();
    this.applier.reloadApplied();
    for (const cb of this.restoredListeners) cb();
    fs.rm(file, { force: true }, () => undefined);
    this.log.info('installed a state snapshot from the leader', { index, applied: this.applier.appliedIndex, revision: this.mvcc.rev });
  }

  /**
   * The storage failure (disk full, I/O error) that stopped this member, if
   * one did; set before `closed` resolves. etcd exits on these; the host
   * decides (the CLI exits non-zero).
   */
  get fatalError(): StorageError | undefined {
    return this.storageFailure;
  }

  private storageFailed(e: StorageError): void {
    if (this.storageFailure) return;
    this.storageFailure = e;
    this.log.error('storage failed; stopping the member', { error: e.message, path: e.path });
    this.close().catch((err: unknown) => {
      // the host still learns the member stopped
      this.log.error('closing after a storage failure failed', { error: (err as Error).message });
      this.closedResolve();
    });
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.wasLeader) for (const cb of this.leaderListeners) cb(false);
    this.leaderListeners.clear();
    this.publishedSettle.reject(Errors.Stopped);
    await this.raft.stop();
    // physical compaction stops between batches (the next open resumes it): the checkpoint hashes the
    // bucket's bytes, which a batch deleting after the hash would change
    await this.mvcc.close();
    // the hash the next start compares the store with (see ./corruption)
    if (this.checksPassed && !this.storageFailure) await writeIntegrityCheckpoint(this).catch((e: unknown) => this.log.warn('could not write the integrity checkpoint', { error: (e as Error).message }));
    await this.backend.close();
    this.closedResolve();
  }
}

/** fsync of a directory, so a rename in it survives a power cut. */
function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
