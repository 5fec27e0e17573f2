// The raft log on disk, as etcd keeps it: an in-memory MemoryStorage that
// raft reads from, mirrored to the write-ahead log (./wal). Writes made here
// are durable once flush() resolves, which the raft loop awaits before any
// message that depends on them leaves and before anything is applied.
import type { Backend } from '../backend/backend';
import { type ConfState, type Entry, type HardState, MemoryStorage, type Snapshot, type Storage, EntryType } from '../raft';
import * as raftpb from '../proto/gen/raftpb';
import { Wal, type WalOpenOptions } from './wal';


// The snapshot record's payload is etcd's raftpb.Snapshot (metadata: index,
// term, conf state; data: the membership at that index), the bytes etcd's
// .snap files carry. Members written before this kept JSON records; those
// still load (a protobuf record never starts with '{': its first byte is a
// field tag, 0x0a or 0x12).

function encodeSnapMeta(s: Snapshot): Buffer {
  const cs = s.metadata.confState;
  return raftpb.encodeSnapshot({
    data: s.data,
    metadata: {
      index: s.metadata.index,
      term: s.metadata.term,
      conf_state: { voters: cs.voters, learners: cs.learners, voters_outgoing: cs.votersOutgoing, learners_next: cs.learnersNext, auto_leave: cs.autoLeave },
    },
  });
}

function decodeSnapMeta(b: Buffer): Snapshot {
  if (b[0] === 0x7b) return decodeLegacySnapMeta(b);
  const pb = raftpb.decodeSnapshot(b);
  const md = pb.metadata;
  const cs = md?.conf_state;
  return {
    metadata: {
      index: md?.index ?? 0,
      term: md?.term ?? 0,
      confState: {
        voters: cs?.voters ?? [],
        learners: cs?.learners ?? [],
        votersOutgoing: cs?.voters_outgoing ?? [],
        learnersNext: cs?.learners_next ?? [],
        autoLeave: cs?.auto_leave ?? false,
      },
    },
    // decoded bytes are views into the replayed segment: keep a copy
    data: Buffer.from(pb.data),
  };
}

/** The JSON snapshot record of earlier versions. */
interface LegacySnapMeta {
  index: number;
  term: number;
  voters: string[];
  learners: string[];
  votersOutgoing: string[];
  learnersNext: string[];
  autoLeave: boolean;
  data: string;
}

function decodeLegacySnapMeta(b: Buffer): Snapshot {
  const j = JSON.parse(b.toString()) as LegacySnapMeta;
  const cs: ConfState = {
    voters: j.voters.map(BigInt),
    learners: j.learners.map(BigInt),
    votersOutgoing: j.votersOutgoing.map(BigInt),
    learnersNext: j.learnersNext.map(BigInt),
    autoLeave: j.autoLeave,
  };
  return { metadata: { index: j.index, term: j.term, confState: cs }, data: Buffer.from(j.data, 'base64') };
}

/**
 * raft's Storage over the disk: reads are served by an in-memory
 * MemoryStorage (what raft reads must be fast), every write goes to it and
 * to the write-ahead log. Composed, not inherited, so a replay at load
 * fills the memory without logging again, and no write can reach the
 * memory without the log by a path this class did not choose.
 */
export class DiskStorage implements Storage {
  /** Where a torn (never synced, so never acknowledged) tail of the log was cut at open, if one was. */
  repaired: { file: string; offset: number } | undefined;
  private readonly mem = new MemoryStorage();

  private constructor(
    private readonly wal: Wal,
    private readonly backend: Backend,
  ) {}

  /** Replays the write-ahead log in walDir (everything after the last snapshot) into memory. */
  static load(walDir: string, backend: Backend, opts: WalOpenOptions = {}): DiskStorage {
    const { wal, replay } = Wal.open(walDir, opts);
    const s = new DiskStorage(wal, backend);
    s.repaired = replay.repaired;
    // what the log already holds goes to memory only
    if (replay.snapshot) s.mem.applySnapshot(decodeSnapMeta(replay.snapshot));
    if (replay.hardState) s.mem.setHardState(replay.hardState);
    const ents: Entry[] = [];
    const first = s.firstIndex();
    for (const e of replay.entries) {
      if (e.index < first) continue;
      if (ents.length ? e.index !== ents[ents.length - 1].index + 1 : e.index !== first) break;
      ents.push({ index: e.index, term: e.term, type: e.type as EntryType, data: e.data });
    }
    if (ents.length) s.mem.append(ents);
    return s;
  }

  // raft's reads, from memory

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }

  entries(lo: number, hi: number, maxSize?: number): Entry[] {
    return this.mem.entries(lo, hi, maxSize);
  }

  term(i: number): number {
    return this.mem.term(i);
  }

  firstIndex(): number {
    return this.mem.firstIndex();
  }

  lastIndex(): number {
    return this.mem.lastIndex();
  }

  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  getHardState(): HardState {
    return this.mem.getHardState();
  }

  /** True when nothing was ever persisted (a brand-new member). */
  isEmpty(): boolean {
    return this.lastIndex() === 0 && this.getHardState().term === 0;
  }

  /**
   * Makes everything appended or set so far durable: one write and one
   * fdatasync. Rejects with a StorageError (../backend/storage-error) when
   * the disk is full or failing: nothing of it may be acknowledged then.
   * `inline`: see Wal.flush.
   */
  async flush(inline = false): Promise<void> {
    await this.wal.flush(inline);
    // between syncs: a rotation closes the segment the sync was running on
    this.wal.maybeRotate();
  }

  // writes: memory and the log

  setHardState(hs: HardState): void {
    this.mem.setHardState(hs);
    this.wal.setHardState(hs);
  }

  append(entries: Entry[]): void {
    if (!entries.length) return;
    this.mem.append(entries);
    this.wal.appendEntries(entries);
  }

  applySnapshot(snap: Snapshot): void {
    this.mem.applySnapshot(snap);
    this.wal.saveSnapshot(snap.metadata.index, encodeSnapMeta(snap));
  }

  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    const snap = this.mem.createSnapshot(i, cs, data);
    this.wal.saveSnapshot(snap.metadata.index, encodeSnapMeta(snap));
    return snap;
  }

  compact(compactIndex: number): void {
    this.mem.compact(compactIndex);
    // segments may go only once the state machine holding those entries is durable, and the
    // snapshot record that replaces them too (else a restart finds a log with a hole)
    void Promise.all([this.backend.commit(), this.wal.flush()]).then(
      () => this.wal.releaseTo(compactIndex),
      () => undefined,
    );
  }

  close(): Promise<void> {
    return this.wal.close();
  }
}
