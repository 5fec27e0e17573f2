// Users, roles and permissions; enabling auth keeps the app signed in as root
// (and, for the app's own nodes, remembers root's credentials so the next
// start signs in again instead of reading an empty key list).
import { AuthPb, checkRange, mergePermissions, type EtcdClient } from '../../../node-core/index';
import { ContractError, type AuthOverview, type PermCheckResult, type Permission, type RoleInfo, type UserInfo } from '../../contract/index';
import { permToContract, permTypeOf, rangeEndFor, text } from '../convert';
import { isEtcdError } from '../errors';
import type { HandlerDeps, HandlersFor } from './context';

async function authEnabled(client: EtcdClient): Promise<boolean> {
  try {
    await client.authenticateProbe('etcdesk-auth-probe', 'x');
    return true;
  } catch (e) {
    return !isEtcdError(e, 'AuthNotEnabled');
  }
}

async function userInfo(client: EtcdClient, name: string): Promise<UserInfo> {
  const u = await client.userGet(name);
  return { name, roles: u.roles };
}

async function roleInfo(client: EtcdClient, name: string): Promise<RoleInfo> {
  const r = await client.roleGet(name);
  return { name, perms: r.perm.map(permToContract) };
}

async function overview(client: EtcdClient): Promise<AuthOverview> {
  const enabled = await authEnabled(client);
  try {
    const [ul, rl] = await Promise.all([client.userList(), client.roleList()]);
    const users = await Promise.all(ul.users.map((u) => userInfo(client, u)));
    const roles = await Promise.all(rl.roles.map((r) => roleInfo(client, r)));
    return { enabled, users, roles, restricted: false };
  } catch (e) {
    if (isEtcdError(e, 'PermissionDenied', 'UserEmpty', 'InvalidAuthToken')) return { enabled, users: [], roles: [], restricted: true };
    throw e;
  }
}

/** A contract permission as etcd stores it (key, range_end bytes). */
function permToPb(p: Permission): AuthPb.Permission {
  const key = p.scope === 'from-key' && !p.key ? Buffer.from([0]) : text(p.key);
  const rangeEnd = p.scope === 'range' && p.rangeEnd === '\\0' ? Buffer.from([0]) : rangeEndFor(p.scope, key, p.rangeEnd);
  return { permType: permTypeOf(p.type), key, range_end: rangeEnd ?? Buffer.alloc(0) };
}

const describePerm = (p: Permission): string => `${p.type} on ${p.scope} "${p.key}"${p.scope === 'range' ? ` … "${p.rangeEnd}"` : ''}`;

/**
 * Can `user` do `op` on `key`? etcd's own rule, from node-core (merged
 * intervals of all the user's roles; the root role allows everything); the
 * reason names a role that grants it, or why none does.
 */
export function checkPermission(ov: AuthOverview, user: string, op: 'read' | 'write', key: string): PermCheckResult {
  if (!ov.enabled) return { allowed: true, reason: 'authentication is disabled: every request is allowed' };
  const u = ov.users.find((x) => x.name === user);
  if (!u) return { allowed: false, reason: `user "${user}" does not exist` };
  if (u.roles.includes('root')) return { allowed: true, reason: `"${user}" has the root role` };
  const roles = u.roles.map((name) => ({ name, perms: ov.roles.find((r) => r.name === name)?.perms ?? [] }));
  const k = text(key);
  const allowed = checkRange(mergePermissions(roles.flatMap((r) => r.perms.map(permToPb))), k, undefined, op);
  if (allowed) {
    // Which role: the first whose own permissions allow it (etcd merges them; any one covering the key is the answer).
    for (const r of roles)
      for (const p of r.perms)
        if (checkRange(mergePermissions([permToPb(p)]), k, undefined, op)) return { allowed: true, reason: `role "${r.name}" grants ${describePerm(p)}` };
    return { allowed: true, reason: `the roles of "${user}" together grant ${op} on "${key}"` };
  }
  return { allowed: false, reason: u.roles.length ? `no role of "${user}" (${u.roles.join(', ')}) grants ${op} on "${key}"` : `"${user}" has no roles` };
}

