// The raft log on disk, as etcd keeps it: an in-memory MemoryStorage that
// raft reads from, mirrored to the backend's `raftLog` (index → entry) and
// `raftState` (hard state, snapshot metadata) buckets. Writes made here ride
// in the backend's next commit, which the raft loop awaits before any message
// that depends on them leaves.
import type { Backend } from '../backend/backend';
import { type ConfState, type Entry, type HardState, MemoryStorage, type Snapshot, EntryType } from '../raft';

const HARD_STATE = Buffer.from('hardstate');
const SNAPSHOT_META = Buffer.from('snapshot');

const u64 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

function encodeEntry(e: Entry): Buffer {
  const v = Buffer.allocUnsafe(9 + e.data.length);
  v.writeBigUInt64BE(BigInt(e.term), 0);
  v[8] = e.type;
  v.set(e.data, 9);
  return v;
}

function decodeEntry(index: number, v: Buffer): Entry {
  return { index, term: Number(v.readBigUInt64BE(0)), type: v[8] as EntryType, data: v.subarray(9) };
}

function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeBigUInt64BE(BigInt(hs.term), 0);
  b.writeBigUInt64BE(hs.vote, 8);
  b.writeBigUInt64BE(BigInt(hs.commit), 16);
  return b;
}

function decodeHardState(b: Buffer): HardState {
  return { term: Number(b.readBigUInt64BE(0)), vote: b.readBigUInt64BE(8), commit: Number(b.readBigUInt64BE(16)) };
}

interface SnapMetaJson {
  index: number;
  term: number;
  voters: string[];
  learners: string[];
  votersOutgoing: string[];
  learnersNext: string[];
  autoLeave: boolean;
  data: string;
}

function encodeSnapMeta(s: Snapshot): Buffer {
  const cs = s.metadata.confState;
  const j: SnapMetaJson = {
    index: s.metadata.index,
    term: s.metadata.term,
    voters: cs.voters.map(String),
    learners: cs.learners.map(String),
    votersOutgoing: cs.votersOutgoing.map(String),
    learnersNext: cs.learnersNext.map(String),
    autoLeave: cs.autoLeave,
    data: Buffer.from(s.data).toString('base64'),
  };
  return Buffer.from(JSON.stringify(j));
}

function decodeSnapMeta(b: Buffer): Snapshot {
  const j = JSON.parse(b.toString()) as SnapMetaJson;
  const cs: ConfState = {
    voters: j.voters.map(BigInt),
    learners: j.learners.map(BigInt),
    votersOutgoing: j.votersOutgoing.map(BigInt),
    learnersNext: j.learnersNext.map(BigInt),
    autoLeave: j.autoLeave,
  };
  return { metadata: { index: j.index, term: j.term, confState: cs }, data: Buffer.from(j.data, 'base64') };
}

export class DiskStorage extends MemoryStorage {
  private constructor(private readonly backend: Backend) {
    super();
  }

  /** Loads the persisted log (everything after the last snapshot) into memory. */
  static load(backend: Backend): DiskStorage {
    const s = new DiskStorage(backend);
    const meta = backend.get('raftState', SNAPSHOT_META);
    if (meta) MemoryStorage.prototype.applySnapshot.call(s, decodeSnapMeta(meta));
    const hs = backend.get('raftState', HARD_STATE);
    if (hs) MemoryStorage.prototype.setHardState.call(s, decodeHardState(hs));
    const first = s.firstIndex();
    const ents: Entry[] = [];
    for (const [k, v] of backend.range('raftLog', u64(first))) {
      const index = Number(k.readBigUInt64BE(0));
      if (ents.length && index !== ents[ents.length - 1].index + 1) break; // a gap: the tail after it is garbage
      if (!ents.length && index !== first) break;
      ents.push(decodeEntry(index, Buffer.from(v)));
    }
    if (ents.length) MemoryStorage.prototype.append.call(s, ents);
    return s;
  }

  /** True when nothing was ever persisted (a brand-new member). */
  isEmpty(): boolean {
    return this.lastIndex() === 0 && this.getHardState().term === 0;
  }

  override setHardState(hs: HardState): void {
    super.setHardState(hs);
    this.backend.put('raftState', HARD_STATE, encodeHardState(hs));
  }

  override append(entries: Entry[]): void {
    if (!entries.length) return;
    const lastBefore = this.lastIndex();
    super.append(entries);
    for (const e of entries) this.backend.put('raftLog', u64(e.index), encodeEntry(e));
    // a new leader overwrote a longer uncommitted tail: drop what is beyond the new end
    const last = entries[entries.length - 1].index;
    for (let i = last + 1; i <= lastBefore; i++) this.backend.del('raftLog', u64(i));
  }

  override applySnapshot(snap: Snapshot): void {
    const lastBefore = this.lastIndex();
    const firstBefore = this.firstIndex();
    super.applySnapshot(snap);
    this.backend.put('raftState', SNAPSHOT_META, encodeSnapMeta(snap));
    for (let i = firstBefore; i <= lastBefore; i++) this.backend.del('raftLog', u64(i));
  }

  override createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    const snap = super.createSnapshot(i, cs, data);
    this.backend.put('raftState', SNAPSHOT_META, encodeSnapMeta(snap));
    return snap;
  }

  override compact(compactIndex: number): void {
    const first = this.firstIndex();
    super.compact(compactIndex);
    for (let i = first; i <= compactIndex; i++) this.backend.del('raftLog', u64(i));
  }
}
