// The raft loop: drives the pure RawNode with real time, disk and network.
// Per Ready: persist the snapshot, entries and hard state (one WAL write,
// the group-commit fsync shared by every proposal that arrived meanwhile),
// only then send messages (the leader sends before its own fsync), apply
// committed entries in order, answer read states, advance; ordinary entries
// already on this member's disk are applied while an fsync runs. Proposals wait by request id in a wait
// registry (./wait-registry); a follower's proposal is forwarded to the
// leader by raft itself and answered when the follower applies it. Reads go
// through the ReadIndex batcher (./read-index-batcher); everything waiting
// for the applied index is notified by the apply, never polled.
import path from 'node:path';
import type { Backend } from '../backend/backend';
import { StorageError } from '../backend/storage-error';
import { Errors, type EtcdError } from '../errors';
import {
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  decodeConfChange,
  decodeConfChangeV2,
  type Entry,
  EntryType,
  ErrProposalDropped,
  isEmptySnap,
  type Message,
  MessageType,
  RawNode,
  type Ready,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
} from '../raft';
import type { Applier } from './applier';
import type { Applied } from './apply-types';
import { applyConfChangeToMembers } from './apply-member';
import type { NodeConfig } from './config';
import type { Logger } from '../support/logger';
import type { MemberStore } from './members';
import type { Metrics } from './metrics';
import { DiskStorage } from '../wal/raft-storage';
import { faultCatchUpEntries } from '../backend/fault-hooks';
import { ReadIndexBatcher } from './read-index-batcher';
import { IndexWaiter, WaitRegistry } from './wait-registry';
import type { HashKVResponse } from '../proto/gen/etcdserverpb';

/** What the loop needs from the peer network (implemented by ./transport). */
export interface PeerTransportLike {
  start(): Promise<void>;
  setPeer(id: bigint, urls: string[]): void;
  removePeer(id: bigint): void;
  send(msgs: Message[]): void;
  isActive(id: bigint): boolean;
  activeSince(id: bigint): number | undefined;
  stop(): Promise<void>;
  /** A peer's HashKV over the peer network (corruption checks). */
  peerHashKV?(peerId: bigint, urls: string[], revision: number, timeoutMs: number): Promise<HashKVResponse>;
}

export type { Applied } from './apply-types';

/** The leader when a request was proposed: a change means its timeout is due to leader failure. */
type ProposedUnder = bigint;

export interface RaftLoopOptions {
  config: NodeConfig;
  backend: Backend;
  applier: Applier;
  members: MemberStore;
  memberId: bigint;
  log: Logger;
  metrics: Metrics;
  /** Injected randomness for election timeouts (tests pass a seeded one). */
  random?: () => number;
  onLeaderChange(lead: bigint, isLeader: boolean): void;
  onRemoved(): void;
  /** Replaces the state machine with the one sent along with a raft snapshot. */
  installSnapshot(snap: Snapshot): Promise<void>;
  /** The log could not be written (disk full or failing): nothing of that Ready was acknowledged; the member must stop. */
  onFatal?(e: StorageError): void;
  /** Lab only: a delay before each WAL fdatasync (the chaos lab's slow disk). */
  syncDelayMs?: () => number;
}

/** etcd's default --experimental-warning-apply-duration: a longer apply counts as slow. */
const SLOW_APPLY_MS = 100;

/** etcd's SnapshotCatchUpEntries: entries kept after a snapshot for slow followers. */
const CATCH_UP_ENTRIES = faultCatchUpEntries ?? 5000;

