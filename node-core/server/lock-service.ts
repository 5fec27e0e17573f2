// The v3lock Lock service, as etcd's v3lock server: a clientv3/concurrency
// Mutex run inside the member. The lock key is <name>/<lease in hex>, bound
// to the caller's lease; the holder is the key with the lowest create
// revision under the prefix, and a waiter waits for the deletion of every key
// created before its own. Unlock deletes the key.
//
// The KV steps are the ones the Go client would send (txn through the log,
// linearizable ranges, watches on the hub), so ordering and revisions match
// etcd's step for step.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { ClusterNode } from '../cluster';
import { Errors } from '../errors';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeRequest,
  type ResponseHeaderInit,
  type TxnRequestInit,
  type TxnResponseInit,
} from '../proto/gen/etcdserverpb';
import { Event_EventType, type Event, type KeyValue } from '../proto/gen/mvccpb';
import type { LockHandlers, LockRequest, LockResponseInit, UnlockRequest, UnlockResponseInit } from '../proto/gen/v3lockpb';
import { toServiceError } from './grpc-status';
import { grantLease } from './lease-service';
import type { RequestUserHeader } from './kv-service';
import type { RequestGuard } from './request-guard';
import type { ServerContext } from './server-context';

/** clientv3/concurrency's defaultSessionTTL: the lease a session grants when given none. */
export const DEFAULT_SESSION_TTL = 60;
const EMPTY = Buffer.alloc(0);

/** clientv3's GetPrefixRangeEnd. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export function fullRange(r: Partial<RangeRequest> & { key: Buffer }): RangeRequest {
  return {
    range_end: EMPTY,
    limit: 0,
    revision: 0,
    sort_order: RangeRequest_SortOrder.NONE,
    sort_target: RangeRequest_SortTarget.KEY,
    serializable: false,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
    ...r,
  };
}

/** clientv3.WithFirstCreate on a prefix: the oldest key. */
export function firstCreate(pfx: Buffer): RangeRequest {
  return fullRange({ key: pfx, range_end: prefixEnd(pfx), sort_target: RangeRequest_SortTarget.CREATE, sort_order: RangeRequest_SortOrder.ASCEND, limit: 1 });
}

/** A linearizable range, as clientv3's Get. */
export async function get(node: ClusterNode, r: RangeRequest): Promise<{ header: ResponseHeaderInit; kvs: KeyValue[] }> {
  await node.readBarrier();
  const res = node.mvcc.range(r);
  return { header: node.header(), kvs: (res.kvs ?? []) as KeyValue[] };
}

export async function txn(node: ClusterNode, t: TxnRequestInit, user: RequestUserHeader = {}): Promise<{ header: ResponseHeaderInit; resp: TxnResponseInit }> {
  // the caller's identity rides along, so auth checks the recipe's writes as the caller's own
  const a = await node.propose({ header: user, txn: t });
  return { header: node.header(a.rev), resp: a.result };
}

export function createRevEquals(key: Buffer, rev: number): TxnRequestInit['compare'] {
  return [{ key, target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, create_revision: rev }];
}

/** Rejects with the abort reason once the signal fires. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(Errors.WatchCanceled);
    signal.addEventListener('abort', () => reject(Errors.WatchCanceled), { once: true });
  });
}

/**
 * Watches [key, end) from startRev on the node's hub, calling onEvents for
 * each response until it returns true (resolves) or the signal aborts.
 * A compacted start revision rejects with Errors.Compacted, as clientv3's watch error.
 */
export function watchUntil(ctx: ServerContext, key: Buffer, end: Buffer | undefined, startRev: number, signal: AbortSignal, onEvents: (evs: Event[], rev: number) => boolean): Promise<void> {
  if (signal.aborted) return Promise.reject(Errors.WatchCanceled);
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const stream = ctx.hub.newStream({
      send: (r) => {
        if (done) return true;
        if (r.compactRevision !== 0) return finish(Errors.Compacted), true;
        // the hub may call inside an apply: act after it
        let stop = false;
        try {
          stop = onEvents(r.events, r.revision);
        } catch (e) {
          return finish(e), true;
        }
        if (stop) finish();
        return true;
      },
    });
    const onAbort = (): void => finish(Errors.WatchCanceled);
    function finish(err?: unknown): void {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      queueMicrotask(() => stream.close());
      if (err) reject(err);
      else resolve();
    }
    signal.addEventListener('abort', onAbort, { once: true });
    stream.watch({ key, end, startRev });
  });
}

/** concurrency's waitDelete: until key is deleted at or after rev. */
export function waitDelete(ctx: ServerContext, key: Buffer, rev: number, signal: AbortSignal): Promise<void> {
  return watchUntil(ctx, key, undefined, rev, signal, (evs) => evs.some((e) => e.type === Event_EventType.DELETE));
}

