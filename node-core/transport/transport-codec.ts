// Wire codec of the peer transport: raft messages as etcd's raftpb.Message inside gRPC frames.
//
// The hot path (a MessageBatch per flush) is hand-written instead of going through the generated
// MessageInit codec: sizes are computed first so a whole batch is encoded into one exactly-sized
// buffer (entry data copied once, no growth or length back-patching memmoves), ids are written
// from cached varints, and decoding builds the raft core's Message directly with entry data as
// views into the received buffer. Rare shapes (snapshots) use the generated codecs.
import {
  EMPTY_BYTES,
  type ConfState,
  type Entry,
  type Message,
  type MessageType,
  type Snapshot,
} from '../raft/index';
import { Reader, varintSize, writeVarintAt } from '../proto/wire';
import * as raftpb from '../proto/gen/raftpb';

/** gRPC's length-prefixed message header: 1 byte compressed flag + 4 bytes big-endian length. */
export const GRPC_HEADER = 5;


// Member ids are random 64-bit values (9-10 byte varints); every message carries two, always the
// same few, so their encodings are computed once.
const idCache = new Map<bigint, Buffer>();
function idVarint(id: bigint): Buffer {
  let b = idCache.get(id);
  if (b) return b;
  let u = BigInt.asUintN(64, id);
  const bytes: number[] = [];
  while (u > 127n) {
    bytes.push(Number(u & 127n) | 128);
    u >>= 7n;
  }
  bytes.push(Number(u));
  b = Buffer.from(bytes);
  if (idCache.size > 4096) idCache.clear();
  idCache.set(id, b);
  return b;
}

function entrySize(e: Entry): number {
  let n = 0;
  if (e.type) n += 1 + varintSize(e.type);
  if (e.term) n += 1 + varintSize(e.term);
  if (e.index) n += 1 + varintSize(e.index);
  const d = e.data.length;
  if (d) n += 1 + varintSize(d) + d;
  return n;
}

function messageSize(m: Message, snap: Buffer | undefined): number {
  let n = 0;
  if (m.type) n += 1 + varintSize(m.type);
  if (m.to) n += 1 + idVarint(m.to).length;
  if (m.from) n += 1 + idVarint(m.from).length;
  if (m.term) n += 1 + varintSize(m.term);
  if (m.logTerm) n += 1 + varintSize(m.logTerm);
  if (m.index) n += 1 + varintSize(m.index);
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    const s = entrySize(ents[i]);
    n += 1 + varintSize(s) + s;
  }
  if (m.commit) n += 1 + varintSize(m.commit);
  if (snap) n += 1 + varintSize(snap.length) + snap.length;
  if (m.reject) n += 2;
  if (m.rejectHint) n += 1 + varintSize(m.rejectHint);
  if (m.context && m.context.length) n += 1 + varintSize(m.context.length) + m.context.length;
  return n;
}

function writeEntry(b: Buffer, p: number, e: Entry, size: number): number {
  b[p++] = 0x3a; // Message.entries = 7, length-delimited
  p = writeVarintAt(b, p, size);
  if (e.type) {
    b[p++] = 0x08;
    p = writeVarintAt(b, p, e.type);
  }
  if (e.term) {
    b[p++] = 0x10;
    p = writeVarintAt(b, p, e.term);
  }
  if (e.index) {
    b[p++] = 0x18;
    p = writeVarintAt(b, p, e.index);
  }
  const d = e.data.length;
  if (d) {
    b[p++] = 0x22;
    p = writeVarintAt(b, p, d);
    b.set(e.data, p);
    p += d;
  }
  return p;
}

function writeMessage(b: Buffer, p: number, m: Message, snap: Buffer | undefined): number {
  if (m.type) {
    b[p++] = 0x08;
    p = writeVarintAt(b, p, m.type);
  }
  if (m.to) {
    b[p++] = 0x10;
    const v = idVarint(m.to);
    v.copy(b, p);
    p += v.length;
  }
  if (m.from) {
    b[p++] = 0x18;
    const v = idVarint(m.from);
    v.copy(b, p);
    p += v.length;
  }
  if (m.term) {
    b[p++] = 0x20;
    p = writeVarintAt(b, p, m.term);
  }
  if (m.logTerm) {
    b[p++] = 0x28;
    p = writeVarintAt(b, p, m.logTerm);
  }
  if (m.index) {
    b[p++] = 0x30;
    p = writeVarintAt(b, p, m.index);
  }
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) p = writeEntry(b, p, ents[i], entrySize(ents[i]));
  if (m.commit) {
    b[p++] = 0x40;
    p = writeVarintAt(b, p, m.commit);
  }
  if (snap) {
    b[p++] = 0x4a;
    p = writeVarintAt(b, p, snap.length);
    snap.copy(b, p);
    p += snap.length;
  }
  if (m.reject) {
    b[p++] = 0x50;
    b[p++] = 1;
  }
  if (m.rejectHint) {
    b[p++] = 0x58;
    p = writeVarintAt(b, p, m.rejectHint);
  }
  if (m.context && m.context.length) {
    b[p++] = 0x62;
    p = writeVarintAt(b, p, m.context.length);
    b.set(m.context, p);
    p += m.context.length;
  }
  return p;
}

