// RawNode: the thread-less driver interface over Raft (etcd's RawNode). See index.ts for the
// persist -> send -> apply -> advance protocol.
import { asV2, confChangeEntryType, encodeConfChange, encodeConfChangeAny } from './conf-change';
import { ErrStepLocalMsg, ErrStepPeerNotFound } from './errors';
import { type Config, Raft } from './raft';
import { ProgressState } from './tracker';
import {
  type ConfChange,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Ready,
  type SoftState,
  StateType,
  hardStateEqual,
  isEmptyHardState,
  isLocalMsg,
  isResponseMsg,
  msg,
} from './types';

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
  probeSent: boolean;
  pendingSnapshot: number;
  inflight: number;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  /** Only on the leader. */
  progress?: Map<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
  config: ConfState;
}

export class RawNode {
  /** The state machine itself; exposed for tests and diagnostics, not for driving. */
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Bootstraps a brand-new cluster member the way etcd does (RawNode.Bootstrap): the initial
   * membership is written into the log as committed ConfChange entries at term 1, indexes 1..n,
   * so any member that later joins with an empty log rebuilds the configuration by replaying it.
   * Call once, on a fresh node whose Storage is empty; the first Ready carries the entries and
   * HardState to persist and hands the conf changes out as committed entries (applying them
   * again is harmless). After a restart the node recovers from Storage: do not bootstrap again.
   */
  bootstrap(voters: NodeId[], learners: NodeId[] = []): void {
    if (voters.length === 0) throw new Error('must provide at least one voter to Bootstrap');
    const storage = this.raft.raftLog.storage;
    if (storage.lastIndex() !== 0 || this.raft.raftLog.lastIndex() !== 0) throw new Error("can't bootstrap a nonempty Storage");
    // Nothing is persisted yet: make the first Ready carry the HardState.
    this.prevHardState = { term: 0, vote: 0n, commit: 0 };
    this.raft.becomeFollower(1, 0n);
    const changes = [
      ...voters.map((nodeId) => ({ type: ConfChangeType.ConfChangeAddNode, nodeId })),
      ...learners.map((nodeId) => ({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId })),
    ];
    const ents = changes.map((cc, i) => ({ term: 1, index: i + 1, type: EntryType.ConfChange, data: encodeConfChange(cc) }));
    this.raft.raftLog.append(ents);
    this.raft.raftLog.committed = ents.length;
    for (const cc of changes) this.raft.applyConfChange(asV2(cc));
  }

  /** Advances the logical clock by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Like tick() but never fires an election or heartbeat; for quiesced groups. */
  tickQuiesced(): void {
    this.raft.electionElapsed++;
  }

  /** Starts an election now (pre-vote first if configured). */
  campaign(): void {
    this.raft.step(msg({ type: MessageType.MsgHup }));
  }

  /** Proposes data to be appended; throws ErrProposalDropped when it cannot be. */
  propose(data: Uint8Array): void {
    this.raft.step(msg({ type: MessageType.MsgProp, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] }));
  }

  /**
   * Proposes a membership change. A ConfChange is a single-node change; a ConfChangeV2 with
   * several changes (or a joint transition) goes through joint consensus. The change takes
   * effect when the committed entry is passed to applyConfChange().
   */
  proposeConfChange(cc: ConfChange | ConfChangeV2): void {
    const data = encodeConfChangeAny(cc);
    this.raft.step(msg({ type: MessageType.MsgProp, from: this.raft.id, entries: [{ term: 0, index: 0, type: confChangeEntryType(cc), data }] }));
  }

  /** Applies a committed conf change entry to the configuration; returns the new ConfState. */
  applyConfChange(cc: ConfChange | ConfChangeV2): ConfState {
    return this.raft.applyConfChange(asV2(cc));
  }

  /** Feeds a message received from a peer. Local message types are refused. */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw new ErrStepLocalMsg();
    // Responses from peers no longer in the config are meaningless to us.
    if (!this.raft.prs.progress.has(m.from) && isResponseMsg(m.type)) throw new ErrStepPeerNotFound();
    this.raft.step(m);
  }

  /**
   * Requests a linearizable read point. The answer arrives as a ReadState with the same ctx in
   * a later Ready; reads may be served once applied >= its index. Nothing arrives if leadership
   * cannot be confirmed (the caller retries with a timeout).
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(msg({ type: MessageType.MsgReadIndex, entries: [{ term: 0, index: 0, type: EntryType.Normal, data: ctx }] }));
  }

  /** Asks the leader to hand leadership to `to` (forwarded if we are a follower). */
  transferLeader(to: NodeId): void {
    this.raft.step(msg({ type: MessageType.MsgTransferLeader, from: to }));
  }

  /** Tells the leader a message to id could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(msg({ type: MessageType.MsgUnreachable, from: id }));
  }

  /** Tells the leader whether a MsgSnap to id was delivered. */
  reportSnapshot(id: NodeId, failed: boolean): void {
    this.raft.step(msg({ type: MessageType.MsgSnapStatus, from: id, reject: failed }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstable.entries.length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length > 0;
  }

  /**
   * Collects everything that changed since the last Ready. The caller must handle it completely
   * and call advance(rd) before asking for the next one.
   */
  ready(): Ready {
    const r = this.raft;
    const hs = r.hardState();
    const ss = r.softState();
    const rd: Ready = {
      entries: r.raftLog.unstableEntries(),
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    if (!hardStateEqual(hs, this.prevHardState)) rd.hardState = hs;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    // Only a new term, vote or new entries need fsync; a commit index can be recovered.
    rd.mustSync = rd.entries.length > 0 || hs.vote !== this.prevHardState.vote || hs.term !== this.prevHardState.term;
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** Acknowledges that rd was persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd.hardState && !isEmptyHardState(rd.hardState)) this.prevHardState = rd.hardState;
    let cursor = 0;
    if (rd.committedEntries.length > 0) cursor = rd.committedEntries[rd.committedEntries.length - 1].index;
    else if (rd.snapshot && rd.snapshot.metadata.index > 0) cursor = rd.snapshot.metadata.index;
    const lastEntry = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1] : undefined;
    this.raft.advance(cursor, rd.committedEntries, lastEntry, rd.snapshot?.metadata.index ?? 0);
  }

  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: r.prs.confState(),
    };
    if (r.state === StateType.Leader) {
      s.progress = new Map();
      for (const [id, pr] of r.prs.progress) {
        s.progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          probeSent: pr.probeSent,
          pendingSnapshot: pr.pendingSnapshot,
          inflight: pr.inflights.count(),
        });
      }
    }
    return s;
  }
}
