// Kubernetes values as stored in etcd, decoded for reading. The API server
// writes objects under /registry/ either as JSON (CRDs) or in its protobuf
// envelope: the magic bytes "k8s\0", then a runtime.Unknown message
//   1 typeMeta {1 apiVersion, 2 kind}, 2 raw (the object's own protobuf),
//   3 contentEncoding, 4 contentType.
// We have no Kubernetes schemas, so the raw object is decoded generically from
// the protobuf wire format ("#<field number>" as keys); only what every object
// shares is named: field 1 is its ObjectMeta (name, namespace, labels, …).
import type { DecodedValue } from '../contract/index';

export const K8S_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

export function isK8sProtobuf(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x6b && b[1] === 0x38 && b[2] === 0x73 && b[3] === 0x00;
}

interface WireField {
  no: number;
  wire: 0 | 1 | 2 | 5;
  /** varint / fixed: the number (bigint past 2^53); length-delimited: the bytes */
  value: number | bigint | Buffer;
}

/** A varint at pos: [value, next position], or null when truncated or over 10 bytes. */
function varint(b: Buffer, pos: number): [number | bigint, number] | null {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= b.length) return null;
    const byte = b[pos + i];
    result += (byte & 0x7f) * mul;
    if (byte < 0x80) {
      if (result <= Number.MAX_SAFE_INTEGER) return [result, pos + i + 1];
      // Past 2^53: exact as a bigint (uint64).
      let big = 0n;
      for (let j = i; j >= 0; j--) big = (big << 7n) | BigInt(b[pos + j] & 0x7f);
      return [big & 0xffffffffffffffffn, pos + i + 1];
    }
    mul *= 128;
  }
  return null;
}

/** The fields of a well-formed message, or null if the bytes are not one (then they are a string or raw bytes). */
export function parseMessage(b: Buffer): WireField[] | null {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < b.length) {
    const tag = varint(b, pos);
    if (!tag || typeof tag[0] !== 'number') return null;
    pos = tag[1];
    const no = Math.floor(tag[0] / 8);
    const wire = tag[0] % 8;
    if (no < 1 || no > 536_870_911) return null;
    if (wire === 0) {
      const v = varint(b, pos);
      if (!v) return null;
      out.push({ no, wire, value: v[0] });
      pos = v[1];
    } else if (wire === 1) {
      if (pos + 8 > b.length) return null;
      const v = b.readBigUInt64LE(pos);
      out.push({ no, wire, value: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v });
      pos += 8;
    } else if (wire === 2) {
      const len = varint(b, pos);
      if (!len || typeof len[0] !== 'number' || len[1] + len[0] > b.length) return null;
      out.push({ no, wire, value: b.subarray(len[1], len[1] + len[0]) });
      pos = len[1] + len[0];
    } else if (wire === 5) {
      if (pos + 4 > b.length) return null;
      out.push({ no, wire, value: b.readUInt32LE(pos) });
      pos += 4;
    } else return null; // groups (3/4) are not used by Kubernetes; anything else is not protobuf
  }
  return out;
}

function printableText(b: Buffer): string | null {
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return null;
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 127) return null;
  }
  return s;
}

const MAX_DEPTH = 40;

/**
 * Length-delimited bytes are ambiguous on the wire (string, bytes or a nested
 * message): printable UTF-8 reads as a string, else a well-formed message as
 * an object, else the bytes as base64. (A message's tags and lengths are
 * control bytes, so printable text is almost never a message.)
 */
function bytesValue(b: Buffer, depth: number): unknown {
  if (b.length === 0) return '';
  const s = printableText(b);
  if (s !== null) return s;
  if (depth < MAX_DEPTH) {
    const fields = parseMessage(b);
    if (fields && fields.length) return fieldsToObject(fields, depth + 1);
  }
  return `base64:${b.toString('base64')}`;
}

function scalar(f: WireField, depth: number): unknown {
  if (Buffer.isBuffer(f.value)) return bytesValue(f.value, depth);
  return typeof f.value === 'bigint' ? f.value.toString() : f.value;
}

