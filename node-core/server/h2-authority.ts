// grpc-go (so etcdctl and clientv3) sends `:authority: http://host:port`
// when it dials an endpoint written with a scheme (etcdctl endpoint status,
// hashkv, defrag, move-leader and every `--cluster` command do). etcd's Go
// HTTP/2 server accepts that; Node's nghttp2 rejects the stream with
// PROTOCOL_ERROR before any JavaScript sees it. This rewrites the client's
// header blocks on the way in, stripping the scheme from :authority.
//
// HPACK (RFC 7541) is stateful: the client's literals may be inserted into
// the dynamic table and referenced later by index. Every representation is
// re-emitted with its original type and bytes except the rewritten value, so
// the server's table gets the same insertions in the same order; its entries
// are only ever shorter, so it evicts no earlier than the client assumes and
// every index the client sends still names the same insertion.
import { Duplex } from 'node:stream';
import type net from 'node:net';

// RFC 7541 Appendix B gives a canonical Huffman code: the code lengths of
// symbols 0..256 determine the codes.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8,
  11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22,
  22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22,
  24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
  21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27,
  27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/** code (as `${length}:${code}`) → symbol, built once from the canonical lengths. */
const HUFFMAN_DECODE = (() => {
  const order = HUFFMAN_LENGTHS.map((_, s) => s).sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  const map = new Map<number, number>();
  let code = 0;
  let prev = HUFFMAN_LENGTHS[order[0]];
  order.forEach((s, i) => {
    const len = HUFFMAN_LENGTHS[s];
    if (i > 0) code = (code + 1) << (len - prev);
    prev = len;
    map.set(len * 2 ** 32 + code, s);
  });
  return map;
})();

function huffmanDecode(b: Buffer): string {
  let out = '';
  let code = 0;
  let len = 0;
  for (const byte of b) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const sym = len >= 5 ? HUFFMAN_DECODE.get(len * 2 ** 32 + code) : undefined;
      if (sym !== undefined) {
        if (sym === 256) throw new Error('hpack: EOS in string');
        out += String.fromCharCode(sym);
        code = 0;
        len = 0;
      } else if (len > 30) throw new Error('hpack: bad huffman code');
    }
  }
  return out; // the remaining < 8 bits are padding
}

// RFC 7541 Appendix A: static table names (values are not needed here)
const STATIC_NAMES = [
  '', ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status', ':status', ':status', ':status',
  ':status', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow',
  'authorization', 'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-range', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range',
  'referer', 'refresh', 'retry-after', 'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via',
  'www-authenticate',
];

const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

interface Entry {
  name: string;
  size: number;
}

function readInt(b: Buffer, pos: number, prefix: number): [number, number] {
  const max = (1 << prefix) - 1;
  let v = b[pos] & max;
  pos++;
  if (v < max) return [v, pos];
  let m = 0;
  for (;;) {
    if (pos >= b.length) throw new Error('hpack: truncated integer');
    const c = b[pos++];
    v += (c & 127) * 2 ** m;
    m += 7;
    if (c < 128) return [v, pos];
  }
}

