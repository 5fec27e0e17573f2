// Protobuf wire primitives used by the generated codecs in ./gen.
// Hand-written rather than taken from protobufjs because etcd's 64-bit ids
// (lease ids, member ids) need exact bigint handling while revisions stay plain
// numbers, and because one growable buffer with in-place length back-patching
// avoids the per-field allocations of a linked-list writer.

export const EMPTY: Buffer = Buffer.alloc(0);

const TWO_32 = 4294967296;
const TWO_63 = 9223372036854775808;
const TWO_64 = 18446744073709551616;

/** Bytes a non-negative integer (below 2^53) takes as a varint. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Writes a non-negative integer (below 2^53) as a varint at p; returns the position after it. */
export function writeVarintAt(b: Buffer, p: number, v: number): number {
  while (v >= 0x80000000) {
    b[p++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  while (v > 127) {
    b[p++] = (v & 127) | 128;
    v >>>= 7;
  }
  b[p++] = v;
  return p;
}

export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint32(v: number): void {
    this.ensure(5);
    const b = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  tag(field: number, wireType: number): void {
    this.uint32((field << 3) | wireType);
  }

  // Varint of a 64-bit value given as two 32-bit halves (two's complement).
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    lo >>>= 0;
    hi >>>= 0;
    while (hi > 0 || lo > 127) {
      b[p++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  /**
   * An int64 field given as a number. Numbers beyond ±2^53 (decoded from beyond-range input) are
   * clamped to int64's range instead of wrapping: 2^63 - 1 read as the double 2^63 must stay the
   * largest positive value, not become -2^63 (a lease TTL would turn from "too large" into the
   * minimum).
   */
  int64(v: number): void {
    if (v >= 0 && v < 0x80000000) return this.uint32(v);
    if (v >= 0) {
      if (v >= TWO_63) return this.varint64(0xffffffff, 0x7fffffff);
      this.varint64(v % TWO_32, Math.floor(v / TWO_32));
      return;
    }
    if (v <= -TWO_63) return this.varint64(0, 0x80000000);
    if (!(v < 0)) return this.uint32(0); // NaN
    // negative: 64-bit two's complement of |v|
    const a = -v;
    let lo = a % TWO_32;
    let hi = Math.floor(a / TWO_32);
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    this.varint64(lo, hi);
  }

  /** A uint64 field given as a number: clamped to [0, 2^64 - 1] (negatives as int64, as Go's conversion). */
  uint64(v: number): void {
    if (v >= 0 && v < 0x80000000) return this.uint32(v);
    if (v >= TWO_64) return this.varint64(0xffffffff, 0xffffffff);
    if (v >= 0) return this.varint64(v % TWO_32, Math.floor(v / TWO_32));
    this.int64(v);
  }

  bigint64(v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.varint64(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.varint64(v >>> 0, 0xffffffff);
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  bytes(v: Uint8Array): void {
    const n = v.length;
    this.uint32(n);
    this.ensure(n);
    this.buf.set(v, this.pos);
    this.pos += n;
  }

  string(v: string): void {
    const n = Buffer.byteLength(v);
    this.uint32(n);
    this.ensure(n);
    this.buf.write(v, this.pos, n, 'utf8');
    this.pos += n;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  float(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  fixed64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  // Length-delimited sub-message: reserve one length byte, write, then widen
  // the prefix in place when the body turned out longer than 127 bytes.
  beginLen(): number {
    this.ensure(1);
    return this.pos++;
  }

  endLen(start: number): void {
    const len = this.pos - start - 1;
    if (len < 128) {
      this.buf[start] = len;
      return;
    }
    let n = 1;
    for (let v = len >>> 7; v > 0; v >>>= 7) n++;
    this.ensure(n - 1);
    this.buf.copyWithin(start + n, start + 1, this.pos);
    this.pos += n - 1;
    let v = len;
    let p = start;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * A malformed protobuf message, with the text etcd's gogoproto unmarshallers give for the same bytes
 * ("unexpected EOF", "proto: integer overflow", "proto: wrong wireType = 1 for field Key", ...). A
 * gRPC server answers a request that fails to decode with INTERNAL and
 * `grpc: error unmarshalling request: <message>`, as grpc-go (server/grpc-status.ts).
 */
export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError';
}

const eof = (): ProtoDecodeError => new ProtoDecodeError('unexpected EOF');
const overflow = (): ProtoDecodeError => new ProtoDecodeError('proto: integer overflow');
const negativeLength = (): ProtoDecodeError => new ProtoDecodeError('proto: negative length found during unmarshaling');

/**
 * Reads one message the way etcd's generated (gogoproto) Unmarshal methods do, so every input gets
 * etcd's answer: varints of at most ten bytes (bits beyond 64 dropped), 64-bit lengths, unknown
 * fields of every wire type skipped (groups too), a known field with another wire type refused,
 * and every read bounded by `end`, the end of the message being read (a sub-message's while inside
 * one: see enter/leave). Values come back without allocating (64-bit varints hand their high half
 * over in a field, not an array).
 */
export class Reader {
  buf: Buffer;
  pos: number;
  /** End of the message being read: nothing past it belongs to it. */
  end: number;
  /** High 32 bits of the last varint64() read. */
  private hi = 0;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
    this.end = end;
  }

  /** A varint's low 32 bits (lengths below 128, enums, uint32 fields: one byte in the common case). */
  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    const end = this.end;
    if (p < end && b[p] < 0x80) {
      this.pos = p + 1;
      return b[p];
    }
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift >= 64) throw overflow();
      if (p >= end) throw eof();
      const c = b[p++];
      if (shift < 28) v |= (c & 127) << shift;
      else if (shift === 28) v |= (c & 15) << 28;
      if (c < 128) break;
    }
    this.pos = p;
    return v >>> 0;
  }

  // A whole 64-bit varint: returns the low half, leaves the high half in this.hi.
  private varint64(): number {
    const b = this.buf;
    let p = this.pos;
    const end = this.end;
    let lo = 0;
    let hi = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift >= 64) throw overflow();
      if (p >= end) throw eof();
      const c = b[p++];
      if (shift < 28) lo |= (c & 127) << shift;
      else if (shift === 28) {
        lo |= (c & 15) << 28;
        hi = (c & 127) >>> 4;
      } else hi |= (c & 127) << (shift - 32);
      if (c < 128) break;
    }
    this.pos = p;
    this.hi = hi >>> 0;
    return lo >>> 0;
  }

  /**
   * A field's tag, checked as gogoproto does (`msg` names the message in its errors). Returns
   * field * 8 + wire type; a field number beyond 2^28 (never a known one) comes back as 2^28 - 1 so
   * that `t >>> 3` cannot alias a known field.
   */
  tag(msg: string): number {
    const p = this.pos;
    if (p < this.end) {
      const c = this.buf[p];
      if (c < 0x80 && c >= 8 && (c & 7) !== 4) {
        this.pos = p + 1;
        return c;
      }
    }
    const lo = this.varint64();
    const hi = this.hi;
    const wt = lo & 7;
    if (wt === 4) throw new ProtoDecodeError(`proto: ${msg}: wiretype end group for non-group`);
    const field = (lo >>> 3) | (hi << 29); // Go's int32(wire >> 3)
    if (field <= 0) throw new ProtoDecodeError(`proto: ${msg}: illegal tag ${field} (wire type ${(BigInt(hi) << 32n) | BigInt(lo)})`);
    return field < 0x10000000 ? field * 8 + wt : 0x7ffffff8 + wt;
  }

  /** A known field arrived with another wire type: the message is refused, as etcd does. */
  wrongType(tag: number, goName: string): never {
    throw new ProtoDecodeError(`proto: wrong wireType = ${tag & 7} for field ${goName}`);
  }

  /** A length prefix, as Go's int: negative (or overflowing) refused, beyond 4 GiB always past the end. */
  private len(): number {
    const p = this.pos;
    if (p < this.end && this.buf[p] < 0x80) {
      this.pos = p + 1;
      return this.buf[p];
    }
    const lo = this.varint64();
    const hi = this.hi;
    if (hi >= 0x7fffffff) throw negativeLength();
    if (hi !== 0) throw eof();
    return lo;
  }

  /** End of a length-delimited run starting here (packed repeated fields), checked against the message end. */
  lenEnd(): number {
    const n = this.len();
    const e = this.pos + n;
    if (e > this.end) throw eof();
    return e;
  }

  /** Enters a length-delimited sub-message: its end becomes the reader's; returns the outer end for leave(). */
  enter(): number {
    const e = this.lenEnd();
    const outer = this.end;
    this.end = e;
    return outer;
  }

  leave(outer: number): void {
    this.end = outer;
  }

  int64(): number {
    const p = this.pos;
    if (p < this.end && this.buf[p] < 0x80) {
      this.pos = p + 1;
      return this.buf[p];
    }
    const lo = this.varint64();
    const hi = this.hi;
    // beyond ±2^53 this is the nearest double: order is kept, and Writer.int64 never wraps it
    if (hi & 0x80000000) return (hi | 0) * TWO_32 + lo;
    return hi * TWO_32 + lo;
  }

  uint64(): number {
    const p = this.pos;
    if (p < this.end && this.buf[p] < 0x80) {
      this.pos = p + 1;
      return this.buf[p];
    }
    const lo = this.varint64();
    return this.hi * TWO_32 + lo;
  }

  bigint64(): bigint {
    const lo = this.varint64();
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(lo));
  }

  biguint64(): bigint {
    const lo = this.varint64();
    return (BigInt(this.hi) << 32n) | BigInt(lo);
  }

  int32(): number {
    return this.uint32() | 0;
  }

  bool(): boolean {
    const p = this.pos;
    if (p < this.end && this.buf[p] < 0x80) {
      this.pos = p + 1;
      return this.buf[p] !== 0;
    }
    return (this.varint64() | this.hi) !== 0;
  }

  // Zero-copy view into the request buffer; callers that keep it beyond the
  // request (the store) copy on write.
  bytes(): Buffer {
    const n = this.len();
    const start = this.pos;
    if (start + n > this.end) throw eof();
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }

  // Invalid UTF-8 becomes U+FFFD (etcd keeps the bytes; no etcd client sends any).
  string(): string {
    const n = this.len();
    const start = this.pos;
    if (start + n > this.end) throw eof();
    this.pos = start + n;
    return this.buf.toString('utf8', start, start + n);
  }

  private fixed(n: number): number {
    const p = this.pos;
    if (p + n > this.end) throw eof();
    this.pos = p + n;
    return p;
  }

  fixed32(): number {
    return this.buf.readUInt32LE(this.fixed(4));
  }

  float(): number {
    return this.buf.readFloatLE(this.fixed(4));
  }

  fixed64(): bigint {
    return this.buf.readBigUInt64LE(this.fixed(8));
  }

  double(): number {
    return this.buf.readDoubleLE(this.fixed(8));
  }

  /** Skips an unknown field's value (its tag already read), as gogoproto's skip: groups nest, any field number ends one. */
  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2: {
        const n = this.len();
        this.pos += n;
        break;
      }
      case 3:
        // iterative, so a deep nest of group starts cannot exhaust the stack
        for (let depth = 1; depth > 0; ) {
          const wt = this.varint64() & 7;
          if (wt === 4) depth--;
          else if (wt === 3) depth++;
          else this.skip(wt);
        }
        return;
      case 4:
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoDecodeError(`proto: illegal wireType ${wireType}`);
    }
    if (this.pos > this.end) throw eof();
  }
}