/**
 * One gRPC frame holding an etcdeskpeerpb.MessageBatch of msgs[0..count): the exact bytes a
 * generated encoder would produce for {messages}, in one allocation.
 */
export function encodeBatchFrame(msgs: Message[], count = msgs.length): Buffer {
  const sizes = new Array<number>(count);
  let snaps: (Buffer | undefined)[] | undefined;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const m = msgs[i];
    let snap: Buffer | undefined;
    if (m.snapshot) {
      snap = raftpb.encodeSnapshot(snapshotToPb(m.snapshot));
      (snaps ??= new Array<Buffer | undefined>(count))[i] = snap;
    }
    const s = messageSize(m, snap);
    sizes[i] = s;
    total += 1 + varintSize(s) + s;
  }
  const b = Buffer.allocUnsafe(GRPC_HEADER + total);
  b[0] = 0;
  b.writeUInt32BE(total, 1);
  let p = GRPC_HEADER;
  for (let i = 0; i < count; i++) {
    b[p++] = 0x0a; // MessageBatch.messages = 1
    p = writeVarintAt(b, p, sizes[i]);
    p = writeMessage(b, p, msgs[i], snaps?.[i]);
  }
  if (p !== b.length) throw new Error(`transport codec: size mismatch ${p} != ${b.length}`);
  return b;
}

/** Wire size of a message inside a batch, for queue accounting (close enough without snapshots). */
export function approxMessageBytes(m: Message): number {
  let n = 40;
  const ents = m.entries;
  for (let i = 0; i < ents.length; i++) n += ents[i].data.length + 16;
  if (m.context) n += m.context.length;
  return n;
}

function readEntry(r: Reader, end: number): Entry {
  const e: Entry = { term: 0, index: 0, type: 0, data: EMPTY_BYTES };
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case 0x08:
        e.type = r.uint32();
        break;
      case 0x10:
        e.term = r.uint64();
        break;
      case 0x18:
        e.index = r.uint64();
        break;
      case 0x22:
        e.data = r.bytes();
        break;
      default:
        r.skip(t & 7);
    }
  }
  return e;
}

function readRaftMessage(r: Reader, end: number): Message {
  const m: Message = {
    type: 0,
    to: 0n,
    from: 0n,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: undefined,
  };
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case 0x08:
        m.type = r.uint32() as MessageType;
        break;
      case 0x10:
        m.to = r.biguint64();
        break;
      case 0x18:
        m.from = r.biguint64();
        break;
      case 0x20:
        m.term = r.uint64();
        break;
      case 0x28:
        m.logTerm = r.uint64();
        break;
      case 0x30:
        m.index = r.uint64();
        break;
      case 0x3a: {
        const n = r.uint32();
        const e = r.pos + n;
        if (e > end) throw new Error('protobuf: truncated entry');
        m.entries.push(readEntry(r, e));
        r.pos = e;
        break;
      }
      case 0x40:
        m.commit = r.uint64();
        break;
      case 0x4a: {
        const n = r.uint32();
        const e = r.pos + n;
        if (e > end) throw new Error('protobuf: truncated snapshot');
        const outer = r.end;
        r.end = e; // generated readers stop at the reader's end
        m.snapshot = snapshotFromPb(raftpb.readSnapshot(r));
        r.end = outer;
        r.pos = e;
        break;
      }
      case 0x50:
        m.reject = r.bool();
        break;
      case 0x58:
        m.rejectHint = r.uint64();
        break;
      case 0x62:
        m.context = r.bytes();
        break;
      default:
        r.skip(t & 7);
    }
  }
  if (r.pos > end) throw new Error('protobuf: truncated message');
  return m;
}

