// The Raft state machine proper: one node's view, advanced only by tick() and step(). Its
// outputs (messages, log changes, read states) are collected for RawNode's Ready.
import { decodeConfChangeEntry, encodeConfChangeV2, enterJoint, leaveJoint } from './conf-change';
import { ErrCompacted, ErrInvalidConfig, ErrProposalDropped, ErrSnapshotTemporarilyUnavailable, invariant } from './errors';
import { RaftLog } from './log';
import { ReadOnly, keyToBytes } from './read-only';
import type { Storage } from './storage';
import { type ChangeResult, Changer, ProgressState, ProgressTracker, VoteResult, configString, jointVoteResult, restoreConfState } from './tracker';
import {
  type ConfChangeV2,
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type RaftLogger,
  type ReadOnlyOption,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  bytesEqual,
  msg,
  voteRespMsgType,
} from './types';

export interface Config {
  /** This node's id; must not be 0. */
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized up to 2x). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index on restart, so already-applied entries are not handed out again. */
  applied?: number;
  /** Byte limit of one MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte limit of committedEntries in one Ready. Default maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /** In-flight MsgApps per follower in Replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Byte budget of proposed-but-uncommitted entries on the leader. Default unlimited. */
  maxUncommittedEntriesSize?: number;
  /** Leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum?: boolean;
  /** Run a pre-vote round first so a partitioned node cannot disrupt the cluster by term inflation. */
  preVote?: boolean;
  /** 'lease-based' trusts the clock instead of a heartbeat round; needs checkQuorum. */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Source of randomness for election timeouts: returns [0, 1). */
  random: () => number;
  logger?: RaftLogger;
}

type CampaignType = 'pre-election' | 'election' | 'transfer';
const CAMPAIGN_TRANSFER = new Uint8Array([...'CampaignTransfer'].map((c) => c.charCodeAt(0)));

