// The KV service: validation as etcd's v3rpc, reads served from the store
// after the read barrier (linearizable) or at once (serializable), writes
// proposed through the log and answered with the revision they created.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { Applied, ClusterNode } from '../cluster';
import type {
  CompactionRequest,
  CompactionResponseInit,
  DeleteRangeRequest,
  DeleteRangeResponseInit,
  KVHandlers,
  PutRequest,
  PutResponseInit,
  RangeRequest,
  RangeResponseInit,
  TxnRequest,
  TxnResponseInit,
} from '../proto/gen/etcdserverpb';
import { toServiceError } from './grpc-status';
import { checkDeleteRequest, checkIntervals, checkPutRequest, checkRangeRequest, checkTxnRequest, isTxnReadOnly, isTxnSerializable } from './validate';
import type { RequestGuard } from './request-guard';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

function fail<Res>(cb: sendUnaryData<Res>, e: unknown): void {
  cb(toServiceError(e) as Parameters<sendUnaryData<Res>>[0]);
}

export function createKVHandlers(node: ClusterNode, guard: RequestGuard): KVHandlers {
  const range: Unary<RangeRequest, RangeResponseInit> = (call, cb) => {
    const req = call.request;
    try {
      checkRangeRequest(req);
    } catch (e) {
      return fail(cb, e);
    }
    // as etcd: the read barrier first, then the permission check and the read
    // with nothing applied in between, so a permission revoked while the
    // barrier waited is seen (etcd's doSerialize after linearizableReadNotify)
    Promise.resolve(req.serializable ? undefined : node.readBarrier())
      .then(() => guard.forRead(call, req.key, req.range_end))
      .then(() => {
        const res = node.mvcc.range(req);
        res.header = node.header();
        cb(null, res);
      })
      .catch((e: unknown) => fail(cb, e));
  };

  const write = <Res extends { header?: unknown }>(call: ServerUnaryCall<unknown, Res>, cb: sendUnaryData<Res>, propose: (user: RequestUserHeader) => Promise<Applied<Res>>): void => {
    const answer = (a: Applied<Res>): void => {
      const res = a.result;
      res.header = node.header(a.rev);
      cb(null, res);
    };
    const refuse = (e: unknown): void => fail(cb, e);
    // an anonymous caller (no token) is known at once: propose in this turn, one reaction to answer
    const user = guard.forWriteNow?.(call);
    if (user) {
      let applied: Promise<Applied<Res>>;
      try {
        applied = propose(user);
      } catch (e) {
        return refuse(e);
      }
      applied.then(answer).catch(refuse);
      return;
    }
    guard
      .forWrite(call)
      .then((u) => propose(u))
      .then(answer)
      .catch(refuse);
  };

  const put: Unary<PutRequest, PutResponseInit> = (call, cb) => {
    try {
      checkPutRequest(call.request);
    } catch (e) {
      return fail(cb, e);
    }
    write(call, cb, (h) => node.propose({ header: h, put: call.request }));
  };

  const deleteRange: Unary<DeleteRangeRequest, DeleteRangeResponseInit> = (call, cb) => {
    try {
      checkDeleteRequest(call.request);
    } catch (e) {
      return fail(cb, e);
    }
    write(call, cb, (h) => node.propose({ header: h, delete_range: call.request }));
  };

  const txn: Unary<TxnRequest, TxnResponseInit> = (call, cb) => {
    const req = call.request;
    try {
      checkTxnRequest(req, node.config.maxTxnOps);
      checkIntervals(req.success);
      checkIntervals(req.failure);
    } catch (e) {
      return fail(cb, e);
    }
    if (isTxnReadOnly(req)) {
      Promise.resolve(isTxnSerializable(req) ? undefined : node.readBarrier())
        .then(() => guard.forTxnRead(call, req))
        .then(() => {
          const res = node.mvcc.txn(req);
          res.header = node.header();
          cb(null, res);
        })
        .catch((e: unknown) => fail(cb, e));
      return;
    }
    write(call, cb, (h) => node.propose({ header: h, txn: req }));
  };

  const compact: Unary<CompactionRequest, CompactionResponseInit> = (call, cb) => {
    guard
      .forWrite(call)
      .then((h) => node.propose({ header: h, compaction: call.request }))
      .then(async (a) => {
        if (call.request.physical) await a.result.done;
        cb(null, { header: node.header(a.rev) });
      })
      .catch((e: unknown) => fail(cb, e));
  };

  return { Range: range, Put: put, DeleteRange: deleteRange, Txn: txn, Compact: compact };
}

export interface RequestUserHeader {
  username?: string;
  auth_revision?: number;
}
