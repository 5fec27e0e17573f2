// ConfChange / ConfChangeV2 helpers and their protobuf encoding. The encoding is raftpb's wire
// format so entries written here stay readable by etcd tools; it is hand-written because the
// raft core may not import the generated codecs.
import {
  type ConfChange,
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  EntryType,
} from './types';

export function isConfChangeV2(cc: ConfChange | ConfChangeV2): cc is ConfChangeV2 {
  return (cc as ConfChangeV2).changes !== undefined;
}

export function asV2(cc: ConfChange | ConfChangeV2): ConfChangeV2 {
  if (isConfChangeV2(cc)) return cc;
  return { transition: ConfChangeTransition.Auto, changes: [{ type: cc.type, nodeId: cc.nodeId }], context: cc.context };
}

/** Whether the change enters a joint configuration, and if so whether it is left automatically. */
export function enterJoint(cc: ConfChangeV2): { autoLeave: boolean; ok: boolean } {
  if (cc.transition !== ConfChangeTransition.Auto || cc.changes.length > 1) {
    switch (cc.transition) {
      case ConfChangeTransition.Auto:
      case ConfChangeTransition.JointImplicit:
        return { autoLeave: true, ok: true };
      case ConfChangeTransition.JointExplicit:
        return { autoLeave: false, ok: true };
      default:
        throw new Error(`unknown conf change transition ${String(cc.transition)}`);
    }
  }
  return { autoLeave: false, ok: false };
}

/** The empty ConfChangeV2 (context aside) is the instruction to leave a joint configuration. */
export function leaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.Auto && cc.changes.length === 0;
}

export function confChangeEntryType(cc: ConfChange | ConfChangeV2): EntryType {
  return isConfChangeV2(cc) ? EntryType.ConfChangeV2 : EntryType.ConfChange;
}

export function encodeConfChangeAny(cc: ConfChange | ConfChangeV2): Uint8Array {
  return isConfChangeV2(cc) ? encodeConfChangeV2(cc) : encodeConfChange(cc);
}

// --- minimal protobuf writer/reader ---

class Writer {
  private buf: number[] = [];
  varint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.buf.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.buf.push(Number(x));
  }
  tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(BigInt(b.length));
    for (let i = 0; i < b.length; i++) this.buf.push(b[i]);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.buf);
  }
}

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.b.length) throw new Error('conf change: truncated varint');
      const byte = this.b[this.pos++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('conf change: varint overflow');
    }
  }
  bytes(): Uint8Array {
    const n = Number(this.varint());
    if (this.pos + n > this.b.length) throw new Error('conf change: truncated bytes');
    const out = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`conf change: unsupported wire type ${wire}`);
  }
}

// raftpb.ConfChange: ID=1, Type=2, NodeID=3, Context=4 (all proto2 optional, etcd always writes
// the first three).
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new Writer();
  w.tag(1, 0);
  w.varint(BigInt(cc.id ?? 0));
  w.tag(2, 0);
  w.varint(BigInt(cc.type));
  w.tag(3, 0);
  w.varint(cc.nodeId);
  if (cc.context && cc.context.length > 0) w.bytes(4, cc.context);
  return w.finish();
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  const r = new Reader(b);
  const cc: ConfChange = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n, id: 0 };
  while (!r.done()) {
    const tag = Number(r.varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) cc.id = Number(r.varint());
    else if (field === 2 && wire === 0) cc.type = Number(r.varint()) as ConfChangeType;
    else if (field === 3 && wire === 0) cc.nodeId = r.varint();
    else if (field === 4 && wire === 2) cc.context = r.bytes();
    else r.skip(wire);
  }
  return cc;
}

// raftpb.ConfChangeV2: transition=1, changes=2 (ConfChangeSingle: type=1, node_id=2), context=3.
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const w = new Writer();
  if (cc.transition !== ConfChangeTransition.Auto) {
    w.tag(1, 0);
    w.varint(BigInt(cc.transition));
  }
  for (const c of cc.changes) {
    const inner = new Writer();
    if (c.type !== ConfChangeType.ConfChangeAddNode) {
      inner.tag(1, 0);
      inner.varint(BigInt(c.type));
    }
    if (c.nodeId !== 0n) {
      inner.tag(2, 0);
      inner.varint(c.nodeId);
    }
    w.bytes(2, inner.finish());
  }
  if (cc.context && cc.context.length > 0) w.bytes(3, cc.context);
  return w.finish();
}

export function decodeConfChangeV2(b: Uint8Array): ConfChangeV2 {
  const r = new Reader(b);
  const cc: ConfChangeV2 = { transition: ConfChangeTransition.Auto, changes: [] };
  while (!r.done()) {
    const tag = Number(r.varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) cc.transition = Number(r.varint()) as ConfChangeTransition;
    else if (field === 2 && wire === 2) cc.changes.push(decodeSingle(r.bytes()));
    else if (field === 3 && wire === 2) cc.context = r.bytes();
    else r.skip(wire);
  }
  return cc;
}

function decodeSingle(b: Uint8Array): ConfChangeSingle {
  const r = new Reader(b);
  const s: ConfChangeSingle = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n };
  while (!r.done()) {
    const tag = Number(r.varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) s.type = Number(r.varint()) as ConfChangeType;
    else if (field === 2 && wire === 0) s.nodeId = r.varint();
    else r.skip(wire);
  }
  return s;
}

/** Decodes a conf change entry's payload into its V2 form (what applyConfChange wants). */
export function decodeConfChangeEntry(type: EntryType, data: Uint8Array): ConfChangeV2 | undefined {
  if (type === EntryType.ConfChange) return asV2(decodeConfChange(data));
  if (type === EntryType.ConfChangeV2) return decodeConfChangeV2(data);
  return undefined;
}
