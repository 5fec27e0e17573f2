// The contract of the MVCC store, shared by its users (cluster's applier,
// lease, watch, server) and its implementation (./store.ts).
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponseInit,
  PutRequest,
  PutResponseInit,
  RangeRequest,
  RangeResponseInit,
  TxnRequest,
  TxnResponseInit,
} from '../proto/gen/etcdserverpb';
import type { Event, KeyValue } from '../proto/gen/mvccpb';

/** Leases enter mvcc through these hooks, so mvcc stays below the lease layer. */
export interface LeaseHooks {
  /** false makes a put with that lease fail with Errors.LeaseNotFound. */
  exists(id: bigint): boolean;
  attach(id: bigint, key: Buffer): void;
  detach(id: bigint, key: Buffer): void;
}

/** Called synchronously, in apply order, once per write txn that changed something. */
export type EventListener = (events: Event[], rev: number) => void;

/** A write transaction: every change made through it lands at one new revision. */
export interface WriteTxn {
  put(req: PutRequest): PutResponseInit;
  deleteRange(req: DeleteRangeRequest): DeleteRangeResponseInit;
  /** Reads see this txn's own writes. */
  range(req: RangeRequest): RangeResponseInit;
}

export interface HashKVResult {
  hash: number;
  compactRev: number;
  rev: number;
}

export interface KVStore {
  /** Current revision (the last write's main revision; 1 on a new store as etcd). */
  readonly rev: number;
  /** Revision of the last compaction; -1 until the first one (etcd's compactMainRev, reported as HashKV's compact_revision). */
  readonly compactRev: number;
  /** Throws Errors.Compacted / Errors.FutureRev for a `revision` out of range. Header left to the caller. */
  range(req: RangeRequest): RangeResponseInit;
  put(req: PutRequest): PutResponseInit;
  deleteRange(req: DeleteRangeRequest): DeleteRangeResponseInit;
  txn(req: TxnRequest): TxnResponseInit;
  /** Runs fn in one write txn (one revision for all its changes, none if nothing changed). */
  write<T>(fn: (tx: WriteTxn) => T): T;
  /** Logical compaction now; `done` resolves when superseded revisions are physically gone. */
  compact(req: CompactionRequest): { done: Promise<void> };
  /**
   * etcd's HashByRev, of the store as it is at the call (writes and
   * compactions during the scan do not change it); the scan yields to the
   * event loop between slices. Rejects with Errors.Compacted / FutureRev.
   */
  hashKV(rev: number): Promise<HashKVResult>;
  /** Stops physical compaction between batches (the next open resumes it); resolves once stopped. */
  close(): Promise<void>;
  /** Events with mod_revision >= fromRev (and <= toRev) on [key, rangeEnd), from history; throws Errors.Compacted. */
  eventsBetween(key: Buffer, rangeEnd: Buffer | undefined, fromRev: number, toRev: number, prevKv: boolean): Event[];
  /** Latest KeyValue of a key, or undefined. Returned KeyValues are fresh objects the caller may keep. */
  get(key: Buffer): KeyValue | undefined;
  subscribe(listener: EventListener): () => void;
}
