// A streaming bbolt file writer: bulk-loads sorted key/value buckets into a
// valid bolt database (the format of etcd's member/snap/db and of its
// snapshot files) without holding more than one page per tree level in
// memory.
//
// Bolt's two meta pages sit at the start of the file but point at the root
// bucket and the high-water mark, which are only known once every bucket has
// been written. So pages are laid out bottom-up and written past the header
// (directly into the destination file, or into a spool file when the result
// is a stream), and the header pages are produced last. A stream therefore
// costs one temporary copy on disk, never the data set in memory.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  BoltFormatError,
  BRANCH_ELEMENT_SIZE,
  BRANCH_PAGE_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  DEFAULT_PAGE_SIZE,
  encodeMetaPage,
  FREELIST_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  LEAF_PAGE_FLAG,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  PAGE_HEADER_SIZE,
  writePageHeader,
  writePgid,
} from './bolt-format';

/** One key/value pair; keys of a bucket must arrive in strictly ascending byte order. */
export type BoltEntry = readonly [key: Uint8Array, value: Uint8Array];

export interface BoltBucketSource {
  name: Uint8Array | string;
  /** The bucket's NextSequence counter (bolt keeps it in the bucket header). */
  sequence?: bigint;
  /** Plain key/values, strictly ascending by key bytes. Iterated exactly once. */
  entries?: Iterable<BoltEntry> | AsyncIterable<BoltEntry>;
  /** Nested buckets, in any order; their names must not collide with entry keys. */
  buckets?: readonly BoltBucketSource[];
}

export interface BoltWriteOptions {
  /** Bolt page size; etcd uses the OS page size, 4096. */
  pageSize?: number;
  /** Transaction id stored in meta page 0 (meta page 1 gets txid - 1, as bolt's Tx.WriteTo does). */
  txid?: bigint;
}

/** Pages 0 and 1 are the meta pages, page 2 the (empty) freelist; data pages follow. */
const FIRST_DATA_PGID = 3;
const FREELIST_PGID = 2;
const FLUSH_BYTES = 1 << 20;
const READ_CHUNK = 1 << 20;

interface Elem {
  key: Buffer;
  /** Leaf value (empty for branch elements). */
  value: Buffer;
  /** Leaf element flags (BUCKET_LEAF_FLAG for nested buckets). */
  flags: number;
  /** Child page of a branch element. */
  pgid: number;
}

/** Where pages go: assigns page ids in file order and buffers writes. */
class PageSink {
  next = FIRST_DATA_PGID;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private position: number;

  constructor(
    private readonly fh: FileHandle,
    readonly pageSize: number,
    /** File offset of page FIRST_DATA_PGID. */
    baseOffset: number,
  ) {
    this.position = baseOffset;
  }

  /** Reserves `count` contiguous page ids and returns the first. */
  reserve(count: number): number {
    const id = this.next;
    this.next += count;
    return id;
  }

  push(page: Buffer): void {
    this.pending.push(page);
    this.pendingBytes += page.length;
  }

  get needsFlush(): boolean {
    return this.pendingBytes >= FLUSH_BYTES;
  }

  async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const bufs = this.pending;
    const n = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    // writev may write partially; loop until every byte is down
    while (off < n) {
      const { bytesWritten } = await this.fh.writev(sliceBuffers(bufs, off), this.position);
      off += bytesWritten;
      this.position += bytesWritten;
    }
  }
}