/**
 * A field without a known name is "#<number>": never a bare number, which
 * JavaScript would list before every named key (metadata would come last).
 */
const numbered = (no: number): string => `#${no}`;

/** Fields by number: a field seen once is a value, a repeated one an array. */
export function fieldsToObject(fields: WireField[], depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seen = new Map<number, number>();
  for (const f of fields) seen.set(f.no, (seen.get(f.no) ?? 0) + 1);
  for (const f of fields) {
    const k = numbered(f.no);
    const v = scalar(f, depth);
    if ((seen.get(f.no) ?? 0) > 1) ((out[k] ??= []) as unknown[]).push(v);
    else out[k] = v;
  }
  return out;
}

/** The whole message generically, or null when the bytes are not a message. */
export function decodeProtobuf(b: Buffer): Record<string, unknown> | null {
  const fields = parseMessage(b);
  return fields ? fieldsToObject(fields) : null;
}

function stringField(fields: WireField[], no: number): string {
  const f = fields.find((x) => x.no === no && x.wire === 2);
  return f && Buffer.isBuffer(f.value) ? f.value.toString('utf8') : '';
}

export interface K8sEnvelope {
  apiVersion: string;
  kind: string;
  contentEncoding: string;
  contentType: string;
  raw: Buffer;
}

/** The runtime.Unknown after the magic, or null when the value is not Kubernetes' protobuf envelope. */
export function decodeEnvelope(b: Buffer): K8sEnvelope | null {
  if (!isK8sProtobuf(b)) return null;
  const fields = parseMessage(b.subarray(4));
  if (!fields) return null;
  const tm = fields.find((f) => f.no === 1 && f.wire === 2);
  const tmFields = tm && Buffer.isBuffer(tm.value) ? parseMessage(tm.value) : [];
  const raw = fields.find((f) => f.no === 2 && f.wire === 2);
  return {
    apiVersion: tmFields ? stringField(tmFields, 1) : '',
    kind: tmFields ? stringField(tmFields, 2) : '',
    raw: raw && Buffer.isBuffer(raw.value) ? raw.value : Buffer.alloc(0),
    contentEncoding: stringField(fields, 3),
    contentType: stringField(fields, 4),
  };
}

// ObjectMeta (k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto): the one message every object starts with.
const OBJECT_META: Record<number, string> = {
  1: 'name', 2: 'generateName', 3: 'namespace', 4: 'selfLink', 5: 'uid', 6: 'resourceVersion', 7: 'generation',
  8: 'creationTimestamp', 9: 'deletionTimestamp', 10: 'deletionGracePeriodSeconds', 11: 'labels', 12: 'annotations',
  13: 'ownerReferences', 14: 'finalizers', 15: 'clusterName', 17: 'managedFields',
};
const OWNER_REF: Record<number, string> = { 1: 'kind', 3: 'name', 4: 'uid', 5: 'apiVersion', 6: 'controller', 7: 'blockOwnerDeletion' };

/** metav1.Time {1 seconds, 2 nanos} as RFC 3339, as kubectl prints it. */
function time(b: Buffer): string {
  const f = parseMessage(b) ?? [];
  const s = f.find((x) => x.no === 1)?.value;
  const secs = typeof s === 'number' ? s : typeof s === 'bigint' ? Number(s) : 0;
  return new Date(secs * 1000).toISOString().replace('.000Z', 'Z');
}

/** map<string,string> entries {1 key, 2 value} as an object. */
function stringMap(entries: WireField[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    if (!Buffer.isBuffer(e.value)) continue;
    const kv = parseMessage(e.value) ?? [];
    out[stringField(kv, 1)] = stringField(kv, 2);
  }
  return out;
}

