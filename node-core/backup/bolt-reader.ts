// A bbolt file reader for etcd snapshots (`etcdctl snapshot save` output:
// the bolt file followed by its sha256) and etcd data files
// (`member/snap/db`). Pages are read on demand with positioned reads, so a
// walk holds only the path from the root to the current leaf in memory.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import {
  BoltFormatError,
  BRANCH_ELEMENT_SIZE,
  BRANCH_PAGE_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  decodeMetaPage,
  FREELIST_COUNT_OVERFLOW,
  FREELIST_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  LEAF_PAGE_FLAG,
  type Meta,
  PAGE_HEADER_SIZE,
  type PageHeader,
  readPageHeader,
  readPgid,
} from './bolt-format';

const SHA256_SIZE = 32;
const HASH_CHUNK = 1 << 20;

/**
 * etcd's rule (clientv3/snapshot hasChecksum): a bolt file is a whole number
 * of pages, so a size 32 bytes past a multiple of 512 means a sha256 follows.
 */
export function hasTrailingSha256(fileSize: number): boolean {
  return fileSize % 512 === SHA256_SIZE;
}

/** A bucket named by its path from the top level (one element for etcd's flat buckets). */
export type BucketPath = readonly (Uint8Array | string)[];

export interface BoltWalkEntry {
  /** Names of the enclosing buckets, outermost first. */
  path: Buffer[];
  key: Buffer;
  value: Buffer;
}

export interface OpenBoltOptions {
  /**
   * What to do with a trailing sha256: 'verify' (default) checks it and
   * fails on a mismatch, 'ignore' only strips it.
   */
  hash?: 'verify' | 'ignore';
  /** Fail when the file carries no sha256 (etcd's restore without --skip-hash-check). */
  requireHash?: boolean;
}

interface BucketRef {
  /** Root page id, or 0 for an inline bucket. */
  root: number;
  sequence: bigint;
  /** The fake leaf page stored after the header of an inline bucket. */
  inline?: Buffer;
}

interface Item {
  key: Buffer;
  value: Buffer;
  flags: number;
}

type PageVisitor = (id: number, h: PageHeader) => void;

/** bolt reports every problem; past this many, a badly broken file's report only gets longer. */
const MAX_CHECK_ERRORS = 100;

function toBuffer(b: Uint8Array | string): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function describe(path: readonly Buffer[]): string {
  return path.map((p) => (/^[\x20-\x7e]*$/.test(p.toString('latin1')) ? p.toString('latin1') : `0x${p.toString('hex')}`)).join('/');
}

