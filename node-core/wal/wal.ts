// The write-ahead log of raft entries, hard state and snapshot metadata, as
// etcd's WAL: append-only segment files of checksummed records, one write and
// one fdatasync per Ready. An LMDB commit syncs twice (data pages, then the
// meta page) and rewrites B-tree pages; an appended segment syncs once, so
// the raft loop waits ~5x less per batch. The state machine (LMDB) is then
// committed lazily, and replayed from this log after a crash.
//
// Record: u32 LE body length, u32 LE crc32(body), body = type byte + payload.
// Every flush is one batch: a Batch record giving the batch's length, then
// its records, then one fdatasync; the next batch is written only after that
// sync returned. So only the last batch of the last segment can be unsynced,
// and only it may be torn by a crash; damage anywhere else is corruption.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { StorageError, toStorageError } from '../backend/storage-error';
import { faultPoint, faultSegmentBytes, faultSynced } from '../backend/fault-hooks';
import { decodeEntry, decodeHardState, encodeHardState } from '../proto/gen/raftpb';
import { varintSize, writeVarintAt } from '../proto/wire';

export const enum RecordType {
  /** Before raftpb records: index, term (u64 LE), type byte, data. Still read; no longer written. */
  EntryLegacy = 1,
  /** Before raftpb records: term, vote, commit (u64 LE). Still read; no longer written. */
  HardStateLegacy = 2,
  /** Payload: u64 LE index, then raftpb.Snapshot bytes (JSON in the oldest logs). */
  Snapshot = 3,
  /** Starts a flushed batch; payload: u32 LE byte length of the records that follow in it. */
  Batch = 4,
  /** Payload: a raftpb.Entry, as etcd's WAL entryType record holds it. */
  Entry = 5,
  /** Payload: a raftpb.HardState, as etcd's stateType record. */
  HardState = 6,
}

export interface WalEntry {
  index: number;
  term: number;
  type: number;
  data: Uint8Array;
}

export interface WalHardState {
  term: number;
  vote: bigint;
  commit: number;
}

export interface WalReplay {
  /** Their data are views into the segment files as read (no copy per entry): copy what you keep (MemoryStorage does). */
  entries: WalEntry[];
  hardState?: WalHardState;
  /** Last snapshot metadata record (opaque bytes, owned by the caller's codec). */
  snapshot?: Buffer;
  snapshotIndex: number;
  /** Where a torn (never synced) tail was cut, if one was. */
  repaired?: { file: string; offset: number };
}

/** Segments are zero-filled to this size before use: fdatasync then only
 * flushes data blocks, never file-size metadata (~3x faster here, as etcd's
 * preallocated WAL files). */
export const SEGMENT_BYTES = 16 * 1024 * 1024;
const HEADER = 8;
const BATCH_RECORD = HEADER + 1 + 4;
/** etcd's minSectorSize: a write that never reached the disk leaves whole sectors of zeros. */
const SECTOR = 512;
const ZERO = Buffer.alloc(1 << 20);

function zeroFill(fd: number, from: number, to: number): void {
  for (let pos = from; pos < to; ) {
    const n = Math.min(ZERO.length, to - pos);
    fs.writeSync(fd, ZERO, 0, n, pos);
    pos += n;
  }
}

function allZero(b: Buffer, from: number, to: number): boolean {
  // compared natively a chunk at a time: the unused rest of a segment is megabytes of zeros
  for (let pos = from; pos < to; pos += ZERO.length) {
    const end = Math.min(to, pos + ZERO.length);
    if (b.compare(ZERO, 0, end - pos, pos, end) !== 0) return false;
  }
  return true;
}

/** etcd's isTornEntry: some sector-aligned piece of [from, to) is all zeros, i.e. that part of the write never landed. */
function spansZeroSector(b: Buffer, from: number, to: number): boolean {
  for (let pos = from; pos < to; ) {
    const end = Math.min(to, (Math.floor(pos / SECTOR) + 1) * SECTOR);
    if (allZero(b, pos, end)) return true;
    pos = end;
  }
  return false;
}

