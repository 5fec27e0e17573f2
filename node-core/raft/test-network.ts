// A synchronous, in-memory cluster for unit tests: every node persists its Ready into a
// MemoryStorage, applies committed entries (including conf changes) and messages are delivered
// in FIFO order until the system is quiet. Links can be cut and message types dropped.
import { decodeConfChangeEntry } from './conf-change';
import type { Config } from './raft';
import { RawNode } from './raw-node';
import { MemoryStorage } from './storage';
import { type ConfState, type Entry, EntryType, type Message, MessageType, type NodeId, type ReadState, StateType } from './types';

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState;
}

// Deterministic PRNG (mulberry32): tests must be reproducible from a seed.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ConfigOverrides = Partial<Omit<Config, 'id' | 'storage'>>;

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  private cut = new Set<string>();
  private dropTypes = new Set<MessageType>();
  /** Every message ever delivered, for assertions on traffic. */
  delivered: Message[] = [];
  private seed = 1;

  constructor(
    voters: NodeId[],
    private readonly overrides: ConfigOverrides = {},
    learners: NodeId[] = [],
  ) {
    for (const id of [...voters, ...learners]) this.addNode(id).raw.bootstrap(voters, learners);
    this.stabilize();
  }

  addNode(id: NodeId, storage: MemoryStorage = new MemoryStorage(), extra: ConfigOverrides = {}): TestNode {
    const raw = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      maxSizePerMsg: Number.POSITIVE_INFINITY,
      maxInflightMsgs: 256,
      random: mulberry32(this.seed++ * 7919),
      ...this.overrides,
      ...extra,
    });
    const n: TestNode = { id, raw, storage, applied: [], readStates: [], confState: storage.initialState().confState };
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId) {
    return this.node(id).raw.raft;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cutLink(id, other);
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  heal(): void {
    this.cut.clear();
    this.dropTypes.clear();
  }

  drop(t: MessageType): void {
    this.dropTypes.add(t);
  }

  /** Handles one node's Ready completely; returns the messages it wants to send. */
  private drain(n: TestNode): Message[] {
    const out: Message[] = [];
    while (n.raw.hasReady()) {
      const rd = n.raw.ready();
      if (rd.snapshot) {
        n.storage.applySnapshot(rd.snapshot);
        n.confState = rd.snapshot.metadata.confState;
      }
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      out.push(...rd.messages);
      for (const e of rd.committedEntries) {
        n.applied.push(e);
        const cc = decodeConfChangeEntry(e.type, e.data);
        if (cc) n.confState = n.raw.applyConfChange(cc);
      }
      n.readStates.push(...rd.readStates);
      n.raw.advance(rd);
    }
    return out;
  }

  /** Delivers messages until nothing moves. */
  stabilize(maxRounds = 10000): void {
    const queue: Message[] = [];
    for (const n of this.nodes.values()) queue.push(...this.drain(n));
    let rounds = 0;
    while (queue.length > 0) {
      if (++rounds > maxRounds) throw new Error('network did not stabilize');
      const m = queue.shift() as Message;
      if (this.cut.has(`${m.from}>${m.to}`) || this.dropTypes.has(m.type)) continue;
      const target = this.nodes.get(m.to);
      if (!target) continue;
      this.delivered.push(m);
      try {
        target.raw.step(m);
      } catch (e) {
        if (!(e instanceof Error) || !/peer not found|dropped/.test(e.message)) throw e;
      }
      if (m.type === MessageType.MsgSnap) this.node(m.from).raw.reportSnapshot(m.to, false);
      for (const n of this.nodes.values()) queue.push(...this.drain(n));
    }
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).raw.tick();
    this.stabilize();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.raw.tick();
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.node(id).raw.propose(new TextEncoder().encode(data));
    this.stabilize();
  }

  /** The leader of the highest term (a deposed leader may not know it yet). */
  leader(): NodeId | undefined {
    let best: TestNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raw.raft.state === StateType.Leader && (!best || n.raw.raft.term > best.raw.raft.term)) best = n;
    }
    return best?.id;
  }

  /** Payloads of applied normal entries, as strings. */
  appliedData(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
