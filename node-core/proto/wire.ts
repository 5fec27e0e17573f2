// Protobuf wire primitives used by the generated codecs in ./gen.
// Hand-written rather than taken from protobufjs because etcd's 64-bit ids
// (lease ids, member ids) need exact bigint handling while revisions stay plain
// numbers, and because one growable buffer with in-place length back-patching
// avoids the per-field allocations of a linked-list writer.

export const EMPTY: Buffer = Buffer.alloc(0);

const TWO_32 = 4294967296;

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

  int64(v: number): void {
    if (v >= 0 && v < 0x80000000) return this.uint32(v);
    if (v >= 0) {
      this.varint64(v % TWO_32, Math.floor(v / TWO_32));
      return;
    }
    // negative: 64-bit two's complement of |v|
    const a = -v;
    let lo = a % TWO_32;
    let hi = Math.floor(a / TWO_32);
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    this.varint64(lo, hi);
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

export class Reader {
  buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
    this.end = end;
  }

  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    let v = 0;
    let shift = 0;
    for (;;) {
      if (p >= this.end) throw new Error('protobuf: truncated varint');
      const c = b[p++];
      if (shift < 28) v |= (c & 127) << shift;
      else if (shift === 28) v |= (c & 15) << 28;
      if (c < 128) break;
      shift += 7;
      if (shift > 63) throw new Error('protobuf: varint too long');
    }
    this.pos = p;
    return v >>> 0;
  }

  // Returns [lo, hi] halves of a 64-bit varint.
  private varint64(): [number, number] {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (;;) {
      if (p >= this.end) throw new Error('protobuf: truncated varint');
      const c = b[p++];
      if (shift < 28) lo |= (c & 127) << shift;
      else if (shift === 28) {
        lo |= (c & 15) << 28;
        hi |= (c & 127) >> 4;
      } else hi |= (c & 127) << (shift - 32);
      if (c < 128) break;
      shift += 7;
      if (shift > 63) throw new Error('protobuf: varint too long');
    }
    this.pos = p;
    return [lo >>> 0, hi >>> 0];
  }

  int64(): number {
    const [lo, hi] = this.varint64();
    if (hi & 0x80000000) return (hi | 0) * TWO_32 + lo;
    return hi * TWO_32 + lo;
  }

  uint64(): number {
    const [lo, hi] = this.varint64();
    return hi * TWO_32 + lo;
  }

  bigint64(): bigint {
    const [lo, hi] = this.varint64();
    return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
  }

  biguint64(): bigint {
    const [lo, hi] = this.varint64();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  int32(): number {
    return this.uint32() | 0;
  }

  bool(): boolean {
    const [lo, hi] = this.varint64();
    return lo !== 0 || hi !== 0;
  }

  // Zero-copy view into the request buffer; callers that keep it beyond the
  // request (the store) copy on write.
  bytes(): Buffer {
    const n = this.uint32();
    const start = this.pos;
    if (start + n > this.end) throw new Error('protobuf: truncated bytes');
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }

  string(): string {
    const n = this.uint32();
    const start = this.pos;
    if (start + n > this.end) throw new Error('protobuf: truncated string');
    this.pos = start + n;
    return this.buf.toString('utf8', start, start + n);
  }

  fixed32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  fixed64(): bigint {
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  double(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint64();
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos += this.uint32();
        break;
      case 5:
        this.pos += 4;
        break;
      case 3:
        for (;;) {
          const t = this.uint32();
          if ((t & 7) === 4) break;
          this.skip(t & 7);
        }
        break;
      default:
        throw new Error(`protobuf: invalid wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
  }
}
