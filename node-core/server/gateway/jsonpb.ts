// Messages to and from JSON as etcd's gateway does it: grpc-gateway's
// JSONPb{OrigName: true} marshaler (golang/protobuf 1.3 jsonpb). Output uses
// the .proto field names, omits default values, writes 64-bit integers as
// strings, bytes as standard base64 and enums by name. Input accepts the
// .proto or lowerCamelCase name (camelCase wins when both are given),
// numbers or quoted numbers, enum names or numbers, ignores unknown fields
// and null, and fails with jsonpb's/encoding/json's texts.
import type { JsonEnumDescriptor, JsonFieldDescriptor, JsonMessageDescriptor, ProtoJsonTable } from '../../proto/json-descriptor';
import { PROTO_JSON as authpb } from '../../proto/gen/authpb';
import { PROTO_JSON as etcdserverpb } from '../../proto/gen/etcdserverpb';
import { PROTO_JSON as mvccpb } from '../../proto/gen/mvccpb';
import { PROTO_JSON as v3electionpb } from '../../proto/gen/v3electionpb';
import { PROTO_JSON as v3lockpb } from '../../proto/gen/v3lockpb';
import { GoJsonSyntaxError, goQuote, unmarshal, type JsonValue } from './go-json';

const TABLES: ProtoJsonTable[] = [etcdserverpb, mvccpb, authpb, v3lockpb, v3electionpb];
const messages = new Map<string, JsonMessageDescriptor>();
const enums = new Map<string, JsonEnumDescriptor>();
const enumNames = new Map<string, Map<number, string>>();
const methods = new Map<string, [string, string]>();
for (const t of TABLES) {
  for (const [k, v] of Object.entries(t.messages)) messages.set(k, v);
  for (const [k, v] of Object.entries(t.enums)) {
    enums.set(k, v);
    const byNum = new Map<number, string>();
    for (const [name, n] of Object.entries(v.values)) if (!byNum.has(n)) byNum.set(n, name);
    enumNames.set(k, byNum);
  }
  for (const [k, v] of Object.entries(t.methods)) methods.set(k, v);
}

/** [request type, response type] of a gRPC method path. */
export function methodTypes(path: string): [string, string] | undefined {
  return methods.get(path);
}

/** A request body jsonpb refuses; the gateway answers it as INVALID_ARGUMENT with this text. */
export class JsonpbError extends Error {}

function kindName(v: JsonValue): string {
  return v.k === 'bool' ? 'bool' : v.k;
}

