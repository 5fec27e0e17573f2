// The write-ahead log of raft entries, hard state and snapshot metadata, as
// etcd's WAL: append-only segment files of checksummed records, one write and
// one fdatasync per Ready. An LMDB commit syncs twice (data pages, then the
// meta page) and rewrites B-tree pages; an appended segment syncs once, so
// the raft loop waits ~5x less per batch. The state machine (LMDB) is then
// committed lazily, and replayed from this log after a crash.
//
// Record: u32 LE body length, u32 LE crc32(body), body = type byte + payload.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export const enum RecordType {
  Entry = 1,
  HardState = 2,
  Snapshot = 3,
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
  entries: WalEntry[];
  hardState?: WalHardState;
  /** Last snapshot metadata record (opaque bytes, owned by the caller's codec). */
  snapshot?: Buffer;
  snapshotIndex: number;
}

/** Segments are zero-filled to this size before use: fdatasync then only
 * flushes data blocks, never file-size metadata (~3x faster here, as etcd's
 * preallocated WAL files). */
const SEGMENT_BYTES = 16 * 1024 * 1024;
const HEADER = 8;
const ZERO = Buffer.alloc(1 << 20);

function zeroFill(fd: number, from: number, to: number): void {
  for (let pos = from; pos < to; ) {
    const n = Math.min(ZERO.length, to - pos);
    fs.writeSync(fd, ZERO, 0, n, pos);
    pos += n;
  }
}

interface Segment {
  seq: number;
  file: string;
  maxIndex: number;
}

const segName = (seq: number): string => `${seq.toString(16).padStart(16, '0')}.wal`;

function crc(b: Buffer): number {
  return zlib.crc32(b) >>> 0;
}

export class Wal {
  private fd = -1;
  /** Write offset in the current segment: the end of its last whole record. */
  private offset = 0;
  private capacity = 0;
  /** A zero-filled file made ahead of time for the next segment (etcd's file pipeline). */
  private spare: Promise<string | undefined> | undefined;
  private segments: Segment[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private syncing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly sync: boolean,
  ) {}

  /** Opens (creating if needed) the log in dir and replays it. A torn tail is cut off. */
  static open(dir: string, opts: { sync?: boolean } = {}): { wal: Wal; replay: WalReplay } {
    fs.mkdirSync(dir, { recursive: true });
    const wal = new Wal(dir, opts.sync !== false);
    const replay = wal.replayAll();
    return { wal, replay };
  }

  private replayAll(): WalReplay {
    const files = fs
      .readdirSync(this.dir)
      .filter((f) => /^[0-9a-f]{16}\.wal$/.test(f))
      .sort();
    const out: WalReplay = { entries: [], snapshotIndex: 0 };
    let entries: WalEntry[] = [];
    for (let fi = 0; fi < files.length; fi++) {
      const file = path.join(this.dir, files[fi]);
      const buf = fs.readFileSync(file);
      const seg: Segment = { seq: parseInt(files[fi].slice(0, 16), 16), file, maxIndex: 0 };
      let pos = 0;
      while (pos + HEADER <= buf.length) {
        const len = buf.readUInt32LE(pos);
        const sum = buf.readUInt32LE(pos + 4);
        if (len === 0 || pos + HEADER + len > buf.length) break;
        const body = buf.subarray(pos + HEADER, pos + HEADER + len);
        if (crc(body) !== sum) break;
        const type = body[0];
        if (type === RecordType.Entry) {
          const index = Number(body.readBigUInt64LE(1));
          const e: WalEntry = { index, term: Number(body.readBigUInt64LE(9)), type: body[17], data: Buffer.from(body.subarray(18)) };
          // a newer leader's entry replaces everything from its index on
          if (entries.length && index <= entries[entries.length - 1].index) {
            const cut = entries.findIndex((x) => x.index >= index);
            if (cut >= 0) entries = entries.slice(0, cut);
          }
          entries.push(e);
          if (index > seg.maxIndex) seg.maxIndex = index;
        } else if (type === RecordType.HardState) {
          out.hardState = { term: Number(body.readBigUInt64LE(1)), vote: body.readBigUInt64LE(9), commit: Number(body.readBigUInt64LE(17)) };
        } else if (type === RecordType.Snapshot) {
          out.snapshotIndex = Number(body.readBigUInt64LE(1));
          out.snapshot = Buffer.from(body.subarray(9));
        }
        pos += HEADER + len;
      }
      const torn = pos + HEADER <= buf.length && buf.readUInt32LE(pos) !== 0;
      if (torn && fi !== files.length - 1) throw new Error(`wal: corrupt record in ${files[fi]} at offset ${pos} (not the last segment)`);
      if (fi === files.length - 1) {
        this.offset = pos;
        this.capacity = buf.length;
        if (torn || (pos < buf.length && pos + HEADER > buf.length)) {
          // a write torn by a crash: it never was acknowledged; clear it so a later replay stops here too
          const fd = fs.openSync(file, 'r+');
          zeroFill(fd, pos, buf.length);
          fs.fsyncSync(fd);
          fs.closeSync(fd);
        }
      }
      this.segments.push(seg);
    }
    out.entries = entries.filter((e) => e.index > out.snapshotIndex);
    const last = this.segments[this.segments.length - 1];
    if (last) {
      this.fd = fs.openSync(last.file, 'r+');
      if (this.capacity < SEGMENT_BYTES) {
        zeroFill(this.fd, this.capacity, SEGMENT_BYTES);
        this.capacity = SEGMENT_BYTES;
      }
    } else this.newSegment(1, 0);
    this.prepareSpare();
    return out;
  }

