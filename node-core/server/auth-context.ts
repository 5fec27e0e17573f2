// Who is calling: the credential behind a gRPC call (etcd's AuthInfoFromCtx
// then AuthInfoFromTLS), and the API-layer checks etcd makes before a read or
// a watch (writes carry the user into the log entry and are checked at apply
// by AuthStore.authorize). Implements the node's RequestGuard seam.
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { AuthStore } from '../auth/store';
import type { AuthInfo } from '../auth/token-provider';
import { Errors, EtcdError, grpcErrorText } from '../errors/index';
import type { TxnRequest, WatchCreateRequest } from '../proto/gen/etcdserverpb';

type AuthContext = ReturnType<ServerUnaryCall<unknown, unknown>['getAuthContext']>;

/** The parts of a unary or streaming server call the checks read. */
export interface AuthCall {
  metadata: Metadata;
  getAuthContext?: () => AuthContext | null | undefined;
}

export interface AuthContextOptions {
  auth: AuthStore;
  /** --client-cert-auth: a verified client certificate's CN names the user when no token is sent. */
  clientCertAuth: boolean;
  /**
   * Resolves once this member has applied the given raft index. A simple
   * token names the index of its Authenticate entry; a member that has not
   * applied it yet waits, as etcd does, instead of calling the token invalid.
   */
  waitApplied?: (index: number) => Promise<void>;
}

/** The header fields a proposal carries for the applier's permission check. */
export interface RequestUserHeader {
  username?: string;
  auth_revision?: number;
}

// etcd's rpctypes.TokenFieldNameGRPC and TokenFieldNameSwagger
const TOKEN_KEYS = ['token', 'authorization'];

function firstString(md: Metadata, key: string): string | undefined {
  const v = md.get(key);
  if (v.length === 0) return undefined;
  const s = v[0];
  return typeof s === 'string' ? s : s.toString();
}

/** The verified client certificate's common name, if the call came over mutual TLS. */
export function peerCommonName(call: AuthCall): string | undefined {
  const ctx = call.getAuthContext?.();
  const cert = ctx?.sslPeerCertificate;
  if (!cert || !cert.subject) return undefined;
  const cn: unknown = cert.subject.CN;
  // Go's pkix.Name keeps the last CN attribute
  if (Array.isArray(cn)) return cn.length ? String(cn[cn.length - 1]) : '';
  return typeof cn === 'string' ? cn : '';
}

/**
 * etcd's EtcdServer.AuthInfoFromCtx: the token (`token`, else `authorization`
 * metadata) if one is sent — an unknown or expired one throws
 * Errors.InvalidAuthToken, even with auth disabled, as etcd — else with
 * --client-cert-auth the certificate CN, else undefined (anonymous).
 */
export async function resolveAuthInfo(call: AuthCall, opts: AuthContextOptions): Promise<AuthInfo | undefined> {
  const md = call.metadata;
  let token: string | undefined;
  for (const k of TOKEN_KEYS) {
    token = firstString(md, k);
    if (token !== undefined) break;
  }
  if (token !== undefined) {
    const store = opts.auth;
    const idx = store.tokenProvider.tokenIndex?.(token);
    if (idx !== undefined && opts.waitApplied) await opts.waitApplied(idx);
    const ai = await store.authInfoFromToken(token);
    if (!ai) throw Errors.InvalidAuthToken;
    return ai;
  }
  if (!opts.clientCertAuth) return undefined;
  const cn = peerCommonName(call);
  if (cn === undefined) return undefined;
  // a gateway proxies with its own certificate, whose CN must never be a user
  if (md.get('grpcgateway-accept').length > 0) return undefined;
  return opts.auth.authInfoFromCommonName(cn);
}

/**
 * True when resolveAuthInfo would answer undefined (anonymous) without awaiting anything: no token
 * sent, and no client certificate that could name a user.
 */