function sliceBuffers(bufs: Buffer[], skip: number): Buffer[] {
  if (!skip) return bufs;
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

function elemSize(e: Elem, leaf: boolean): number {
  return (leaf ? LEAF_ELEMENT_SIZE + e.value.length : BRANCH_ELEMENT_SIZE) + e.key.length;
}

/**
 * Lays out a leaf or branch page as bolt's node.write does: element headers
 * first, then each element's key (and value) bytes; `pos` is relative to the
 * element header. `pad` rounds the buffer up to whole pages (false for the
 * fake page inside an inline bucket value, which bolt sizes exactly).
 */
function encodeNodePage(leaf: boolean, entries: readonly Elem[], id: number, pageSize: number, pad: boolean): Buffer {
  let size = PAGE_HEADER_SIZE;
  for (const e of entries) size += elemSize(e, leaf);
  const pages = Math.max(1, Math.ceil(size / pageSize));
  const buf = Buffer.alloc(pad ? pages * pageSize : size);
  writePageHeader(buf, 0, {
    id,
    flags: leaf ? LEAF_PAGE_FLAG : BRANCH_PAGE_FLAG,
    count: entries.length,
    overflow: pad ? pages - 1 : 0,
  });
  let data = PAGE_HEADER_SIZE + entries.length * (leaf ? LEAF_ELEMENT_SIZE : BRANCH_ELEMENT_SIZE);
  entries.forEach((e, i) => {
    const el = PAGE_HEADER_SIZE + i * (leaf ? LEAF_ELEMENT_SIZE : BRANCH_ELEMENT_SIZE);
    if (leaf) {
      buf.writeUInt32LE(e.flags, el);
      buf.writeUInt32LE(data - el, el + 4);
      buf.writeUInt32LE(e.key.length, el + 8);
      buf.writeUInt32LE(e.value.length, el + 12);
    } else {
      buf.writeUInt32LE(data - el, el);
      buf.writeUInt32LE(e.key.length, el + 4);
      writePgid(buf, el + 8, e.pgid);
    }
    e.key.copy(buf, data);
    data += e.key.length;
    if (leaf) {
      e.value.copy(buf, data);
      data += e.value.length;
    }
  });
  return buf;
}

interface Level {
  entries: Elem[];
  size: number;
  /**
   * Branch levels keep their last full page back so the final page of the
   * level can borrow from it: bolt expects at least two children per branch.
   */
  held?: Elem[];
}

/**
 * Bulk-loads one bucket's B+tree bottom-up. Pages are packed full: a
 * snapshot is read far more than it is modified, and etcd's `key` bucket only
 * grows at its end, where bolt splits the last page as usual. Each completed
 * page is written at once and its first key goes up to the parent level.
 */
class TreeBuilder {
  private readonly levels: Level[] = [];

  constructor(private readonly sink: PageSink) {}

  add(key: Buffer, value: Buffer, flags: number): void {
    this.push(0, { key, value, flags, pgid: 0 });
  }

  private level(i: number): Level {
    let l = this.levels[i];
    if (!l) {
      l = { entries: [], size: PAGE_HEADER_SIZE };
      this.levels[i] = l;
    }
    return l;
  }

  private push(i: number, e: Elem): void {
    const l = this.level(i);
    const leaf = i === 0;
    const sz = elemSize(e, leaf);
    const minKeys = leaf ? 1 : 2;
    if (l.entries.length >= minKeys && l.size + sz > this.sink.pageSize) {
      if (leaf) this.emit(i, l.entries);
      else {
        if (l.held) this.emit(i, l.held);
        l.held = l.entries;
      }
      l.entries = [];
      l.size = PAGE_HEADER_SIZE;
    }
    l.entries.push(e);
    l.size += sz;
  }

  private emit(i: number, entries: Elem[]): number {
    const leaf = i === 0;
    let size = PAGE_HEADER_SIZE;
    for (const e of entries) size += elemSize(e, leaf);
    const id = this.sink.reserve(Math.max(1, Math.ceil(size / this.sink.pageSize)));
    this.sink.push(encodeNodePage(leaf, entries, id, this.sink.pageSize, true));
    this.push(i + 1, { key: entries[0]?.key ?? Buffer.alloc(0), value: Buffer.alloc(0), flags: 0, pgid: id });
    return id;
  }

  /** Writes the remaining pages and returns the root page id. */
  finish(): number {
    for (let i = 0; ; i++) {
      const l = this.level(i);
      const top = this.levels.length === i + 1;
      const leaf = i === 0;
      const last = this.lastPages(l, leaf);
      l.entries = [];
      l.size = PAGE_HEADER_SIZE;
      l.held = undefined;
      if (top && last.length === 1) {
        // the single page of the highest level is the root; an empty tree is one empty leaf
        const entries = last[0]!;
        let size = PAGE_HEADER_SIZE;
        for (const e of entries) size += elemSize(e, leaf);
        const id = this.sink.reserve(Math.max(1, Math.ceil(size / this.sink.pageSize)));
        this.sink.push(encodeNodePage(leaf, entries, id, this.sink.pageSize, true));
        return id;
      }
      for (const p of last) this.emit(i, p);
    }
  }

  /** The pages a level still has to write, its tail rebalanced so no branch page has a single child. */
  private lastPages(l: Level, leaf: boolean): Elem[][] {
    if (!l.held) return [l.entries];
    const held = l.held;
    const cur = l.entries;
    if (cur.length >= 2) return [held, cur];
    const all = held.concat(cur);
    let size = PAGE_HEADER_SIZE;
    for (const e of all) size += elemSize(e, leaf);
    // when `all` cannot make two pages of two or more children, it becomes one (maybe overflowing) page
    if (size <= this.sink.pageSize || held.length < 4 - cur.length) return [all];
    const cut = held.length - (2 - cur.length);
    return [held.slice(0, cut), held.slice(cut).concat(cur)];
  }
}

function toBuffer(b: Uint8Array | string): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function bucketHeader(root: number, sequence: bigint): Buffer {
  const h = Buffer.alloc(BUCKET_HEADER_SIZE);
  writePgid(h, 0, root);
  h.writeBigUInt64LE(sequence, 8);
  return h;
}

function describe(name: Buffer): string {
  return /^[\x20-\x7e]*$/.test(name.toString('latin1')) ? name.toString('latin1') : `0x${name.toString('hex')}`;
}

/**
 * Writes one bucket's pages (and its nested buckets', depth first) and
 * returns the value its parent stores for it: the bucket header, followed by
 * the whole leaf page when the bucket is small enough to be inline (bolt's
 * Bucket.inlineable: one leaf, no nested buckets, at most pageSize/4 bytes).
 */
async function writeBucket(sink: PageSink, src: BoltBucketSource, where: string): Promise<Buffer> {
  const subs = [...(src.buckets ?? [])]
    .map((b) => ({ name: toBuffer(b.name), src: b }))
    .sort((a, b) => Buffer.compare(a.name, b.name));
  const maxInline = sink.pageSize / 4;
  let inline: Elem[] | undefined = [];
  let inlineSize = PAGE_HEADER_SIZE;
  let tree: TreeBuilder | undefined;
  let prev: Buffer | undefined;
  let si = 0;

  // synchronous so that a synchronous source is consumed without a promise per entry
  const add = (key: Buffer, value: Buffer, flags: number): void => {
    if (key.length === 0) throw new BoltFormatError(`empty key in bucket ${where}`);
    if (key.length > MAX_KEY_SIZE) throw new BoltFormatError(`key of ${key.length} bytes in bucket ${where} exceeds bolt's limit`);
    if (value.length > MAX_VALUE_SIZE) throw new BoltFormatError(`value of ${value.length} bytes in bucket ${where} exceeds bolt's limit`);
    if (prev && Buffer.compare(prev, key) >= 0) {
      throw new BoltFormatError(`keys not strictly ascending in bucket ${where} at ${describe(key)}`);
    }
    prev = key;
    if (inline) {
      inline.push({ key, value, flags, pgid: 0 });
      inlineSize += LEAF_ELEMENT_SIZE + key.length + value.length;
      if (inlineSize <= maxInline && !(flags & BUCKET_LEAF_FLAG)) return;
      tree = new TreeBuilder(sink);
      for (const e of inline) tree.add(e.key, e.value, e.flags);
      inline = undefined;
    } else {
      tree!.add(key, value, flags);
    }
  };
  const addSubsBefore = async (key: Buffer | undefined): Promise<void> => {
    while (si < subs.length && (!key || Buffer.compare(subs[si]!.name, key) <= 0)) {
      const s = subs[si++]!;
      const child = await writeBucket(sink, s.src, `${where}/${describe(s.name)}`);
      add(s.name, child, BUCKET_LEAF_FLAG);
    }
  };
  const addEntry = async (k: Uint8Array, v: Uint8Array): Promise<void> => {
    // copy: sources such as LMDB cursors may reuse their buffers, and leaf entries wait in memory for their page
    const key = Buffer.from(k);
    if (si < subs.length && Buffer.compare(subs[si]!.name, key) <= 0) await addSubsBefore(key);
    add(key, Buffer.from(v), 0);
  };

  const entries = src.entries;
  if (entries && Symbol.iterator in entries) {
    for (const [k, v] of entries) {
      if (si < subs.length) await addEntry(k, v);
      else add(Buffer.from(k), Buffer.from(v), 0);
      if (sink.needsFlush) await sink.flush();
    }
  } else if (entries) {
    for await (const [k, v] of entries) {
      await addEntry(k, v);
      if (sink.needsFlush) await sink.flush();
    }
  }
  await addSubsBefore(undefined);

  const seq = src.sequence ?? 0n;
  if (inline) {
    return Buffer.concat([bucketHeader(0, seq), encodeNodePage(true, inline, 0, sink.pageSize, false)]);
  }
  return bucketHeader(tree!.finish(), seq);
}

/** Writes the data pages of the whole file; returns the root bucket page and the high-water mark. */
async function writeTree(sink: PageSink, buckets: readonly BoltBucketSource[]): Promise<{ root: number; pgid: number }> {
  const names = new Set<string>();
  for (const b of buckets) {
    const n = toBuffer(b.name).toString('latin1');
    if (names.has(n)) throw new BoltFormatError(`duplicate bucket ${describe(toBuffer(b.name))}`);
    names.add(n);
  }
  // the root bucket holds the top-level buckets; it is never inline (meta.root must be a page)
  const root = new TreeBuilder(sink);
  const subs = [...buckets].map((b) => ({ name: toBuffer(b.name), src: b })).sort((a, b) => Buffer.compare(a.name, b.name));
  for (const s of subs) {
    if (s.name.length === 0) throw new BoltFormatError('empty bucket name');
    root.add(s.name, await writeBucket(sink, s.src, describe(s.name)), BUCKET_LEAF_FLAG);
    if (sink.needsFlush) await sink.flush();
  }
  const rootId = root.finish();
  await sink.flush();
  return { root: rootId, pgid: sink.next };
}

/** Meta page 0, meta page 1 and the empty freelist page. */
function headerPages(pageSize: number, root: number, pgid: number, txid: bigint): Buffer {
  const meta = (id: number, tx: bigint): Buffer =>
    encodeMetaPage(id, { pageSize, flags: 0, root, sequence: 0n, freelist: FREELIST_PGID, pgid, txid: tx });
  const freelist = Buffer.alloc(pageSize);
  writePageHeader(freelist, 0, { id: FREELIST_PGID, flags: FREELIST_PAGE_FLAG, count: 0, overflow: 0 });
  return Buffer.concat([meta(0, txid), meta(1, txid - 1n), freelist]);
}

function checkOptions(opts: BoltWriteOptions): { pageSize: number; txid: bigint } {
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1024 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new BoltFormatError(`unsupported page size ${pageSize}`);
  }
  const txid = opts.txid ?? 2n;
  if (txid < 1n) throw new BoltFormatError('txid must be at least 1');
  return { pageSize, txid };
}

