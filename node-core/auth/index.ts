// The auth module's public surface.
export { openAuthStore, type AuthFlags } from './open';
export { AuthStore, needAdminPermission, ROOT_ROLE, ROOT_USER, type AuthGuard, type AuthStoreOptions } from './store';
export type { AuthInfo, AssignParams, TokenProvider } from './token-provider';
export { NopTokenProvider } from './token-provider';
export { SimpleTokenProvider, DEFAULT_SIMPLE_TOKEN_TTL_MS, type SimpleTokenOptions } from './simple-token';
export { JwtTokenProvider, JWT_SIGN_METHODS, type JwtSignMethod, type JwtOptions } from './jwt-token';
export {
  parseAuthTokenOption,
  decomposeAuthTokenOption,
  newTokenProvider,
  tokenProviderFromConfig,
  DEFAULT_JWT_TTL_MS,
  type AuthTokenConfig,
  type TokenProviderOptions,
} from './token-options';
export { BcryptHasher, DEFAULT_BCRYPT_COST, normalizeBcryptCost, type PasswordHasher } from './password';
export { AuthErrors } from './errors';
export { parseGoDuration } from './go-duration';
