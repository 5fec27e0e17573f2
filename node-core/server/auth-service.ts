// The gRPC Auth service (etcd's v3rpc AuthServer + EtcdServer's auth
// methods): every request goes through the log carrying the caller in its
// header, so each member applies it and the applier enforces root-only
// management. Passwords are checked and hashed here, off the apply path and
// off the main thread; the log carries only bcrypt hashes and, for
// Authenticate, the user name and a random token prefix.
import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { AuthStore } from '../auth/store';
import { EtcdError } from '../errors/index';
import type {
  AuthHandlers,
  InternalRaftRequestInit,
  ResponseHeaderInit,
} from '../proto/gen/etcdserverpb';
import { createAuthGuard, resolveAuthInfo, userHeader, type AuthCall, type AuthGuardApi } from './auth-context';

/** What the Auth service needs from the node. */
export interface AuthServiceNode {
  /**
   * Proposes through the log; resolves with the apply result (the response
   * without header), or an `{ result }` wrapper around it. Must keep
   * `header.username` / `header.auth_revision` as given (it adds the ID).
   */
  propose(req: InternalRaftRequestInit): Promise<unknown>;
  header(): ResponseHeaderInit;
  services: { auth: AuthStore };
  /** --client-cert-auth (certificate CN as user name). */
  clientCertAuth?: boolean;
  /** Resolves once the member applied a raft index (simple tokens from other members). */
  waitApplied?(index: number): Promise<void>;
  /** etcd's Authenticate first waits for a linearizable read point. */
  readBarrier?(): Promise<void>;
}

function toServiceError(e: unknown): Partial<ServiceError> {
  if (e instanceof EtcdError) return { code: e.code, details: e.message, metadata: new Metadata() };
  return { code: 2, details: e instanceof Error ? e.message : String(e), metadata: new Metadata() };
}

function unwrap(v: unknown): Record<string, unknown> {
  if (v && typeof v === 'object' && 'result' in v) v = (v as { result: unknown }).result;
  return v && typeof v === 'object' ? { ...(v as Record<string, unknown>) } : {};
}

type Build<Req> = (req: Req) => InternalRaftRequestInit | Promise<InternalRaftRequestInit>;

export function createAuthHandlers(node: AuthServiceNode): AuthHandlers {
  const store = () => node.services.auth;
  const ctxOpts = () => ({ auth: store(), clientCertAuth: node.clientCertAuth ?? false, waitApplied: node.waitApplied?.bind(node) });

  const proposeAs = async (call: AuthCall, req: InternalRaftRequestInit): Promise<Record<string, unknown>> => {
    const ai = await resolveAuthInfo(call, ctxOpts());
    return unwrap(await node.propose({ ...req, header: { ...(req.header ?? {}), ...userHeader(ai) } }));
  };

  // A unary handler that proposes the request built from the call and answers with the result plus header.
  const unary = <Req, Res>(build: Build<Req>) =>
    ((call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => build(call.request))
        .then((r) => proposeAs(call, r))
        .then((res) => cb(null, { ...res, header: node.header() } as Res))
        .catch((e: unknown) => cb(toServiceError(e) as ServiceError));
    });

  const authenticate: AuthHandlers['Authenticate'] = (call, cb) => {
    const { name, password } = call.request;
    (async () => {
      await node.readBarrier?.();
      for (;;) {
        const checkedRevision = await store().checkPassword(name, password);
        const res = await proposeAs(call, { authenticate: { name, simple_token: store().genTokenPrefix() } });
        // the password was checked against a store that changed meanwhile: check again
        if (checkedRevision === store().revision) return res;
      }
    })()
      .then((res) => cb(null, { ...res, header: node.header() }))
      .catch((e: unknown) => cb(toServiceError(e) as ServiceError));
  };

  return {
    AuthEnable: unary(() => ({ auth_enable: {} })),
    AuthDisable: unary(() => ({ auth_disable: {} })),
    Authenticate: authenticate,
    UserAdd: unary(async (r) => {
      const noPassword = !!r.options?.no_password;
      const hashed = noPassword ? undefined : await store().hashPassword(r.password);
      return { auth_user_add: { name: r.name, options: r.options, hashed_password: hashed } };
    }),
    UserGet: unary((r) => ({ auth_user_get: { name: r.name } })),
    UserList: unary(() => ({ auth_user_list: {} })),
    UserDelete: unary((r) => ({ auth_user_delete: { name: r.name } })),
    UserChangePassword: unary(async (r) => ({
      auth_user_change_password: { name: r.name, hashed_password: await store().hashPassword(r.password) },
    })),
    UserGrantRole: unary((r) => ({ auth_user_grant_role: { user: r.user, role: r.role } })),
    UserRevokeRole: unary((r) => ({ auth_user_revoke_role: { name: r.name, role: r.role } })),
    RoleAdd: unary((r) => ({ auth_role_add: { name: r.name } })),
    RoleGet: unary((r) => ({ auth_role_get: { role: r.role } })),
    RoleList: unary(() => ({ auth_role_list: {} })),
    RoleDelete: unary((r) => ({ auth_role_delete: { role: r.role } })),
    RoleGrantPermission: unary((r) => ({ auth_role_grant_permission: { name: r.name, perm: r.perm } })),
    RoleRevokePermission: unary((r) => ({
      auth_role_revoke_permission: { role: r.role, key: r.key, range_end: r.range_end },
    })),
  };
}

/**
 * Everything the server needs for auth in one call: the Auth service
 * handlers and the guard the KV/Watch/Maintenance/Cluster services consult
 * (it satisfies request-guard.ts's RequestGuard).
 */
export function createAuthServer(node: AuthServiceNode): { handlers: AuthHandlers; guard: AuthGuardApi } {
  return {
    handlers: createAuthHandlers(node),
    guard: createAuthGuard({
      auth: node.services.auth,
      clientCertAuth: node.clientCertAuth ?? false,
      waitApplied: node.waitApplied?.bind(node),
    }),
  };
}
