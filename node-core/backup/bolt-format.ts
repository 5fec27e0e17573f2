// The on-disk layout of a bbolt (go.etcd.io/bbolt v1.3, the boltdb fork etcd
// 3.4 links) database file, shared by the writer and the reader. Every field
// is little-endian because bolt maps its structs straight onto the file on the
// little-endian platforms etcd ships for; offsets below are those structs'
// Go layouts (page.go, db.go `meta`, bucket.go `bucket`).

/** Bolt's magic marker (db.go `magic`). */
export const MAGIC = 0xed0cdaed;
/** Data file format version (db.go `version`). */
export const VERSION = 2;
/** etcd runs bolt with the OS page size; 4096 on every platform it supports. */
export const DEFAULT_PAGE_SIZE = 4096;

/** page.go: id u64, flags u16, count u16, overflow u32. */
export const PAGE_HEADER_SIZE = 16;
/** leafPageElement: flags u32, pos u32, ksize u32, vsize u32. */
export const LEAF_ELEMENT_SIZE = 16;
/** branchPageElement: pos u32, ksize u32, pgid u64. */
export const BRANCH_ELEMENT_SIZE = 16;
/** bucket.go `bucket`: root pgid u64, sequence u64. */
export const BUCKET_HEADER_SIZE = 16;

export const BRANCH_PAGE_FLAG = 0x01;
export const LEAF_PAGE_FLAG = 0x02;
export const META_PAGE_FLAG = 0x04;
export const FREELIST_PAGE_FLAG = 0x10;
/** Leaf element flag marking the value as a nested bucket. */
export const BUCKET_LEAF_FLAG = 0x01;

/** bolt refuses larger keys (bucket.go MaxKeySize) and values (MaxValueSize). */
export const MAX_KEY_SIZE = 32768;
export const MAX_VALUE_SIZE = 2 ** 31 - 2;
/** A freelist page whose count is 0xFFFF keeps the real count in its first u64. */
export const FREELIST_COUNT_OVERFLOW = 0xffff;
/** meta.freelist when the freelist is not persisted (NoFreelistSync). */
export const PGID_NO_FREELIST = 0xffffffffffffffffn;

/** Offsets inside a meta page (the meta struct starts right after the page header). */
const META = {
  magic: 16,
  version: 20,
  pageSize: 24,
  flags: 28,
  root: 32,
  sequence: 40,
  freelist: 48,
  pgid: 56,
  txid: 64,
  checksum: 72,
} as const;

export interface PageHeader {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

export interface Meta {
  magic: number;
  version: number;
  pageSize: number;
  flags: number;
  /** Page of the root bucket (the bucket that holds the top-level buckets). */
  root: number;
  sequence: bigint;
  /** Freelist page, or -1 when bolt did not persist one. */
  freelist: number;
  /** High-water mark: the number of pages in use (file data ends at pgid * pageSize). */
  pgid: number;
  txid: bigint;
  checksum: bigint;
}

export class BoltFormatError extends Error {
  override readonly name = 'BoltFormatError';
}

/**
 * Page ids are u64 on disk, but a JS number is exact to 2^53 pages (32 PiB of
 * 4 KiB pages), so ids stay numbers in memory and anything larger is corrupt.
 */
export function readPgid(buf: Buffer, off: number): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BoltFormatError(`page id ${v} out of range`);
  return Number(v);
}

export function writePgid(buf: Buffer, off: number, id: number): void {
  buf.writeBigUInt64LE(BigInt(id), off);
}

export function readPageHeader(buf: Buffer, off = 0): PageHeader {
  return {
    id: readPgid(buf, off),
    flags: buf.readUInt16LE(off + 8),
    count: buf.readUInt16LE(off + 10),
    overflow: buf.readUInt32LE(off + 12),
  };
}

export function writePageHeader(buf: Buffer, off: number, h: PageHeader): void {
  writePgid(buf, off, h.id);
  buf.writeUInt16LE(h.flags, off + 8);
  buf.writeUInt16LE(h.count, off + 10);
  buf.writeUInt32LE(h.overflow, off + 12);
}

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-1a 64 (Go's hash/fnv New64a), bolt's meta checksum. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV64_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV64_PRIME) & MASK64;
  return h;
}

/** The checksum covers the meta struct up to (not including) the checksum field. */
function metaChecksum(page: Buffer): bigint {
  return fnv1a64(page.subarray(META.magic, META.checksum));
}

/** Encodes a complete meta page (page header + meta + checksum), zero-padded to pageSize. */
export function encodeMetaPage(pageId: number, m: Omit<Meta, 'checksum' | 'magic' | 'version'>): Buffer {
  const p = Buffer.alloc(m.pageSize);
  writePageHeader(p, 0, { id: pageId, flags: META_PAGE_FLAG, count: 0, overflow: 0 });
  p.writeUInt32LE(MAGIC, META.magic);
  p.writeUInt32LE(VERSION, META.version);
  p.writeUInt32LE(m.pageSize, META.pageSize);
  p.writeUInt32LE(m.flags, META.flags);
  writePgid(p, META.root, m.root);
  p.writeBigUInt64LE(m.sequence, META.sequence);
  if (m.freelist < 0) p.writeBigUInt64LE(PGID_NO_FREELIST, META.freelist);
  else writePgid(p, META.freelist, m.freelist);
  writePgid(p, META.pgid, m.pgid);
  p.writeBigUInt64LE(m.txid, META.txid);
  p.writeBigUInt64LE(metaChecksum(p), META.checksum);
  return p;
}

/** Decodes a meta page; `error` says why bolt's meta.validate() would reject it. */
export function decodeMetaPage(page: Buffer): { meta: Meta; error?: string } {
  const freelistRaw = page.readBigUInt64LE(META.freelist);
  const rootRaw = page.readBigUInt64LE(META.root);
  const pgidRaw = page.readBigUInt64LE(META.pgid);
  const meta: Meta = {
    magic: page.readUInt32LE(META.magic),
    version: page.readUInt32LE(META.version),
    pageSize: page.readUInt32LE(META.pageSize),
    flags: page.readUInt32LE(META.flags),
    root: rootRaw > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(rootRaw),
    sequence: page.readBigUInt64LE(META.sequence),
    freelist: freelistRaw > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(freelistRaw),
    pgid: pgidRaw > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(pgidRaw),
    txid: page.readBigUInt64LE(META.txid),
    checksum: page.readBigUInt64LE(META.checksum),
  };
  if (meta.magic !== MAGIC) return { meta, error: 'invalid database (bad magic)' };
  if (meta.version !== VERSION) return { meta, error: `version mismatch (${meta.version})` };
  // bolt accepts a zero checksum (files written before checksums existed)
  if (meta.checksum !== 0n && meta.checksum !== metaChecksum(page)) return { meta, error: 'checksum error' };
  if (meta.pgid < 2 || meta.root < 0) return { meta, error: 'page ids out of range' };
  return { meta };
}