type AuthChannels =
  | 'auth:overview' | 'auth:enable' | 'auth:disable' | 'auth:user-add' | 'auth:user-delete' | 'auth:user-passwd' | 'auth:user-grant'
  | 'auth:user-revoke' | 'auth:role-add' | 'auth:role-delete' | 'auth:role-grant' | 'auth:role-revoke' | 'auth:check';

export function authHandlers(deps: HandlerDeps): HandlersFor<AuthChannels> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  return {
    'auth:overview': async () => overview(c()),
    'auth:enable': async ({ rootPassword }) => {
      const client = c();
      const roles = (await client.roleList()).roles;
      if (!roles.includes('root')) await client.roleAdd('root');
      const users = (await client.userList()).users;
      if (!users.includes('root')) {
        if (!rootPassword) throw new ContractError(-1, 'user root does not exist yet: give it a password to create it');
        await client.userAdd('root', rootPassword);
      }
      const root = await client.userGet('root');
      if (!root.roles.includes('root')) await client.userGrantRole('root', 'root');
      await client.authEnable();
      // Keep administering: from now on requests need credentials.
      if (!client.options.username) {
        if (!rootPassword) throw new ContractError(-1, 'auth enabled; reconnect with the root user');
        try {
          await client.authenticateProbe('root', rootPassword);
        } catch {
          // root existed with another password: say so instead of failing every later call.
          throw new ContractError(-1, 'authentication enabled, but that is not the root password: reconnect with root\'s credentials');
        }
        // The app's own nodes: remember root's credentials (keychain / 0600 file) so the next start signs in.
        const p = m.currentProfile;
        if (p && p.kind !== 'remote') deps.profiles.setCredentials(p.id, 'root', rootPassword, true);
        m.relogin('root', rootPassword);
      } else client.resetToken();
      return overview(c());
    },
    'auth:disable': async () => {
      await c().authDisable();
      return overview(c());
    },
    'auth:user-add': async ({ name, password }) => {
      await c().userAdd(name, password);
      return userInfo(c(), name);
    },
    'auth:user-delete': async ({ name }) => {
      await c().userDelete(name);
      return { ok: true };
    },
    'auth:user-passwd': async ({ name, password }) => {
      await c().userChangePassword(name, password);
      return { ok: true };
    },
    'auth:user-grant': async ({ name, role }) => {
      await c().userGrantRole(name, role);
      return userInfo(c(), name);
    },
    'auth:user-revoke': async ({ name, role }) => {
      await c().userRevokeRole(name, role);
      return userInfo(c(), name);
    },
    'auth:role-add': async ({ name }) => {
      await c().roleAdd(name);
      return roleInfo(c(), name);
    },
    'auth:role-delete': async ({ name }) => {
      await c().roleDelete(name);
      return { ok: true };
    },
    'auth:role-grant': async ({ name, perm }) => {
      const key = perm.scope === 'from-key' && !perm.key ? Buffer.from([0]) : text(perm.key);
      if (!key.length) throw new ContractError(-1, 'a permission needs a key (use from-key with an empty key for all keys)');
      const range_end = rangeEndFor(perm.scope, key, perm.rangeEnd);
      await c().roleGrantPermission(name, { permType: permTypeOf(perm.type), key, range_end });
      return roleInfo(c(), name);
    },
    'auth:role-revoke': async ({ name, key, rangeEnd }) => {
      const end = rangeEnd === '\\0' ? Buffer.from([0]) : rangeEnd ? text(rangeEnd) : undefined;
      await c().roleRevokePermission(name, text(key), end);
      return roleInfo(c(), name);
    },
    'auth:check': async ({ user, op, key }) => checkPermission(await overview(c()), user, op, key),
  };
}