function writeInt(v: number, prefix: number, flags: number): Buffer {
  const max = (1 << prefix) - 1;
  if (v < max) return Buffer.from([flags | v]);
  const out = [flags | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** The client's HPACK state, enough to follow names and table sizes. */
export class AuthorityRewriter {
  private table: Entry[] = [];
  private tableSize = 0;
  private maxSize = 4096;

  private nameAt(index: number): string {
    if (index <= 0) throw new Error('hpack: index 0');
    if (index < STATIC_NAMES.length) return STATIC_NAMES[index];
    const e = this.table[index - STATIC_NAMES.length];
    if (!e) throw new Error(`hpack: index ${index} out of range`);
    return e.name;
  }

  private insert(name: string, valueLen: number): void {
    const size = name.length + valueLen + 32;
    this.table.unshift({ name, size });
    this.tableSize += size;
    this.evict();
  }

  private evict(): void {
    while (this.tableSize > this.maxSize && this.table.length) this.tableSize -= this.table.pop()!.size;
  }

  private readString(b: Buffer, pos: number): { value: string; start: number; end: number } {
    const start = pos;
    const huff = (b[pos] & 0x80) !== 0;
    const [len, p] = readInt(b, pos, 7);
    const end = p + len;
    if (end > b.length) throw new Error('hpack: truncated string');
    const raw = b.subarray(p, end);
    return { value: huff ? huffmanDecode(raw) : raw.toString('latin1'), start, end };
  }

  /** Returns the block, rewritten if any :authority carried a scheme. */
  rewriteBlock(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    let changed = false;
    let pos = 0;
    let copyFrom = 0;
    while (pos < block.length) {
      const c = block[pos];
      if (c & 0x80) {
        [, pos] = readInt(block, pos, 7);
        continue;
      }
      if ((c & 0xe0) === 0x20) {
        [this.maxSize, pos] = readInt(block, pos, 5);
        this.evict();
        continue;
      }
      const incremental = (c & 0xc0) === 0x40;
      const [index, p] = readInt(block, pos, incremental ? 6 : 4);
      pos = p;
      let name: string;
      if (index === 0) {
        const n = this.readString(block, pos);
        name = n.value;
        pos = n.end;
      } else name = this.nameAt(index);
      const v = this.readString(block, pos);
      pos = v.end;
      let valueLen = Buffer.byteLength(v.value, 'latin1');
      if (name === ':authority' && SCHEME.test(v.value)) {
        const fixed = Buffer.from(v.value.replace(SCHEME, ''), 'latin1');
        parts.push(block.subarray(copyFrom, v.start), writeInt(fixed.length, 7, 0), fixed);
        copyFrom = v.end;
        valueLen = fixed.length;
        changed = true;
      }
      if (incremental) this.insert(name, valueLen);
    }
    if (!changed) return block;
    parts.push(block.subarray(copyFrom));
    return Buffer.concat(parts);
  }
}

const FRAME_HEADER = 9;
const HEADERS = 1;
const CONTINUATION = 9;
const SETTINGS = 4;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;
const PREFACE_LEN = 24;
/** nghttp2's default SETTINGS_MAX_FRAME_SIZE, which a rewritten block must respect. */
const MAX_FRAME = 16384;

/** Rewrites the client → server byte stream of one HTTP/2 connection. */
export class H2InboundRewriter {
  private readonly hpack = new AuthorityRewriter();
  /** Set when our own early SETTINGS frame is outstanding: its ACK must not reach nghttp2. */
  dropSettingsAck = false;
  private buf: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE_LEN;
  private passLeft = 0;
  private block: Buffer[] = [];
  private blockHead?: { flags: number; stream: number; priority?: Buffer };

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    let pos = 0;
    if (this.prefaceLeft) {
      const n = Math.min(this.prefaceLeft, data.length);
      out.push(data.subarray(0, n));
      this.prefaceLeft -= n;
      pos = n;
    }
    while (pos < data.length) {
      if (this.passLeft) {
        const n = Math.min(this.passLeft, data.length - pos);
        out.push(data.subarray(pos, pos + n));
        this.passLeft -= n;
        pos += n;
        continue;
      }
      if (data.length - pos < FRAME_HEADER) break;
      const len = data.readUIntBE(pos, 3);
      const type = data[pos + 3];
      if (type === SETTINGS && this.dropSettingsAck && data[pos + 4] & 1) {
        if (data.length - pos < FRAME_HEADER + len) break;
        this.dropSettingsAck = false;
        pos += FRAME_HEADER + len;
        continue;
      }
      if (type !== HEADERS && type !== CONTINUATION) {
        out.push(data.subarray(pos, pos + FRAME_HEADER));
        pos += FRAME_HEADER;
        this.passLeft = len;
        continue;
      }
      if (data.length - pos < FRAME_HEADER + len) break;
      const flags = data[pos + 4];
      const stream = data.readUInt32BE(pos + 5) & 0x7fffffff;
      let body = data.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + len);
      pos += FRAME_HEADER + len;
      if (type === HEADERS) {
        let priority: Buffer | undefined;
        if (flags & PADDED) {
          const pad = body[0];
          body = body.subarray(1, body.length - pad);
        }
        if (flags & PRIORITY) {
          priority = Buffer.from(body.subarray(0, 5));
          body = body.subarray(5);
        }
        this.blockHead = { flags: flags & ~PADDED, stream, priority };
        this.block = [Buffer.from(body)];
      } else this.block.push(Buffer.from(body));
      if (flags & END_HEADERS) out.push(...this.emitBlock());
    }
    if (pos < data.length) this.buf = Buffer.from(data.subarray(pos));
    return out;
  }

  private emitBlock(): Buffer[] {
    const head = this.blockHead!;
    const block = this.hpack.rewriteBlock(this.block.length === 1 ? this.block[0] : Buffer.concat(this.block));
    this.block = [];
    this.blockHead = undefined;
    const frames: Buffer[] = [];
    let off = 0;
    let first = true;
    do {
      const room = MAX_FRAME - (first && head.priority ? 5 : 0);
      const piece = block.subarray(off, off + room);
      off += piece.length;
      const last = off >= block.length;
      const prio = first && head.priority ? head.priority : undefined;
      const h = Buffer.alloc(FRAME_HEADER);
      h.writeUIntBE(piece.length + (prio ? 5 : 0), 0, 3);
      h[3] = first ? HEADERS : CONTINUATION;
      h[4] = (first ? head.flags & ~END_HEADERS : 0) | (last ? END_HEADERS : 0);
      h.writeUInt32BE(head.stream, 5);
      frames.push(h);
      if (prio) frames.push(prio);
      frames.push(piece);
      first = false;
    } while (off < block.length);
    return frames;
  }
}

