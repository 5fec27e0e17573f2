// Our generated codecs against protobufjs on random messages of every type in node-core/proto:
// protobufjs encodes a random message (64-bit extremes, empty and long bytes, astral strings,
// oneofs, nested and repeated fields, unknown fields appended); our decoder must read what
// protobufjs reads, and the bytes our encoder writes back must decode in protobufjs to the same.
// Seeded: WIRE_FUZZ_SEED=<n> replays a run; a failure names its seed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import * as authpb from './gen/authpb';
import * as etcdeskpeerpb from './gen/etcdeskpeerpb';
import * as etcdserverpb from './gen/etcdserverpb';
import * as leasepb from './gen/leasepb';
import * as mvccpb from './gen/mvccpb';
import * as raftpb from './gen/raftpb';
import * as v3electionpb from './gen/v3electionpb';
import * as v3lockpb from './gen/v3lockpb';
import { Writer } from './wire';

const GEN: Record<string, Record<string, unknown>> = { authpb, etcdeskpeerpb, etcdserverpb, leasepb, mvccpb, raftpb, v3electionpb, v3lockpb };
const PROTO_DIR = path.dirname(fileURLToPath(import.meta.url));
const PER_TYPE = 25;
// protobufjs reads and writes 64-bit values as long.js Longs (its typings declare only their fields)
interface Long64 extends protobuf.Long {
  toUnsigned(): Long64;
  toString(): string;
}
interface LongStatic {
  fromString(s: string, unsigned?: boolean): Long64;
  fromNumber(n: number, unsigned?: boolean): Long64;
  fromBits(lo: number, hi: number, unsigned?: boolean): Long64;
}
const Long = protobuf.util.Long as unknown as LongStatic;

type Obj = Record<string, unknown>;

function protoFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory() && e.name !== 'gen') out.push(...protoFiles(dir, r));
    else if (e.name.endsWith('.proto')) out.push(r);
  }
  return out;
}

function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
  root.loadSync(protoFiles(PROTO_DIR), { keepCase: true });
  root.resolveAll();
  return root;
}

function allTypes(ns: protobuf.NamespaceBase, out: protobuf.Type[] = []): protobuf.Type[] {
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Type) out.push(o);
    if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) allTypes(o, out);
  }
  return out;
}

/** Our generated codec of a protobufjs type: etcdserverpb.RangeRequest.SortOrder → etcdserverpb RangeRequest_SortOrder. */
function ours(t: protobuf.Type): { encode: (m: unknown) => Buffer; decode: (b: Uint8Array) => Obj } {
  const [pkg, ...rest] = t.fullName.slice(1).split('.');
  const name = rest.join('_');
  const mod = GEN[pkg];
  const encode = mod?.[`encode${name}`] as ((m: unknown) => Buffer) | undefined;
  const decode = mod?.[`decode${name}`] as ((b: Uint8Array) => Obj) | undefined;
  if (!encode || !decode) throw new Error(`no generated codec for ${t.fullName}`);
  return { encode, decode };
}