/** An open bolt file. Close it when done; reads are synchronous positioned reads. */
export class BoltFile {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    /** Size of the file on disk, including any trailing sha256. */
    readonly fileSize: number,
    /** Bytes that belong to the bolt database (the file minus any trailing sha256). */
    readonly dbSize: number,
    /** The sha256 stored after the database, if the file has one. */
    readonly storedSha256: Buffer | undefined,
    /** True when the stored sha256 was checked against the database bytes. */
    readonly hashVerified: boolean,
    /** The meta page in effect (the valid one with the higher txid, as bolt picks). */
    readonly meta: Meta,
  ) {}

  get pageSize(): number {
    return this.meta.pageSize;
  }

  static async open(file: string, opts: OpenBoltOptions = {}): Promise<BoltFile> {
    const fd = fs.openSync(file, 'r');
    try {
      const fileSize = fs.fstatSync(fd).size;
      const hashed = hasTrailingSha256(fileSize);
      const dbSize = hashed ? fileSize - SHA256_SIZE : fileSize;
      if (opts.requireHash && !hashed) throw new BoltFormatError('snapshot missing hash but --skip-hash-check=false');
      let stored: Buffer | undefined;
      let verified = false;
      if (hashed) {
        stored = Buffer.alloc(SHA256_SIZE);
        fs.readSync(fd, stored, 0, SHA256_SIZE, dbSize);
        if (opts.hash !== 'ignore') {
          const actual = await sha256OfRange(file, dbSize);
          if (!actual.equals(stored)) {
            throw new BoltFormatError(`expected sha256 ${stored.toString('hex')}, got ${actual.toString('hex')}`);
          }
          verified = true;
        }
      }
      const meta = readMeta(fd, dbSize);
      if (meta.pgid * meta.pageSize > dbSize) {
        throw new BoltFormatError(`file is truncated: ${dbSize} bytes, meta needs ${meta.pgid} pages of ${meta.pageSize}`);
      }
      return new BoltFile(file, fd, fileSize, dbSize, stored, verified, meta);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }

  /** Reads a page with its overflow pages. */
  private page(id: number): Buffer {
    if (this.closed) throw new BoltFormatError('bolt file is closed');
    if (id < 2 || id >= this.meta.pgid) throw new BoltFormatError(`page ${id} out of bounds (high water mark ${this.meta.pgid})`);
    const ps = this.meta.pageSize;
    let buf = Buffer.allocUnsafe(ps);
    this.readFully(buf, id * ps);
    const h = readPageHeader(buf);
    if (h.id !== id) throw new BoltFormatError(`page ${id} has id ${h.id}`);
    if (h.overflow) {
      if (id + h.overflow >= this.meta.pgid) throw new BoltFormatError(`page ${id} overflows past the high water mark`);
      const big = Buffer.allocUnsafe(ps * (h.overflow + 1));
      buf.copy(big, 0);
      this.readFully(big.subarray(ps), (id + 1) * ps);
      buf = big;
    }
    return buf;
  }

  private readFully(buf: Buffer, position: number): void {
    for (let off = 0; off < buf.length; ) {
      const n = fs.readSync(this.fd, buf, off, buf.length - off, position + off);
      if (!n) throw new BoltFormatError(`unexpected end of file at ${position + off}`);
      off += n;
    }
  }

  private rootRef(): BucketRef {
    return { root: this.meta.root, sequence: this.meta.sequence };
  }

  private static bucketRef(value: Buffer, where: readonly Buffer[]): BucketRef {
    if (value.length < BUCKET_HEADER_SIZE) throw new BoltFormatError(`bucket ${describe(where)}: value too short for a bucket header`);
    const root = readPgid(value, 0);
    const sequence = value.readBigUInt64LE(8);
    if (root !== 0) return { root, sequence };
    if (value.length < BUCKET_HEADER_SIZE + PAGE_HEADER_SIZE) throw new BoltFormatError(`bucket ${describe(where)}: inline page too short`);
    // copy: the fake page must be independent of the parent page buffer's lifetime
    return { root: 0, sequence, inline: Buffer.from(value.subarray(BUCKET_HEADER_SIZE)) };
  }

  /** Yields every element of a bucket in key order (nested buckets carry BUCKET_LEAF_FLAG). */
  private *items(ref: BucketRef, where: readonly Buffer[], onPage?: PageVisitor): Generator<Item> {
    let prev: Buffer | undefined;
    const check = (key: Buffer): void => {
      if (prev && Buffer.compare(prev, key) >= 0) throw new BoltFormatError(`bucket ${describe(where)}: keys out of order`);
      prev = key;
    };
    if (ref.root === 0) {
      for (const it of leafItems(ref.inline!, where)) {
        check(it.key);
        yield it;
      }
      return;
    }
    yield* this.walkPage(ref.root, where, check, 0, onPage);
  }

  private *walkPage(
    id: number,
    where: readonly Buffer[],
    check: (k: Buffer) => void,
    depth: number,
    onPage: PageVisitor | undefined,
  ): Generator<Item> {
    // bolt trees are shallow (a few levels for terabytes); deeper means a cycle
    if (depth > 64) throw new BoltFormatError(`bucket ${describe(where)}: tree too deep at page ${id}`);
    const p = this.page(id);
    const h = readPageHeader(p);
    onPage?.(id, h);
    if (h.flags & LEAF_PAGE_FLAG) {
      for (const it of leafItems(p, where)) {
        check(it.key);
        yield it;
      }
    } else if (h.flags & BRANCH_PAGE_FLAG) {
      for (let i = 0; i < h.count; i++) {
        const el = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
        yield* this.walkPage(readPgid(p, el + 8), where, check, depth + 1, onPage);
      }
    } else {
      throw new BoltFormatError(`bucket ${describe(where)}: page ${id} has unexpected flags 0x${h.flags.toString(16)}`);
    }
  }

  private resolve(path: BucketPath): BucketRef | undefined {
    let ref = this.rootRef();
    const where: Buffer[] = [];
    for (const part of path) {
      const name = toBuffer(part);
      where.push(name);
      let next: BucketRef | undefined;
      for (const it of this.items(ref, where.slice(0, -1))) {
        const c = Buffer.compare(it.key, name);
        if (c < 0) continue;
        if (c === 0 && it.flags & BUCKET_LEAF_FLAG) next = BoltFile.bucketRef(it.value, where);
        break;
      }
      if (!next) return undefined;
      ref = next;
    }
    return ref;
  }

  /** Names of the buckets directly inside `path` (the top-level buckets by default). */
  bucketNames(path: BucketPath = []): Buffer[] {
    const ref = this.resolve(path);
    if (!ref) return [];
    const out: Buffer[] = [];
    for (const it of this.items(ref, path.map(toBuffer))) if (it.flags & BUCKET_LEAF_FLAG) out.push(Buffer.from(it.key));
    return out;
  }

  hasBucket(path: BucketPath): boolean {
    return path.length > 0 && this.resolve(path) !== undefined;
  }

  /** The key/value pairs of a bucket in key order, skipping nested buckets; nothing if the bucket is absent. */
  *entries(path: BucketPath): Generator<[Buffer, Buffer]> {
    const ref = this.resolve(path);
    if (!ref) return;
    for (const it of this.items(ref, path.map(toBuffer))) {
      if (!(it.flags & BUCKET_LEAF_FLAG)) yield [it.key, it.value];
    }
  }

  /** Every element of a bucket in key order, nested buckets included (flagged, value = raw bucket header). */
  *elements(path: BucketPath): Generator<{ key: Buffer; value: Buffer; bucket: boolean }> {
    const ref = this.resolve(path);
    if (!ref) return;
    for (const it of this.items(ref, path.map(toBuffer))) yield { key: it.key, value: it.value, bucket: !!(it.flags & BUCKET_LEAF_FLAG) };
  }

  /** Every key/value pair of every bucket, depth first, in key order. */
  *walk(): Generator<BoltWalkEntry> {
    yield* this.walkBucket(this.rootRef(), []);
  }

  private *walkBucket(ref: BucketRef, path: Buffer[], onPage?: PageVisitor): Generator<BoltWalkEntry> {
    for (const it of this.items(ref, path, onPage)) {
      if (it.flags & BUCKET_LEAF_FLAG) {
        const sub = [...path, it.key];
        yield* this.walkBucket(BoltFile.bucketRef(it.value, sub), sub, onPage);
      } else if (path.length) {
        yield { path, key: it.key, value: it.value };
      } else {
        throw new BoltFormatError(`key/value ${describe([it.key])} outside any bucket`);
      }
    }
  }

  /**
   * bolt's Tx.Check (what `etcdctl snapshot status` runs first): every page
   * below the high-water mark is reachable exactly once or free, reachable
   * pages are branches or leaves, and keys are in order. `visit` sees every
   * key/value on the way, so a caller's own validation costs no second read.
   * Returns the problems found (empty when the file is sound).
   */
  check(visit?: (entry: BoltWalkEntry) => void): string[] {
    const errors: string[] = [];
    const report = (msg: string): void => {
      if (errors.length < MAX_CHECK_ERRORS) errors.push(msg);
    };
    const n = this.meta.pgid;
    const REACHABLE = 1;
    const FREE = 2;
    const state = new Uint8Array(n);
    state[0] = state[1] = REACHABLE;
    try {
      if (this.meta.freelist >= 0) {
        const fl = this.page(this.meta.freelist);
        const h = readPageHeader(fl);
        if (!(h.flags & FREELIST_PAGE_FLAG)) report(`page ${this.meta.freelist}: freelist page has flags 0x${h.flags.toString(16)}`);
        for (let i = 0; i <= h.overflow; i++) state[this.meta.freelist + i] = REACHABLE;
        let first = 0;
        let count = h.count;
        if (count === FREELIST_COUNT_OVERFLOW) {
          first = 1;
          count = readPgid(fl, PAGE_HEADER_SIZE);
        }
        if (PAGE_HEADER_SIZE + (first + count) * 8 > fl.length) throw new BoltFormatError(`freelist of ${count} ids overruns its page`);
        for (let i = first; i < first + count; i++) {
          const id = readPgid(fl, PAGE_HEADER_SIZE + i * 8);
          if (id >= n) report(`page ${id}: freed page out of bounds`);
          else if (state[id] === FREE) report(`page ${id}: already freed`);
          else if (state[id] === REACHABLE) report(`page ${id}: freed page is in use`);
          else state[id] = FREE;
        }
      }
      const onPage: PageVisitor = (id, h) => {
        for (let i = 0; i <= h.overflow; i++) {
          const p = id + i;
          if (p >= n) report(`page ${p}: out of bounds: ${n}`);
          else if (state[p] === REACHABLE) report(`page ${p}: multiple references`);
          else if (state[p] === FREE) report(`page ${p}: reachable freed`);
          else state[p] = REACHABLE;
        }
      };
      for (const e of this.walkBucket(this.rootRef(), [], onPage)) visit?.(e);
    } catch (err) {
      if (!(err instanceof BoltFormatError)) throw err;
      report(err.message);
      return errors;
    }
    // without a persisted freelist (NoFreelistSync) the free pages are exactly the unreachable ones
    if (this.meta.freelist >= 0) {
      for (let i = 0; i < n; i++) if (!state[i]) report(`page ${i}: unreachable unfreed`);
    }
    return errors;
  }

  /** Key/value counts per bucket path (nested buckets counted separately). */
  stats(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.walk()) {
      const k = describe(e.path);
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }
}

