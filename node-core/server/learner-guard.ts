// A learner serves only what etcd lets it serve: Status and serializable
// Range; every other call is answered with `rpc not supported for learner`
// (etcd's isRPCSupportedForLearner), streams included.
import type { UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { Errors } from '../errors';
import { toServiceError } from './grpc-status';

type AnyCall = { request?: unknown; emit?(ev: string, e: unknown): boolean; destroy?(e?: Error): void };

export function guardLearner<T extends UntypedServiceImplementation>(
  handlers: T,
  isLearner: () => boolean,
  allowed: (method: string, request: unknown) => boolean = () => false,
): T {
  const out: UntypedServiceImplementation = {};
  for (const [name, h] of Object.entries(handlers)) {
    const fn = h as (call: AnyCall, cb?: (e: unknown) => void) => void;
    out[name] = ((call: AnyCall, cb?: (e: unknown) => void) => {
      if (!isLearner() || allowed(name, call.request)) return fn(call, cb);
      const err = toServiceError(Errors.NotSupportedForLearner);
      if (cb) cb(err);
      else call.emit?.('error', err);
    }) as UntypedHandleCall;
  }
  return out as T;
}