// xorshift32: small, seedable, good enough to pick shapes
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const INT64_EDGES = ['0', '1', '-1', '127', '128', '2147483647', '2147483648', '-2147483648', '4294967295', '4294967296', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808', '9223372036854774784', '9223372036854775295'];
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

class Gen {
  constructor(private rnd: () => number) {}

  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  u32(): number {
    return this.int(2 ** 32);
  }

  long(unsigned: boolean): Long64 {
    const k = this.rnd();
    if (k < 0.4) {
      const l = Long.fromString(INT64_EDGES[this.int(INT64_EDGES.length)], false);
      return unsigned ? l.toUnsigned() : l;
    }
    if (k < 0.7) return Long.fromNumber(this.int(100_000), unsigned);
    return Long.fromBits(this.u32() | 0, this.u32() | 0, unsigned);
  }

  bytes(): Uint8Array {
    const n = this.rnd() < 0.1 ? 130 + this.int(20_000) : this.int(12);
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  string(): string {
    const n = this.int(8);
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.rnd();
      // ascii, two- and three-byte, astral (surrogate pairs); never a lone surrogate
      const cp = r < 0.5 ? 32 + this.int(95) : r < 0.7 ? 0x80 + this.int(0x780) : r < 0.9 ? 0xe000 + this.int(0x1000) : 0x10000 + this.int(0x10000);
      s += String.fromCodePoint(cp);
    }
    return s;
  }

  scalar(type: string): unknown {
    switch (type) {
      case 'bool':
        return this.rnd() < 0.5;
      case 'string':
        return this.string();
      case 'bytes':
        return this.bytes();
      case 'int32':
        return this.rnd() < 0.3 ? -1 - this.int(1000) : this.int(2 ** 31);
      case 'uint32':
        return this.u32();
      case 'int64':
      case 'sint64':
      case 'sfixed64':
        return this.long(false);
      case 'uint64':
      case 'fixed64':
        return this.long(true);
      default:
        throw new Error(`fuzz: no generator for ${type}`);
    }
  }

  value(f: protobuf.Field, depth: number): unknown {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.message(rt, depth + 1);
    if (rt instanceof protobuf.Enum) {
      const vals = Object.values(rt.values);
      return this.rnd() < 0.9 ? vals[this.int(vals.length)] : this.int(1000);
    }
    return this.scalar(f.type);
  }

  message(t: protobuf.Type, depth = 0): protobuf.Message {
    const o: Obj = {};
    const fill = (f: protobuf.Field): void => {
      if (f.resolvedType instanceof protobuf.Type && depth >= 3) return;
      if (f.repeated) {
        const n = this.int(4);
        const arr: unknown[] = [];
        for (let i = 0; i < n; i++) arr.push(this.value(f, depth));
        o[f.name] = arr;
      } else o[f.name] = this.value(f, depth);
    };
    for (const one of t.oneofsArray) {
      const k = this.int(one.fieldsArray.length + 1) - 1;
      if (k >= 0) fill(one.fieldsArray[k]);
    }
    for (const f of t.fieldsArray) if (!f.partOf && this.rnd() < 0.7) fill(f);
    return t.create(o);
  }

  /** A field the type does not know (number above its own), of a random wire type. */
  unknownField(t: protobuf.Type): Buffer {
    const maxId = Math.max(0, ...t.fieldsArray.map((f) => f.id));
    const num = maxId + 1 + this.int(5000);
    const w = new Writer();
    const wt = [0, 1, 2, 3, 5][this.int(5)];
    w.uint32(num * 8 + wt);
    if (wt === 0) w.bigint64(BigInt(this.long(false).toString()));
    else if (wt === 1) w.fixed64(BigInt(this.long(true).toString()));
    else if (wt === 2) w.bytes(this.bytes());
    else if (wt === 5) w.fixed32(this.u32());
    else {
      w.uint32(((num + 1) << 3) | 0);
      w.uint32(this.u32());
      w.uint32((num << 3) | 4);
    }
    return w.finish();
  }
}

/** Differences between protobufjs's reading of a message and ours ([] when equal). */
function diff(t: protobuf.Type, pb: protobuf.Message | null | undefined, our: Obj | undefined, at: string, out: string[]): void {
  if (!pb || !our) {
    if (Boolean(pb) !== Boolean(our)) out.push(`${at}: protobufjs ${pb ? 'set' : 'unset'}, ours ${our ? 'set' : 'unset'}`);
    return;
  }
  const pbo = pb as unknown as Obj;
  for (const f of t.fieldsArray) {
    const p = `${at}.${f.name}`;
    const pv = pbo[f.name];
    const ov = our[f.name];
    const explicit = f.partOf !== null || f.resolvedType instanceof protobuf.Type;
    if (explicit && !f.repeated) {
      const pSet = Object.prototype.hasOwnProperty.call(pbo, f.name) && pv !== null && pv !== undefined;
      if (pSet !== (ov !== undefined)) {
        out.push(`${p}: protobufjs ${pSet ? 'set' : 'unset'}, ours ${ov !== undefined ? 'set' : 'unset'}`);
        continue;
      }
      if (!pSet) continue;
    }
    if (f.repeated) {
      const pa = (pv ?? []) as unknown[];
      const oa = ov as unknown[];
      if (!Array.isArray(oa) || pa.length !== oa.length) {
        out.push(`${p}: length ${pa.length} vs ${Array.isArray(oa) ? oa.length : String(oa)}`);
        continue;
      }
      for (let i = 0; i < pa.length; i++) one(f, pa[i], oa[i], `${p}[${i}]`, out);
    } else one(f, pv, ov, p, out);
  }
}

function one(f: protobuf.Field, pv: unknown, ov: unknown, at: string, out: string[]): void {
  const rt = f.resolvedType;
  if (rt instanceof protobuf.Type) return diff(rt, pv as protobuf.Message, ov as Obj, at, out);
  let a: string;
  let b: string;
  if (LONG_TYPES.has(f.type)) {
    const exact = String(pv); // Long or number (a default)
    // our `number` 64-bit fields hold the nearest double; `@bigint` ones the exact value
    a = typeof ov === 'bigint' ? BigInt(exact).toString() : String(Number(exact));
    b = String(ov);
  } else if (f.type === 'bytes') {
    a = Buffer.from(pv as Uint8Array).toString('hex');
    b = Buffer.isBuffer(ov) ? ov.toString('hex') : `not a Buffer: ${String(ov)}`;
  } else {
    a = JSON.stringify(pv);
    b = JSON.stringify(ov);
  }
  if (a !== b) out.push(`${at} (${f.type}): protobufjs ${a.slice(0, 80)}, ours ${b.slice(0, 80)}`);
}

describe('protobuf codecs against protobufjs, random messages of every type', () => {
  const seed = Number(process.env.WIRE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const root = loadRoot();
  const types = allTypes(root).filter((t) => t.fullName !== '.google.protobuf.Any');

  it(`every generated type reads and writes as protobufjs (seed ${seed})`, () => {
    assert.ok(types.length > 100, `${types.length} types loaded`);
    const g = new Gen(prng(seed));
    let checked = 0;
    for (const t of types) {
      const codec = ours(t);
      for (let i = 0; i < PER_TYPE; i++) {
        const msg = g.message(t);
        let bytes = Buffer.from(t.encode(msg).finish());
        const want = t.decode(bytes);
        if (g.int(3) === 0) bytes = Buffer.concat([bytes, g.unknownField(t)]);
        const where = `seed ${seed}, ${t.fullName} #${i}, bytes ${bytes.toString('hex').slice(0, 400)}`;
        let got: Obj;
        try {
          got = codec.decode(bytes);
        } catch (e) {
          assert.fail(`${where}: our decoder threw ${String(e)}`);
        }
        const d1: string[] = [];
        diff(t, want, got, t.name, d1);
        assert.deepEqual(d1, [], `our decoder, ${where}`);
        const back = codec.encode(got);
        let again: protobuf.Message;
        try {
          again = t.decode(back);
        } catch (e) {
          assert.fail(`${where}: protobufjs cannot read our encoding ${back.toString('hex').slice(0, 400)}: ${String(e)}`);
        }
        const d2: string[] = [];
        diff(t, again, got, t.name, d2);
        assert.deepEqual(d2, [], `our encoder, ${where}, ours wrote ${back.toString('hex').slice(0, 400)}`);
        checked++;
      }
    }
    assert.ok(checked >= 2000, `${checked} messages`);
  });
});
