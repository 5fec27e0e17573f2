// The Storage contract raft reads its stable log through, and MemoryStorage, an in-memory
// implementation with etcd's semantics (used by tests and as a cache in front of disk).
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable, invariant } from './errors';
import {
  type ConfState,
  type Entry,
  EntryType,
  EMPTY_BYTES,
  type HardState,
  type Snapshot,
  emptyHardState,
  emptySnapshot,
  limitSize,
} from './types';

export interface Storage {
  /** The persisted HardState and the ConfState of the last snapshot (or bootstrap). */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), limited to maxSize bytes but always at least one if any exist. */
  entries(lo: number, hi: number, maxSize?: number): Entry[];
  /** Term of entry i; i may be firstIndex()-1 (the snapshot's index). */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot; may throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

function cloneConfState(cs: ConfState): ConfState {
  return {
    voters: [...cs.voters],
    learners: [...cs.learners],
    votersOutgoing: [...cs.votersOutgoing],
    learnersNext: [...cs.learnersNext],
    autoLeave: cs.autoLeave,
  };
}

/** Bytes per slab of entry data, and the largest entry packed into one (bigger ones get their own copy). */
const DATA_SLAB = 64 * 1024;
const DATA_MAX_PACKED = 4096;

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  // Entries stay here until the log is compacted (etcd's snapshot-count: 100,000 by default), so
  // their data is copied into slabs owned by the log: a view into the buffer it arrived in (a
  // pooled encode buffer, a network frame, a WAL read chunk) kept that whole buffer alive, many
  // times the entry's size. Slabs fill in log order, so compaction frees them whole.
  private slab: Uint8Array = EMPTY_BYTES;
  private slabUsed = 0;
  private snap: Snapshot = emptySnapshot();
  // ents[0] is a dummy holding the snapshot's index and term, so term(firstIndex-1) works.
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES }];

  /**
   * Seeds a brand-new member of a brand-new cluster with its initial membership, the way etcd's
   * tests do: the ConfState rides on the (index 0) snapshot and initialState() reports it. Members
   * that join later start without this and learn the configuration from the leader.
   */
  static bootstrap(voters: bigint[], learners: bigint[] = []): MemoryStorage {
    const ms = new MemoryStorage();
    ms.snap.metadata.confState = { voters: [...voters], learners: [...learners], votersOutgoing: [], learnersNext: [], autoLeave: false };
    return ms;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  getHardState(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxSize = Number.POSITIVE_INFINITY): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new ErrCompacted();
    invariant(hi <= this.lastIndex() + 1, () => `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    if (this.ents.length === 1) throw new ErrUnavailable();
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new ErrCompacted();
    if (i - offset >= this.ents.length) throw new ErrUnavailable();
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole contents with the snapshot (a follower catching up from the leader). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new ErrSnapOutOfDate();
    this.snap = { metadata: { ...snap.metadata, confState: cloneConfState(snap.metadata.confState) }, data: snap.data };
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY_BYTES }];
  }

  /**
   * Records a snapshot of the state machine at applied index i (cs: the configuration at i).
   * The log is not trimmed; call compact() for that.
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    const offset = this.ents[0].index;
    invariant(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = {
      metadata: {
        index: i,
        term: this.ents[i - offset].term,
        confState: cs ? cloneConfState(cs) : this.snap.metadata.confState,
      },
      data,
    };
    return this.snap;
  }

  /** Discards entries up to compactIndex; they must have been covered by a snapshot. */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new ErrCompacted();
    invariant(compactIndex <= this.lastIndex(), () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - offset;
    const dummy: Entry = { term: this.ents[i].term, index: this.ents[i].index, type: EntryType.Normal, data: EMPTY_BYTES };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries, replacing any existing suffix they overlap (a new leader overwriting an
   * uncommitted tail). Entries must be contiguous.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // everything already compacted
    let ents = entries;
    if (first > ents[0].index) ents = ents.slice(first - ents[0].index);
    ents = ents.map((e) => this.owned(e));
    const offset = ents[0].index - this.ents[0].index;
    if (this.ents.length > offset) {
      this.ents = [...this.ents.slice(0, offset), ...ents];
    } else if (this.ents.length === offset) {
      for (const e of ents) this.ents.push(e);
    } else {
      invariant(false, () => `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0].index}]`);
    }
  }

  /** e with its data in memory of the log's own (see slab). */
  private owned(e: Entry): Entry {
    const d = e.data;
    const n = d.length;
    // empty, or already a buffer of its own: nothing else is kept alive by it
    if (n === 0 || (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength)) return e;
    let data: Uint8Array;
    if (n > DATA_MAX_PACKED) {
      data = new Uint8Array(n);
    } else {
      if (this.slabUsed + n > this.slab.length) {
        this.slab = new Uint8Array(DATA_SLAB);
        this.slabUsed = 0;
      }
      data = this.slab.subarray(this.slabUsed, this.slabUsed + n);
      this.slabUsed += n;
    }
    data.set(d);
    return { term: e.term, index: e.index, type: e.type, data };
  }
}
