// Replication progress per peer, flow control, quorum arithmetic (majority and joint), and the
// configuration changer that turns ConfChanges into a new tracker configuration.
import { invariant } from './errors';
import { type ConfChangeSingle, ConfChangeType, type ConfState, type NodeId, sortedIds } from './types';

export enum ProgressState {
  /** Unknown match: send one append at a time and wait for the answer. */
  Probe = 0,
  /** Match known: stream appends optimistically, bounded by the inflight window. */
  Replicate = 1,
  /** The follower needs a snapshot; nothing else is sent until it reports back. */
  Snapshot = 2,
}

/** A bounded window of the last index of each in-flight MsgApp. */
export class Inflights {
  private buf: number[] = [];
  constructor(readonly size: number) {}
  add(index: number): void {
    invariant(!this.full(), 'cannot add into a full inflights');
    this.buf.push(index);
  }
  /** Frees every in-flight message with last index <= to (acknowledged). */
  freeLE(to: number): void {
    if (this.buf.length === 0 || to < this.buf[0]) return;
    let i = 0;
    while (i < this.buf.length && this.buf[i] <= to) i++;
    this.buf = this.buf.slice(i);
  }
  freeFirstOne(): void {
    if (this.buf.length > 0) this.buf = this.buf.slice(1);
  }
  full(): boolean {
    return this.buf.length >= this.size;
  }
  count(): number {
    return this.buf.length;
  }
  reset(): void {
    this.buf = [];
  }
}

export class Progress {
  match = 0;
  next = 1;
  state = ProgressState.Probe;
  /** Index of the snapshot being sent while in Snapshot state. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round (or freshly added). */
  recentActive = false;
  /** In Probe state: an append is outstanding, so stay quiet until it is answered. */
  probeSent = false;
  inflights: Inflights;
  isLearner = false;

