// Appliers for auth requests (enable/disable, authenticate, users, roles,
// permissions), over the AuthStore the node registers as `services.auth`.
// Each re-runs the store's guard for its own entry, so auth management stays
// root-only even if the caller's generic authorize() call is ever skipped
// (the guard is idempotent and cheap).
import type { AuthStore } from '../auth/store';
import { Errors } from '../errors/index';
import type { InternalRaftRequest } from '../proto/gen/etcdserverpb';
import type { ApplierTable, ApplyContext } from './apply-types';

function authStore(ctx: ApplyContext): AuthStore {
  return ctx.services.auth;
}

function guarded<T>(fn: (s: AuthStore, ctx: ApplyContext, req: InternalRaftRequest) => T) {
  return (ctx: ApplyContext, req: InternalRaftRequest): T => {
    const s = authStore(ctx);
    s.authorize(req);
    return fn(s, ctx, req);
  };
}

function field<T>(v: T | undefined): T {
  // the applier table dispatches on the field, so it is always present
  if (v === undefined) throw Errors.InvalidAuthMgmt;
  return v;
}

export const authAppliers: ApplierTable = {
  auth_enable: guarded((s) => {
    s.authEnable();
    return {};
  }),
  auth_disable: guarded((s) => {
    s.authDisable();
    return {};
  }),
  authenticate: guarded((s, ctx, req) => {
    const r = field(req.authenticate);
    return s.authenticate(r.name, { index: ctx.index, simpleTokenPrefix: r.simple_token });
  }),
  auth_user_add: guarded((s, _c, req) => {
    s.userAdd(field(req.auth_user_add));
    return {};
  }),
  auth_user_delete: guarded((s, _c, req) => {
    s.userDelete(field(req.auth_user_delete));
    return {};
  }),
  auth_user_get: guarded((s, _c, req) => s.userGet(field(req.auth_user_get))),
  auth_user_change_password: guarded((s, _c, req) => {
    s.userChangePassword(field(req.auth_user_change_password));
    return {};
  }),
  auth_user_grant_role: guarded((s, _c, req) => {
    s.userGrantRole(field(req.auth_user_grant_role));
    return {};
  }),
  auth_user_revoke_role: guarded((s, _c, req) => {
    s.userRevokeRole(field(req.auth_user_revoke_role));
    return {};
  }),
  auth_user_list: guarded((s) => s.userList()),
  auth_role_list: guarded((s) => s.roleList()),
  auth_role_add: guarded((s, _c, req) => {
    s.roleAdd(field(req.auth_role_add));
    return {};
  }),
  auth_role_delete: guarded((s, _c, req) => {
    s.roleDelete(field(req.auth_role_delete));
    return {};
  }),
  auth_role_get: guarded((s, _c, req) => s.roleGet(field(req.auth_role_get))),
  auth_role_grant_permission: guarded((s, _c, req) => {
    s.roleGrantPermission(field(req.auth_role_grant_permission));
    return {};
  }),
  auth_role_revoke_permission: guarded((s, _c, req) => {
    s.roleRevokePermission(field(req.auth_role_revoke_permission));
    return {};
  }),
};
