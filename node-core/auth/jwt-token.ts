// etcd's JWT tokens (auth/jwt.go over golang-jwt). Claims are {exp, revision,
// username} serialized as Go does (sorted keys), header {"alg","typ":"JWT"},
// base64url without padding, so tokens from etcd and from us verify on both
// with the same keys.
// Verification (the part an attacker feeds) is jose's compactVerify: the JWS
// parsing, the alg/key-type match and the signature check are a maintained
// library's. The time and user claims are then checked here with golang-jwt
// v4's MapClaims semantics, which jose's jwtVerify does not share (exp 0 means
// unset there, a string exp is refused rather than misread). Signing stays on
// node:crypto: etcd issues the token inside the Authenticate apply, which runs
// synchronously in log order, and jose signs only asynchronously.
import crypto, { type KeyObject, type webcrypto } from 'node:crypto';
import { compactVerify } from 'jose';
import { AuthErrors } from './errors';
import type { AssignParams, AuthInfo, TokenProvider } from './token-provider';

export const JWT_SIGN_METHODS = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'HS256', 'HS384', 'HS512',
] as const;
export type JwtSignMethod = (typeof JWT_SIGN_METHODS)[number];

export function isJwtSignMethod(s: string): s is JwtSignMethod {
  return (JWT_SIGN_METHODS as readonly string[]).includes(s);
}

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };
/** golang-jwt's ES methods demand the matching curve. */
const EC_CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

export interface JwtKeys {
  /** Asymmetric private key, or the HMAC secret for HS*. */
  privateKey?: KeyObject | Buffer;
  publicKey?: KeyObject;
}

export interface JwtOptions {
  signMethod: JwtSignMethod;
  ttlMs: number;
  keys: JwtKeys;
  /** Injected clock (milliseconds), for tests. */
  now?: () => number;
}

const b64url = (b: Buffer): string => b.toString('base64url');

// Go's encoding/json escapes these in strings; matching it keeps tokens byte-identical.
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class JwtTokenProvider implements TokenProvider {
  readonly type = 'jwt' as const;
  readonly signMethod: JwtSignMethod;
  readonly ttlMs: number;
  /** True when only a public key was given: tokens are verified, never issued (etcd's verifyOnly). */
  readonly verifyOnly: boolean;
  private readonly signKey: KeyObject | Buffer | undefined;
  private readonly verifyKey: KeyObject | Buffer;
  /** The HMAC secret imported once (jose would import a raw secret on every verification). */
  private hmacKey?: Promise<webcrypto.CryptoKey>;
  private readonly now: () => number;

  constructor(opts: JwtOptions) {
    this.signMethod = opts.signMethod;
    this.ttlMs = opts.ttlMs;
    this.now = opts.now ?? Date.now;
    const { privateKey, publicKey } = opts.keys;
    if (this.signMethod.startsWith('HS')) {
      if (!Buffer.isBuffer(privateKey) || privateKey.length === 0) throw AuthErrors.MissingKey;
      this.signKey = privateKey;
      this.verifyKey = privateKey;
      this.verifyOnly = false;
      return;
    }
    if (privateKey && !Buffer.isBuffer(privateKey)) {
      this.signKey = privateKey;
      this.verifyKey = crypto.createPublicKey(privateKey);
      this.verifyOnly = false;
    } else if (publicKey) {
      this.signKey = undefined;
      this.verifyKey = publicKey;
      this.verifyOnly = true;
    } else {
      throw AuthErrors.MissingKey;
    }
  }

  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  close(): void {}
  genTokenPrefix(): string {
    return '';
  }

  private hashAlg(): string {
    return HASH[this.signMethod.slice(2)];
  }

  private signBytes(data: Buffer): Buffer {
    const key = this.signKey!;
    const kind = this.signMethod.slice(0, 2);
    if (kind === 'HS') return crypto.createHmac(this.hashAlg(), key as Buffer).update(data).digest();
    const k = key as KeyObject;
    if (kind === 'RS') return crypto.sign(this.hashAlg(), data, { key: k, padding: crypto.constants.RSA_PKCS1_PADDING });
    if (kind === 'PS')
      return crypto.sign(this.hashAlg(), data, {
        key: k,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST,
      });
    if (k.asymmetricKeyDetails?.namedCurve !== EC_CURVE[this.signMethod]) throw new Error('key is invalid');
    return crypto.sign(this.hashAlg(), data, { key: k, dsaEncoding: 'ieee-p1363' });
  }

  assign(username: string, revision: number, _params?: AssignParams): string {
    if (this.verifyOnly) throw AuthErrors.VerifyOnly;
    const exp = Math.floor((this.now() + this.ttlMs) / 1000);
    const header = `{"alg":${goJsonString(this.signMethod)},"typ":"JWT"}`;
    const claims = `{"exp":${exp},"revision":${revision},"username":${goJsonString(username)}}`;
    const signing = `${b64url(Buffer.from(header))}.${b64url(Buffer.from(claims))}`;
    return `${signing}.${b64url(this.signBytes(Buffer.from(signing)))}`;
  }

  private joseKey(): Promise<webcrypto.CryptoKey> | KeyObject {
    if (!Buffer.isBuffer(this.verifyKey)) return this.verifyKey;
    this.hmacKey ??= crypto.webcrypto.subtle.importKey('raw', this.verifyKey, { name: 'HMAC', hash: `SHA-${this.signMethod.slice(2)}` }, false, ['verify']);
    return this.hmacKey;
  }

  /** The user and revision of a valid token (signature by jose, claims as golang-jwt v4); undefined otherwise. */
  async info(token: string): Promise<AuthInfo | undefined> {
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(token, await this.joseKey(), { algorithms: [this.signMethod] }));
    } catch {
      return undefined;
    }
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      return undefined;
    }
    if (!isRecord(claims)) return undefined;
    // golang-jwt's MapClaims.Valid (as etcd is built here): exp, iat and nbf are
    // checked when present; a JSON number of seconds, 0 meaning unset; any other
    // type (a string, null, ...) fails validation rather than being ignored
    const nowSec = Math.floor(this.now() / 1000);
    if (!timeClaimHolds(claims, 'exp', (t) => nowSec < t)) return undefined;
    if (!timeClaimHolds(claims, 'iat', (t) => nowSec >= t)) return undefined;
    if (!timeClaimHolds(claims, 'nbf', (t) => nowSec >= t)) return undefined;
    // etcd type-asserts these and would panic on a malformed (but validly signed) token
    if (typeof claims.username !== 'string' || typeof claims.revision !== 'number') return undefined;
    return { username: claims.username, revision: Math.trunc(claims.revision) };
  }
}

/** A time claim absent or 0 holds; a number holds if `ok` says so of its whole seconds; anything else fails. */
function timeClaimHolds(claims: Record<string, unknown>, name: 'exp' | 'iat' | 'nbf', ok: (seconds: number) => boolean): boolean {
  if (!Object.hasOwn(claims, name)) return true;
  const v = claims[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) return false;
  return v === 0 || ok(Math.trunc(v));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