/** encoding/json's UnmarshalTypeError text. */
function typeError(v: JsonValue, goType: string): JsonpbError {
  const what = v.k === 'number' && /^(u?int(8|32|64)|float(32|64))$/.test(goType) ? `number ${v.raw}` : kindName(v);
  return new JsonpbError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

const INT_RANGE: Record<string, [bigint, bigint]> = {
  uint8: [0n, 255n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** strconv.ParseInt/ParseUint of a JSON number literal into a Go integer type. */
function parseInteger(v: JsonValue, goType: string): bigint {
  if (v.k !== 'number') throw typeError(v, goType);
  const [lo, hi] = INT_RANGE[goType] ?? INT_RANGE.int64;
  if (!/^-?\d+$/.test(v.raw)) throw typeError(v, goType);
  const n = BigInt(v.raw);
  if (n < lo || n > hi || (v.raw.startsWith('-') && lo === 0n)) throw typeError(v, goType);
  return n;
}

/** jsonpb reads a quoted number by unquoting its raw text and unmarshalling that. */
function unquoteNumber(v: JsonValue): JsonValue {
  if (v.k !== 'string') return v;
  try {
    return unmarshal(v.raw);
  } catch (e) {
    if (e instanceof GoJsonSyntaxError) throw new JsonpbError(e.message);
    throw e;
  }
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Go's base64.StdEncoding.Decode, with its error offsets ("illegal base64 data at input byte N"). */
export function decodeStdBase64(src: Buffer): Buffer {
  const out: number[] = [];
  const bad = (n: number): JsonpbError => new JsonpbError(`illegal base64 data at input byte ${n}`);
  const isNl = (c: number): boolean => c === 0x0a || c === 0x0d;
  let si = 0;
  while (si < src.length) {
    const q = [0, 0, 0, 0];
    let j = 0;
    let dlen = 4;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        throw bad(si - j);
      }
      const c = src[si++];
      const d = B64[c];
      if (d >= 0) {
        q[j] = d;
        continue;
      }
      if (isNl(c)) {
        j--;
        continue;
      }
      if (c !== 0x3d) throw bad(si - 1);
      // padding
      if (j < 2) throw bad(si - 1);
      if (j === 2) {
        while (si < src.length && isNl(src[si])) si++;
        if (si === src.length) throw bad(src.length);
        if (src[si] !== 0x3d) throw bad(si - 1);
        si++;
      }
      while (si < src.length && isNl(src[si])) si++;
      if (si < src.length) throw bad(si);
      dlen = j;
      break;
    }
    const v = (q[0] << 18) | (q[1] << 12) | (q[2] << 6) | q[3];
    out.push((v >> 16) & 0xff);
    if (dlen > 2) out.push((v >> 8) & 0xff);
    if (dlen > 3) out.push(v & 0xff);
    while (si < src.length && isNl(src[si])) si++;
  }
  return Buffer.from(out);
}

type InitValue = string | number | bigint | boolean | Buffer | InitObject | InitValue[];
export interface InitObject {
  [field: string]: InitValue;
}

function scalarFromJson(f: JsonFieldDescriptor, v: JsonValue): InitValue {
  switch (f.type) {
    case 'enum': {
      const e = enums.get(f.ref ?? '');
      if (!e) throw new JsonpbError(`unknown enum ${f.ref}`);
      if (v.k === 'string') {
        const n = e.values[v.v];
        if (n === undefined) throw new JsonpbError(`unknown value ${goQuote(v.v)} for enum ${e.go}`);
        return n;
      }
      // a number: Go unmarshals it into the enum's int32 type, named in its errors
      const bad = (): JsonpbError => new JsonpbError(`json: cannot unmarshal ${v.k === 'number' ? `number ${v.raw}` : kindName(v)} into Go value of type ${e.go}`);
      if (v.k !== 'number' || !/^-?\d+$/.test(v.raw)) throw bad();
      const n = BigInt(v.raw);
      if (n < INT_RANGE.int32[0] || n > INT_RANGE.int32[1]) throw bad();
      return Number(n);
    }
    case 'message':
      return messageFromJson(f.ref ?? '', v);
    case 'bool':
      if (v.k !== 'bool') throw typeError(v, 'bool');
      return v.v;
    case 'string':
      if (v.k !== 'string') throw typeError(v, 'string');
      return v.v;
    case 'bytes':
      // encoding/json: a base64 string, or an array of byte values
      if (v.k === 'array') return Buffer.from(v.items.map((item) => (item.k === 'null' ? 0 : Number(parseInteger(item, 'uint8')))));
      if (v.k !== 'string') throw typeError(v, '[]uint8');
      return decodeStdBase64(Buffer.from(v.v, 'utf8'));
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'uint64': {
      const n = parseInteger(unquoteNumber(v), f.type);
      return f.bigint ? n : Number(n);
    }
    case 'double':
    case 'float': {
      const u = unquoteNumber(v);
      if (u.k !== 'number') throw typeError(u, f.type === 'double' ? 'float64' : 'float32');
      return Number(u.raw);
    }
    default:
      throw new JsonpbError(`unsupported field type ${f.type}`);
  }
}

/** A JSON value as the `XInit` object of message type `type` (full proto name). */
export function messageFromJson(type: string, v: JsonValue): InitObject {
  const d = messages.get(type);
  if (!d) throw new JsonpbError(`unknown message type ${type}`);
  const out: InitObject = {};
  if (v.k === 'null') return out;
  if (v.k !== 'object') throw typeError(v, 'map[string]json.RawMessage');
  for (const f of d.fields) {
    const camel = v.fields.get(f.json);
    const raw = camel ?? v.fields.get(f.name);
    if (raw === undefined || raw.k === 'null') continue;
    if (f.repeated) {
      if (raw.k !== 'array') throw typeError(raw, '[]json.RawMessage');
      out[f.name] = raw.items.map((item) => (item.k === 'null' ? zeroOf(f) : scalarFromJson(f, item)));
    } else out[f.name] = scalarFromJson(f, raw);
  }
  return out;
}

function zeroOf(f: JsonFieldDescriptor): InitValue {
  if (f.type === 'message') return {};
  if (f.type === 'bytes') return Buffer.alloc(0);
  if (f.type === 'string') return '';
  if (f.type === 'bool') return false;
  return f.bigint ? 0n : 0;
}

const INT64_TYPES = new Set(['int64', 'uint64', 'fixed64', 'sfixed64', 'sint64']);

function integerText(x: unknown): string {
  if (typeof x === 'bigint') return x.toString();
  const n = x as number;
  return Number.isSafeInteger(n) ? String(n) : BigInt(Math.trunc(n)).toString();
}

function isDefault(f: JsonFieldDescriptor, x: unknown): boolean {
  if (x === undefined || x === null) return true;
  if (f.oneof) return false;
  if (f.repeated) return (x as unknown[]).length === 0;
  if (f.type === 'message') return false;
  if (f.type === 'bytes' || f.type === 'string') return (x as { length: number }).length === 0;
  if (typeof x === 'bigint') return x === 0n;
  return x === 0 || x === false;
}

function scalarToJson(f: JsonFieldDescriptor, x: unknown): string {
  switch (f.type) {
    case 'message':
      return messageToJson(f.ref ?? '', x as Record<string, unknown>);
    case 'enum': {
      const name = enumNames.get(f.ref ?? '')?.get(x as number);
      return name !== undefined ? goQuote(name) : String(x);
    }
    case 'bytes':
      return `"${Buffer.from(x as Uint8Array).toString('base64')}"`;
    case 'string':
      return goQuote(x as string);
    case 'bool':
      return x ? 'true' : 'false';
    default:
      if (INT64_TYPES.has(f.type)) return `"${integerText(x)}"`;
      return typeof x === 'bigint' ? x.toString() : String(x);
  }
}

/** A decoded message of type `type` as jsonpb writes it (OrigName, defaults omitted). */
export function messageToJson(type: string, m: Record<string, unknown>): string {
  const d = messages.get(type);
  if (!d) throw new Error(`unknown message type ${type}`);
  let out = '';
  for (const f of d.fields) {
    const x = m[f.name];
    if (isDefault(f, x)) continue;
    const text = f.repeated ? `[${(x as unknown[]).map((e) => scalarToJson(f, e)).join(',')}]` : scalarToJson(f, x);
    out += `${out ? ',' : ''}"${f.name}":${text}`;
  }
  return `{${out}}`;
}
