// Shared by the mvcc tests: temp stores and requests built the way the
// server gets them (encoded then decoded, so bytes are views into a frame).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend } from '../backend/backend';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeDeleteRangeRequest,
  encodePutRequest,
  encodeRangeRequest,
  encodeTxnRequest,
  type DeleteRangeRequest,
  type DeleteRangeRequestInit,
  type PutRequest,
  type PutRequestInit,
  type RangeRequest,
  type RangeRequestInit,
  type TxnRequest,
  type TxnRequestInit,
} from '../proto/gen/etcdserverpb';
import type { KeyValue, KeyValueInit } from '../proto/gen/mvccpb';
import { MvccStore, type MvccStoreOptions } from './store';

export const b = (s: string | Uint8Array): Buffer => (typeof s === 'string' ? Buffer.from(s) : Buffer.from(s));

export const rangeReq = (m: RangeRequestInit): RangeRequest => decodeRangeRequest(encodeRangeRequest(m));
export const putReq = (m: PutRequestInit): PutRequest => decodePutRequest(encodePutRequest(m));
export const delReq = (m: DeleteRangeRequestInit): DeleteRangeRequest => decodeDeleteRangeRequest(encodeDeleteRangeRequest(m));
export const txnReq = (m: TxnRequestInit): TxnRequest => decodeTxnRequest(encodeTxnRequest(m));

export interface TestStore {
  dir: string;
  backend: Backend;
  store: MvccStore;
  reopen(opts?: MvccStoreOptions): Promise<void>;
  close(): Promise<void>;
}

export async function openTestStore(opts: MvccStoreOptions = {}): Promise<TestStore> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvcc-test-'));
  const t: TestStore = {
    dir,
    backend: Backend.open(dir, { sync: false }),
    store: undefined as unknown as MvccStore,
    async reopen(o: MvccStoreOptions = opts) {
      await t.store.close();
      await t.backend.close();
      t.backend = Backend.open(dir, { sync: false });
      t.store = MvccStore.open(t.backend, o);
    },
    async close() {
      await t.store.close();
      await t.backend.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  t.store = MvccStore.open(t.backend, opts);
  return t;
}

export function put(s: MvccStore, key: string | Uint8Array, value: string | Uint8Array, extra: PutRequestInit = {}): number {
  s.put(putReq({ key: b(key), value: b(value), ...extra }));
  return s.rev;
}

export function del(s: MvccStore, key: string, rangeEnd?: string): number {
  return s.deleteRange(delReq({ key: b(key), range_end: rangeEnd === undefined ? undefined : b(rangeEnd) })).deleted ?? 0;
}

/** A KeyValueInit as plain comparable data. */
export interface PlainKv {
  key: string;
  value: string;
  create: number;
  mod: number;
  ver: number;
  lease?: bigint;
}

export function plain(kv: KeyValueInit | KeyValue): PlainKv {
  const p: PlainKv = {
    key: Buffer.from(kv.key ?? []).toString(),
    value: Buffer.from(kv.value ?? []).toString(),
    create: kv.create_revision ?? 0,
    mod: kv.mod_revision ?? 0,
    ver: kv.version ?? 0,
  };
  if (kv.lease) p.lease = kv.lease;
  return p;
}

export function keysOf(kvs: KeyValueInit[] | undefined): string[] {
  return (kvs ?? []).map((kv) => Buffer.from(kv.key ?? []).toString());
}
