// Endpoint handling for the etcd client: parsing etcd-style URLs, one grpc-js
// channel per endpoint, and turning grpc statuses into etcd's error table
// entries, so callers recognise an error by identity (as clientv3's
// rpctypes.Error), never by searching its text.
import * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors, UntranslatedAuthErrors } from '../errors/index';

export interface TlsOptions {
  /** PEM CA bundle; system roots when absent. */
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Name to verify in the server certificate when endpoints are IPs. */
  serverName?: string;
  /** Accept any server certificate (a self-signed test cluster). The caller must make this visible to the user. */
  insecureSkipVerify?: boolean;
}

export interface Endpoint {
  url: string;
  target: string;
  secure: boolean;
}

export function parseEndpoint(raw: string, forceTls: boolean): Endpoint {
  const s = raw.trim();
  const m = /^(https?|unixs?):\/\/(.+?)\/?$/.exec(s);
  if (m) {
    const secure = m[1] === 'https' || m[1] === 'unixs' || forceTls;
    if (m[1].startsWith('unix')) return { url: s, target: `unix:${m[2]}`, secure };
    return { url: s, target: m[2], secure };
  }
  return { url: `${forceTls ? 'https' : 'http'}://${s}`, target: s, secure: forceTls };
}

const asBuf = (v: Buffer | string | undefined): Buffer | null => (v === undefined ? null : Buffer.isBuffer(v) ? v : Buffer.from(v));

export function makeChannel(ep: Endpoint, tls: TlsOptions | undefined): grpc.Client {
  const creds = ep.secure
    ? grpc.credentials.createSsl(
        asBuf(tls?.ca),
        asBuf(tls?.key),
        asBuf(tls?.cert),
        tls?.insecureSkipVerify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : undefined,
      )
    : grpc.credentials.createInsecure();
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    // etcd keeps streams open for hours (watch, keepalive); pings keep NATs honest.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // Fail over quickly instead of sitting in exponential backoff on a dead member.
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 2_000,
  };
  if (tls?.serverName) options['grpc.ssl_target_name_override'] = tls.serverName;
  return new grpc.Client(ep.target, creds, options);
}

const key = (code: number, message: string): string => `${code} ${message}`;

/** Every table entry by (code, message): a gRPC status is mapped here, once, to the entry it is. */
const TABLE = new Map<string, EtcdError>([...Object.values(Errors), ...Object.values(UntranslatedAuthErrors)].map((e) => [key(e.code, e.message), e]));

/**
 * An error from a call as etcd's EtcdError: a status that is a table entry
 * (same code and message) becomes that very entry, so callers compare
 * identities (`e === Errors.InvalidAuthToken`); any other status keeps its code
 * and text.
 */
export function toEtcdError(err: unknown): EtcdError {
  if (err instanceof EtcdError) return TABLE.get(key(err.code, err.message)) ?? err;
  const e = err as Partial<grpc.ServiceError> | undefined;
  if (e && typeof e.code === 'number') {
    const message = e.details || e.message || 'unknown error';
    return TABLE.get(key(e.code, message)) ?? new EtcdError(e.code, message);
  }
  return new EtcdError(grpc.status.UNKNOWN, err instanceof Error ? err.message : String(err));
}

/**
 * The failures after which a read (retry-policy.ts) or a stream (watch,
 * keep-alive: they resume where they were) goes to another endpoint: the
 * member is unreachable, or answered "no leader", "leader changed", "request
 * timed out" (another one may know better), or the call's deadline passed.
 * A write that failed so is never sent again (client.ts rawUnary).
 */
export function isFailoverError(e: EtcdError): boolean {
  return e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED;
}

/**
 * The errors after which a client with credentials authenticates again and
 * retries, as clientv3's shouldRefreshToken: the token is unknown (a
 * simple-token member restarted, the TTL ran out), older than the auth store,
 * or was not sent. The Maintenance server sends the auth store's own forms.
 */
const REFRESH_TOKEN = new Set<EtcdError>([
  Errors.InvalidAuthToken,
  Errors.AuthOldRevision,
  Errors.UserEmpty,
  UntranslatedAuthErrors.InvalidAuthToken,
  UntranslatedAuthErrors.AuthOldRevision,
  UntranslatedAuthErrors.UserEmpty,
]);

export function isInvalidToken(e: EtcdError): boolean {
  return REFRESH_TOKEN.has(toEtcdError(e));
}
