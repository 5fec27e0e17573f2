// etcd's unary interceptor checks, in its order: a learner serves only what
// etcd lets it serve (Status and serializable Range; every other call is
// answered with `rpc not supported for learner`, etcd's
// isRPCSupportedForLearner, streams included); then a unary call carrying
// `hasleader: true` metadata (clientv3.WithRequireLeader) on a member without
// a leader is refused with `etcdserver: no leader` (streams get the same check
// from leader-monitor.ts, which also cancels them later).
import type { UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { Errors } from '../errors';
import { toServiceError } from './grpc-status';
import { requiresLeader } from './leader-monitor';

type AnyCall = { request?: unknown; metadata?: { get(k: string): unknown[] }; emit?(ev: string, e: unknown): boolean; destroy?(e?: Error): void };

export function guardLearner<T extends UntypedServiceImplementation>(
  handlers: T,
  isLearner: () => boolean,
  allowed: (method: string, request: unknown) => boolean = () => false,
  /** Whether the member has no leader now (undefined: no require-leader check for unary calls). */
  leaderless?: () => boolean,
): T {
  const out: UntypedServiceImplementation = {};
  for (const [name, h] of Object.entries(handlers)) {
    const fn = h as (call: AnyCall, cb?: (e: unknown) => void) => void;
    out[name] = ((call: AnyCall, cb?: (e: unknown) => void) => {
      let refusal = isLearner() && !allowed(name, call.request) ? Errors.NotSupportedForLearner : undefined;
      // unary (and client-streaming) calls answer through cb; streams do their own check
      if (!refusal && cb && leaderless?.() && call.metadata && requiresLeader({ metadata: call.metadata })) refusal = Errors.NoLeader;
      if (!refusal) return fn(call, cb);
      const err = toServiceError(refusal);
      if (cb) cb(err);
      else call.emit?.('error', err);
    }) as UntypedHandleCall;
  }
  return out as T;
}