export class RaftLoop {
  readonly raw: RawNode;
  readonly storage: DiskStorage;
  transport?: PeerTransportLike;
  lead = 0n;
  private raftState: StateType = StateType.Follower;
  private confState: ConfState;
  private readonly waiters = new WaitRegistry<bigint, Applied, ProposedUnder>();
  private readonly ccWaiters = new WaitRegistry<number, Applied, ProposedUnder>();
  /** The applied index, for everything that waits for it (reads, waitApplied). */
  readonly applied: IndexWaiter;
  private readonly reads: ReadIndexBatcher;
  private blocked: { data: Buffer; id: bigint }[] = [];
  /** The Ready loop while it runs (stop() waits for it). */
  private loop?: Promise<void>;
  private again = false;
  private scheduled = false;
  private stopped = false;
  /** The log failed to persist (a StorageError): the member is going down and runs no more Readies. */
  private failed = false;
  private tickTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private snapshotIndex: number;
  /** Set while the backend commit before a snapshot runs. */
  private snapshotting = false;
  private ccSeq = 0;
  private readonly reqTimeoutMs: number;
  /** The last log index on disk (fsynced): a single voter's read index (./read-index-batcher). */
  private durableIndex: number;

  constructor(private readonly o: RaftLoopOptions) {
    this.storage = DiskStorage.load(path.join(o.config.dataDir, 'member', 'wal'), o.backend, { sync: !o.config.unsafeNoFsync, syncDelayMs: o.syncDelayMs });
    if (this.storage.repaired) o.log.warn('repaired the write-ahead log: cut a torn write at its tail', this.storage.repaired);
    const electionTick = Math.max(2, Math.round(o.config.electionTimeout / o.config.heartbeatInterval));
    this.reqTimeoutMs = 5000 + 2 * o.config.electionTimeout;
    const fresh = this.storage.isEmpty();
    this.raw = new RawNode({
      id: o.memberId,
      electionTick,
      heartbeatTick: 1,
      storage: this.storage,
      // raft hands out committed entries after the snapshot (the applier skips those it has); a state
      // machine behind the snapshot is brought to it before the loop runs (recoverInterruptedInstall)
      applied: fresh ? 0 : this.storage.snapshot().metadata.index,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 512,
      checkQuorum: true,
      // pre-vote always: a partitioned member rejoining must not depose a healthy leader
      preVote: true,
      readOnlyOption: 'safe',
      random: o.random ?? Math.random,
      logger: { debug: () => undefined, info: (...a: unknown[]) => o.log.debug(a.map(String).join(' ')), warn: (...a: unknown[]) => o.log.warn(a.map(String).join(' ')) },
    });
    this.confState = this.storage.initialState().confState;
    this.snapshotIndex = this.storage.snapshot().metadata.index;
    this.durableIndex = this.storage.lastIndex();
    this.applied = new IndexWaiter(o.applier.appliedIndex);
    this.reads = new ReadIndexBatcher({
      memberId: o.memberId,
      sendReadIndex: (ctx) => {
        this.raw.readIndex(ctx);
        this.schedule();
      },
      applied: this.applied,
      timeoutMs: this.reqTimeoutMs,
      retryMs: o.config.electionTimeout,
      localIndex: () => {
        const r = this.raw.raft;
        if (r.state !== StateType.Leader || !r.prs.isSingleton() || !r.prs.config.incoming.has(r.id)) return undefined;
        return Math.min(this.durableIndex, r.raftLog.committed);
      },
    });
  }

  /** First start of a member of a new cluster: the initial membership goes into the log. */
  bootstrap(voters: bigint[]): void {
    this.raw.bootstrap(voters);
    this.confState = { ...this.confState, voters: [...voters] };
  }

  isFresh(): boolean {
    return this.storage.isEmpty();
  }

  /**
   * A follower killed while installing a state snapshot: the WAL holds the raft
   * snapshot but LMDB is still behind it. The state is installed again (from
   * the received file kept under member/snap) before the loop starts, as
   * etcd's restart opens <index>.snap.db. Nothing to do on a normal start.
   */
  async recoverInterruptedInstall(): Promise<void> {
    const snap = this.storage.snapshot();
    if (this.isFresh() || this.o.applier.appliedIndex >= snap.metadata.index) return;
    this.o.log.warn('the last start stopped while installing a state snapshot: installing it again', { index: snap.metadata.index, applied: this.o.applier.appliedIndex });
    await this.o.installSnapshot(snap);
    this.confState = snap.metadata.confState;
    this.applied.notify(this.o.applier.appliedIndex);
  }