  private prepareSpare(): void {
    const tmp = path.join(this.dir, `spare.tmp`);
    // off the event loop: 16 MiB of zeros written by the thread pool
    this.spare = (async () => {
      try {
        const fh = await fs.promises.open(tmp, 'w');
        for (let pos = 0; pos < SEGMENT_BYTES; pos += ZERO.length) await fh.write(ZERO, 0, Math.min(ZERO.length, SEGMENT_BYTES - pos), pos);
        await fh.sync();
        await fh.close();
        return tmp;
      } catch {
        return undefined;
      }
    })();
  }

  /** Switches to a new segment of at least `need` bytes (the spare one when it is ready). */
  private newSegment(seq: number, need: number): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    const file = path.join(this.dir, segName(seq));
    const size = Math.max(SEGMENT_BYTES, need);
    let fromSpare = false;
    if (this.spareReady && size === SEGMENT_BYTES) {
      fs.renameSync(this.spareReady, file);
      this.spareReady = undefined;
      fromSpare = true;
    }
    this.fd = fs.openSync(file, fromSpare ? 'r+' : 'w+');
    if (!fromSpare) {
      zeroFill(this.fd, 0, size);
      if (this.sync) fs.fsyncSync(this.fd);
    }
    this.offset = 0;
    this.capacity = size;
    this.segments.push({ seq, file, maxIndex: 0 });
    if (this.sync) {
      // the new file's directory entry must survive a crash too
      const dfd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(dfd);
      fs.closeSync(dfd);
    }
    if (fromSpare) this.prepareSpare();
  }

  private spareReady: string | undefined;

  private record(type: RecordType, payloadLen: number, fill: (b: Buffer, off: number) => void): void {
    const rec = Buffer.allocUnsafe(HEADER + 1 + payloadLen);
    rec.writeUInt32LE(1 + payloadLen, 0);
    rec[HEADER] = type;
    fill(rec, HEADER + 1);
    rec.writeUInt32LE(crc(rec.subarray(HEADER)), 4);
    this.pending.push(rec);
    this.pendingBytes += rec.length;
  }

  appendEntries(entries: readonly WalEntry[]): void {
    const seg = this.segments[this.segments.length - 1];
    for (const e of entries) {
      this.record(RecordType.Entry, 17 + e.data.length, (b, o) => {
        b.writeBigUInt64LE(BigInt(e.index), o);
        b.writeBigUInt64LE(BigInt(e.term), o + 8);
        b[o + 16] = e.type;
        b.set(e.data, o + 17);
      });
      if (e.index > seg.maxIndex) seg.maxIndex = e.index;
    }
  }

  setHardState(hs: WalHardState): void {
    this.record(RecordType.HardState, 24, (b, o) => {
      b.writeBigUInt64LE(BigInt(hs.term), o);
      b.writeBigUInt64LE(hs.vote, o + 8);
      b.writeBigUInt64LE(BigInt(hs.commit), o + 16);
    });
  }

  saveSnapshot(index: number, meta: Buffer): void {
    this.record(RecordType.Snapshot, 8 + meta.length, (b, o) => {
      b.writeBigUInt64LE(BigInt(index), o);
      meta.copy(b, o + 8);
    });
  }

  /** Writes what was appended since the last sync and makes it durable (one write, one fdatasync). */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('wal closed'));
    if (!this.pending.length) return this.syncing ?? Promise.resolve();
    const recs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let i = 0;
    while (i < recs.length) {
      // as many whole records as fit in the current segment, in one write
      let n = 0;
      let j = i;
      while (j < recs.length && this.offset + n + recs[j].length <= this.capacity) n += recs[j++].length;
      if (j === i) {
        // the next record does not fit: sync this segment and continue in a new one
        this.syncNow(this.fd);
        this.newSegment(this.segments[this.segments.length - 1].seq + 1, recs[i].length);
        continue;
      }
      const buf = j - i === 1 ? recs[i] : Buffer.concat(recs.slice(i, j), n);
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off, this.offset + off);
      this.offset += buf.length;
      i = j;
    }
    const fd = this.fd;
    const done = this.sync
      ? new Promise<void>((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())))
      : Promise.resolve();
    this.syncing = done;
    return done;
  }

  private syncNow(fd: number): void {
    if (this.sync) fs.fdatasyncSync(fd);
  }

  /**
   * Starts a new segment once the current one is large; the new one begins
   * with the current snapshot and hard state so older segments can go.
   */
  maybeRotate(snapshotIndex: number, snapshotMeta: Buffer | undefined, hs: WalHardState): void {
    if (this.offset < this.capacity * 0.9) return;
    // the spare segment is made off the write path; take it once it is ready
    void this.spare?.then((f) => {
      if (f && !this.spareReady) this.spareReady = f;
    });
    if (!this.spareReady) return;
    const seq = this.segments[this.segments.length - 1].seq + 1;
    this.syncNow(this.fd);
    this.newSegment(seq, 0);
    if (snapshotMeta) this.saveSnapshot(snapshotIndex, snapshotMeta);
    this.setHardState(hs);
  }

  /** Deletes whole segments (never the current one) holding only entries at or below index. */
  releaseTo(index: number): void {
    while (this.segments.length > 1 && this.segments[0].maxIndex <= index) {
      const s = this.segments.shift()!;
      fs.rmSync(s.file, { force: true });
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
