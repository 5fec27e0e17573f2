// The --auth-token option, parsed as etcd's decomposeOpts / NewTokenProvider /
// jwtOptions do: "simple", "" (no tokens), or
// "jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<go duration>]".
import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { AuthErrors } from './errors';
import { parseGoDuration } from './go-duration';
import { isJwtSignMethod, JwtTokenProvider, type JwtSignMethod } from './jwt-token';
import { SimpleTokenProvider } from './simple-token';
import { NopTokenProvider, type TokenProvider } from './token-provider';

/** etcd's jwt DefaultTTL. */
export const DEFAULT_JWT_TTL_MS = 5 * 60_000;
const KNOWN_JWT_OPTIONS = new Set(['sign-method', 'pub-key', 'priv-key', 'ttl']);
/** Algorithms golang-jwt knows but etcd cannot key (Key() reports them unsupported). */
const UNSUPPORTED_METHODS: Record<string, string> = { none: '*jwt.signingMethodNone', EdDSA: '*jwt.SigningMethodEd25519' };

export type AuthTokenConfig =
  | { type: 'simple' }
  | { type: 'nop' }
  | {
      type: 'jwt';
      signMethod: JwtSignMethod;
      ttlMs: number;
      privateKey?: KeyObject | Buffer;
      publicKey?: KeyObject;
      /** Options etcd ignores with a warning. */
      unknownOptions: string[];
    };

/** etcd's decomposeOpts: the token type and its key=value options (no '=' inside values, no duplicates). */
export function decomposeAuthTokenOption(opt: string): { type: string; options: Map<string, string> } {
  const parts = opt.split(',');
  const options = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const pair = p.split('=');
    if (pair.length !== 2 || options.has(pair[0])) throw AuthErrors.InvalidAuthOpts;
    options.set(pair[0], pair[1]);
  }
  return { type: parts[0], options };
}

export interface ParseAuthTokenOptions {
  /** File reader (defaults to fs.readFileSync), for tests. */
  readFile?: (path: string) => Buffer;
}

/**
 * Parses and loads --auth-token. Throws EtcdErrors with etcd's messages:
 * `auth: invalid auth options` for syntax, unknown types, bad ttl, unreadable
 * key files or unknown sign methods; `auth: missing key data` /
 * `auth: public and private keys don't match` or a key parse error after that.
 */
export function parseAuthTokenOption(opt: string, opts: ParseAuthTokenOptions = {}): AuthTokenConfig {
  const { type, options } = decomposeAuthTokenOption(opt);
  if (type === 'simple') return { type: 'simple' };
  if (type === '') return { type: 'nop' };
  if (type !== 'jwt') throw AuthErrors.InvalidAuthOpts;
  const readFile = opts.readFile ?? ((p: string) => fs.readFileSync(p));

  // jwtOptions.ParseWithDefaults: any failure here is reported as invalid options
  let ttlMs = DEFAULT_JWT_TTL_MS;
  let pubPem: Buffer | undefined;
  let privPem: Buffer | undefined;
  const method = options.get('sign-method') ?? '';
  try {
    const ttl = options.get('ttl') ?? '';
    if (ttl !== '') ttlMs = parseGoDuration(ttl);
    const pub = options.get('pub-key') ?? '';
    if (pub !== '') pubPem = readFile(pub);
    const priv = options.get('priv-key') ?? '';
    if (priv !== '') privPem = readFile(priv);
  } catch {
    throw AuthErrors.InvalidAuthOpts;
  }
  if (UNSUPPORTED_METHODS[method]) throw new Error(`unsupported signing method: ${UNSUPPORTED_METHODS[method]}`);
  if (!isJwtSignMethod(method)) throw AuthErrors.InvalidAuthOpts;
  const unknownOptions = [...options.keys()].filter((k) => !KNOWN_JWT_OPTIONS.has(k));

  if (method.startsWith('HS')) {
    if (!privPem || privPem.length === 0) throw AuthErrors.MissingKey;
    return { type: 'jwt', signMethod: method, ttlMs, privateKey: privPem, unknownOptions };
  }
  const wantType = method.startsWith('ES') ? 'ec' : 'rsa';
  const load = (pem: Buffer, priv: boolean): KeyObject => {
    const k = priv ? crypto.createPrivateKey(pem) : crypto.createPublicKey(pem);
    const t = k.asymmetricKeyType;
    if (t !== wantType && !(wantType === 'rsa' && t === 'rsa-pss')) throw new Error(`Key is not a valid ${wantType === 'ec' ? 'ECDSA' : 'RSA'} ${priv ? 'private' : 'public'} key`);
    return k;
  };
  const privateKey = privPem && privPem.length > 0 ? load(privPem, true) : undefined;
  const publicKey = pubPem && pubPem.length > 0 ? load(pubPem, false) : undefined;
  if (!privateKey && !publicKey) throw AuthErrors.MissingKey;
  if (privateKey && publicKey && keysMismatch(privateKey, publicKey)) throw AuthErrors.KeyMismatch;
  return { type: 'jwt', signMethod: method, ttlMs, privateKey, publicKey, unknownOptions };
}

// etcd's own (lenient) mismatch test: RSA keys mismatch only when both E and N
// differ, EC keys only when curve, X and Y all differ.
function keysMismatch(priv: KeyObject, pub: KeyObject): boolean {
  const a = crypto.createPublicKey(priv).export({ format: 'jwk' });
  const b = pub.export({ format: 'jwk' });
  if (a.kty === 'RSA') return a.e !== b.e && a.n !== b.n;
  return a.crv !== b.crv && a.x !== b.x && a.y !== b.y;
}

export interface TokenProviderOptions extends ParseAuthTokenOptions {
  /** --auth-token-ttl for simple tokens, in milliseconds (etcd: 300 s). */
  simpleTokenTtlMs?: number;
  now?: () => number;
}

/** etcd's NewTokenProvider from the --auth-token string. */
export function newTokenProvider(opt: string, opts: TokenProviderOptions = {}): TokenProvider {
  const cfg = parseAuthTokenOption(opt, opts);
  return tokenProviderFromConfig(cfg, opts);
}

export function tokenProviderFromConfig(cfg: AuthTokenConfig, opts: TokenProviderOptions = {}): TokenProvider {
  switch (cfg.type) {
    case 'simple':
      return new SimpleTokenProvider({ ttlMs: opts.simpleTokenTtlMs, now: opts.now });
    case 'nop':
      return new NopTokenProvider();
    case 'jwt':
      return new JwtTokenProvider({
        signMethod: cfg.signMethod,
        ttlMs: cfg.ttlMs,
        keys: { privateKey: cfg.privateKey, publicKey: cfg.publicKey },
        now: opts.now,
      });
  }
}