  start(): void {
    this.tickTimer = setInterval(() => {
      if (this.failed) return;
      this.raw.tick();
      this.schedule();
    }, this.o.config.heartbeatInterval);
    this.sweepTimer = setInterval(() => this.sweep(), 250);
    this.schedule();
    // a single voter need not wait an election timeout to lead; raft refuses to campaign while
    // committed conf changes (a fresh member's bootstrap entries) are unapplied, so it campaigns
    // again once they are, instead of waiting a (randomized, load-stretched) election timeout
    if (this.confState.voters.length === 1 && this.confState.voters[0] === this.o.memberId) {
      const lead = (): void => {
        if (this.stopped || this.isLeader()) return;
        this.raw.campaign();
        this.schedule();
      };
      const commit = this.raw.status().hardState.commit;
      if (commit > this.applied.index) void this.applied.wait(commit).then(lead, () => undefined);
      else lead();
    }
  }

  get term(): number {
    return this.storage.getHardState().term;
  }

  get committedIndex(): number {
    return this.storage.getHardState().commit;
  }

  get lastIndex(): number {
    return this.storage.lastIndex();
  }

  isLeader(): boolean {
    return this.raftState === StateType.Leader;
  }

  voters(): bigint[] {
    return [...this.confState.voters];
  }

  learners(): bigint[] {
    return [...this.confState.learners];
  }

  /** Called by the transport for every incoming message. */
  step(m: Message): void {
    if (this.stopped) return;
    try {
      this.raw.step(m);
    } catch (e) {
      this.o.log.debug('dropped raft message', { error: (e as Error).message });
      return;
    }
    this.schedule();
  }

  reportUnreachable(id: bigint): void {
    this.raw.reportUnreachable(id);
  }

  reportSnapshot(id: bigint, failed: boolean): void {
    this.raw.reportSnapshot(id, failed);
    this.schedule();
  }

  propose(data: Buffer, id: bigint): Promise<Applied> {
    if (this.stopped || this.failed) return Promise.reject(Errors.Stopped);
    const p = this.waiters.register(id, Date.now() + this.reqTimeoutMs, this.lead);
    // etcd's proposals_pending: from proposing until answered (applied, refused or timed out), i.e.
    // this member's registered waiters; kept equal wherever one leaves (no promise reaction per request)
    this.o.metrics.proposalsPending = this.waiters.size;
    this.tryPropose(data, id);
    return p;
  }

  private tryPropose(data: Buffer, id: bigint): void {
    try {
      this.raw.propose(data);
      this.schedule();
    } catch (e) {
      if (e instanceof ErrProposalDropped) this.blocked.push({ data, id });
      else if (this.waiters.fail(id, e as Error)) {
        this.o.metrics.proposalsFailed++;
        this.o.metrics.proposalsPending = this.waiters.size;
      }
    }
  }