/** Elements of a leaf page (or an inline bucket's fake page); key/value are copies. */
function* leafItems(p: Buffer, where: readonly Buffer[]): Generator<Item> {
  const h = readPageHeader(p);
  if (!(h.flags & LEAF_PAGE_FLAG)) throw new BoltFormatError(`bucket ${describe(where)}: inline page is not a leaf`);
  for (let i = 0; i < h.count; i++) {
    const el = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
    if (el + LEAF_ELEMENT_SIZE > p.length) throw new BoltFormatError(`bucket ${describe(where)}: leaf element ${i} outside its page`);
    const flags = p.readUInt32LE(el);
    const kStart = el + p.readUInt32LE(el + 4);
    const kEnd = kStart + p.readUInt32LE(el + 8);
    const vEnd = kEnd + p.readUInt32LE(el + 12);
    if (vEnd > p.length) throw new BoltFormatError(`bucket ${describe(where)}: leaf element ${i} outside its page`);
    yield { key: Buffer.from(p.subarray(kStart, kEnd)), value: Buffer.from(p.subarray(kEnd, vEnd)), flags };
  }
}

function readMeta(fd: number, dbSize: number): Meta {
  // meta 0 is at offset 0; meta 1 is one page further, and the page size is in the meta itself
  const first = Buffer.alloc(0x1000);
  if (fs.readSync(fd, first, 0, first.length, 0) < 0x1000 || dbSize < 0x1000) throw new BoltFormatError('file too small for a bolt database');
  const m0 = decodeMetaPage(first);
  const pageSize = m0.error ? 0x1000 : m0.meta.pageSize;
  if (!m0.error && (pageSize < 512 || pageSize > 1 << 20)) throw new BoltFormatError(`invalid page size ${pageSize}`);
  let m1: ReturnType<typeof decodeMetaPage> | undefined;
  if (dbSize >= 2 * pageSize) {
    const second = Buffer.alloc(Math.max(pageSize, 0x1000));
    fs.readSync(fd, second, 0, pageSize, pageSize);
    m1 = decodeMetaPage(second);
  }
  const valid = [m0, m1].filter((m): m is { meta: Meta } => !!m && !m.error && m.meta.pageSize === pageSize);
  if (!valid.length) throw new BoltFormatError(`invalid bolt database: ${m0.error ?? m1?.error ?? 'no valid meta page'}`);
  valid.sort((a, b) => (a.meta.txid > b.meta.txid ? -1 : a.meta.txid < b.meta.txid ? 1 : 0));
  return valid[0]!.meta;
}

async function sha256OfRange(file: string, length: number): Promise<Buffer> {
  const hash = createHash('sha256');
  if (length === 0) return hash.digest();
  const stream = fs.createReadStream(file, { start: 0, end: length - 1, highWaterMark: HASH_CHUNK });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest();
}

/** Opens an etcd snapshot file or a bolt data file (see BoltFile.open for the hash rules). */
export function readBoltFile(file: string, opts: OpenBoltOptions = {}): Promise<BoltFile> {
  return BoltFile.open(file, opts);
}