function named(fields: WireField[], names: Record<number, string>, special: (no: number, group: WireField[]) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const groups = new Map<number, WireField[]>();
  for (const f of fields) {
    const g = groups.get(f.no);
    if (g) g.push(f);
    else groups.set(f.no, [f]);
  }
  for (const [no, group] of groups) {
    const key = names[no] ?? numbered(no);
    const sp = special(no, group);
    if (sp !== undefined) out[key] = sp;
    else out[key] = group.length > 1 ? group.map((f) => scalar(f, 1)) : scalar(group[0], 1);
  }
  return out;
}

function objectMeta(b: Buffer): unknown {
  const fields = parseMessage(b);
  if (!fields) return bytesValue(b, 1);
  return named(fields, OBJECT_META, (no, group) => {
    const buf = group[0].value;
    if ((no === 8 || no === 9) && Buffer.isBuffer(buf)) return time(buf);
    if (no === 11 || no === 12) return stringMap(group);
    if (no === 14) return group.map((f) => (Buffer.isBuffer(f.value) ? f.value.toString('utf8') : f.value));
    if (no === 13) return group.map((f) => (Buffer.isBuffer(f.value) ? named(parseMessage(f.value) ?? [], OWNER_REF, () => undefined) : f.value));
    return undefined;
  });
}

/** The raw object: field 1 is ObjectMeta (named), the rest by field number. */
export function decodeK8sObject(raw: Buffer): Record<string, unknown> | null {
  const fields = parseMessage(raw);
  if (!fields) return null;
  return named(fields, { 1: 'metadata' }, (no, group) => (no === 1 && group.length === 1 && Buffer.isBuffer(group[0].value) ? objectMeta(group[0].value) : undefined));
}

/** apiVersion and kind of a value under /registry/, protobuf or JSON; null when it is neither. Cheap: the scan calls it per key. */
export function peekKind(b: Buffer): { apiVersion: string; kind: string } | null {
  if (isK8sProtobuf(b)) {
    const env = decodeEnvelope(b);
    return env ? { apiVersion: env.apiVersion, kind: env.kind } : null;
  }
  if (b.length && b[0] === 0x7b /* { */) {
    // JSON objects (CRDs): apiVersion and kind come first in what the API server writes; look at the head only.
    const head = b.subarray(0, 512).toString('utf8');
    const kind = /"kind"\s*:\s*"([^"]*)"/.exec(head);
    const api = /"apiVersion"\s*:\s*"([^"]*)"/.exec(head);
    if (kind || api) return { apiVersion: api?.[1] ?? '', kind: kind?.[1] ?? '' };
  }
  return null;
}

/** One value for the analyzer's read-only view. */
export function decodeValue(keyText: string, value: Buffer | null, revision: number): DecodedValue {
  if (!value) return { keyText, size: 0, format: 'missing', json: '', revision };
  const base = { keyText, size: value.length, revision };
  const env = decodeEnvelope(value);
  if (env) {
    const obj = decodeK8sObject(env.raw) ?? { raw: bytesValue(env.raw, 1) };
    const json = JSON.stringify({ apiVersion: env.apiVersion, kind: env.kind, ...obj }, null, 2);
    return { ...base, format: 'kubernetes-protobuf', apiVersion: env.apiVersion, kind: env.kind, contentType: env.contentType || undefined, json };
  }
  const text = printableText(value);
  if (text !== null) {
    try {
      const parsed: unknown = JSON.parse(text);
      const k = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { apiVersion?: unknown; kind?: unknown }) : {};
      return {
        ...base,
        format: 'json',
        apiVersion: typeof k.apiVersion === 'string' ? k.apiVersion : undefined,
        kind: typeof k.kind === 'string' ? k.kind : undefined,
        json: JSON.stringify(parsed, null, 2),
      };
    } catch {
      return { ...base, format: 'text', json: JSON.stringify(text) };
    }
  }
  // Not Kubernetes' envelope, not text: maybe a bare protobuf message; else its bytes.
  const msg = decodeProtobuf(value);
  return { ...base, format: 'binary', json: JSON.stringify(msg ?? `base64:${value.toString('base64')}`, null, 2) };
}