/** concurrency's waitDeletes: until no key under pfx has create revision <= maxCreateRev. */
export async function waitDeletes(ctx: ServerContext, pfx: Buffer, maxCreateRev: number, signal: AbortSignal): Promise<ResponseHeaderInit> {
  const { node } = ctx;
  for (;;) {
    const r = fullRange({
      key: pfx,
      range_end: prefixEnd(pfx),
      sort_target: RangeRequest_SortTarget.CREATE,
      sort_order: RangeRequest_SortOrder.DESCEND,
      limit: 1,
      max_create_revision: maxCreateRev,
    });
    const resp = await Promise.race([get(node, r), aborted(signal)]);
    if (resp.kvs.length === 0) return resp.header;
    await waitDelete(ctx, Buffer.from(resp.kvs[0].key), resp.header.revision ?? 0, signal);
  }
}

/** A session's lease: the caller's, or a new one of concurrency's default TTL (then left to expire, as etcd's orphaned session). */
export async function sessionLease(ctx: ServerContext, lease: bigint, user: RequestUserHeader = {}): Promise<bigint> {
  if (lease !== 0n) return lease;
  return (await grantLease(ctx, DEFAULT_SESSION_TTL, 0n, user)).ID!;
}

/**
 * etcd runs these recipes through an in-process client, whose errors reach
 * the gRPC layer as plain errors: the caller sees Unknown with the message.
 */
export function recipeError(e: unknown): ReturnType<typeof toServiceError> {
  const s = toServiceError(e);
  return { ...s, code: 2 };
}

/** The call's cancellation as an AbortSignal. */
export function callSignal(call: { on(ev: 'cancelled', f: () => void): unknown; cancelled?: boolean }): AbortSignal {
  const ac = new AbortController();
  if (call.cancelled) ac.abort();
  call.on('cancelled', () => ac.abort());
  return ac.signal;
}

/** concurrency.Mutex.Lock. */
export async function lock(ctx: ServerContext, name: Buffer, leaseId: bigint, signal: AbortSignal, user: RequestUserHeader = {}): Promise<{ header: ResponseHeaderInit; key: Buffer }> {
  const { node } = ctx;
  const lease = await sessionLease(ctx, leaseId, user);
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  const myKey = Buffer.concat([pfx, Buffer.from(lease.toString(16))]);
  const getOwner = { request_range: firstCreate(pfx) };
  const { header, resp } = await txn(node, {
    compare: createRevEquals(myKey, 0),
    success: [{ request_put: { key: myKey, value: EMPTY, lease } }, getOwner],
    failure: [{ request_range: fullRange({ key: myKey }) }, getOwner],
  }, user);
  let myRev = header.revision ?? 0;
  if (!resp.succeeded) myRev = resp.responses![0].response_range!.kvs![0].create_revision ?? 0;
  const owner = resp.responses![1].response_range!.kvs ?? [];
  if (owner.length === 0 || owner[0].create_revision === myRev) return { header, key: myKey };
  try {
    const hdr = await waitDeletes(ctx, pfx, myRev - 1, signal);
    return { header: hdr, key: myKey };
  } catch (e) {
    // release the waiter's key, as the Mutex does when its wait fails
    await node.propose({ header: user, delete_range: { key: myKey } }).catch(() => undefined);
    throw e;
  }
}

export function createLockHandlers(ctx: ServerContext, guard: RequestGuard): LockHandlers {
  const { node } = ctx;
  const fail = <T>(cb: sendUnaryData<T>, e: unknown): void => cb(recipeError(e) as Parameters<sendUnaryData<T>>[0]);
  return {
    Lock: (call: ServerUnaryCall<LockRequest, LockResponseInit>, cb: sendUnaryData<LockResponseInit>) => {
      const signal = callSignal(call);
      guard
        .forWrite(call)
        .then((user) => lock(ctx, Buffer.from(call.request.name), call.request.lease, signal, user))
        .then((r) => cb(null, r))
        .catch((e: unknown) => fail(cb, e));
    },
    Unlock: (call: ServerUnaryCall<UnlockRequest, UnlockResponseInit>, cb: sendUnaryData<UnlockResponseInit>) => {
      // etcd's Unlock is a client Delete, which the KV server refuses for an empty key
      if (call.request.key.length === 0) return fail(cb, Errors.EmptyKey);
      guard
        .forWrite(call)
        .then((h) => node.propose({ header: h, delete_range: { key: call.request.key } }))
        .then((a) => cb(null, { header: node.header(a.rev) }))
        .catch((e: unknown) => fail(cb, e));
    },
  };
}
