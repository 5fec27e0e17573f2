// Whole-cluster randomized simulation: N RawNodes over MemoryStorage, a lossy, duplicating,
// reordering network with partitions, crash-restarts, proposals, reads, conf changes, leader
// transfers and compaction, all driven by one seeded PRNG so any failure replays exactly from
// its seed. Safety properties are checked continuously; liveness after healing at the end.
import { decodeConfChangeEntry } from './conf-change';
import { ErrProposalDropped, ErrStepPeerNotFound, RaftError } from './errors';
import { RawNode } from './raw-node';
import { MemoryStorage } from './storage';
import { mulberry32 } from './test-network';
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  type Ready,
  StateType,
} from './types';

/** Client operations on the simulated KV store; structurally the linearizability checker's KvOperation. */
export type SimKvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | undefined; value: string };
export type SimKvOutput = { op: 'get'; value: string | undefined } | { op: 'put' } | { op: 'cas'; ok: boolean };
export interface SimKvOperation {
  clientId: number;
  input: SimKvInput;
  output: SimKvOutput | undefined;
  call: number;
  return?: number;
}

interface KvCommand {
  id: number;
  op: 'put' | 'cas';
  k: string;
  v: string;
  e?: string;
}

export interface SimOptions {
  seed: number;
  /** Chaos steps (ticks) before healing. */
  steps?: number;
  /** Collect a readable event trace (slower); included in failure messages. */
  trace?: boolean;
}

export interface SimResult {
  seed: number;
  nodes: number;
  committed: number;
  leaders: number;
  snapshotsSent: number;
  confChanges: number;
  crashes: number;
  reads: number;
  /** Joint configurations entered and left (counted once per log index, not per node). */
  jointEntered: number;
  jointLeft: number;
  /** Client operations with call/return times, for a linearizability check. */
  history: SimKvOperation[];
}

export class SimulationError extends Error {}

interface SimNode {
  id: NodeId;
  storage: MemoryStorage;
  raw: RawNode | undefined;
  /** Initial member: bootstraps (again) if it crashed before persisting anything. */
  initial: boolean;
  applied: number;
  confState: ConfState;
  /** Tick at which a crashed node comes back; Infinity once removed from the cluster. */
  restartAt: number;
  removed: boolean;
  randomSeed: number;
  /** The state machine: a KV map plus the ids of applied commands (duplicates are skipped). */
  kv: Map<string, string>;
  seen: Set<number>;
  /** Client writes proposed through this node, answered when this node applies them. */
  waitingWrites: Map<number, SimKvOperation>;
  /** Client reads: first waiting for their ReadState, then for apply to reach its index. */
  waitingReadStates: Map<string, SimKvOperation>;
  waitingApply: { index: number; op: SimKvOperation }[];
}

