// HPACK (RFC 7541) for the lean HTTP/2 server: a full decoder (static and dynamic
// table, table size updates, Huffman strings — grpc-go Huffman-encodes its header
// values and indexes most of them) and a minimal encoder that never touches a
// dynamic table. Never indexing on output means the peer's SETTINGS_HEADER_TABLE_SIZE
// cannot be violated whatever it is, and an encoded block does not depend on the
// connection: a fixed set of response headers can be encoded once and reused.
//
// Header strings are latin1: HPACK strings are octets, and one octet per char keeps
// the RFC's size accounting (name + value + 32) equal to String.length.
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table';

/** RFC 7541 Appendix A, 1-based (index 0 unused). */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
const STATIC_COUNT = STATIC_TABLE.length - 1;

/** A malformed header block: the connection must end with COMPRESSION_ERROR (RFC 7540 §4.3). */
export class HpackError extends Error {}

// ---- Huffman decoding ----------------------------------------------------------------
// A tree of 256-way tables consumed 8 bits at a time (as golang.org/x/net's decoder does):
// one table lookup per input byte for the common short codes instead of one step per bit.
interface HuffNode {
  /** Internal node: the next 8 bits index this; leaves have none. */
  children: (HuffNode | undefined)[] | undefined;
  sym: number;
  /** Bits of the code this leaf consumes from the last 8-bit lookup (1..8). */
  bits: number;
}

function buildHuffmanTree(): HuffNode {
  const root: HuffNode = { children: new Array<HuffNode | undefined>(256), sym: 0, bits: 0 };
  for (let sym = 0; sym < 256; sym++) {
    const code = HUFFMAN_CODES[sym];
    let len = HUFFMAN_LENGTHS[sym];
    let cur = root;
    while (len > 8) {
      len -= 8;
      const i = (code >>> len) & 0xff;
      let next = cur.children![i];
      if (!next) {
        next = { children: new Array<HuffNode | undefined>(256), sym: 0, bits: 0 };
        cur.children![i] = next;
      }
      cur = next;
    }
    const shift = 8 - len;
    const start = (code << shift) & 0xff;
    const leaf: HuffNode = { children: undefined, sym, bits: len };
    for (let i = start; i < start + (1 << shift); i++) cur.children![i] = leaf;
  }
  return root;
}
const HUFF_ROOT = buildHuffmanTree();

/** Decodes a Huffman-coded string (RFC 7541 §5.2), refusing EOS, and padding that is longer than 7 bits or not all ones. */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // the shortest code is 5 bits: at most 8/5 output bytes per input byte
  const out = Buffer.allocUnsafe((((end - start) * 8) / 5) | 0);
  let o = 0;
  let node = HUFF_ROOT;
  let cur = 0; // the undecoded bits, right-aligned (fewer than 16 at any time)
  let cbits = 0;
  let sbits = 0; // bits since the last emitted symbol: the padding if the input ends here
  for (let p = start; p < end; p++) {
    cur = ((cur << 8) | src[p]) & 0xffff;
    cbits += 8;
    sbits += 8;
    while (cbits >= 8) {
      const next: HuffNode | undefined = node.children![(cur >>> (cbits - 8)) & 0xff];
      if (!next) throw new HpackError('invalid Huffman code');
      if (next.children) {
        node = next;
        cbits -= 8;
      } else {
        out[o++] = next.sym;
        cbits -= next.bits;
        node = HUFF_ROOT;
        sbits = cbits;
      }
    }
  }
  while (cbits > 0) {
    const next: HuffNode | undefined = node.children![(cur << (8 - cbits)) & 0xff];
    if (!next || next.children || next.bits > cbits) break;
    out[o++] = next.sym;
    cbits -= next.bits;
    node = HUFF_ROOT;
    sbits = cbits;
  }
  if (sbits > 7) throw new HpackError('Huffman padding longer than 7 bits');
  const mask = (1 << cbits) - 1;
  if ((cur & mask) !== mask) throw new HpackError('Huffman padding is not the EOS prefix');
  return out.toString('latin1', 0, o);
}

// ---- Decoder ----------------------------------------------------------------------------

