// The seam between the services and authentication: resolves the caller
// (token or client certificate) and checks read permissions in the API layer,
// as etcd does; writes carry the user into the log and are checked at apply.
// Without auth enabled every check passes at no cost.
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { TxnRequest } from '../proto/gen/etcdserverpb';
import type { RequestUserHeader } from './auth-context';

/** What a guard may read from any kind of call (unary or stream). */
export type CallInfo = Pick<ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext'> & { metadata: Metadata };

export interface RequestGuard {
  /** Checks read permission on [key, rangeEnd) for the caller. */
  forRead(call: CallInfo, key: Buffer, rangeEnd: Buffer): Promise<void>;
  /** Checks read permission on every range and compare of a read-only txn. */
  forTxnRead(call: CallInfo, req: TxnRequest): Promise<void>;
  /** Resolves the caller for a write; the result goes into the log entry's header. */
  forWrite(call: CallInfo): Promise<RequestUserHeader>;
  /**
   * forWrite's answer when it needs no waiting (an anonymous call: no token to look up); undefined
   * when forWrite must run. Spares the hot write path a promise chain per request.
   */
  forWriteNow?(call: CallInfo): RequestUserHeader | undefined;
  /** Root-only operations (membership, maintenance changes, auth management). */
  forAdmin(call: CallInfo): Promise<RequestUserHeader>;
  /**
   * Watch creation as etcd checks it (a from-key watch on its start key only):
   * undefined when allowed, else the cancel reason.
   */
  forWatch?(call: CallInfo, req: { key: Buffer; range_end: Buffer }): Promise<string | undefined>;
}

const resolved = Promise.resolve();
const noUser: Promise<RequestUserHeader> = Promise.resolve({});

export const openGuard: RequestGuard = {
  forRead: () => resolved,
  forTxnRead: () => resolved,
  forWrite: () => noUser,
  forWriteNow: () => ({}),
  forAdmin: () => noUser,
};