export function isAnonymousNow(call: AuthCall, opts: AuthContextOptions): boolean {
  const md = call.metadata;
  for (const k of TOKEN_KEYS) if (md.get(k).length > 0) return false;
  return !opts.clientCertAuth || peerCommonName(call) === undefined;
}

export function userHeader(ai: AuthInfo | undefined): RequestUserHeader {
  return ai ? { username: ai.username, auth_revision: ai.revision } : {};
}

/** The checks the KV/Watch/Lease/Maintenance/Cluster services make before acting. */
export interface AuthGuardApi {
  /** Range: read permission on [key, rangeEnd). */
  forRead(call: AuthCall, key: Buffer, rangeEnd: Buffer): Promise<void>;
  /** Read-only txn: every compare and op (etcd's checkTxnAuth). */
  forTxnRead(call: AuthCall, req: TxnRequest): Promise<void>;
  /** Writes: the caller, for the log entry's header (checked at apply). */
  forWrite(call: AuthCall): Promise<RequestUserHeader>;
  /** forWrite's answer when no waiting is needed (an anonymous call), else undefined. */
  forWriteNow(call: AuthCall): RequestUserHeader | undefined;
  /**
   * Watch creation: undefined when allowed, else etcd's cancel_reason for a
   * created-and-canceled response (the stream stays open).
   */
  forWatch(call: AuthCall, req: Pick<WatchCreateRequest, 'key' | 'range_end'>): Promise<string | undefined>;
  /**
   * Root-only RPCs (Maintenance Defragment/Snapshot/Hash/HashKV, Cluster
   * member changes); resolves with the caller for a log entry header.
   */
  forAdmin(call: AuthCall): Promise<RequestUserHeader>;
}

export function createAuthGuard(opts: AuthContextOptions): AuthGuardApi {
  const store = opts.auth;
  const resolve = (call: AuthCall) => resolveAuthInfo(call, opts);
  return {
    async forRead(call, key, rangeEnd) {
      const ai = await resolve(call);
      store.isRangePermitted(ai, key, rangeEnd);
    },
    async forTxnRead(call, req) {
      const ai = await resolve(call);
      store.checkTxn(ai, req);
    },
    async forWrite(call) {
      return userHeader(await resolve(call));
    },
    forWriteNow(call) {
      return isAnonymousNow(call, opts) ? {} : undefined;
    },
    async forWatch(call, req) {
      try {
        const ai = await resolve(call);
        const { key, rangeEnd } = watchRange(req);
        store.isRangePermitted(ai, key, rangeEnd);
        return undefined;
      } catch (e) {
        return watchCancelReason(e);
      }
    },
    async forAdmin(call) {
      const ai = await resolve(call);
      store.isAdminPermitted(ai);
      return userHeader(ai);
    },
  };
}

/**
 * The range etcd's watch server checks: an empty key becomes "\0", and a
 * range_end of "\0" (from-key) becomes empty, which the permission check then
 * treats as the single key (etcd 3.4's behaviour, kept for compatibility).
 */
export function watchRange(req: Pick<WatchCreateRequest, 'key' | 'range_end'>): { key: Buffer; rangeEnd: Buffer } {
  const key = req.key.length === 0 ? Buffer.from([0]) : req.key;
  const re = req.range_end;
  const rangeEnd = re.length === 1 && re[0] === 0 ? Buffer.alloc(0) : re;
  return { key, rangeEnd };
}

/**
 * etcd's mapping of a failed watch permission check to the cancel reason: the
 * rpctypes error as grpc-go prints it ("rpc error: code = PermissionDenied
 * desc = etcdserver: permission denied"), which etcdctl shows verbatim.
 */
export function watchCancelReason(e: unknown): string {
  if (e instanceof EtcdError) {
    if (e === Errors.InvalidAuthToken || e === Errors.AuthOldRevision || e === Errors.UserEmpty) return grpcErrorText(e);
  }
  return grpcErrorText(Errors.PermissionDenied);
}