/** One connection's HPACK decoding context (the dynamic table lives as long as the connection). */
export class HpackDecoder {
  /** Newest last: dynamic index 1 is the last element. */
  private readonly names: string[] = [];
  private readonly values: string[] = [];
  private size = 0;
  private maxSize: number;
  private pos = 0;

  /** @param limit our SETTINGS_HEADER_TABLE_SIZE: the largest table a size update may ask for. */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** Current dynamic table, newest first (for tests and diagnostics). */
  table(): [string, string][] {
    const t: [string, string][] = [];
    for (let i = this.names.length - 1; i >= 0; i--) t.push([this.names[i], this.values[i]]);
    return t;
  }

  /** Set by `decode` when the list went over its limit: the fields returned are incomplete. */
  truncated = false;

  get tableSize(): number {
    return this.size;
  }

  /**
   * Decodes one complete header block into a flat [name, value, name, value, ...] list.
   * Throws HpackError on any malformed input; the caller ends the connection (the table is then unusable).
   * @param maxListSize once the decoded list (RFC 9113 §6.5.2 accounting) grows past this, fields are no
   * longer kept (a small block referencing one large table entry many times must not become a huge list)
   * but the block is still decoded to its end so the dynamic table stays in step; `truncated` then says so.
   */
  decode(src: Uint8Array, maxListSize = Infinity): string[] {
    const out: string[] = [];
    const end = src.length;
    this.pos = 0;
    this.truncated = false;
    let listSize = 0;
    let fieldsSeen = false;
    while (this.pos < end) {
      const b = src[this.pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        const idx = this.int(src, 7);
        if (idx === 0) throw new HpackError('index 0');
        name = this.nameAt(idx);
        value = this.valueAt(idx);
      } else if ((b & 0xe0) === 0x20) {
        // dynamic table size update: only before the block's first field (RFC 7541 §4.2)
        if (fieldsSeen) throw new HpackError('table size update after a header field');
        const n = this.int(src, 5);
        if (n > this.limit) throw new HpackError('table size update above SETTINGS_HEADER_TABLE_SIZE');
        this.maxSize = n;
        this.evict(0);
        continue;
      } else {
        const indexing = (b & 0xc0) === 0x40;
        const idx = this.int(src, indexing ? 6 : 4);
        name = idx === 0 ? this.str(src) : this.nameAt(idx);
        value = this.str(src);
        if (indexing) this.add(name, value);
      }
      fieldsSeen = true;
      listSize += name.length + value.length + 32;
      if (listSize > maxListSize) this.truncated = true;
      else out.push(name, value);
    }
    return out;
  }

  private int(src: Uint8Array, prefix: number): number {
    const max = (1 << prefix) - 1;
    let v = src[this.pos++] & max;
    if (v < max) return v;
    let m = 0;
    for (;;) {
      if (this.pos >= src.length) throw new HpackError('truncated integer');
      const b = src[this.pos++];
      v += (b & 0x7f) * 2 ** m;
      m += 7;
      if (!(b & 0x80)) return v;
      // nothing legitimate needs more than 2^32: stop a peer from sending endless continuation bytes
      if (m > 28) throw new HpackError('integer overflow');
    }
  }

  private str(src: Uint8Array): string {
    if (this.pos >= src.length) throw new HpackError('truncated string');
    const huff = (src[this.pos] & 0x80) !== 0;
    const len = this.int(src, 7);
    const start = this.pos;
    const stop = start + len;
    if (stop > src.length) throw new HpackError('truncated string');
    this.pos = stop;
    if (huff) return huffmanDecode(src, start, stop);
    return Buffer.from(src.buffer, src.byteOffset + start, len).toString('latin1');
  }

  private nameAt(idx: number): string {
    if (idx <= STATIC_COUNT) return STATIC_TABLE[idx][0];
    const d = this.names.length - (idx - STATIC_COUNT);
    if (d < 0) throw new HpackError('index out of range');
    return this.names[d];
  }

  private valueAt(idx: number): string {
    if (idx <= STATIC_COUNT) return STATIC_TABLE[idx][1];
    const d = this.values.length - (idx - STATIC_COUNT);
    if (d < 0) throw new HpackError('index out of range');
    return this.values[d];
  }