/** Whether a whole, checksummed Batch record starts anywhere in b after `from`. */
function hasBatchAfter(b: Buffer, from: number): boolean {
  for (let pos = from; pos + BATCH_RECORD <= b.length; pos++) {
    if (b.readUInt32LE(pos) === 5 && b[pos + HEADER] === RecordType.Batch && crc(b.subarray(pos + HEADER, pos + BATCH_RECORD)) === b.readUInt32LE(pos + 4)) return true;
  }
  return false;
}

interface Segment {
  seq: number;
  file: string;
  maxIndex: number;
}

interface PendingRecord {
  buf: Buffer;
  /** Raft index of an entry record (0 for others): segments know the newest entry they hold. */
  index: number;
}

const segName = (seq: number): string => `${seq.toString(16).padStart(16, '0')}.wal`;

function crc(b: Buffer): number {
  return zlib.crc32(b) >>> 0;
}

function makeRecord(type: RecordType, payloadLen: number, fill: (b: Buffer, off: number) => void): Buffer {
  const rec = Buffer.allocUnsafe(HEADER + 1 + payloadLen);
  rec.writeUInt32LE(1 + payloadLen, 0);
  rec[HEADER] = type;
  fill(rec, HEADER + 1);
  rec.writeUInt32LE(crc(rec.subarray(HEADER)), 4);
  return rec;
}

export interface WalOpenOptions {
  sync?: boolean;
  /** tests only: a smaller preallocation */
  segmentBytes?: number;
  /** Lab only: a delay before each fdatasync (an injected slow disk); absent or 0: none. */
  syncDelayMs?: () => number;
}

export class Wal {
  private fd = -1;
  /** Write offset in the current segment: the end of its last whole record. */
  private offset = 0;
  private capacity = 0;
  /** A zero-filled file made ahead of time for the next segment (etcd's file pipeline). */
  private spare: Promise<string | undefined> | undefined;
  private spareReady: string | undefined;
  private segments: Segment[] = [];
  private pending: PendingRecord[] = [];
  /** The fdatasync of the last batch, while it runs: the next batch waits for it. */
  private syncing: Promise<void> | undefined;
  /** Set once a write or sync failed: nothing more is written (the page cache state is unknown, as etcd and PostgreSQL assume). */
  private failure: StorageError | undefined;
  private closed = false;
  /** The last snapshot and hard state records written: every new segment starts with them, so older segments can go. */
  private headSnapshot: Buffer | undefined;
  private headHardState: Buffer | undefined;

  private constructor(
    private readonly dir: string,
    private readonly sync: boolean,
    private readonly segmentBytes: number,
    /** Lab only (the chaos lab's "slow disk"): milliseconds to wait before each batch's fdatasync. */
    private readonly syncDelayMs?: () => number,
  ) {}

