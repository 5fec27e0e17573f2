// mvccpb.KeyValue bytes as etcd (gogo-protobuf) writes them: fields in
// number order, zero values omitted. Written into one exact-size buffer so
// the stored value, the watch event and the lease hooks can all share it.
import type { KeyValue } from '../proto/gen/mvccpb';
import { EMPTY, varintSize, writeVarintAt } from '../proto/wire';
import { slabAlloc } from './slab';


// Lease ids are int64; negative ones take ten bytes as in Go.
function leaseUnsigned(lease: bigint): number | bigint {
  if (lease > 0n && lease <= 0x1fffffffffffffn) return Number(lease);
  return BigInt.asUintN(64, lease);
}

function bigVarintSize(v: bigint): number {
  let n = 1;
  while (v > 127n) {
    n++;
    v >>= 7n;
  }
  return n;
}

function writeBigVarint(b: Buffer, p: number, v: bigint): number {
  while (v > 127n) {
    b[p++] = Number(v & 127n) | 128;
    v >>= 7n;
  }
  b[p++] = Number(v);
  return p;
}

/**
 * Encodes a KeyValue and returns it as a KeyValue whose key and value are
 * views into the encoded bytes (`encodedOf` gives the bytes back).
 */
export function encodeKv(key: Uint8Array, value: Uint8Array, create: number, mod: number, version: number, lease: bigint): EncodedKv {
  const kl = key.length;
  const vl = value.length;
  const ul = lease === 0n ? 0 : leaseUnsigned(lease);
  let size = 0;
  if (kl) size += 1 + varintSize(kl) + kl;
  if (create) size += 1 + varintSize(create);
  if (mod) size += 1 + varintSize(mod);
  if (version) size += 1 + varintSize(version);
  if (vl) size += 1 + varintSize(vl) + vl;
  if (ul !== 0) size += 1 + (typeof ul === 'number' ? varintSize(ul) : bigVarintSize(ul));
  const b = slabAlloc(size);
  let p = 0;
  let ko = 0;
  let vo = 0;
  if (kl) {
    b[p++] = 10;
    p = writeVarintAt(b, p, kl);
    ko = p;
    b.set(key, p);
    p += kl;
  }
  if (create) {
    b[p++] = 16;
    p = writeVarintAt(b, p, create);
  }
  if (mod) {
    b[p++] = 24;
    p = writeVarintAt(b, p, mod);
  }
  if (version) {
    b[p++] = 32;
    p = writeVarintAt(b, p, version);
  }
  if (vl) {
    b[p++] = 42;
    p = writeVarintAt(b, p, vl);
    vo = p;
    b.set(value, p);
    p += vl;
  }
  if (ul !== 0) {
    b[p++] = 48;
    p = typeof ul === 'number' ? writeVarintAt(b, p, ul) : writeBigVarint(b, p, ul);
  }
  return {
    key: kl ? b.subarray(ko, ko + kl) : EMPTY,
    create_revision: create,
    mod_revision: mod,
    version,
    value: vl ? b.subarray(vo, vo + vl) : EMPTY,
    lease,
    encoded: b,
  };
}

export interface EncodedKv extends KeyValue {
  encoded: Buffer;
}

/** Tombstone value: KeyValue{key} only, as etcd. */
export function encodeTombstone(key: Uint8Array): Buffer {
  const kl = key.length;
  const b = slabAlloc(kl ? 1 + varintSize(kl) + kl : 0);
  if (kl) {
    const p = writeVarintAt(b, 1, kl);
    b[0] = 10;
    b.set(key, p);
  }
  return b;
}

/** The fields of a stored KeyValue the index needs, read without allocating views. */
export interface KvMeta {
  keyStart: number;
  keyEnd: number;
  create: number;
  version: number;
  lease: bigint;
}

function readVarint(b: Uint8Array, st: { p: number }): number {
  let p = st.p;
  let v = 0;
  let mul = 1;
  for (;;) {
    const c = b[p++];
    v += (c & 127) * mul;
    if (c < 128) break;
    mul *= 128;
  }
  st.p = p;
  return v;
}

function readBigVarint(b: Uint8Array, st: { p: number }): bigint {
  let p = st.p;
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const c = b[p++];
    v |= BigInt(c & 127) << shift;
    if (c < 128) break;
    shift += 7n;
  }
  st.p = p;
  return BigInt.asIntN(64, v);
}

export function readKvMeta(b: Uint8Array, out: KvMeta): void {
  const st = { p: 0 };
  const end = b.length;
  out.keyStart = 0;
  out.keyEnd = 0;
  out.create = 0;
  out.version = 0;
  out.lease = 0n;
  while (st.p < end) {
    const tag = b[st.p++];
    switch (tag) {
      case 10: {
        const n = readVarint(b, st);
        out.keyStart = st.p;
        out.keyEnd = st.p + n;
        st.p += n;
        break;
      }
      case 16:
        out.create = readVarint(b, st);
        break;
      case 24:
        readVarint(b, st);
        break;
      case 32:
        out.version = readVarint(b, st);
        break;
      case 42: {
        const n = readVarint(b, st);
        st.p += n;
        break;
      }
      case 48:
        out.lease = readBigVarint(b, st);
        break;
      default:
        throw new Error(`mvcc: unexpected field tag ${tag} in stored KeyValue`);
    }
  }
}