  private add(name: string, value: string): void {
    const entry = name.length + value.length + 32;
    // an entry larger than the table empties it and is not added (RFC 7541 §4.4)
    this.evict(entry);
    if (entry > this.maxSize) return;
    this.names.push(name);
    this.values.push(value);
    this.size += entry;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    let drop = 0;
    while (this.size + room > this.maxSize && drop < this.names.length) {
      this.size -= this.names[drop].length + this.values[drop].length + 32;
      drop++;
    }
    if (drop) {
      this.names.splice(0, drop);
      this.values.splice(0, drop);
    }
  }
}

// ---- Encoder ------------------------------------------------------------------------------

const STATIC_PAIR = new Map<string, number>();
const STATIC_NAME = new Map<string, number>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  // iterate downwards so the lowest index wins for a name
  STATIC_PAIR.set(`${STATIC_TABLE[i][0]}\0${STATIC_TABLE[i][1]}`, i);
  STATIC_NAME.set(STATIC_TABLE[i][0], i);
}

function intLength(v: number, prefix: number): number {
  const max = (1 << prefix) - 1;
  if (v < max) return 1;
  let n = 2;
  for (v -= max; v >= 128; v = Math.floor(v / 128)) n++;
  return n;
}

function writeInt(dst: Buffer, pos: number, v: number, prefix: number, flags: number): number {
  const max = (1 << prefix) - 1;
  if (v < max) {
    dst[pos++] = flags | v;
    return pos;
  }
  dst[pos++] = flags | max;
  for (v -= max; v >= 128; v = Math.floor(v / 128)) dst[pos++] = (v % 128) | 0x80;
  dst[pos++] = v;
  return pos;
}

/** Header fields to encode: a flat [name, value, ...] list or a record (array values repeat the field). */
export type HeaderInput = readonly string[] | Readonly<Record<string, string | number | readonly string[]>>;

function flatten(h: HeaderInput): string[] {
  if (Array.isArray(h)) return h as string[];
  const out: string[] = [];
  for (const [k, v] of Object.entries(h as Record<string, string | number | readonly string[]>)) {
    if (Array.isArray(v)) for (const x of v as readonly string[]) out.push(k, x);
    else out.push(k, String(v));
  }
  return out;
}

/**
 * Encodes a header block: static-table exact matches as indexed fields, everything else
 * as literals without indexing (with the static name index when there is one), no Huffman.
 * Names are lowercased (HTTP/2 requires lowercase field names, RFC 7540 §8.1.2).
 */
export function encodeHeaders(h: HeaderInput): Buffer {
  const flat = flatten(h);
  let len = 0;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    flat[i] = name;
    const value = flat[i + 1];
    if (STATIC_PAIR.has(`${name}\0${value}`)) {
      len += 5;
      continue;
    }
    const vlen = Buffer.byteLength(value, 'latin1');
    len += 5 + intLength(vlen, 7) + vlen;
    if (!STATIC_NAME.has(name)) len += intLength(name.length, 7) + name.length;
  }
  const dst = Buffer.allocUnsafe(len);
  let pos = 0;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    const value = flat[i + 1];
    const pair = STATIC_PAIR.get(`${name}\0${value}`);
    if (pair !== undefined) {
      pos = writeInt(dst, pos, pair, 7, 0x80);
      continue;
    }
    const nameIdx = STATIC_NAME.get(name);
    if (nameIdx !== undefined) {
      pos = writeInt(dst, pos, nameIdx, 4, 0);
    } else {
      dst[pos++] = 0;
      pos = writeInt(dst, pos, name.length, 7, 0);
      pos += dst.write(name, pos, 'latin1');
    }
    pos = writeInt(dst, pos, Buffer.byteLength(value, 'latin1'), 7, 0);
    pos += dst.write(value, pos, 'latin1');
  }
  return dst.subarray(0, pos);
}

/**
 * A header block encoded once and sent many times (the gRPC server's fixed response
 * headers and OK trailers): valid on any connection because the encoder keeps no state.
 */
export class EncodedHeaders {
  readonly block: Buffer;
  constructor(h: HeaderInput) {
    this.block = encodeHeaders(h);
  }
}