/** Caps on proposals held for a leader (see Raft.held): a transfer or election lasts an election timeout at most. */
const MAX_HELD_PROPOSALS = 4096;
const MAX_HELD_BYTES = 16 * 1024 * 1024;

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  prs: ProgressTracker;
  state = StateType.Follower;
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = NONE;
  /** Target of an in-progress leadership transfer, or NONE. */
  leadTransferee: NodeId = NONE;
  /** Index of the latest conf change in the leader's log; only one may be unapplied at a time. */
  pendingConfIndex = 0;
  /** Payload bytes appended by this leader but not yet committed (for maxUncommittedSize). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  /**
   * Proposals other members forwarded to us that we could not place when they came: a leadership
   * transfer was in progress, or we knew no leader (the election it ends in). etcd-io/raft drops
   * them and the proposer's client waits out its request timeout, so a planned leader move costs
   * every write forwarded in that window. Held for at most an election timeout and placed as soon
   * as we can: appended once we lead with no transfer pending, forwarded once we follow a leader.
   */
  private held: Message[] = [];
  private heldBytes = 0;
  private heldTicks = 0;
  readonly random: () => number;
  readonly logger: RaftLogger;

  constructor(c: Config) {
    if (c.id === NONE) throw new ErrInvalidConfig('cannot use none as id');
    if (c.heartbeatTick <= 0) throw new ErrInvalidConfig('heartbeat tick must be greater than 0');
    if (c.electionTick <= c.heartbeatTick) throw new ErrInvalidConfig('election tick must be greater than heartbeat tick');
    const maxInflight = c.maxInflightMsgs ?? 256;
    if (maxInflight <= 0) throw new ErrInvalidConfig('max inflight messages must be greater than 0');
    const readOnlyOption = c.readOnlyOption ?? 'safe';
    if (readOnlyOption === 'lease-based' && !c.checkQuorum) throw new ErrInvalidConfig('CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased');
    this.id = c.id;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize && c.maxUncommittedEntriesSize > 0 ? c.maxUncommittedEntriesSize : Number.POSITIVE_INFINITY;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? this.maxMsgSize);
    this.prs = new ProgressTracker(maxInflight);
    this.readOnly = new ReadOnly(readOnlyOption);
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.random = c.random;
    this.logger = c.logger ?? silentLogger;

    const { hardState, confState } = c.storage.initialState();
    const r = restoreConfState(this.prs, this.raftLog.lastIndex(), confState);
    this.switchToConfig(r);
    if (!(hardState.term === 0 && hardState.vote === NONE && hardState.commit === 0)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
    this.logger.info(`newRaft ${this.id} [peers: ${configString(this.prs.config)}, term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`);
  }

  hasLeader(): boolean {
    return this.lead !== NONE;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  private loadState(hs: HardState): void {
    invariant(hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(), () => `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // --- sending ---

  private send(m: Message): void {
    m.from = this.id;
    if (m.type === MessageType.MsgVote || m.type === MessageType.MsgVoteResp || m.type === MessageType.MsgPreVote || m.type === MessageType.MsgPreVoteResp) {
      // Vote messages carry the term they are about (a pre-vote's future term), set by the caller.
      invariant(m.term !== 0, () => `term should be set when sending ${MessageType[m.type]}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${MessageType[m.type]} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader stay term-less, like local messages.
      if (m.type !== MessageType.MsgProp && m.type !== MessageType.MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends entries (or a snapshot) to `to` unless its progress is paused; false if nothing was sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const term = this.raftLog.termOrError(pr.next - 1);
    let ents: Entry[] | undefined;
    let entsErr = false;
    try {
      ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (!(e instanceof ErrCompacted)) throw e;
      entsErr = true;
    }
    if ((ents === undefined || ents.length === 0) && !sendIfEmpty) return false;

    if (typeof term !== 'number' || entsErr || ents === undefined) {
      // The follower needs entries we no longer have: send the snapshot instead.
      if (!pr.recentActive) {
        this.logger.debug(`ignore sending snapshot to ${to} since it is not recently active`);
        return false;
      }
      let snapshot: Snapshot;
      try {
        snapshot = this.raftLog.snapshot();
      } catch (e) {
        if (e instanceof ErrSnapshotTemporarilyUnavailable) {
          this.logger.debug(`${this.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`);
          return false;
        }
        throw e;
      }
      invariant(snapshot.metadata.index !== 0, 'need non-empty snapshot');
      pr.becomeSnapshot(snapshot.metadata.index);
      this.send(msg({ type: MessageType.MsgSnap, to, snapshot }));
      return true;
    }

    const m = msg({ type: MessageType.MsgApp, to, index: pr.next - 1, logTerm: term, entries: ents, commit: this.raftLog.committed });
    if (ents.length > 0) {
      switch (pr.state) {
        case ProgressState.Replicate: {
          const last = ents[ents.length - 1].index;
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
          break;
        }
        case ProgressState.Probe:
          pr.probeSent = true;
          break;
        default:
          invariant(false, () => `${this.id} is sending append in unhandled state ${ProgressState[pr.state]}`);
      }
    }
    this.send(m);
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    // Never tell a follower to commit past what it is known to have: it might not have it.
    const pr = this.prs.progress.get(to);
    const commit = Math.min(pr ? pr.match : 0, this.raftLog.committed);
    this.send(msg({ type: MessageType.MsgHeartbeat, to, commit, context: ctx }));
  }

  bcastAppend(): void {
    this.prs.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(): void {
    const last = this.readOnly.lastPendingRequestCtx();
    this.bcastHeartbeatWithCtx(last === undefined ? undefined : keyToBytes(last));
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.prs.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  /** Applies a Ready's effects: what was applied and persisted. */
  advance(appliedCursor: number, committedEntries: Entry[], lastEntry: Entry | undefined, snapshotIndex: number): void {
    if (appliedCursor > 0) this.raftLog.appliedTo(appliedCursor);
    // Checked on every advance, not only when something was applied: a leave that was dropped
    // (transfer in flight) must be retried even when the cluster is idle.
    if (this.prs.config.autoLeave && this.raftLog.applied >= this.pendingConfIndex && this.state === StateType.Leader) {
      // The joint config we are in is applied and asks to be left automatically: propose it.
      const m = msg({ type: MessageType.MsgProp, from: this.id, entries: [{ term: 0, index: 0, type: EntryType.ConfChangeV2, data: encodeConfChangeV2({ transition: 0, changes: [] }) }] });
      try {
        this.step(m);
        this.logger.info(`initiating automatic transition out of joint configuration ${configString(this.prs.config)}`);
      } catch (e) {
        if (!(e instanceof ErrProposalDropped)) throw e;
      }
    }
    this.reduceUncommittedSize(committedEntries);
    if (lastEntry) this.raftLog.stableTo(lastEntry.index, lastEntry.term);
    if (snapshotIndex > 0) this.raftLog.stableSnapTo(snapshotIndex);
  }

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.prs.committed(), this.term);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const last = this.raftLog.lastIndex();
    this.prs.visit((id, pr) => {
      const isLearner = pr.isLearner;
      pr.match = 0;
      pr.next = last + 1;
      pr.state = ProgressState.Probe;
      pr.pendingSnapshot = 0;
      pr.recentActive = false;
      pr.probeSent = false;
      pr.inflights.reset();
      pr.isLearner = isLearner;
      if (id === this.id) pr.match = last;
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  private appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    const ents = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    if (!this.increaseUncommittedSize(ents)) {
      this.logger.debug(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    li = this.raftLog.append(ents);
    this.prs.progress.get(this.id)?.maybeUpdate(li);
    // The caller broadcasts regardless; committing here covers the single-voter cluster.
    this.maybeCommit();
    return true;
  }

  // --- ticking ---

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
    if (this.held.length) {
      this.releaseHeld();
      if (this.held.length && ++this.heldTicks >= this.electionTimeout) {
        this.logger.info(`${this.id} dropped ${this.held.length} forwarded proposal(s) held for an election timeout without a leader to take them`);
        this.held = [];
        this.heldBytes = 0;
      }
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(msg({ type: MessageType.MsgHup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(msg({ type: MessageType.MsgCheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(msg({ type: MessageType.MsgBeat, from: this.id }));
    }
  }

  // --- state transitions ---

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.debug(`${this.id} became follower at term ${this.term}`);
  }

  private becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.debug(`${this.id} became candidate at term ${this.term}`);
  }

  private becomePreCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // Neither term nor vote change: a pre-vote must leave no trace if it fails.
    this.prs.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.debug(`${this.id} became pre-candidate at term ${this.term}`);
  }

  private becomeLeader(): void {
    invariant(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    this.prs.progress.get(this.id)?.becomeReplicate();
    // Conservatively treat everything in the log as possibly holding a conf change.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry lets this term commit, which in turn commits the older entries.
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }]);
    invariant(ok, 'empty entry was dropped');
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private promotable(): boolean {
    const pr = this.prs.progress.get(this.id);
    return pr !== undefined && !pr.isLearner;
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
  }

  private campaign(t: CampaignType): void {
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable; campaign() should have been called`);
      return;
    }
    let term: number;
    let voteMsg: MessageType;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // Pre-votes ask about the term we would campaign in, without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, voteRespMsgType(voteMsg), true).result === VoteResult.Won) {
      // Single-voter config: we won at once.
      if (t === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of this.prs.voterNodes()) {
      if (id === this.id) continue;
      this.send(
        msg({
          type: voteMsg,
          to: id,
          term,
          index: this.raftLog.lastIndex(),
          logTerm: this.raftLog.lastTerm(),
          context: t === 'transfer' ? CAMPAIGN_TRANSFER : undefined,
        }),
      );
    }
  }

  private poll(id: NodeId, t: MessageType, v: boolean): { granted: number; rejected: number; result: VoteResult } {
    if (v) this.logger.debug(`${this.id} received ${MessageType[t]} from ${id} at term ${this.term}`);
    else this.logger.debug(`${this.id} received ${MessageType[t]} rejection from ${id} at term ${this.term}`);
    this.prs.recordVote(id, v);
    return this.prs.tallyVotes();
  }

  // --- stepping ---

  step(m: Message): void {
    if (m.term === 0) {
      // local message (or a forwarded proposal/read)
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a live leader within the minimum election timeout: ignore the vote so a
          // partitioned node rejoining cannot depose it.
          this.logger.info(`${this.id} [term: ${this.term}] ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: lease is not expired`);
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries our future term; the election proper moves us there.
      } else {
        this.logger.info(`${this.id} [term: ${this.term}] received a ${MessageType[m.type]} message with higher term from ${m.from} [term: ${m.term}]`);
        if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) this.becomeFollower(m.term, m.from);
        else this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader (e.g. healed from a partition) would otherwise never learn the new term,
        // since with pre-vote/check-quorum our elections do not reach it. This response does.
        this.send(msg({ type: MessageType.MsgAppResp, to: m.from }));
      } else if (m.type === MessageType.MsgPreVote) {
        // Reject explicitly so a pre-candidate with a stale log does not wait forever.
        this.send(msg({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // Respond with the message's term: for a pre-vote that is a future term we must not
          // adopt, and the candidate ignores responses from other terms.
          this.send(msg({ type: voteRespMsgType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.MsgVote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(msg({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        break;
    }
    switch (this.state) {
      case StateType.Leader:
        this.stepLeader(m);
        break;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        break;
      case StateType.Follower:
        this.stepFollower(m);
        break;
    }
    if (this.held.length) this.releaseHeld();
  }

  /** Holds a proposal forwarded by another member (see `held`); false when it is local or over the cap. */
  private hold(m: Message): boolean {
    if (m.from === this.id || m.from === NONE) return false;
    let bytes = 0;
    for (const e of m.entries) bytes += e.data.length;
    if (this.held.length >= MAX_HELD_PROPOSALS || this.heldBytes + bytes > MAX_HELD_BYTES) return false;
    if (!this.held.length) this.heldTicks = 0;
    this.held.push(m);
    this.heldBytes += bytes;
    return true;
  }

  /** Places held proposals once we can: as a leader with no transfer pending, or a follower with a leader. */
  private releaseHeld(): void {
    const canPlace = this.state === StateType.Leader ? this.leadTransferee === NONE : this.state === StateType.Follower && this.lead !== NONE;
    if (!canPlace) return;
    const ms = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const m of ms) {
      try {
        this.step(m);
      } catch (e) {
        if (!(e instanceof ErrProposalDropped)) throw e;
        this.logger.debug(`${this.id} dropped a held proposal from ${m.from}: ${e.message}`);
      }
    }
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    // A conf change committed but not applied may change whether we may campaign at all.
    if (this.raftLog.committed > this.raftLog.applied) {
      // A snapshot restored but not yet handed out leaves applied below the first index; its
      // configuration is already in effect, so only entries after it matter.
      const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
      const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, Number.POSITIVE_INFINITY);
      if (ents.some((e) => e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2)) {
        this.logger.warn(`${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`);
        return;
      }
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return;
      case MessageType.MsgCheckQuorum: {
        const self = this.prs.progress.get(this.id);
        if (self) self.recentActive = true;
        if (!this.prs.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        // Start the next round: everyone must prove liveness again.
        this.prs.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      }
      case MessageType.MsgProp: {
        invariant(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
        if (!this.prs.progress.has(this.id)) throw new ErrProposalDropped('raft proposal dropped: leader was removed from the configuration');
        if (this.leadTransferee !== NONE) {
          if (this.hold(m)) return;
          throw new ErrProposalDropped(`raft proposal dropped: transfer of leadership to ${this.leadTransferee} in progress`);
        }
        const entries = m.entries.map((e) => ({ ...e }));
        for (let i = 0; i < entries.length; i++) {
          const cc = decodeConfChangeEntry(entries[i].type, entries[i].data);
          if (!cc) continue;
          const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
          const alreadyJoint = this.prs.isJoint();
          const wantsLeaveJoint = cc.changes.length === 0;
          let refused = '';
          if (alreadyPending) refused = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
          else if (alreadyJoint && !wantsLeaveJoint) refused = 'must transition out of joint config first';
          else if (!alreadyJoint && wantsLeaveJoint) refused = 'not in joint state; refusing empty conf change';
          if (refused) {
            // Keep the slot (indexes were promised to nobody, but the batch stays intact) as a no-op.
            this.logger.info(`${this.id} ignoring conf change ${JSON.stringify(cc, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}: ${refused}`);
            entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
          } else {
            this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
          }
        }
        if (!this.appendEntry(entries)) throw new ErrProposalDropped();
        this.bcastAppend();
        return;
      }
      case MessageType.MsgReadIndex: {
        if (this.prs.isSingleton()) {
          const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
          if (resp) this.send(resp);
          return;
        }
        // Until an entry of our term commits we may not know the latest commit index.
        if (!this.committedEntryInCurrentTerm()) return;
        if (this.readOnly.option === 'safe') {
          this.readOnly.addRequest(this.raftLog.committed, m);
          this.readOnly.recvAck(this.id, m.entries[0].data);
          this.bcastHeartbeatWithCtx(m.entries[0].data);
        } else {
          const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
          if (resp) this.send(resp);
        }
        return;
      }
      default:
        break;
    }

    const pr = this.prs.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.MsgAppResp: {
        pr.recentActive = true;
        if (m.reject) {
          this.logger.debug(`${this.id} received MsgAppResp(MsgApp was rejected, lastindex: ${m.rejectHint}) from ${m.from} for index ${m.index}`);
          if (pr.maybeDecrTo(m.index, m.rejectHint)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
        } else {
          const oldPaused = pr.isPaused();
          if (pr.maybeUpdate(m.index)) {
            if (pr.state === ProgressState.Probe) {
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
              // The follower caught up past the snapshot through appends: resume normal replication.
              pr.becomeProbe();
              pr.becomeReplicate();
            } else if (pr.state === ProgressState.Replicate) {
              pr.inflights.freeLE(m.index);
            }
            if (this.maybeCommit()) this.bcastAppend();
            else if (oldPaused) this.sendAppend(m.from);
            // The window may have opened up for several size-limited messages at once.
            while (this.maybeSendAppend(m.from, false)) {
              // keep sending
            }
            if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
              this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
              this.sendTimeoutNow(m.from);
            }
          }
        }
        return;
      }
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        // A full window with a responsive follower most likely lost a message: free a slot.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
        if (this.readOnly.option !== 'safe' || !m.context || m.context.length === 0) return;
        if (jointVoteResult(this.prs.config, this.readOnly.recvAck(m.from, m.context)) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m)) {
          const resp = this.responseToReadIndexReq(rs.req, rs.index);
          if (resp) this.send(resp);
        }
        return;
      }
      case MessageType.MsgSnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for the follower's answer (or a heartbeat interval after a failure) before probing.
        pr.probeSent = true;
        return;
      case MessageType.MsgUnreachable:
        // An optimistic stream to an unreachable peer has most likely lost messages.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) {
          this.logger.debug(`${this.id} is learner. Ignored transferring leadership`);
          return;
        }
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return;
          this.abortLeaderTransfer();
        }
        if (transferee === this.id) return;
        // The transfer must finish within an election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteRespType = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.hold(m)) return;
        throw new ErrProposalDropped('raft proposal dropped: no leader');
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteRespType: {
        const { result } = this.poll(m.from, m.type, !m.reject);
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // A pre-vote response carries a future term; stay in ours.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.lead === NONE) {
          if (this.hold(m)) return;
          throw new ErrProposalDropped('raft proposal dropped: no leader');
        }
        if (this.disableProposalForwarding) throw new ErrProposalDropped('raft proposal dropped: forwarding disabled');
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MsgTransferLeader:
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MsgTimeoutNow:
        if (this.promotable()) {
          this.logger.info(`${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership.`);
          // Transfers skip pre-vote: the leader asked for this election.
          this.campaign('transfer');
        }
        return;
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MessageType.MsgReadIndexResp:
        if (m.entries.length !== 1) return;
        this.readStates.push({ index: m.index, requestCtx: m.entries[0].data });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(msg({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const last = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(msg({ type: MessageType.MsgAppResp, to: m.from, index: last }));
    } else {
      this.logger.debug(`${this.id} rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`);
      this.send(msg({ type: MessageType.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: this.raftLog.lastIndex() }));
    }
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(msg({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) return;
    if (this.restore(s)) {
      this.logger.info(`${this.id} restored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
      this.send(msg({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.logger.info(`${this.id} ignored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
      this.send(msg({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader; false if it is stale or already covered by our log. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a follower of the current term receives snapshots; anything else is a bug upstream.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    const found = [cs.voters, cs.learners, cs.votersOutgoing].some((set) => set.includes(this.id));
    if (!found) {
      this.logger.warn(`${this.id} attempted to restore snapshot but it is not in the ConfState; should never happen`);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the snapshot's last entry: just fast-forward the commit index.
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    this.prs = new ProgressTracker(this.prs.maxInflight);
    this.switchToConfig(restoreConfState(this.prs, this.raftLog.lastIndex(), cs));
    const pr = this.prs.progress.get(this.id);
    if (pr) pr.maybeUpdate(pr.next - 1);
    return true;
  }

  private committedEntryInCurrentTerm(): boolean {
    const t = this.raftLog.termOrError(this.raftLog.committed);
    return (typeof t === 'number' ? t : 0) === this.term;
  }

  private responseToReadIndexReq(req: Message, readIndex: number): Message | undefined {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0].data });
      return undefined;
    }
    return msg({ type: MessageType.MsgReadIndexResp, to: req.from, index: readIndex, entries: req.entries });
  }

  // --- membership ---

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.prs, this.raftLog.lastIndex());
    let r: ChangeResult;
    if (leaveJoint(cc)) {
      r = changer.leaveJoint();
    } else {
      const j = enterJoint(cc);
      r = j.ok ? changer.enterJoint(j.autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(r);
  }

  /** Installs a new configuration and reacts to it (commit, replication, stepping down). */
  switchToConfig(r: ChangeResult): ConfState {
    this.prs.config = r.config;
    this.prs.progress = r.progress;
    this.logger.info(`${this.id} switched to configuration ${configString(this.prs.config)}`);
    const cs = this.prs.confState();
    const pr = this.prs.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === StateType.Leader) {
      // Removed or demoted leader: propagate the commit index so the change takes effect
      // everywhere, hand leadership to the most caught-up voter, and step down. Staying on would
      // let a node outside the config keep driving it.
      this.bcastAppend();
      let best: NodeId = NONE;
      let bestMatch = -1;
      this.prs.visit((id, p) => {
        if (!p.isLearner && this.prs.config.incoming.has(id) && p.match > bestMatch) {
          best = id;
          bestMatch = p.match;
        }
      });
      if (best !== NONE && bestMatch === this.raftLog.lastIndex()) this.sendTimeoutNow(best);
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    // The quorum changed: something may have become committed, and new peers need probing.
    if (this.maybeCommit()) this.bcastAppend();
    else this.prs.visit((id) => {
      if (id !== this.id) this.maybeSendAppend(id, false);
    });
    if (this.leadTransferee !== NONE && !this.prs.progress.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(msg({ type: MessageType.MsgTimeoutNow, to }));
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    let s = 0;
    for (const e of ents) s += e.data.length;
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  private reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSize === 0) return;
    let s = 0;
    for (const e of ents) s += e.data.length;
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }
}

