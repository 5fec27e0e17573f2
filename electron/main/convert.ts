// Wire (node-core client) ⇄ contract conversions: bytes to base64, bigint ids
// to decimal strings, enum names to the contract's words.
import type { MvccPb, AuthPb } from '../../node-core/index';
import { AuthPb as Auth, prefixEnd } from '../../node-core/index';
import type { KeyRow, KeyValue, Permission, PermScope, PermType } from '../contract/index';

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
export const fromB64 = (s: string): Buffer => Buffer.from(s, 'base64');
export const text = (s: string): Buffer => Buffer.from(s, 'utf8');

export function kvToContract(kv: MvccPb.KeyValue): KeyValue {
  return {
    key: b64(kv.key),
    keyText: Buffer.from(kv.key).toString('utf8'),
    value: b64(kv.value),
    createRevision: kv.create_revision,
    modRevision: kv.mod_revision,
    version: kv.version,
    lease: kv.lease.toString(),
  };
}

export function kvToRow(kv: MvccPb.KeyValue): KeyRow {
  return {
    key: b64(kv.key),
    keyText: Buffer.from(kv.key).toString('utf8'),
    createRevision: kv.create_revision,
    modRevision: kv.mod_revision,
    version: kv.version,
    lease: kv.lease.toString(),
  };
}

const permTypeName: Record<number, PermType> = { [Auth.Permission_Type.READ]: 'read', [Auth.Permission_Type.WRITE]: 'write', [Auth.Permission_Type.READWRITE]: 'readwrite' };
export const permTypeOf = (t: PermType): AuthPb.Permission_Type =>
  t === 'read' ? Auth.Permission_Type.READ : t === 'write' ? Auth.Permission_Type.WRITE : Auth.Permission_Type.READWRITE;

/** etcd's own rule for the smallest key after every key with this prefix (node-core's, not a copy). */
export const prefixEndOf = (prefix: Buffer): Buffer => prefixEnd(prefix);

export function scopeOf(key: Buffer, rangeEnd: Buffer): PermScope {
  if (!rangeEnd.length) return 'key';
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return 'from-key';
  if (key.length && prefixEndOf(key).equals(rangeEnd)) return 'prefix';
  return 'range';
}

export function permToContract(p: AuthPb.Permission): Permission {
  const key = Buffer.from(p.key);
  const end = Buffer.from(p.range_end);
  return { type: permTypeName[p.permType] ?? 'read', key: key.toString('utf8'), rangeEnd: end.length === 1 && end[0] === 0 ? '\\0' : end.toString('utf8'), scope: scopeOf(key, end) };
}

/** The range_end a permission of the given scope covers. */
export function rangeEndFor(scope: PermScope, key: Buffer, rangeEnd?: string): Buffer | undefined {
  switch (scope) {
    case 'key':
      return undefined;
    case 'prefix':
      return key.length ? prefixEndOf(key) : Buffer.from([0]);
    case 'from-key':
      return Buffer.from([0]);
    case 'range':
      return rangeEnd ? text(rangeEnd) : undefined;
  }
}