/**
 * A duplex over the socket whose inbound bytes pass through the rewriter,
 * for handing to the gRPC server's HTTP/2 server in place of the socket.
 */
export function rewritingDuplex(socket: net.Socket, first?: Buffer, dropSettingsAck = false): Duplex {
  const rw = new H2InboundRewriter();
  rw.dropSettingsAck = dropSettingsAck;
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  const feed = (chunk: Buffer): void => {
    let parts: Buffer[];
    try {
      parts = rw.push(chunk);
    } catch {
      socket.destroy();
      return;
    }
    let ok = true;
    for (const p of parts) if (p.length) ok = d.push(p) && ok;
    if (!ok) socket.pause();
  };
  if (first) feed(first);
  socket.on('data', feed);
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (e) => d.destroy(e));
  return d;
}

/** How connections were handed over, for tests and diagnosis: raw keeps Node's native socket path. */
export const sniffStats = { raw: 0, rewritten: 0 };

/** An empty SETTINGS frame: a server preface sent before nghttp2 takes the connection. */
const EARLY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
// generous: a connection that sends no request yet just waits in the sniffer; a loaded machine can take
// a while between the client reading our SETTINGS and sending its first request
const SNIFF_TIMEOUT_MS = 5000;

/**
 * Decides per connection whether the rewrite is needed, so ordinary clients
 * keep Node's native socket path (a JavaScript duplex costs ~15-30% here).
 * Clients wait for the server's SETTINGS before their first request, so we
 * send an empty one ourselves, read up to the first request's headers, drop
 * the client's ACK of our SETTINGS (nghttp2 never sent it), and hand over
 * either the socket itself or the rewriting duplex.
 */
export function sniffAuthority(socket: net.Socket, hand: (conn: Duplex) => void): void {
  socket.write(EARLY_SETTINGS);
  let buf = Buffer.alloc(0);
  let done = false;
  const finish = (raw: boolean, data: Buffer, ackDropped: boolean): void => {
    if (done) return;
    done = true;
    if (raw) sniffStats.raw++;
    else sniffStats.rewritten++;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('close', onClose);
    socket.pause();
    if (raw) {
      socket.unshift(data);
      hand(socket);
    } else hand(rewritingDuplex(socket, data, !ackDropped));
  };
  const timer = setTimeout(() => finish(false, buf, false), SNIFF_TIMEOUT_MS);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    // walk whole frames after the preface
    let pos = PREFACE_LEN;
    let ackAt = -1;
    while (buf.length - pos >= FRAME_HEADER) {
      const len = buf.readUIntBE(pos, 3);
      if (buf.length - pos < FRAME_HEADER + len) return;
      const type = buf[pos + 3];
      const flags = buf[pos + 4];
      if (type === SETTINGS && flags & 1 && ackAt < 0) ackAt = pos;
      else if (type === HEADERS) {
        if (!(flags & END_HEADERS)) return finish(false, buf, false);
        let body = buf.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + len);
        if (flags & PADDED) body = body.subarray(1, body.length - body[0]);
        if (flags & PRIORITY) body = body.subarray(5);
        let needs = true;
        try {
          const probe = new AuthorityRewriter();
          const copy = Buffer.from(body);
          // rewriteBlock hands back its input unchanged when nothing needs rewriting
          needs = probe.rewriteBlock(copy) !== copy;
        } catch {
          needs = true;
        }
        if (ackAt < 0 || needs) return finish(false, buf, false);
        const without = Buffer.concat([buf.subarray(0, ackAt), buf.subarray(ackAt + FRAME_HEADER)]);
        return finish(true, without, true);
      }
      pos += FRAME_HEADER + len;
    }
  };
  // a client gone before its first request (grpc-go dials every endpoint and may close some unused) is
  // dropped here: its timer would otherwise hand a closed socket to the HTTP/2 server 5 s later
  const onClose = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
  };
  socket.on('data', onData);
  socket.once('close', onClose);
}
