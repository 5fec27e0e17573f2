// A linearizable read checks the caller's permission after its read barrier,
// as etcd (linearizableReadNotify, then doSerialize): a permission revoked
// while the barrier waited is honoured, never bypassed by an earlier check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EtcdNode } from '../cluster';
import { Errors } from '../errors/index';
import { decodeRangeRequest, encodeRangeRequest, type RangeRequest, type RangeResponseInit } from '../proto/gen/etcdserverpb';
import { createKVHandlers } from './kv-service';
import type { RequestGuard } from './request-guard';

test('the permission check of a linearizable Range runs after its read barrier', async () => {
  let releaseBarrier!: () => void;
  const events: string[] = [];
  let permitted = true;
  const node = {
    readBarrier: () =>
      new Promise<void>((resolve) => {
        events.push('barrier');
        releaseBarrier = () => {
          events.push('barrier done');
          resolve();
        };
      }),
    mvcc: {
      range: () => ({ kvs: [], count: 0, more: false }),
      txn: () => ({ succeeded: true, responses: [] }),
    },
    header: () => ({}),
    config: { maxTxnOps: 128 },
  } as unknown as EtcdNode;
  const guard: RequestGuard = {
    forRead: async () => {
      events.push('check');
      if (!permitted) throw Errors.PermissionDenied;
    },
    forTxnRead: async () => {
      events.push('check');
      if (!permitted) throw Errors.PermissionDenied;
    },
    forWrite: async () => ({}),
    forAdmin: async () => ({}),
  };
  const kv = createKVHandlers(node, guard);
  const req: RangeRequest = decodeRangeRequest(encodeRangeRequest({ key: Buffer.from('secret') }));
  const answer = new Promise<Error | null>((resolve) =>
    kv.Range({ request: req } as ServerUnaryCall<RangeRequest, RangeResponseInit>, ((e: Error | null) => resolve(e)) as sendUnaryData<RangeResponseInit>),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ['barrier'], 'nothing is checked before the barrier');
  permitted = false; // revoked while the read waited
  releaseBarrier();
  const err = await answer;
  assert.deepEqual(events, ['barrier', 'barrier done', 'check']);
  assert.equal((err as { code?: number } | null)?.code, Errors.PermissionDenied.code);
});
