// One call for the node: the auth store configured from etcd's flags.
import type { Backend } from '../backend/backend';
import { AuthStore, type AuthStoreOptions } from './store';
import { newTokenProvider } from './token-options';

export interface AuthFlags {
  /** --auth-token ("simple", "jwt,...", or "" for none). */
  authToken: string;
  /** --auth-token-ttl, seconds (etcd: 300); applies to simple tokens. */
  authTokenTtl?: number;
  /** --bcrypt-cost (etcd: 10). */
  bcryptCost?: number;
}

/**
 * Opens the auth store over the member's backend. Throws etcd's errors for a
 * bad --auth-token (the member must refuse to start, as etcd does).
 */
export function openAuthStore(backend: Backend, flags: AuthFlags, opts: Pick<AuthStoreOptions, 'leaseKeys' | 'hasher'> = {}): AuthStore {
  const tokenProvider = newTokenProvider(flags.authToken, {
    simpleTokenTtlMs: flags.authTokenTtl && flags.authTokenTtl > 0 ? flags.authTokenTtl * 1000 : undefined,
  });
  return new AuthStore(backend, { tokenProvider, bcryptCost: flags.bcryptCost, ...opts });
}
