// The applier's extension points: each domain (kv, lease, auth, ...) exports a
// table of appliers keyed by the InternalRaftRequest field it handles. The
// applier runs them in log order on every member, so they must be
// deterministic: no clocks, no randomness, no I/O other than backend writes.
import type { Backend } from '../backend/backend';
import type { InternalRaftRequest } from '../proto/gen/etcdserverpb';
import type { KVStore } from '../mvcc/types';

export interface ApplyContext {
  backend: Backend;
  mvcc: KVStore;
  /** Raft index and term of the entry being applied. */
  index: number;
  term: number;
  /** Domain stores registered by the node (lessor, auth store, ...), by name. */
  services: ApplyServices;
}

/** Filled by the node at start; each domain adds its own store here. */
export interface ApplyServices {
  [name: string]: unknown;
}

export type ApplyField = Exclude<keyof InternalRaftRequest, 'header' | 'ID'>;

/** Returns the response (an `XResponseInit` without header) or throws an EtcdError. */
export type ApplyFn = (ctx: ApplyContext, req: InternalRaftRequest) => unknown;

export type ApplierTable = Partial<Record<ApplyField, ApplyFn>>;
