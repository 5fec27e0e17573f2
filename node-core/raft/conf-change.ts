// ConfChange / ConfChangeV2 helpers and their protobuf encoding: raftpb's wire format (so entries
// stay readable by etcd tools), written with the project's pure protobuf primitives (proto/wire:
// no I/O, no clock), the one place raft may import from outside itself.
import { Reader, Writer } from '../proto/wire';
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

// raftpb.ConfChange: ID=1, Type=2, NodeID=3, Context=4 (all proto2 optional, etcd always writes
// the first three).
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const w = new Writer(32);
  w.tag(1, 0);
  w.uint64(cc.id ?? 0);
  w.tag(2, 0);
  w.uint64(cc.type);
  w.tag(3, 0);
  w.bigint64(cc.nodeId);
  if (cc.context && cc.context.length > 0) {
    w.tag(4, 2);
    w.bytes(cc.context);
  }
  return w.finish();
}

export function decodeConfChange(b: Uint8Array): ConfChange {
  const r = new Reader(b);
  const cc: ConfChange = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n, id: 0 };
  while (r.pos < r.end) {
    const tag = r.tag('ConfChange');
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) cc.id = r.uint64();
    else if (field === 2 && wire === 0) cc.type = r.int32() as ConfChangeType;
    else if (field === 3 && wire === 0) cc.nodeId = r.biguint64();
    else if (field === 4 && wire === 2) cc.context = Uint8Array.from(r.bytes());
    else r.skip(wire);
  }
  return cc;
}

// raftpb.ConfChangeV2: transition=1, changes=2 (ConfChangeSingle: type=1, node_id=2), context=3.
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const w = new Writer(32);
  if (cc.transition !== ConfChangeTransition.Auto) {
    w.tag(1, 0);
    w.uint64(cc.transition);
  }
  for (const c of cc.changes) {
    w.tag(2, 2);
    const at = w.beginLen();
    if (c.type !== ConfChangeType.ConfChangeAddNode) {
      w.tag(1, 0);
      w.uint64(c.type);
    }
    if (c.nodeId !== 0n) {
      w.tag(2, 0);
      w.bigint64(c.nodeId);
    }
    w.endLen(at);
  }
  if (cc.context && cc.context.length > 0) {
    w.tag(3, 2);
    w.bytes(cc.context);
  }
  return w.finish();
}

export function decodeConfChangeV2(b: Uint8Array): ConfChangeV2 {
  const r = new Reader(b);
  const cc: ConfChangeV2 = { transition: ConfChangeTransition.Auto, changes: [] };
  while (r.pos < r.end) {
    const tag = r.tag('ConfChangeV2');
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) cc.transition = r.int32() as ConfChangeTransition;
    else if (field === 2 && wire === 2) cc.changes.push(decodeSingle(r.bytes()));
    else if (field === 3 && wire === 2) cc.context = Uint8Array.from(r.bytes());
    else r.skip(wire);
  }
  return cc;
}

function decodeSingle(b: Uint8Array): ConfChangeSingle {
  const r = new Reader(b);
  const s: ConfChangeSingle = { type: ConfChangeType.ConfChangeAddNode, nodeId: 0n };
  while (r.pos < r.end) {
    const tag = r.tag('ConfChangeSingle');
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 0) s.type = r.int32() as ConfChangeType;
    else if (field === 2 && wire === 0) s.nodeId = r.biguint64();
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