  /** Proposes a membership change; resolves when it is applied. */
  proposeConfChange(cc: Omit<ConfChange, 'id'>): Promise<Applied> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    const ccId = ++this.ccSeq + Math.floor(Math.random() * 1e9) * 1000;
    const p = this.ccWaiters.register(ccId, Date.now() + this.reqTimeoutMs, this.lead);
    try {
      this.raw.proposeConfChange({ ...cc, id: ccId });
      this.schedule();
    } catch (e) {
      this.ccWaiters.fail(ccId, e instanceof ErrProposalDropped ? Errors.NoLeader : (e as Error));
    }
    return p;
  }

  /** ReadIndex: resolves once this member has applied everything committed when the read began. */
  readIndex(): Promise<void> {
    if (this.stopped) return Promise.reject(Errors.Stopped);
    return this.reads.read();
  }

  transferLeader(to: bigint): void {
    this.raw.transferLeader(to);
    this.schedule();
  }

  campaign(): void {
    this.raw.campaign();
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped || this.failed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runReady();
    });
  }

  private runReady(): void {
    if (this.loop) {
      this.again = true;
      return;
    }
    this.loop = this.readyLoop().finally(() => (this.loop = undefined));
  }

  private async readyLoop(): Promise<void> {
    // the previous Ready's committed entries, persisted and advanced but not yet applied: they are
    // applied while the next Ready's fsync runs (etcd applies in its own goroutine for the same reason)
    let deferred: (() => void) | undefined;
    try {
      do {
        this.again = false;
        while (!this.stopped && this.raw.hasReady()) {
          const prev = deferred;
          deferred = undefined;
          deferred = await this.handleReady(this.raw.ready(), prev);
        }
        if (deferred && !this.stopped) {
          const d = deferred;
          deferred = undefined;
          d();
        }
      } while ((this.again || this.raw.hasReady()) && !this.stopped);
    } catch (e) {
      if (e instanceof StorageError) {
        // the log could not be made durable: nothing may run another Ready (a proposal or a tick
        // would start one, whose committed entries include the ones that never reached the disk)
        this.failed = true;
        this.o.onFatal?.(e);
      } else this.o.log.error('raft loop failed', { error: (e as Error).stack ?? String(e) });
    }
  }

  /**
   * Persists rd, sends its messages, applies what it commits, advances. The
   * leader sends before its own fsync (its append counts in raft at once,
   * and nothing is applied or answered before the fsync: etcd-io/raft's
   * parallel leader write). `prevApply` (the previous Ready's entries) runs
   * while this Ready's fsync is in the thread pool, and so do this Ready's
   * committed entries that were already on disk before it. Returns the apply
   * of the rest when it may be deferred the same way: only ordinary entries
   * (a conf change or a snapshot is applied before advancing, as etcd waits).
   */
  private async handleReady(rd: Ready, prevApply?: () => void): Promise<(() => void) | undefined> {
    if (rd.softState) this.onSoftState(rd.softState);
    const snap = rd.snapshot && !isEmptySnap(rd.snapshot) ? rd.snapshot : undefined;
    // entries up to here are on this member's disk already (every earlier flush was awaited), and
    // none at or after rd.entries[0] is replaced by this Ready: committed ones among them need not
    // wait for this Ready's fsync
    // durableIndex, not the log's last index: entries of a Ready whose flush failed are in the
    // in-memory log but on no disk, and must never be applied (answered) from here
    const durable = snap ? 0 : Math.min(this.durableIndex, this.storage.lastIndex(), rd.entries.length ? rd.entries[0].index - 1 : Infinity);
    if (snap) this.storage.applySnapshot(snap);
    if (rd.entries.length) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    const sendEarly = this.raftState === StateType.Leader && !snap;
    if (sendEarly && rd.messages.length && this.transport) this.transport.send(rd.messages);
    // a follower's forwarded proposals state nothing about its log: they leave before its fsync
    // (etcd sends them after its Save; each waited up to one follower fsync for nothing)
    let later = rd.messages;
    if (!sendEarly && !snap && later.length && this.transport && later.some((m) => m.type === MessageType.MsgProp)) {
      this.transport.send(later.filter((m) => m.type === MessageType.MsgProp));
      later = later.filter((m) => m.type !== MessageType.MsgProp);
    }
    let flushing: Promise<void> | undefined;
    if (rd.mustSync || rd.entries.length || snap) {
      // with at most one request waiting the loop has nothing to overlap with the fsync: it runs on
      // this thread, sparing the thread pool's wakeup and then the loop's (measured: about half of a
      // 1-client put's fsync wait on a loaded 2-core machine); under load it stays in the pool. A
      // leader first lets its MsgApp leave (node:http2 writes on the loop's next check phase, before
      // the immediates queued from JavaScript), so the followers' fsyncs still run beside its own
      const inline = this.waiters.size <= 1 && later === rd.messages;
      if (inline && sendEarly && rd.messages.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const t0 = performance.now();
      flushing = this.storage.flush(inline).then(() => this.o.metrics.fsync.observe((performance.now() - t0) / 1000));
      // a failed flush is awaited (and thrown) below, after the previous apply
      flushing.catch(() => undefined);
    }
    prevApply?.();
    // committed entries already durable here are applied (and answered) while this fsync runs, as
    // etcd hands them to its apply goroutine before saving: with a quorum of followers, a commit
    // usually arrives in a Ready that also carries new entries, and would otherwise wait a whole
    // fsync of entries it does not depend on
    let committed = rd.committedEntries;
    if (committed.length) this.o.metrics.proposalsCommitted += committed.length;
    let early = 0;
    while (early < committed.length && committed[early].index <= durable && committed[early].type === EntryType.Normal) early++;
    if (early > 0) {
      for (let i = 0; i < early; i++) this.applyEntry(committed[i]);
      this.o.applier.persistAppliedIndex();
      this.applied.notify(this.o.applier.appliedIndex);
      committed = committed.slice(early);
    }
    if (flushing) {
      await flushing;
      if (this.stopped) return undefined;
      if (rd.entries.length) this.durableIndex = rd.entries[rd.entries.length - 1].index;
      else if (snap) this.durableIndex = snap.metadata.index;
    }
    if (!sendEarly && later.length && this.transport) this.transport.send(later);
    if (snap) {
      // the state machine arrived with the snapshot message (node.ts receiveSnapshot)
      await this.o.installSnapshot(snap);
      this.confState = snap.metadata.confState;
      this.snapshotIndex = snap.metadata.index;
      this.syncPeers();
      this.applied.notify(this.o.applier.appliedIndex);
    }
    let deferred: (() => void) | undefined;
    if (committed.length) {
      const apply = (): void => {
        for (const e of committed) this.applyEntry(e);
        this.o.applier.persistAppliedIndex();
        this.applied.notify(this.o.applier.appliedIndex);
      };
      if (!snap && committed.every((e) => e.type === EntryType.Normal)) {
        deferred = () => {
          apply();
          this.maybeSnapshot();
        };
      } else apply();
    }
    // a read state is answered once applied reaches its index, whenever that is
    for (const rs of rd.readStates) this.reads.onReadState(rs.requestCtx, rs.index);
    this.raw.advance(rd);
    if (!deferred) this.maybeSnapshot();
    return deferred;
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.raftState === StateType.Leader;
    this.raftState = ss.raftState;
    if (ss.lead !== this.lead) {
      const prev = this.lead;
      this.lead = ss.lead;
      if (ss.lead !== 0n) this.o.metrics.leaderChanges++;
      this.o.log.info(ss.lead === 0n ? 'raft lost leader' : 'raft elected leader', { lead: ss.lead, prev, term: this.term });
      if (ss.lead !== 0n && this.blocked.length) {
        const b = this.blocked;
        this.blocked = [];
        for (const x of b) this.tryPropose(x.data, x.id);
      }
    }
    const isLeader = ss.raftState === StateType.Leader;
    if (isLeader !== wasLeader || ss.lead !== 0n) this.o.onLeaderChange(this.lead, isLeader);
  }

  private applyEntry(e: Entry): void {
    if (e.type === EntryType.Normal) {
      const t0 = performance.now();
      const out = this.o.applier.apply(e.index, e.term, e.data);
      // etcd counts an apply over --experimental-warning-apply-duration (100 ms) in slow_apply_total.
      if (performance.now() - t0 > SLOW_APPLY_MS) this.o.metrics.slowApplies++;
      this.o.metrics.proposalsApplied++;
      if (out.id !== undefined) {
        if (out.error) this.waiters.fail(out.id, out.error);
        else this.waiters.trigger(out.id, { result: out.result, rev: out.rev });
        this.o.metrics.proposalsPending = this.waiters.size;
      }
      return;
    }
    const already = e.index <= this.o.applier.appliedIndex;
    let ccId = 0;
    let cc: ConfChange | ConfChangeV2;
    if (e.type === EntryType.ConfChange) {
      const v1 = decodeConfChange(e.data);
      ccId = v1.id ?? 0;
      cc = v1;
      if (!already) applyConfChangeToMembers(this.o.members, v1.type, v1.nodeId, v1.context);
    } else {
      const v2 = decodeConfChangeV2(e.data);
      cc = v2;
      if (!already) for (const c of v2.changes) applyConfChangeToMembers(this.o.members, c.type, c.nodeId, v2.context);
    }
    this.confState = this.raw.applyConfChange(cc);
    this.o.applier.skip(e.index);
    this.syncPeers();
    this.ccWaiters.trigger(ccId, { result: undefined, rev: 0 });
    if (!this.confState.voters.includes(this.o.memberId) && !this.confState.learners.includes(this.o.memberId) && this.o.members.isRemoved(this.o.memberId)) {
      this.o.log.warn('the member has been permanently removed from the cluster');
      this.o.onRemoved();
    }
  }

  /** Keeps the transport's peer list equal to the membership. */
  syncPeers(): void {
    const t = this.transport;
    if (!t) return;
    const ids = new Set<bigint>();
    for (const m of this.o.members.list()) {
      if (m.id === this.o.memberId) continue;
      ids.add(m.id);
      t.setPeer(m.id, m.peerURLs);
    }
    for (const id of [...this.confState.voters, ...this.confState.learners]) if (!ids.has(id) && id !== this.o.memberId) t.removePeer(id);
  }

  private maybeSnapshot(): void {
    const applied = this.o.applier.appliedIndex;
    if (this.snapshotting || applied - this.snapshotIndex <= this.o.config.snapshotCount) return;
    const lastInStorage = this.storage.lastIndex();
    const at = Math.min(applied, lastInStorage);
    if (at <= this.snapshotIndex) return;
    const confState = this.confState;
    const members = Buffer.from(JSON.stringify(this.o.members.list().map((m) => ({ ...m, id: m.id.toString(16) }))));
    // as etcd commits its backend before it saves a snapshot: a restart replays only the entries after
    // the snapshot record, so the state machine must be on disk up to its index first (durably: a power
    // cut may undo LMDB's last plain commit), else the member cannot start again
    this.snapshotting = true;
    void this.o.backend.commitDurable().then(
      () => {
        this.snapshotting = false;
        // a snapshot received from the leader meanwhile is newer
        if (this.stopped || at <= this.storage.snapshot().metadata.index) return;
        this.storage.createSnapshot(at, confState, members);
        this.snapshotIndex = at;
        const compactTo = at - CATCH_UP_ENTRIES;
        if (compactTo > this.storage.firstIndex()) this.storage.compact(compactTo);
        this.o.log.info('saved raft snapshot and compacted the log', { index: at, compacted: compactTo });
        this.schedule();
      },
      (e: unknown) => {
        this.snapshotting = false;
        if (e instanceof StorageError) this.o.onFatal?.(e);
      },
    );
  }

  /** Times out requests that could not be committed or read in time (etcd's ReqTimeout). */
  private sweep(): void {
    const now = Date.now();
    const timeoutFor = (lead: ProposedUnder): EtcdError => (lead !== this.lead ? Errors.TimeoutDueToLeaderFail : Errors.Timeout);
    const gone = this.waiters.expire(now, timeoutFor);
    this.o.metrics.proposalsFailed += gone.length;
    this.o.metrics.proposalsPending = this.waiters.size;
    if (gone.length && this.blocked.length) {
      const ids = new Set(gone);
      this.blocked = this.blocked.filter((b) => !ids.has(b.id));
    }
    this.ccWaiters.expire(now, timeoutFor);
    this.reads.sweep(now);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.waiters.failAll(Errors.Stopped);
    this.o.metrics.proposalsPending = 0;
    this.ccWaiters.failAll(Errors.Stopped);
    this.reads.stop(Errors.Stopped);
    this.applied.failAll(Errors.Stopped);
    this.blocked = [];
    if (this.transport) await this.transport.stop();
    // an in-flight Ready finishes its flush (and stops at the next step) before the logs close
    await this.loop;
    await this.storage.close();
  }
}