interface InFlight {
  m: Message;
  at: number;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

function emptyConf(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export class Simulation {
  private readonly rng: () => number;
  private readonly nodes = new Map<NodeId, SimNode>();
  private inflight: InFlight[] = [];
  private now = 0;
  private group = new Map<NodeId, number>();
  private readonly traceLog: string[] = [];
  // index -> identity ("term:payload") of the entry applied there by anyone.
  private readonly appliedAt: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private maxCommitted = 0;
  private readonly pendingReads = new Map<string, number>();
  private proposalSeq = 0;
  private clock = 0;
  private readonly history: SimKvOperation[] = [];
  private readonly writeIds = new Map<SimKvOperation, number>();
  // Command id -> when (clock) and with what result it first took effect anywhere.
  private readonly firstApplied = new Map<number, { at: number; out: SimKvOutput }>();
  private chaos = true;
  private nextNodeId: NodeId;
  private readonly stats: SimResult;

  // Per-seed knobs.
  private readonly n: number;
  private loss: number;
  private dup: number;
  private readonly maxDelay: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxInflight: number;
  private readonly maxSizePerMsg: number;
  private readonly steps: number;

  constructor(private readonly opts: SimOptions) {
    this.rng = mulberry32(opts.seed * 2654435761);
    const r = this.rng;
    this.n = r() < 0.5 ? 3 : 5;
    this.loss = r() < 0.3 ? 0 : r() * 0.2;
    this.dup = r() < 0.5 ? 0 : r() * 0.1;
    this.maxDelay = Math.floor(r() * 4);
    this.preVote = r() < 0.6;
    this.checkQuorum = r() < 0.6;
    this.maxInflight = 1 + Math.floor(r() * 8);
    // One entry per message (size 1) makes followers ack old-term entries on their own.
    this.maxSizePerMsg = r() < 0.4 ? Number.POSITIVE_INFINITY : r() < 0.5 ? 1 : 40 + Math.floor(r() * 100);
    this.steps = opts.steps ?? 300;
    this.stats = { seed: opts.seed, nodes: this.n, committed: 0, leaders: 0, snapshotsSent: 0, confChanges: 0, crashes: 0, reads: 0, jointEntered: 0, jointLeft: 0, history: this.history };
    const voters: NodeId[] = [];
    for (let i = 1; i <= this.n; i++) voters.push(BigInt(i));
    this.nextNodeId = BigInt(this.n + 1);
    for (const id of voters) {
      const node = this.newNode(id, true);
      this.start(node, voters);
      this.group.set(id, 0);
    }
    this.trace(() => `config n=${this.n} loss=${this.loss.toFixed(3)} dup=${this.dup.toFixed(3)} delay<=${this.maxDelay} preVote=${this.preVote} checkQuorum=${this.checkQuorum} inflight=${this.maxInflight} maxMsg=${this.maxSizePerMsg}`);
  }

  private trace(f: () => string): void {
    if (!this.opts.trace) return;
    this.traceLog.push(`[t=${this.now}] ${f()}`);
  }

  private fail(message: string): never {
    const tail = this.opts.trace ? `\n--- trace (last 200 events) ---\n${this.traceLog.slice(-200).join('\n')}` : '';
    throw new SimulationError(`seed ${this.opts.seed}: ${message}${tail}`);
  }

  private start(node: SimNode, bootstrapVoters?: NodeId[]): void {
    const snap = node.storage.snapshot();
    node.applied = snap.metadata.index;
    node.confState = snap.metadata.confState;
    this.restoreStateMachine(node, snap.data);
    node.waitingWrites = new Map();
    node.waitingReadStates = new Map();
    node.waitingApply = [];
    node.raw = new RawNode({
      id: node.id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: node.storage,
      applied: snap.metadata.index,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxInflightMsgs: this.maxInflight,
      maxSizePerMsg: this.maxSizePerMsg,
      random: mulberry32(node.randomSeed++),
    });
    if (bootstrapVoters && node.storage.lastIndex() === 0 && snap.metadata.index === 0) node.raw.bootstrap(bootstrapVoters);
  }

  private initialVoters(): NodeId[] {
    const out: NodeId[] = [];
    for (let i = 1; i <= this.n; i++) out.push(BigInt(i));
    return out;
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[Math.floor(this.rng() * xs.length)];
  }

  private upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raw !== undefined);
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      const r = n.raw?.raft;
      if (r && r.state === StateType.Leader && (!best || r.term > (best.raw?.raft.term ?? 0))) best = n;
    }
    return best;
  }

  // --- Ready handling: persist, (maybe crash), send, apply, advance ---

  private handleReady(node: SimNode, allowCrash: boolean): void {
    let guard = 0;
    while (node.raw && node.raw.hasReady()) {
      if (++guard > 1000) this.fail(`node ${node.id} produced Ready forever`);
      const raw = node.raw;
      const rd = raw.ready();
      this.observe(node, rd);
      if (rd.snapshot) {
        const s = rd.snapshot;
        const known = this.appliedAt[s.metadata.index];
        if (known !== undefined && Number(known.slice(0, known.indexOf(':'))) !== s.metadata.term) {
          this.fail(`node ${node.id} got snapshot at ${s.metadata.index} term ${s.metadata.term}, but ${known} was applied there`);
        }
        node.storage.applySnapshot(s);
      }
      node.storage.append(rd.entries);
      if (rd.hardState) {
        node.storage.setHardState(rd.hardState);
        if (rd.hardState.commit > this.maxCommitted) this.maxCommitted = rd.hardState.commit;
      }
      if (allowCrash && this.chaos && this.rng() < 0.002) {
        // Persisted but nothing sent or applied: the messages and the apply are lost.
        this.trace(() => `crash ${node.id} after persisting a Ready`);
        this.crash(node);
        return;
      }
      for (const m of rd.messages) this.send(node, m);
      if (rd.snapshot) {
        node.applied = rd.snapshot.metadata.index;
        node.confState = rd.snapshot.metadata.confState;
        this.restoreStateMachine(node, rd.snapshot.data);
      }
      for (const e of rd.committedEntries) this.apply(node, e);
      for (const rs of rd.readStates) {
        const key = dec.decode(rs.requestCtx);
        const min = this.pendingReads.get(key);
        if (min !== undefined && rs.index < min) this.fail(`read ${key} served at index ${rs.index} but ${min} was already committed when it was issued`);
        this.pendingReads.delete(key);
        const op = node.waitingReadStates.get(key);
        if (op) {
          node.waitingReadStates.delete(key);
          node.waitingApply.push({ index: rs.index, op });
        }
      }
      this.answerReads(node);
      raw.advance(rd);
    }
  }

  private observe(node: SimNode, rd: Ready): void {
    if (!rd.softState || rd.softState.raftState !== StateType.Leader || !node.raw) return;
    const r = node.raw.raft;
    const prev = this.leaderOfTerm.get(r.term);
    if (prev !== undefined && prev !== node.id) this.fail(`two leaders in term ${r.term}: ${prev} and ${node.id}`);
    if (prev === undefined) this.stats.leaders++;
    this.leaderOfTerm.set(r.term, node.id);
    this.trace(() => `${node.id} is leader of term ${r.term} (last ${r.raftLog.lastIndex()})`);
    // Leader completeness: every entry applied anywhere must be in the new leader's log.
    const first = r.raftLog.firstIndex();
    for (let i = first; i < this.appliedAt.length; i++) {
      const id = this.appliedAt[i];
      if (id === undefined) continue;
      const t = r.raftLog.term(i);
      if (t === undefined || i > r.raftLog.lastIndex() || id.slice(0, id.indexOf(':')) !== String(t)) {
        this.fail(`leader ${node.id} of term ${r.term} lacks committed entry ${i} (${id}); has term ${String(t)}`);
      }
    }
  }

  private apply(node: SimNode, e: Entry): void {
    if (e.index <= node.applied) return;
    if (e.index !== node.applied + 1) this.fail(`node ${node.id} applied ${e.index} after ${node.applied}`);
    const identity = `${e.term}:${e.type}:${dec.decode(e.data)}`;
    const prev = this.appliedAt[e.index];
    if (prev === undefined) {
      this.appliedAt[e.index] = identity;
      if (e.type === EntryType.Normal && e.data.length > 0) this.stats.committed++;
      if (e.type === EntryType.ConfChangeV2 && node.raw) {
        const joint = node.raw.raft.prs.isJoint();
        const v2 = decodeConfChangeEntry(e.type, e.data);
        if (v2 && v2.changes.length === 0 && joint) this.stats.jointLeft++;
        else if (v2 && v2.changes.length > 0 && !joint) this.stats.jointEntered++;
      }
    } else if (prev !== identity) {
      this.fail(`state machine safety: node ${node.id} applied ${identity} at ${e.index}, others applied ${prev}`);
    }
    node.applied = e.index;
    if (e.type === EntryType.Normal && e.data.length > 0) this.applyCommand(node, JSON.parse(dec.decode(e.data)) as KvCommand);
    const cc = decodeConfChangeEntry(e.type, e.data);
    if (cc && node.raw) {
      const before = node.confState;
      node.confState = node.raw.applyConfChange(cc);
      const after = new Set([...node.confState.voters, ...node.confState.learners, ...node.confState.votersOutgoing, ...node.confState.learnersNext]);
      for (const id of [...before.voters, ...before.learners, ...before.votersOutgoing, ...before.learnersNext]) {
        const gone = this.nodes.get(id);
        if (after.has(id) || !gone || gone.removed) continue;
        // Like etcd, a member that left the configuration entirely is shut down for good (its
        // peers reject it anyway). A voter still in the outgoing half of a joint config stays.
        this.trace(() => `${id} removed; shutting it down`);
        gone.removed = true;
        gone.raw = undefined;
        gone.restartAt = Number.POSITIVE_INFINITY;
      }
    }
  }

  private applyCommand(node: SimNode, c: KvCommand): void {
    // Duplicated proposals (the network duplicates MsgProp) must not apply twice.
    if (node.seen.has(c.id)) return;
    node.seen.add(c.id);
    let out: SimKvOutput;
    if (c.op === 'put') {
      node.kv.set(c.k, c.v);
      out = { op: 'put' };
    } else {
      const ok = node.kv.get(c.k) === c.e;
      if (ok) node.kv.set(c.k, c.v);
      out = { op: 'cas', ok };
    }
    if (!this.firstApplied.has(c.id)) this.firstApplied.set(c.id, { at: ++this.clock, out });
    const op = node.waitingWrites.get(c.id);
    if (op) {
      node.waitingWrites.delete(c.id);
      op.output = out;
      op.return = ++this.clock;
    }
  }

  private answerReads(node: SimNode): void {
    if (node.waitingApply.length === 0) return;
    const still: { index: number; op: SimKvOperation }[] = [];
    for (const w of node.waitingApply) {
      if (w.index > node.applied) {
        still.push(w);
        continue;
      }
      w.op.output = { op: 'get', value: node.kv.get(w.op.input.key) };
      w.op.return = ++this.clock;
    }
    node.waitingApply = still;
  }

  // --- network ---

  private send(from: SimNode, m: Message): void {
    if (m.type === MessageType.MsgSnap) this.stats.snapshotsSent++;
    const lost = this.rng() < this.loss;
    if (m.type === MessageType.MsgSnap) {
      // The transport reports whether the snapshot made it, as etcd's does.
      from.raw?.reportSnapshot(m.to, lost);
    }
    if (lost) return;
    const copies = this.rng() < this.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const d = this.rng();
      this.inflight.push({ m, at: this.now + Math.floor(d * d * (this.maxDelay + 1)) });
    }
  }

  private connected(a: NodeId, b: NodeId): boolean {
    return (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  /** Delivers due messages in random order (reordering); some are held back a tick. */
  private deliver(): void {
    let rounds = 0;
    for (;;) {
      const due: InFlight[] = [];
      const later: InFlight[] = [];
      for (const f of this.inflight) (f.at <= this.now ? due : later).push(f);
      if (due.length === 0 || ++rounds > 30) return;
      this.inflight = later;
      for (let i = due.length - 1; i > 0; i--) {
        const j = Math.floor(this.rng() * (i + 1));
        const t = due[i];
        due[i] = due[j];
        due[j] = t;
      }
      const touched = new Set<SimNode>();
      for (const f of due) {
        const m = f.m;
        const target = this.nodes.get(m.to);
        if (!target || !target.raw || !this.connected(m.from, m.to)) {
          // The transport noticing a dead link tells raft, which stops streaming optimistically.
          const sender = this.nodes.get(m.from);
          if (sender?.raw && this.rng() < 0.2) {
            sender.raw.reportUnreachable(m.to);
            touched.add(sender);
          }
          continue;
        }
        try {
          target.raw.step(m);
        } catch (e) {
          if (!(e instanceof ErrStepPeerNotFound || e instanceof ErrProposalDropped)) throw e;
        }
        touched.add(target);
        // Sometimes handle the Ready at once, sometimes batch several messages into one Ready.
        if (this.rng() < 0.5) this.handleReady(target, true);
      }
      for (const t of touched) this.handleReady(t, true);
    }
  }

  // --- faults and client actions ---

  private crash(node: SimNode): void {
    if (!node.raw) return;
    this.stats.crashes++;
    node.raw = undefined;
    node.restartAt = this.now + 5 + Math.floor(this.rng() * 40);
  }

  private maybeRestart(node: SimNode, force: boolean): void {
    if (node.raw || node.removed) return;
    if (!force && this.now < node.restartAt) return;
    this.trace(() => `restart ${node.id}`);
    this.start(node, node.initial ? this.initialVoters() : undefined);
    this.handleReady(node, false);
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    const kind = this.rng();
    this.group = new Map();
    if (kind < 0.4) {
      const leader = this.currentLeader();
      const victim = leader && this.rng() < 0.6 ? leader.id : this.pick(ids);
      for (const id of ids) this.group.set(id, id === victim ? 1 : 0);
    } else {
      for (const id of ids) this.group.set(id, this.rng() < 0.5 ? 1 : 0);
    }
    this.trace(() => `partition ${ids.map((id) => `${id}:${this.group.get(id)}`).join(' ')}`);
  }

  private heal(): void {
    this.group = new Map();
    this.trace(() => 'heal');
  }

  private static readonly KEYS = ['a', 'b', 'c'];

  /** A client write through node; returns the payload proposed (undefined if dropped). */
  private propose(node: SimNode, forceKey?: string): string | undefined {
    if (!node.raw) return undefined;
    const id = this.proposalSeq++;
    const key = forceKey ?? (this.pick(Simulation.KEYS) as string);
    const value = `v${id}`;
    let input: SimKvInput;
    let cmd: KvCommand;
    if (this.rng() < 0.7) {
      input = { op: 'put', key, value };
      cmd = { id, op: 'put', k: key, v: value };
    } else {
      // Usually expect the value this node sees, sometimes a stale or absent one.
      const expected = this.rng() < 0.7 ? node.kv.get(key) : `v${Math.floor(this.rng() * id)}`;
      input = { op: 'cas', key, expected, value };
      cmd = expected === undefined ? { id, op: 'cas', k: key, v: value } : { id, op: 'cas', k: key, v: value, e: expected };
    }
    const op: SimKvOperation = { clientId: Number(node.id), input, output: undefined, call: ++this.clock };
    const payload = JSON.stringify(cmd);
    try {
      node.raw.propose(enc.encode(payload));
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
      // Refused outright: the operation never entered the system.
      return undefined;
    }
    this.history.push(op);
    this.writeIds.set(op, id);
    node.waitingWrites.set(id, op);
    this.handleReady(node, true);
    return payload;
  }

  private readIndex(node: SimNode): void {
    if (!node.raw) return;
    const ctx = `r${this.proposalSeq++}`;
    // Whatever was committed before the request must be visible at the read index.
    this.pendingReads.set(ctx, this.maxCommitted);
    this.stats.reads++;
    const op: SimKvOperation = { clientId: Number(node.id), input: { op: 'get', key: this.pick(Simulation.KEYS) as string }, output: undefined, call: ++this.clock };
    this.history.push(op);
    node.waitingReadStates.set(ctx, op);
    node.raw.readIndex(enc.encode(ctx));
    this.handleReady(node, true);
  }

  private confChange(): void {
    const leader = this.currentLeader();
    if (!leader?.raw) return;
    const cs = leader.confState;
    const raw = leader.raw;
    const x = this.rng();
    try {
      if (cs.votersOutgoing.length > 0) {
        if (!cs.autoLeave) raw.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [] });
      } else if (x < 0.3 && this.nextNodeId <= BigInt(this.n + 3)) {
        const id = this.nextNodeId++;
        this.addNode(id);
        raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id });
      } else if (x < 0.55 && cs.learners.length > 0) {
        const id = this.pick(cs.learners) as NodeId;
        raw.proposeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: id });
      } else if (x < 0.75 && cs.voters.length > 3) {
        const id = this.pick(cs.voters) as NodeId;
        raw.proposeConfChange({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: id });
      } else if (cs.voters.length >= 3 && cs.learners.length > 0) {
        // Swap a voter for a learner through joint consensus.
        const promote = this.pick(cs.learners) as NodeId;
        const demote = this.pick(cs.voters) as NodeId;
        const transition = this.pick([ConfChangeTransition.Auto, ConfChangeTransition.JointImplicit, ConfChangeTransition.JointExplicit]) as ConfChangeTransition;
        const demoteType = this.rng() < 0.5 ? ConfChangeType.ConfChangeRemoveNode : ConfChangeType.ConfChangeAddLearnerNode;
        raw.proposeConfChange({
          transition,
          changes: [
            { type: ConfChangeType.ConfChangeAddNode, nodeId: promote },
            { type: demoteType, nodeId: demote },
          ],
        });
      } else {
        return;
      }
      this.stats.confChanges++;
      this.trace(() => `conf change proposed on ${leader.id} (config ${JSON.stringify(cs, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))})`);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
    this.handleReady(leader, true);
  }

  private addNode(id: NodeId): void {
    this.start(this.newNode(id, false));
  }

  private newNode(id: NodeId, initial: boolean): SimNode {
    const node: SimNode = {
      id,
      storage: new MemoryStorage(),
      raw: undefined,
      initial,
      applied: 0,
      confState: emptyConf(),
      restartAt: 0,
      removed: false,
      randomSeed: this.opts.seed * 31 + Number(id),
      kv: new Map(),
      seen: new Set(),
      waitingWrites: new Map(),
      waitingReadStates: new Map(),
      waitingApply: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  private restoreStateMachine(node: SimNode, data: Uint8Array): void {
    node.kv = new Map();
    node.seen = new Set();
    if (data.length === 0) return;
    const parsed = JSON.parse(dec.decode(data)) as { kv: [string, string][]; seen: number[] };
    node.kv = new Map(parsed.kv);
    node.seen = new Set(parsed.seen);
  }

  private compact(node: SimNode): void {
    if (!node.raw) return;
    const snapIndex = node.storage.snapshot().metadata.index;
    if (node.applied <= snapIndex) return;
    const data = JSON.stringify({ kv: [...node.kv], seen: [...node.seen] });
    node.storage.createSnapshot(node.applied, node.confState, enc.encode(data));
    const keep = Math.floor(this.rng() * 5);
    const to = node.applied - keep;
    if (to > node.storage.firstIndex()) node.storage.compact(to);
    this.trace(() => `${node.id} snapshot at ${node.applied}, compacted to ${to}`);
  }

  private transfer(): void {
    const leader = this.currentLeader();
    if (!leader?.raw) return;
    const target = this.pick(leader.confState.voters.filter((v) => v !== leader.id));
    if (target === undefined) return;
    this.trace(() => `transfer ${leader.id} -> ${target}`);
    leader.raw.transferLeader(target);
    this.handleReady(leader, true);
  }

  private tickSome(all: boolean): void {
    for (const node of this.nodes.values()) {
      if (!node.raw) continue;
      // Skipping ticks models clock skew between nodes.
      if (!all && this.rng() < 0.15) continue;
      node.raw.tick();
      this.handleReady(node, !all);
    }
  }

  private step(chaos: boolean): void {
    this.now++;
    for (const node of this.nodes.values()) this.maybeRestart(node, !chaos);
    this.tickSome(!chaos);
    this.deliver();
    const r = this.rng;
    // Snapshots keep being taken after healing too: a member added after the last snapshot
    // refuses it (not in its ConfState) and needs a newer one, as in etcd.
    if (r() < 0.03) {
      const n = !chaos && r() < 0.5 ? this.currentLeader() : this.pick(this.upNodes());
      if (n) this.compact(n);
    }
    if (!chaos) return;
    const up = this.upNodes();
    if (r() < 0.3) {
      const n = this.pick(up);
      if (n) this.propose(n);
    }
    if (r() < 0.05) {
      const n = this.pick(up);
      if (n) this.readIndex(n);
    }
    if (r() < 0.02) {
      if (this.group.size > 0 && r() < 0.6) this.heal();
      else this.partition();
    }
    if (r() < 0.006) {
      const n = this.pick(up);
      if (n) {
        this.trace(() => `crash ${n.id}`);
        this.crash(n);
      }
    }
    if (r() < 0.012) this.confChange();
    if (r() < 0.006) this.transfer();
  }

  run(): SimResult {
    for (let i = 0; i < this.steps; i++) this.step(true);
    // Heal everything: no partitions or loss; crashed members come back.
    this.heal();
    this.chaos = false;
    this.inflight = this.inflight.filter(() => this.rng() < 0.5);
    this.loss = 0;
    this.dup = 0;
    this.checkLiveness();
    this.checkLogMatching();
    this.settleUnansweredWrites();
    return this.stats;
  }

  /**
   * Writes whose client never heard back (crash, lost forward) either took effect at some point
   * or never did. The simulation knows which: answer the first with the time and result of their
   * first application (a correct system linearizes a write by then), drop the second. This keeps
   * the checker's search small without hiding any observable behaviour.
   */
  private settleUnansweredWrites(): void {
    const keep: SimKvOperation[] = [];
    for (const op of this.history) {
      if (op.output !== undefined || op.input.op === 'get') {
        keep.push(op);
        continue;
      }
      const first = this.firstApplied.get(this.writeIds.get(op) ?? -1);
      if (!first) continue;
      op.output = first.out;
      op.return = first.at;
      keep.push(op);
    }
    this.history.length = 0;
    this.history.push(...keep);
  }

  private members(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.removed);
  }

  private checkLiveness(): void {
    let payload: string | undefined;
    for (let i = 0; i < 600; i++) {
      this.step(false);
      const leader = this.currentLeader();
      if (!leader?.raw) continue;
      if (payload === undefined) {
        payload = this.propose(leader);
        continue;
      }
      // Done when every member that is in the leader's configuration applied the final proposal.
      const cs = leader.confState;
      const inConfig = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
      const want = `:${EntryType.Normal}:${payload}`;
      const idx = this.appliedAt.findIndex((id) => id !== undefined && id.endsWith(want));
      if (idx < 0) {
        // The proposal may have been lost with a leader change; propose again after a while.
        if (i % 50 === 49) payload = undefined;
        continue;
      }
      if (this.members().every((n) => !inConfig.has(n.id) || n.applied >= idx)) return;
    }
    const states = this.members()
      .map((n) => {
        const r = n.raw?.raft;
        return r ? `${n.id}:${StateType[r.state]} term=${r.term} lead=${r.lead} commit=${r.raftLog.committed} applied=${n.applied} last=${r.raftLog.lastIndex()} conf=${n.confState.voters.join(',')}|${n.confState.votersOutgoing.join(',')} learners=${n.confState.learners.join(',')}` : `${n.id}:down`;
      })
      .join('\n  ');
    this.fail(`no progress after healing:\n  ${states}`);
  }

  /** If two logs hold an entry with the same index and term, everything up to it is identical. */
  private checkLogMatching(): void {
    const logs = this.members()
      .filter((n) => n.raw)
      .map((n) => ({ id: n.id, log: (n.raw as RawNode).raft.raftLog }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a].log;
        const lb = logs[b].log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        if (lo > hi) continue;
        const ea = la.slice(lo, hi + 1, Number.POSITIVE_INFINITY);
        const eb = lb.slice(lo, hi + 1, Number.POSITIVE_INFINITY);
        let k = ea.length - 1;
        while (k >= 0 && ea[k].term !== eb[k].term) k--;
        for (let j = k; j >= 0; j--) {
          if (ea[j].term !== eb[j].term || ea[j].type !== eb[j].type || dec.decode(ea[j].data) !== dec.decode(eb[j].data)) {
            this.fail(`log matching: nodes ${logs[a].id} and ${logs[b].id} agree at ${lo + k} but differ at ${lo + j}`);
          }
        }
      }
    }
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