  constructor(maxInflight: number) {
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  probeAcked(): void {
    this.probeSent = false;
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // After a snapshot, the follower has at least the snapshot's index.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledgement up to n; returns whether match moved (stale acks are ignored). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeAcked();
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * Handles a rejected append at `rejected` (the follower's last index is `last`). Returns false
   * for stale rejections that do not concern the current probe.
   */
  maybeDecrTo(rejected: number, last: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, last + 1), 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }

  clone(): Progress {
    const p = new Progress(this.inflights.size);
    p.match = this.match;
    p.next = this.next;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.probeSent = this.probeSent;
    p.isLearner = this.isLearner;
    return p;
  }
}

// --- quorum ---

export enum VoteResult {
  Pending = 1,
  Lost = 2,
  Won = 3,
}

/** Largest index acknowledged by a majority of ids; an empty config commits everything. */
export function majorityCommitted(ids: ReadonlySet<NodeId>, acked: (id: NodeId) => number | undefined): number {
  const n = ids.size;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  const srt: number[] = [];
  for (const id of ids) srt.push(acked(id) ?? 0);
  srt.sort((a, b) => a - b);
  return srt[n - (Math.floor(n / 2) + 1)];
}

export function majorityVoteResult(ids: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  // An empty config wins every vote so that joint configs reduce to their non-empty half.
  if (ids.size === 0) return VoteResult.Won;
  let yes = 0;
  let missing = 0;
  for (const id of ids) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = Math.floor(ids.size / 2) + 1;
  if (yes >= q) return VoteResult.Won;
  if (yes + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** A configuration: incoming voters and, while joint, the outgoing voters. */
export interface TrackerConfig {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  /** Learners-to-be: voters in outgoing being demoted, promoted to learners on leaving joint. */
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { incoming: new Set(), outgoing: new Set(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

function cloneConfig(c: TrackerConfig): TrackerConfig {
  return {
    incoming: new Set(c.incoming),
    outgoing: new Set(c.outgoing),
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function jointCommitted(c: TrackerConfig, acked: (id: NodeId) => number | undefined): number {
  return Math.min(majorityCommitted(c.incoming, acked), majorityCommitted(c.outgoing, acked));
}

export function jointVoteResult(c: TrackerConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const r1 = majorityVoteResult(c.incoming, votes);
  const r2 = majorityVoteResult(c.outgoing, votes);
  if (r1 === r2) return r1;
  if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}

export function configString(c: TrackerConfig): string {
  const s = (ids: Set<NodeId>) => sortedIds(ids).join(' ');
  let out = `voters=(${s(c.incoming)})`;
  if (c.outgoing.size > 0) out += `&&(${s(c.outgoing)})`;
  if (c.learners.size > 0) out += ` learners=(${s(c.learners)})`;
  if (c.learnersNext.size > 0) out += ` learners_next=(${s(c.learnersNext)})`;
  if (c.autoLeave) out += ' autoleave';
  return out;
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return {
      voters: sortedIds(this.config.incoming),
      votersOutgoing: sortedIds(this.config.outgoing),
      learners: sortedIds(this.config.learners),
      learnersNext: sortedIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  isSingleton(): boolean {
    return this.config.incoming.size === 1 && this.config.outgoing.size === 0;
  }

  isJoint(): boolean {
    return this.config.outgoing.size > 0;
  }

  committed(): number {
    return jointCommitted(this.config, (id) => this.progress.get(id)?.match);
  }

  /** Progress entries in id order, so message order is deterministic. */
  visit(fn: (id: NodeId, pr: Progress) => void): void {
    for (const id of sortedIds(this.progress.keys())) {
      const pr = this.progress.get(id);
      if (pr) fn(id, pr);
    }
  }

  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return jointVoteResult(this.config, votes) === VoteResult.Won;
  }

  voterNodes(): NodeId[] {
    return sortedIds(new Set([...this.config.incoming, ...this.config.outgoing]));
  }

  learnerNodes(): NodeId[] {
    return sortedIds(this.config.learners);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config, this.votes) };
  }
}

// --- configuration changes ---

export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

/**
 * Computes new configurations from ConfChanges without touching the tracker it reads from, so a
 * rejected change leaves raft untouched. lastIndex seeds Next for newly added peers.
 */
export class Changer {
  constructor(
    private readonly tracker: ProgressTracker,
    private readonly lastIndex: number,
  ) {}

  enterJoint(autoLeave: boolean, ccs: ConfChangeSingle[]): ChangeResult {
    const r = this.checkAndCopy();
    if (r.config.outgoing.size > 0) throw new Error('config is already joint');
    if (r.config.incoming.size === 0) throw new Error("can't make a zero-voter config joint");
    r.config.outgoing = new Set(r.config.incoming);
    this.apply(r, ccs);
    r.config.autoLeave = autoLeave;
    return checkAndReturn(r);
  }

  leaveJoint(): ChangeResult {
    const r = this.checkAndCopy();
    if (r.config.outgoing.size === 0) throw new Error("can't leave a non-joint config");
    for (const id of r.config.learnersNext) {
      r.config.learners.add(id);
      const pr = r.progress.get(id);
      invariant(pr !== undefined, `learner-next ${id} without progress`);
      pr.isLearner = true;
    }
    r.config.learnersNext = new Set();
    for (const id of r.config.outgoing) {
      if (!r.config.incoming.has(id) && !r.config.learners.has(id)) r.progress.delete(id);
    }
    r.config.outgoing = new Set();
    r.config.autoLeave = false;
    return checkAndReturn(r);
  }

  /** At most one voter may change outside joint consensus, or two majorities could disagree. */
  simple(ccs: ConfChangeSingle[]): ChangeResult {
    const r = this.checkAndCopy();
    if (r.config.outgoing.size > 0) throw new Error("can't apply simple config change in joint config");
    this.apply(r, ccs);
    const before = this.tracker.config.incoming;
    const after = r.config.incoming;
    let diff = 0;
    for (const id of before) if (!after.has(id)) diff++;
    for (const id of after) if (!before.has(id)) diff++;
    if (diff > 1) throw new Error('more than one voter changed without entering joint config');
    return checkAndReturn(r);
  }

  private apply(r: ChangeResult, ccs: ConfChangeSingle[]): void {
    for (const cc of ccs) {
      if (cc.nodeId === 0n) continue; // etcd replaces refused changes with no-ops
      switch (cc.type) {
        case ConfChangeType.ConfChangeAddNode:
          this.makeVoter(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeAddLearnerNode:
          this.makeLearner(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeRemoveNode:
          this.remove(r, cc.nodeId);
          break;
        case ConfChangeType.ConfChangeUpdateNode:
          break;
        default:
          throw new Error(`unexpected conf type ${String(cc.type)}`);
      }
    }
    if (r.config.incoming.size === 0) throw new Error('removed all voters');
  }

  private makeVoter(r: ChangeResult, id: NodeId): void {
    const pr = r.progress.get(id);
    if (!pr) {
      this.initProgress(r, id, false);
      return;
    }
    pr.isLearner = false;
    r.config.learners.delete(id);
    r.config.learnersNext.delete(id);
    r.config.incoming.add(id);
  }

  private makeLearner(r: ChangeResult, id: NodeId): void {
    const pr = r.progress.get(id);
    if (!pr) {
      this.initProgress(r, id, true);
      return;
    }
    if (pr.isLearner) return;
    this.remove(r, id);
    r.progress.set(id, pr);
    // A voter of the outgoing config must keep voting there until the joint config is left.
    if (r.config.outgoing.has(id)) {
      r.config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      r.config.learners.add(id);
    }
  }

  private remove(r: ChangeResult, id: NodeId): void {
    if (!r.progress.has(id)) return;
    r.config.incoming.delete(id);
    r.config.learners.delete(id);
    r.config.learnersNext.delete(id);
    if (!r.config.outgoing.has(id)) r.progress.delete(id);
  }

  private initProgress(r: ChangeResult, id: NodeId, isLearner: boolean): void {
    if (isLearner) r.config.learners.add(id);
    else r.config.incoming.add(id);
    const pr = new Progress(this.tracker.maxInflight);
    // Next starts at our last index: the first probe finds the real match quickly.
    pr.next = Math.max(this.lastIndex, 1);
    pr.match = 0;
    pr.isLearner = isLearner;
    // Count new peers as active so a check-quorum right after the change does not depose us.
    pr.recentActive = true;
    r.progress.set(id, pr);
  }

  private checkAndCopy(): ChangeResult {
    const progress = new Map<NodeId, Progress>();
    for (const [id, pr] of this.tracker.progress) progress.set(id, pr.clone());
    const r = { config: cloneConfig(this.tracker.config), progress };
    checkInvariants(r);
    return r;
  }
}

function checkAndReturn(r: ChangeResult): ChangeResult {
  checkInvariants(r);
  return r;
}

function checkInvariants(r: ChangeResult): void {
  const { config: c, progress } = r;
  for (const ids of [c.incoming, c.outgoing, c.learners, c.learnersNext]) {
    for (const id of ids) if (!progress.has(id)) throw new Error(`no progress for ${id}`);
  }
  for (const id of c.learnersNext) {
    if (!c.outgoing.has(id)) throw new Error(`${id} is in LearnersNext, but not Voters[1]`);
    if (progress.get(id)?.isLearner) throw new Error(`${id} is in LearnersNext, but is already marked as learner`);
  }
  for (const id of c.learners) {
    if (c.outgoing.has(id)) throw new Error(`${id} is in Learners and Voters[1]`);
    if (c.incoming.has(id)) throw new Error(`${id} is in Learners and Voters[0]`);
    if (!progress.get(id)?.isLearner) throw new Error(`${id} is in Learners, but is not marked as learner`);
  }
  if (c.outgoing.size === 0) {
    if (c.learnersNext.size > 0) throw new Error('cfg.LearnersNext must be nil when not joint');
    if (c.autoLeave) throw new Error('AutoLeave must be false when not joint');
  }
}

/** Rebuilds a tracker configuration from a ConfState (restart or snapshot), as etcd's Restore. */
export function restoreConfState(tracker: ProgressTracker, lastIndex: number, cs: ConfState): ChangeResult {
  const add = (id: NodeId): ConfChangeSingle => ({ type: ConfChangeType.ConfChangeAddNode, nodeId: id });
  const addLearner = (id: NodeId): ConfChangeSingle => ({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id });
  const incoming: ConfChangeSingle[] = [];
  const outgoing: ConfChangeSingle[] = cs.votersOutgoing.map(add);
  // Replaying: first build the outgoing config, then enter joint with removals plus the incoming
  // side; this reproduces learnersNext exactly.
  for (const id of cs.votersOutgoing) incoming.push({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: id });
  for (const id of cs.voters) incoming.push(add(id));
  for (const id of cs.learners) incoming.push(addLearner(id));
  for (const id of cs.learnersNext) incoming.push(addLearner(id));
  const step = (fn: (c: Changer) => ChangeResult): void => {
    const r = fn(new Changer(tracker, lastIndex));
    tracker.config = r.config;
    tracker.progress = r.progress;
  };
  if (outgoing.length === 0) {
    for (const cc of incoming) step((c) => c.simple([cc]));
  } else {
    for (const cc of outgoing) step((c) => c.simple([cc]));
    step((c) => c.enterJoint(cs.autoLeave, incoming));
  }
  return { config: tracker.config, progress: tracker.progress };
}