  /**
   * Opens (creating if needed) the log in dir and replays it. A torn tail
   * (the last batch, never synced) is cut; damage before it throws a
   * StorageError of kind 'corrupt' naming the file and offset, and nothing
   * is changed on disk.
   */
  static open(dir: string, opts: WalOpenOptions = {}): { wal: Wal; replay: WalReplay } {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw toStorageError(e, 'mkdir', dir);
    }
    const wal = new Wal(dir, opts.sync !== false, opts.segmentBytes ?? faultSegmentBytes ?? SEGMENT_BYTES, opts.syncDelayMs);
    const replay = wal.replayAll();
    return { wal, replay };
  }

  private corrupt(file: string, offset: number, what: string): StorageError {
    return new StorageError(
      'corrupt',
      file,
      `${what} in ${file} at offset ${offset}: the write-ahead log is damaged before its tail (restore this member from a snapshot, or remove and re-add it)`,
    );
  }

  private replayAll(): WalReplay {
    const files = fs
      .readdirSync(this.dir)
      .filter((f) => /^[0-9a-f]{16}\.wal$/.test(f))
      .sort();
    const out: WalReplay = { entries: [], snapshotIndex: 0 };
    let entries: WalEntry[] = [];
    let cut: { file: string; offset: number; size: number } | undefined;
    for (let fi = 0; fi < files.length; fi++) {
      const file = path.join(this.dir, files[fi]);
      const last = fi === files.length - 1;
      const buf = fs.readFileSync(file);
      const seg: Segment = { seq: parseInt(files[fi].slice(0, 16), 16), file, maxIndex: 0 };
      let pos = 0;
      // end of the last batch read so far (-1: no Batch record yet, a log written before they existed)
      let batchEnd = -1;
      let damage: string | undefined;
      while (pos < buf.length) {
        if (pos + HEADER > buf.length) {
          if (!allZero(buf, pos, buf.length)) damage = 'wal: unexpected end of file';
          break;
        }
        const len = buf.readUInt32LE(pos);
        if (len === 0) {
          // the zeros after the last record; anything else after a zero length is damage
          if (!allZero(buf, pos, buf.length)) damage = 'wal: zeroed record header';
          break;
        }
        if (pos + HEADER + len > buf.length) {
          damage = 'wal: unexpected end of file';
          break;
        }
        const body = buf.subarray(pos + HEADER, pos + HEADER + len);
        if (crc(body) !== buf.readUInt32LE(pos + 4)) {
          damage = 'walpb: crc mismatch';
          break;
        }
        const type = body[0];
        if (type === RecordType.Entry || type === RecordType.EntryLegacy) {
          let e: WalEntry;
          if (type === RecordType.Entry) {
            const pb = decodeEntry(body.subarray(1));
            e = { index: pb.Index, term: pb.Term, type: pb.Type, data: pb.Data };
          } else e = { index: Number(body.readBigUInt64LE(1)), term: Number(body.readBigUInt64LE(9)), type: body[17], data: body.subarray(18) };
          const index = e.index;
          // a newer leader's entry replaces everything from its index on
          if (entries.length && index <= entries[entries.length - 1].index) {
            const at = entries.findIndex((x) => x.index >= index);
            if (at >= 0) entries = entries.slice(0, at);
          }
          entries.push(e);
          if (index > seg.maxIndex) seg.maxIndex = index;
        } else if (type === RecordType.HardState || type === RecordType.HardStateLegacy) {
          if (type === RecordType.HardState) {
            const hs = decodeHardState(body.subarray(1));
            out.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
          } else out.hardState = { term: Number(body.readBigUInt64LE(1)), vote: body.readBigUInt64LE(9), commit: Number(body.readBigUInt64LE(17)) };
          this.headHardState = Buffer.from(buf.subarray(pos, pos + HEADER + len));
        } else if (type === RecordType.Snapshot) {
          out.snapshotIndex = Number(body.readBigUInt64LE(1));
          out.snapshot = Buffer.from(body.subarray(9));
          this.headSnapshot = Buffer.from(buf.subarray(pos, pos + HEADER + len));
        } else if (type === RecordType.Batch) {
          batchEnd = pos + BATCH_RECORD + body.readUInt32LE(1);
        } else {
          throw this.corrupt(file, pos, `wal: unknown record type ${type}`);
        }
        pos += HEADER + len;
      }
      if (damage !== undefined) {
        if (!last || !this.isTornTail(buf, pos, batchEnd)) throw this.corrupt(file, pos, damage);
        cut = { file, offset: pos, size: buf.length };
      }
      if (last) {
        this.offset = pos;
        this.capacity = buf.length;
      }
      this.segments.push(seg);
    }
    if (cut) {
      // the last batch never finished its sync, so it never was acknowledged: clear it, and a later replay stops here too
      try {
        const fd = fs.openSync(cut.file, 'r+');
        // from the end backwards: a repair cut short by another crash leaves a log that is judged the same way again
        for (let end = cut.size; end > cut.offset; end -= ZERO.length) zeroFill(fd, Math.max(cut.offset, end - ZERO.length), end);
        fs.fsyncSync(fd);
        fs.closeSync(fd);
      } catch (e) {
        throw toStorageError(e, 'write', cut.file);
      }
      out.repaired = { file: cut.file, offset: cut.offset };
    }
    out.entries = entries.filter((e) => e.index > out.snapshotIndex);
    const lastSeg = this.segments[this.segments.length - 1];
    try {
      if (lastSeg) {
        this.fd = fs.openSync(lastSeg.file, 'r+');
        faultSynced(lastSeg.file, this.offset);
        if (this.capacity < this.segmentBytes) {
          zeroFill(this.fd, this.capacity, this.segmentBytes);
          this.capacity = this.segmentBytes;
        }
      } else this.newSegment(1, 0);
    } catch (e) {
      if (this.fd >= 0) fs.closeSync(this.fd);
      throw toStorageError(e, 'write', lastSeg?.file ?? this.dir);
    }
    this.prepareSpare();
    return out;
  }

  /**
   * Whether the damaged record at `pos` of the last segment is a torn write
   * of the last batch (cut it) rather than corruption (refuse). It is torn
   * only if (a) it is torn by etcd's rule: some sector it spans is all zeros,
   * or the file was cut short inside it, and (b) nothing was written after
   * the batch it belongs to: a later batch is only written once this one was
   * synced, so data after it means this batch was acknowledged.
   */
  private isTornTail(buf: Buffer, pos: number, batchEnd: number): boolean {
    const short = buf.length < this.segmentBytes;
    if (pos + HEADER > buf.length) return short;
    const len = buf.readUInt32LE(pos);
    // where acknowledged data could start again: after the batch holding pos,
    // or after the Batch record that must begin here
    let after: number;
    if (batchEnd > pos) after = batchEnd;
    else if (pos === Math.max(batchEnd, 0)) {
      // the batch's own header is damaged, so its extent is unknown: the bytes after it may be sectors of the
      // same never-synced write that landed while its first did not (a power cut keeps any subset of them);
      // it was acknowledged only if a later batch, written after its sync, follows
      if (pos + BATCH_RECORD > buf.length) return short;
      return spansZeroSector(buf, pos, pos + BATCH_RECORD) && !hasBatchAfter(buf, pos + 1);
    } else after = pos + HEADER + len; // a log from before Batch records: only this record's extent is known
    if (!allZero(buf, Math.min(after, buf.length), buf.length)) return false;
    if (len === 0) return true;
    const end = pos + HEADER + len;
    // a torn length is never longer than the record written (its missing bytes are zeros)
    if (batchEnd > pos && end > batchEnd) return false;
    if (end > buf.length) return short;
    return spansZeroSector(buf, pos + HEADER, end);
  }

  private prepareSpare(): void {
    const tmp = path.join(this.dir, `spare.tmp`);
    // off the event loop: 16 MiB of zeros written by the thread pool
    this.spare = (async () => {
      try {
        // on a nearly full disk, filling a spare would take the last space the data file needs
        const st = await fs.promises.statfs(this.dir);
        if (st.bavail * st.bsize < 2 * this.segmentBytes) return undefined;
        const fh = await fs.promises.open(tmp, 'w');
        try {
          for (let pos = 0; pos < this.segmentBytes; pos += ZERO.length) await fh.write(ZERO, 0, Math.min(ZERO.length, this.segmentBytes - pos), pos);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return tmp;
      } catch {
        // e.g. no space: give the space back; the next segment is then made when it is needed, and fails there
        await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
        return undefined;
      }
    })();
  }

  /** Switches to a new segment of at least `need` bytes (the spare one when it is ready). */
  private newSegment(seq: number, need: number): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    const file = path.join(this.dir, segName(seq));
    const size = Math.max(this.segmentBytes, need);
    let fromSpare = false;
    if (this.spareReady && size === this.segmentBytes) {
      fs.renameSync(this.spareReady, file);
      this.spareReady = undefined;
      fromSpare = true;
    }
    try {
      this.fd = fs.openSync(file, fromSpare ? 'r+' : 'w+');
      if (!fromSpare) {
        zeroFill(this.fd, 0, size);
        if (this.sync) fs.fsyncSync(this.fd);
      }
    } catch (e) {
      // a partial segment would only hold space: the records meant for it were not written
      if (this.fd >= 0) fs.closeSync(this.fd);
      this.fd = -1;
      fs.rmSync(file, { force: true });
      throw toStorageError(e, 'write', file);
    }
    this.offset = 0;
    this.capacity = size;
    this.segments.push({ seq, file, maxIndex: 0 });
    if (this.sync) {
      // the new file's directory entry must survive a crash too
      const dfd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
      faultSynced(file, 0);
    }
    if (fromSpare) this.prepareSpare();
  }

  private record(type: RecordType, payloadLen: number, fill: (b: Buffer, off: number) => void, index = 0): void {
    this.pending.push({ buf: makeRecord(type, payloadLen, fill), index });
  }

  /**
   * Entries as raftpb.Entry bytes (etcd's WAL record payload), written straight
   * into the record: Term, Index and Type always present as gogoproto writes
   * them, Data when non-empty; no intermediate message or writer per entry.
   */
  appendEntries(entries: readonly WalEntry[]): void {
    for (const e of entries) {
      const dataLen = e.data.length;
      const len = 1 + varintSize(e.term) + 1 + varintSize(e.index) + 1 + varintSize(e.type) + (dataLen ? 1 + varintSize(dataLen) + dataLen : 0);
      this.record(
        RecordType.Entry,
        len,
        (b, o) => {
          b[o++] = 0x10; // Term = 2, varint
          o = writeVarintAt(b, o, e.term);
          b[o++] = 0x18; // Index = 3, varint
          o = writeVarintAt(b, o, e.index);
          b[o++] = 0x08; // Type = 1, varint
          o = writeVarintAt(b, o, e.type);
          if (dataLen) {
            b[o++] = 0x22; // Data = 4, bytes
            o = writeVarintAt(b, o, dataLen);
            b.set(e.data, o);
          }
        },
        e.index,
      );
    }
  }

  setHardState(hs: WalHardState): void {
    const pb = encodeHardState({ term: hs.term, vote: hs.vote, commit: hs.commit });
    this.record(RecordType.HardState, pb.length, (b, o) => pb.copy(b, o));
  }

  saveSnapshot(index: number, meta: Buffer): void {
    this.record(RecordType.Snapshot, 8 + meta.length, (b, o) => {
      b.writeBigUInt64LE(BigInt(index), o);
      meta.copy(b, o + 8);
    });
  }

  /** The error that stopped this log (a failed write or sync), if one did. */
  get failed(): StorageError | undefined {
    return this.failure;
  }

  private fail(e: unknown, op: string, file: string): StorageError {
    this.failure ??= toStorageError(e, op, file);
    return this.failure;
  }

  private get currentFile(): string {
    return this.segments[this.segments.length - 1]?.file ?? this.dir;
  }

  /**
   * Writes what was appended since the last sync and makes it durable (one
   * write, one fdatasync). Rejects with a StorageError when the disk is full
   * or failing: then nothing flushed from here on is durable, and the log
   * takes no more writes. `inline`: the fdatasync runs on the calling
   * thread (one thread wakeup instead of the pool's and then the event
   * loop's), for a caller with nothing else to do meanwhile.
   */
  flush(inline = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('wal closed'));
    // one unsynced batch at a time: what a crash can tear is then only the last one
    if (this.syncing) return this.syncing.then(() => this.flush());
    if (!this.pending.length) return Promise.resolve();
    const snap = this.headSnapshot;
    try {
      this.writePending();
    } catch (e) {
      return Promise.reject(this.fail(e, 'write', this.currentFile));
    }
    if (!this.sync) return Promise.resolve();
    const fd = this.fd;
    const file = this.currentFile;
    const synced = this.offset;
    // the chaos lab's slow disk: a wait before each fdatasync (off unless the lab sets it for this member)
    const delay = this.syncDelayMs?.() ?? 0;
    const onSynced = (): void => {
      faultPoint('wal-sync');
      faultSynced(file, synced);
      if (snap !== this.headSnapshot) faultPoint('wal-snapshot-synced');
    };
    if (inline && delay <= 0) {
      try {
        fs.fdatasyncSync(fd);
      } catch (err) {
        return Promise.reject(this.fail(err, 'fdatasync', file));
      }
      onSynced();
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve, reject) => {
      const sync = (): void =>
        fs.fdatasync(fd, (err) => {
          this.syncing = undefined;
          if (err) return reject(this.fail(err, 'fdatasync', file));
          onSynced();
          resolve();
        });
      if (delay > 0) setTimeout(sync, delay);
      else sync();
    });
    this.syncing = done;
    return done;
  }

  private writePending(): void {
    const recs = this.pending;
    this.pending = [];
    let i = 0;
    while (i < recs.length) {
      // a Batch record, then as many whole records as fit in the current segment, in one write
      let n = BATCH_RECORD;
      let j = i;
      while (j < recs.length && this.offset + n + recs[j].buf.length <= this.capacity) n += recs[j++].buf.length;
      if (j === i) {
        // the next record does not fit: sync this segment and continue in a new one, which starts with the head records
        this.syncNow(this.fd);
        const head = this.head();
        this.newSegment(this.segments[this.segments.length - 1].seq + 1, BATCH_RECORD + head.reduce((a, r) => a + r.buf.length, 0) + recs[i].buf.length);
        recs.splice(i, 0, ...head);
        continue;
      }
      const buf = Buffer.allocUnsafe(n);
      makeRecord(RecordType.Batch, 4, (b, o) => b.writeUInt32LE(n - BATCH_RECORD, o)).copy(buf, 0);
      const seg = this.segments[this.segments.length - 1];
      for (let k = i, at = BATCH_RECORD; k < j; k++) {
        recs[k].buf.copy(buf, at);
        at += recs[k].buf.length;
        if (recs[k].index > seg.maxIndex) seg.maxIndex = recs[k].index;
        const type = recs[k].buf[HEADER];
        if (type === RecordType.Snapshot) this.headSnapshot = recs[k].buf;
        else if (type === RecordType.HardState) this.headHardState = recs[k].buf;
      }
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off, this.offset + off);
      this.offset += buf.length;
      i = j;
    }
  }

  private head(): PendingRecord[] {
    const out: PendingRecord[] = [];
    if (this.headSnapshot) out.push({ buf: this.headSnapshot, index: 0 });
    if (this.headHardState) out.push({ buf: this.headHardState, index: 0 });
    return out;
  }

  private syncNow(fd: number): void {
    if (!this.sync) return;
    fs.fdatasyncSync(fd);
    faultSynced(this.currentFile, this.offset);
  }

  /**
   * Starts a new segment once the current one is large; the new one begins
   * with the last snapshot and hard state records, written and synced before
   * anything else, so older segments can go. Call it between flushes (never
   * while one's sync runs, whose file descriptor it would close).
   */
  maybeRotate(): void {
    if (this.failure || this.closed || this.syncing || this.offset < this.capacity * 0.9) return;
    if (!this.spareReady) {
      // the spare segment is made off the write path; take it once it is ready, or try again if there was no room
      if (!this.spare) this.prepareSpare();
      const spare = this.spare;
      void spare?.then((f) => {
        if (f) this.spareReady ??= f;
        else if (this.spare === spare) this.spare = undefined;
      });
      return;
    }
    const held = this.pending;
    this.pending = [];
    try {
      this.syncNow(this.fd);
      this.newSegment(this.segments[this.segments.length - 1].seq + 1, 0);
      this.pending = this.head();
      this.writePending();
      this.syncNow(this.fd);
    } catch (e) {
      this.fail(e, 'write', this.currentFile);
    } finally {
      this.pending = held.concat(this.pending);
    }
  }

  /** Deletes whole segments (never the current one) holding only entries at or below index. */
  releaseTo(index: number): void {
    while (this.segments.length > 1 && this.segments[0].maxIndex <= index) {
      const s = this.segments.shift()!;
      fs.rmSync(s.file, { force: true });
      faultPoint('wal-release');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch(() => undefined);
    this.closed = true;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    await this.spare;
  }
}
