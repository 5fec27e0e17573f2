// etcd's revision encoding for keys of the `key` bucket (mvcc/revision.go):
// 8-byte big-endian main revision, '_', 8-byte big-endian sub revision, and a
// trailing 't' for a tombstone. Byte order of these keys equals revision
// order, which is what lets physical compaction and hashKV scan the bucket.

export const REV_BYTES_LEN = 17;
export const MARKED_REV_BYTES_LEN = 18;
export const TOMBSTONE_MARK = 0x74; // 't'

import { slabAlloc } from './slab';

const TWO_32 = 4294967296;

/** Writes revision (main, sub) into b at offset 0 (b must hold 17 bytes). */
export function writeRev(b: Buffer, main: number, sub: number): void {
  b.writeUInt32BE(Math.floor(main / TWO_32), 0);
  b.writeUInt32BE(main >>> 0, 4);
  b[8] = 0x5f; // '_'
  b.writeUInt32BE(Math.floor(sub / TWO_32), 9);
  b.writeUInt32BE(sub >>> 0, 13);
}

/** A fresh key-bucket key; fresh because the backend keeps it until commit. */
export function revKey(main: number, sub: number, tombstone: boolean): Buffer {
  const b = slabAlloc(tombstone ? MARKED_REV_BYTES_LEN : REV_BYTES_LEN);
  writeRev(b, main, sub);
  if (tombstone) b[17] = TOMBSTONE_MARK;
  return b;
}

export function revMain(b: Uint8Array): number {
  return (b[0] * 0x1000000 + ((b[1] << 16) | (b[2] << 8) | b[3])) * TWO_32 + (b[4] * 0x1000000 + ((b[5] << 16) | (b[6] << 8) | b[7]));
}

export function revSub(b: Uint8Array): number {
  return (b[9] * 0x1000000 + ((b[10] << 16) | (b[11] << 8) | b[12])) * TWO_32 + (b[13] * 0x1000000 + ((b[14] << 16) | (b[15] << 8) | b[16]));
}

export function isTombstoneKey(b: Uint8Array): boolean {
  return b.length === MARKED_REV_BYTES_LEN && b[17] === TOMBSTONE_MARK;
}

/**
 * A set of revisions (etcd's `map[revision]struct{}`), used for the revisions
 * compaction keeps. Nearly every revision has sub 0 (single-op writes), so
 * those are kept as plain numbers and only the rest pay for a string key.
 */
export class RevSet {
  private readonly zero = new Set<number>();
  private readonly other = new Set<string>();

  add(main: number, sub: number): void {
    if (sub === 0) this.zero.add(main);
    else this.other.add(`${main}_${sub}`);
  }

  has(main: number, sub: number): boolean {
    return sub === 0 ? this.zero.has(main) : this.other.has(`${main}_${sub}`);
  }

  delete(main: number, sub: number): void {
    if (sub === 0) this.zero.delete(main);
    else this.other.delete(`${main}_${sub}`);
  }

  get size(): number {
    return this.zero.size + this.other.size;
  }
}