/** Decodes a MessageBatch payload (without the gRPC header); entry data are views into buf. */
export function decodeBatch(buf: Buffer, onMessage: (m: Message) => void): void {
  const r = new Reader(buf);
  while (r.pos < r.end) {
    const t = r.uint32();
    if (t !== 0x0a) {
      r.skip(t & 7);
      continue;
    }
    const n = r.uint32();
    const e = r.pos + n;
    if (e > r.end) throw new Error('protobuf: truncated message');
    const m = readRaftMessage(r, e);
    r.pos = e;
    onMessage(m);
  }
}

/** Decodes one raftpb.Message (used by the snapshot path and tests). */
export function decodeRaftMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  return readRaftMessage(r, r.end);
}

/** Encodes one raftpb.Message (without framing). */
export function encodeRaftMessage(m: Message): Buffer {
  // A batch of one is `0x0a len msg`: strip the gRPC header and the field prefix.
  const frame = encodeBatchFrame([m], 1);
  const r = new Reader(frame, GRPC_HEADER + 1);
  const len = r.uint32();
  return frame.subarray(r.pos, r.pos + len);
}

function confStateToPb(c: ConfState): raftpb.ConfStateInit {
  return {
    voters: c.voters,
    learners: c.learners,
    voters_outgoing: c.votersOutgoing,
    learners_next: c.learnersNext,
    auto_leave: c.autoLeave,
  };
}

function snapshotToPb(s: Snapshot): raftpb.SnapshotInit {
  return {
    data: s.data,
    metadata: { conf_state: confStateToPb(s.metadata.confState), index: s.metadata.index, term: s.metadata.term },
  };
}

function snapshotFromPb(s: raftpb.Snapshot): Snapshot {
  const md = s.metadata;
  const cs = md?.conf_state;
  return {
    data: s.data,
    metadata: {
      index: md?.index ?? 0,
      term: md?.term ?? 0,
      confState: {
        voters: cs?.voters ?? [],
        learners: cs?.learners ?? [],
        votersOutgoing: cs?.voters_outgoing ?? [],
        learnersNext: cs?.learners_next ?? [],
        autoLeave: cs?.auto_leave ?? false,
      },
    },
  };
}

/** A gRPC frame around an already-encoded protobuf payload. */
export function grpcFrame(payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(GRPC_HEADER + payload.length);
  b[0] = 0;
  b.writeUInt32BE(payload.length, 1);
  b.set(payload, GRPC_HEADER);
  return b;
}

/**
 * The gRPC frame header plus the protobuf prefix of a `bytes` field, so a large payload can be
 * written after it as its own chunk instead of being copied into a frame.
 */
export function bytesFieldFrameHeader(fieldNo: number, len: number): Buffer {
  const inner = 1 + varintSize(len);
  const b = Buffer.allocUnsafe(GRPC_HEADER + inner);
  b[0] = 0;
  b.writeUInt32BE(inner + len, 1);
  b[GRPC_HEADER] = (fieldNo << 3) | 2;
  writeVarintAt(b, GRPC_HEADER + 1, len);
  return b;
}

/**
 * Splits a byte stream into gRPC message payloads. A frame inside one chunk is a zero-copy view;
 * one spanning chunks is joined once. Frames over maxBytes are a protocol error (the bound on
 * what a peer can make us buffer).
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer, onFrame: (payload: Buffer) => void): void {
    if (this.buffered === 0) {
      // fast path: whole frames inside this chunk need no joining
      let p = 0;
      while (chunk.length - p >= GRPC_HEADER) {
        const len = chunk.readUInt32BE(p + 1);
        this.check(chunk[p], len);
        if (chunk.length - p - GRPC_HEADER < len) break;
        onFrame(chunk.subarray(p + GRPC_HEADER, p + GRPC_HEADER + len));
        p += GRPC_HEADER + len;
      }
      if (p === chunk.length) return;
      chunk = chunk.subarray(p);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < GRPC_HEADER) return;
        const head = this.take(GRPC_HEADER);
        const len = head.readUInt32BE(1);
        this.check(head[0], len);
        this.need = len;
      }
      if (this.buffered < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      onFrame(payload);
    }
  }

  private check(flag: number, len: number): void {
    if (flag !== 0) throw new Error('grpc: compressed messages are not supported');
    if (len > this.maxBytes) throw new Error(`grpc: message of ${len} bytes exceeds the limit of ${this.maxBytes}`);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let p = 0;
      while (p < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - p);
        c.copy(out, p, 0, k);
        p += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