export interface BoltFileResult {
  /** Bytes of the bolt database (without any appended hash). */
  dbSize: number;
  /** sha256 of those bytes. */
  sha256: Buffer;
}

export interface WriteBoltFileOptions extends BoltWriteOptions {
  /** Append the 32-byte sha256 of the database, as etcd's snapshot files carry (default false). */
  appendSha256?: boolean;
  /** fsync the file before resolving (default true). */
  fsync?: boolean;
}

/**
 * Writes a bolt database file at `out` (replacing it). Data pages go straight
 * to their final offsets, the header pages last; the sha256 then needs one
 * sequential read of the file, because the header pages that begin the
 * hashed bytes are the last ones written.
 */
export async function writeBoltFile(
  buckets: readonly BoltBucketSource[],
  out: string,
  opts: WriteBoltFileOptions = {},
): Promise<BoltFileResult> {
  const { pageSize, txid } = checkOptions(opts);
  const fh = await fs.promises.open(out, 'w+', 0o600);
  try {
    const sink = new PageSink(fh, pageSize, FIRST_DATA_PGID * pageSize);
    const { root, pgid } = await writeTree(sink, buckets);
    await writeAll(fh, headerPages(pageSize, root, pgid, txid), 0);
    const dbSize = pgid * pageSize;
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (let pos = 0; pos < dbSize; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, dbSize - pos), pos);
      if (!bytesRead) throw new BoltFormatError(`short read of ${out} at ${pos}`);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const sha256 = hash.digest();
    if (opts.appendSha256) await writeAll(fh, sha256, dbSize);
    if (opts.fsync !== false) await fh.sync();
    return { dbSize, sha256 };
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(out, { force: true });
    throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

/**
 * A finished bolt database ready to stream: its size is known before the
 * first byte is read (etcd's Snapshot RPC announces remaining bytes), and
 * its sha256 is computed while it streams.
 */
export interface BoltImage extends AsyncIterable<Buffer> {
  /** Bytes of the bolt database. */
  readonly dbSize: number;
  /** sha256 of the database bytes; set once they have all been yielded. */
  readonly sha256: Buffer | undefined;
  /** Removes the spool file (done automatically when iteration ends or stops). */
  close(): Promise<void>;
}

export interface BoltImageOptions extends BoltWriteOptions {
  /** Directory for the spool file (default: the OS temp dir). */
  tmpDir?: string;
  /** After the database bytes, yield their 32-byte sha256 (etcd's Snapshot stream and snapshot file). */
  appendSha256?: boolean;
  /** Bytes per yielded chunk after the header pages (default 1 MiB; etcd's Snapshot RPC sends 32 KiB). */
  chunkSize?: number;
}

/** Lays out the database into a spool file and returns it as a one-shot stream of chunks. */
export async function buildBoltImage(buckets: readonly BoltBucketSource[], opts: BoltImageOptions = {}): Promise<BoltImage> {
  const { pageSize, txid } = checkOptions(opts);
  const chunkSize = opts.chunkSize ?? READ_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new BoltFormatError(`invalid chunk size ${chunkSize}`);
  const dir = await fs.promises.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'bolt-image-'));
  const spool = path.join(dir, 'body');
  const cleanup = (): Promise<void> => fs.promises.rm(dir, { recursive: true, force: true });
  let layout: { root: number; pgid: number };
  try {
    const fh = await fs.promises.open(spool, 'w+', 0o600);
    try {
      // the spool holds the data pages only, so page FIRST_DATA_PGID is at offset 0
      layout = await writeTree(new PageSink(fh, pageSize, 0), buckets);
    } finally {
      await fh.close();
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  const head = headerPages(pageSize, layout.root, layout.pgid, txid);
  const dbSize = layout.pgid * pageSize;
  let sha256: Buffer | undefined;
  let started = false;

  async function* chunks(): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    const fh = await fs.promises.open(spool, 'r');
    try {
      hash.update(head);
      for (let o = 0; o < head.length; o += chunkSize) yield head.subarray(o, o + chunkSize);
      for (;;) {
        // a fresh buffer per chunk: the consumer may keep it (e.g. queued in a gRPC write)
        const buf = Buffer.allocUnsafe(chunkSize);
        const { bytesRead } = await fh.read(buf, 0, chunkSize, null);
        if (!bytesRead) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        yield chunk;
      }
      sha256 = hash.digest();
      if (opts.appendSha256) yield Buffer.from(sha256);
    } finally {
      await fh.close();
      await cleanup();
    }
  }

  return {
    dbSize,
    get sha256() {
      return sha256;
    },
    [Symbol.asyncIterator]() {
      if (started) throw new BoltFormatError('a bolt image can be iterated only once');
      started = true;
      return chunks();
    },
    close: cleanup,
  };
}
