// The auth store: users, roles and the enabled flag in the backend buckets
// `auth` / `authUsers` / `authRoles` exactly as etcd lays them out, an
// in-memory copy loaded at start, etcd's rules and errors for every change,
// the permission checks, and the token provider. Apply-side methods are
// synchronous and deterministic (passwords arrive hashed); the API side
// (password checks, hashing) is async and runs bcrypt off the main thread.
import type { Backend } from '../backend/backend';
import { Errors } from '../errors/index';
import {
  decodeRole,
  decodeUser,
  encodeRole,
  encodeUser,
  Permission_Type,
  type Permission,
  type Role,
  type User,
} from '../proto/gen/authpb';
import type {
  AuthRoleAddRequest,
  AuthRoleDeleteRequest,
  AuthRoleGetRequest,
  AuthRoleGetResponseInit,
  AuthRoleGrantPermissionRequest,
  AuthRoleListResponseInit,
  AuthRoleRevokePermissionRequest,
  AuthUserAddRequest,
  AuthUserChangePasswordRequest,
  AuthUserDeleteRequest,
  AuthUserGetRequest,
  AuthUserGetResponseInit,
  AuthUserGrantRoleRequest,
  AuthUserListResponseInit,
  AuthUserRevokeRoleRequest,
  AuthenticateResponseInit,
  InternalRaftRequest,
  RequestOp,
  TxnRequest,
} from '../proto/gen/etcdserverpb';
import { AuthErrors } from './errors';
import { BcryptHasher, hashPasswordSync, normalizeBcryptCost, type PasswordHasher } from './password';
import { checkRange, mergePermissions, type PermKind, type UnifiedPermissions } from './range-perm';
import { SimpleTokenProvider } from './simple-token';
import type { AssignParams, AuthInfo, TokenProvider } from './token-provider';

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

const ENABLE_FLAG_KEY = Buffer.from('authEnabled');
const REVISION_KEY = Buffer.from('authRevision');
const AUTH_ENABLED = Buffer.from([1]);
const AUTH_DISABLED = Buffer.from([0]);

/** The guard the applier runs before every entry (etcd's authApplierV3). */
export interface AuthGuard {
  /**
   * Throws Errors.PermissionDenied / AuthOldRevision / UserEmpty / UserNotFound
   * (as etcd) when the entry's header user may not perform it. Call it for
   * every entry before applying it; it does nothing while auth is disabled.
   */
  authorize(req: InternalRaftRequest): void;
}

export interface AuthStoreOptions {
  /** Defaults to simple tokens with etcd's 5-minute TTL. */
  tokenProvider?: TokenProvider;
  /** --bcrypt-cost (etcd: 10; out-of-range values fall back to 10). Tests lower it. */
  bcryptCost?: number;
  /** Replaces the worker-thread bcrypt runner (tests). */
  hasher?: PasswordHasher;
  /**
   * Keys attached to a lease, for the lease checks (a revoke must be allowed
   * to delete every attached key). Set by the node; auth cannot import lease.
   */
  leaseKeys?: (id: bigint) => Iterable<Buffer | string> | undefined;
}

const copy = (b: Uint8Array): Buffer => Buffer.from(b);

function cloneUser(u: User): User {
  return {
    name: copy(u.name),
    password: copy(u.password),
    roles: [...u.roles],
    options: u.options ? { no_password: u.options.no_password } : undefined,
  };
}

function clonePerm(p: Permission): Permission {
  return { permType: p.permType, key: copy(p.key), range_end: copy(p.range_end) };
}

function cloneRole(r: Role): Role {
  return { name: copy(r.name), keyPermission: r.keyPermission.map(clonePerm) };
}

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

// Go's sort.Strings orders by bytes (UTF-8), as does sort.SearchStrings.
function sortStrings(xs: string[]): string[] {
  return xs.sort(byteOrder);
}

export class AuthStore implements AuthGuard {
  readonly tokenProvider: TokenProvider;
  readonly bcryptCost: number;
  private readonly backend: Backend;
  private readonly hasher: PasswordHasher;
  private leaseKeys: AuthStoreOptions['leaseKeys'];
  private _enabled = false;
  private _revision = 0;
  private users = new Map<string, User>();
  private roles = new Map<string, Role>();
  /** etcd's rangePermCache: merged intervals per user, rebuilt lazily after any change. */
  private permCache = new Map<string, UnifiedPermissions>();

  constructor(backend: Backend, opts: AuthStoreOptions = {}) {
    this.backend = backend;
    this.tokenProvider = opts.tokenProvider ?? new SimpleTokenProvider();
    this.bcryptCost = normalizeBcryptCost(opts.bcryptCost);
    this.hasher = opts.hasher ?? new BcryptHasher({ cost: this.bcryptCost });
    this.leaseKeys = opts.leaseKeys;
    this.recover();
    // etcd's NewAuthStore: a fresh store starts at auth revision 1
    if (this._revision === 0) this.commitRevision();
  }

  /** (Re)loads everything from the backend: at start and after a snapshot is installed. */
  recover(): void {
    this.users = new Map();
    this.roles = new Map();
    for (const [k, v] of this.backend.range('authUsers')) this.users.set(k.toString(), cloneUser(decodeUser(v)));
    for (const [k, v] of this.backend.range('authRoles')) this.roles.set(k.toString(), cloneRole(decodeRole(v)));
    const rev = this.backend.get('auth', REVISION_KEY);
    this._revision = rev && rev.length === 8 ? Number(rev.readBigUInt64BE(0)) : 0;
    const flag = this.backend.get('auth', ENABLE_FLAG_KEY);
    const enabled = !!flag && flag.equals(AUTH_ENABLED);
    this.permCache.clear();
    if (enabled && !this._enabled) this.tokenProvider.enable();
    if (!enabled && this._enabled) this.tokenProvider.disable();
    this._enabled = enabled;
  }

  setLeaseKeysLookup(fn: AuthStoreOptions['leaseKeys']): void {
    this.leaseKeys = fn;
  }

  get enabled(): boolean {
    return this._enabled;
  }

  /** The auth revision: bumped by every change to users, roles or permissions, and by disabling. */
  get revision(): number {
    return this._revision;
  }

  private commitRevision(): void {
    this._revision++;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this._revision));
    this.backend.put('auth', REVISION_KEY, b);
  }

  private changed(): void {
    this.commitRevision();
    this.permCache.clear();
  }

  private putUser(u: User): void {
    this.users.set(u.name.toString(), u);
    this.backend.put('authUsers', u.name, encodeUser(u));
  }

  private putRole(r: Role): void {
    this.roles.set(r.name.toString(), r);
    this.backend.put('authRoles', r.name, encodeRole(r));
  }

  // ---- apply side (deterministic; called by cluster/apply-auth.ts) ----

  authEnable(): void {
    if (this._enabled) return;
    const root = this.users.get(ROOT_USER);
    if (!root) throw Errors.RootUserNotExist;
    if (!hasRootRole(root)) throw Errors.RootRoleNotExist;
    this.backend.put('auth', ENABLE_FLAG_KEY, AUTH_ENABLED);
    this._enabled = true;
    this.tokenProvider.enable();
    // etcd does not bump the revision on enable: no token can exist yet
    this.permCache.clear();
  }

  authDisable(): void {
    if (!this._enabled) return;
    this.backend.put('auth', ENABLE_FLAG_KEY, AUTH_DISABLED);
    this.commitRevision();
    this._enabled = false;
    this.tokenProvider.disable();
  }

  /** The Authenticate entry: the password was checked by the proposing member. */
  authenticate(name: string, params: AssignParams): AuthenticateResponseInit {
    if (!this._enabled) throw Errors.AuthNotEnabled;
    const user = this.users.get(name);
    if (!user || user.options?.no_password) throw Errors.AuthFailed;
    return { token: this.tokenProvider.assign(name, this._revision, params) };
  }

  userAdd(r: AuthUserAddRequest): void {
    if (r.name.length === 0) throw Errors.UserEmpty;
    const noPassword = !!r.options?.no_password;
    let hashed: Buffer = Buffer.alloc(0);
    if (!noPassword) {
      // a request from an etcd-3.4-style proposer carries the plain password
      hashed = r.hashed_password?.length ? copy(r.hashed_password) : hashPasswordSync(r.password, this.bcryptCost);
    }
    if (this.users.has(r.name)) throw Errors.UserAlreadyExist;
    this.putUser({
      name: Buffer.from(r.name),
      password: hashed,
      roles: [],
      options: { no_password: r.options?.no_password ?? false },
    });
    this.changed();
  }

  userDelete(r: AuthUserDeleteRequest): void {
    if (this._enabled && r.name === ROOT_USER) throw Errors.InvalidAuthMgmt;
    if (!this.users.has(r.name)) throw Errors.UserNotFound;
    this.users.delete(r.name);
    this.backend.del('authUsers', Buffer.from(r.name));
    this.changed();
    this.tokenProvider.invalidateUser(r.name);
  }

  userChangePassword(r: AuthUserChangePasswordRequest): void {
    const hashed = r.hashed_password?.length ? copy(r.hashed_password) : hashPasswordSync(r.password, this.bcryptCost);
    const user = this.users.get(r.name);
    if (!user) throw Errors.UserNotFound;
    this.putUser({ name: Buffer.from(r.name), roles: [...user.roles], password: hashed, options: user.options });
    this.changed();
    this.tokenProvider.invalidateUser(r.name);
  }

  userGrantRole(r: AuthUserGrantRoleRequest): void {
    const user = this.users.get(r.user);
    if (!user) throw Errors.UserNotFound;
    // the root role need not exist as a role to be granted (etcd)
    if (r.role !== ROOT_ROLE && !this.roles.has(r.role)) throw Errors.RoleNotFound;
    if (user.roles.includes(r.role)) return; // etcd: ignored, no revision change
    this.putUser({ ...user, roles: sortStrings([...user.roles, r.role]) });
    this.changed();
  }

  userGet(r: AuthUserGetRequest): AuthUserGetResponseInit {
    const user = this.users.get(r.name);
    if (!user) throw Errors.UserNotFound;
    return { roles: [...user.roles] };
  }

  userList(): AuthUserListResponseInit {
    return { users: [...this.users.keys()].sort(byteOrder) };
  }

  userRevokeRole(r: AuthUserRevokeRoleRequest): void {
    if (this._enabled && r.name === ROOT_USER && r.role === ROOT_ROLE) throw Errors.InvalidAuthMgmt;
    const user = this.users.get(r.name);
    if (!user) throw Errors.UserNotFound;
    const roles = user.roles.filter((x) => x !== r.role);
    if (roles.length === user.roles.length) throw Errors.RoleNotGranted;
    this.putUser({ ...user, roles });
    this.changed();
  }

  roleAdd(r: AuthRoleAddRequest): void {
    if (r.name.length === 0) throw Errors.RoleEmpty;
    if (this.roles.has(r.name)) throw Errors.RoleAlreadyExist;
    this.putRole({ name: Buffer.from(r.name), keyPermission: [] });
    this.changed();
  }

  roleGet(r: AuthRoleGetRequest): AuthRoleGetResponseInit {
    const role = this.roles.get(r.role);
    if (!role) throw Errors.RoleNotFound;
    return { perm: role.keyPermission.map(clonePerm) };
  }

  roleList(): AuthRoleListResponseInit {
    return { roles: [...this.roles.keys()].sort(byteOrder) };
  }

  roleDelete(r: AuthRoleDeleteRequest): void {
    if (this._enabled && r.role === ROOT_ROLE) throw Errors.InvalidAuthMgmt;
    if (!this.roles.has(r.role)) throw Errors.RoleNotFound;
    this.roles.delete(r.role);
    this.backend.del('authRoles', Buffer.from(r.role));
    for (const [, u] of [...this.users].sort((a, b) => byteOrder(a[0], b[0]))) {
      if (!u.roles.includes(r.role)) continue;
      this.putUser({ ...u, roles: u.roles.filter((x) => x !== r.role) });
    }
    this.changed();
  }

  roleGrantPermission(r: AuthRoleGrantPermissionRequest): void {
    const role = this.roles.get(r.name);
    if (!role) throw Errors.RoleNotFound;
    const perm: Permission = r.perm
      ? clonePerm(r.perm)
      : { permType: Permission_Type.READ, key: Buffer.alloc(0), range_end: Buffer.alloc(0) };
    const perms = role.keyPermission.map(clonePerm);
    // etcd looks only at the first permission whose key is >= the new key:
    // same key and range_end updates its type, anything else appends
    const idx = perms.findIndex((p) => Buffer.compare(p.key, perm.key) >= 0);
    if (idx >= 0 && perms[idx].key.equals(perm.key) && perms[idx].range_end.equals(perm.range_end)) {
      perms[idx].permType = perm.permType;
    } else {
      perms.push(perm);
      // stable, by key only (Go's insertion sort for the small slices roles hold)
      perms.sort((a, b) => Buffer.compare(a.key, b.key));
    }
    this.putRole({ name: role.name, keyPermission: perms });
    this.changed();
  }

  roleRevokePermission(r: AuthRoleRevokePermissionRequest): void {
    const role = this.roles.get(r.role);
    if (!role) throw Errors.RoleNotFound;
    const kept = role.keyPermission.filter((p) => !p.key.equals(r.key) || !p.range_end.equals(r.range_end));
    if (kept.length === role.keyPermission.length) throw Errors.PermissionNotGranted;
    this.putRole({ name: role.name, keyPermission: kept });
    this.changed();
  }

  // ---- permission checks (etcd's isOpPermitted and friends) ----

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  private mergedPerms(user: User): UnifiedPermissions {
    const name = user.name.toString();
    let p = this.permCache.get(name);
    if (!p) {
      const perms: Permission[] = [];
      for (const rn of user.roles) {
        const role = this.roles.get(rn);
        if (role) perms.push(...role.keyPermission);
      }
      p = mergePermissions(perms);
      this.permCache.set(name, p);
    }
    return p;
  }

  private checkOp(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer | undefined, kind: PermKind): void {
    if (!this._enabled) return;
    // revision 0 means no credentials at all
    if (!ai || ai.revision === 0) throw Errors.UserEmpty;
    if (ai.revision < this._revision) throw Errors.AuthOldRevision;
    const user = this.users.get(ai.username);
    if (!user) throw Errors.PermissionDenied;
    if (hasRootRole(user)) return;
    if (!checkRange(this.mergedPerms(user), key, rangeEnd, kind)) throw Errors.PermissionDenied;
  }

  isRangePermitted(ai: AuthInfo | undefined, key: Buffer, rangeEnd?: Buffer): void {
    this.checkOp(ai, key, rangeEnd, 'read');
  }

  isPutPermitted(ai: AuthInfo | undefined, key: Buffer): void {
    this.checkOp(ai, key, undefined, 'write');
  }

  isDeleteRangePermitted(ai: AuthInfo | undefined, key: Buffer, rangeEnd?: Buffer): void {
    this.checkOp(ai, key, rangeEnd, 'write');
  }

  /** Root-role-only operations (auth management, maintenance, membership). */
  isAdminPermitted(ai: AuthInfo | undefined): void {
    if (!this._enabled) return;
    if (!ai || ai.username === '') throw Errors.UserEmpty;
    const user = this.users.get(ai.username);
    if (!user) throw Errors.UserNotFound;
    if (!hasRootRole(user)) throw Errors.PermissionDenied;
  }

  /** etcd's checkTxnAuth: every compare's range, and every op of both branches. */
  checkTxn(ai: AuthInfo | undefined, txn: TxnRequest): void {
    for (const c of txn.compare) this.isRangePermitted(ai, c.key, c.range_end);
    this.checkTxnOps(ai, txn.success);
    this.checkTxnOps(ai, txn.failure);
  }

  private checkTxnOps(ai: AuthInfo | undefined, ops: RequestOp[]): void {
    for (const op of ops) {
      if (op.request_range) this.isRangePermitted(ai, op.request_range.key, op.request_range.range_end);
      else if (op.request_put) this.isPutPermitted(ai, op.request_put.key);
      else if (op.request_delete_range) {
        const d = op.request_delete_range;
        if (d.prev_kv) this.isRangePermitted(ai, d.key, d.range_end);
        this.isDeleteRangePermitted(ai, d.key, d.range_end);
      } else if (op.request_txn) {
        // etcd 3.4 skips nested txns here (later releases fixed the bypass); we check them
        this.checkTxn(ai, op.request_txn);
      }
    }
  }

  /** etcd's checkLeasePuts: the user must be able to write every key attached to the lease. */
  checkLeasePuts(ai: AuthInfo | undefined, leaseId: bigint): void {
    if (!this._enabled || leaseId === 0n || !this.leaseKeys) return;
    const keys = this.leaseKeys(leaseId);
    if (!keys) return;
    for (const k of keys) this.isPutPermitted(ai, typeof k === 'string' ? Buffer.from(k, 'latin1') : k);
  }

  authorize(req: InternalRaftRequest): void {
    if (!this._enabled) return;
    const ai: AuthInfo = { username: req.header?.username ?? '', revision: req.header?.auth_revision ?? 0 };
    if (needAdminPermission(req)) this.isAdminPermitted(ai);
    if (req.put) {
      this.isPutPermitted(ai, req.put.key);
      this.checkLeasePuts(ai, req.put.lease);
      if (req.put.prev_kv) this.isRangePermitted(ai, req.put.key);
    } else if (req.range) {
      this.isRangePermitted(ai, req.range.key, req.range.range_end);
    } else if (req.delete_range) {
      this.isDeleteRangePermitted(ai, req.delete_range.key, req.delete_range.range_end);
      if (req.delete_range.prev_kv) this.isRangePermitted(ai, req.delete_range.key, req.delete_range.range_end);
    } else if (req.txn) {
      this.checkTxn(ai, req.txn);
    } else if (req.lease_revoke) {
      this.checkLeasePuts(ai, req.lease_revoke.ID);
    } else if (req.auth_user_get) {
      // a user may read itself
      try {
        this.isAdminPermitted(ai);
      } catch (e) {
        if (req.auth_user_get.name !== ai.username) throw e;
      }
    } else if (req.auth_role_get) {
      // a user may read the roles it holds
      try {
        this.isAdminPermitted(ai);
      } catch (e) {
        if (!this.hasRole(ai.username, req.auth_role_get.role)) throw e;
      }
    }
  }

  /** The header of a request the server makes as root (etcd's WithRoot), e.g. revoking an expired lease. */
  rootHeader(): { username: string; auth_revision: number } | undefined {
    return this._enabled ? { username: ROOT_USER, auth_revision: this._revision } : undefined;
  }

  // ---- API side (async; never on the apply path) ----

  /** Checks a password off the main thread; resolves to the auth revision it was checked at. */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this._enabled) throw Errors.AuthNotEnabled;
    const user = this.users.get(name);
    if (!user) throw Errors.AuthFailed;
    if (user.options?.no_password) throw AuthErrors.NoPasswordUser;
    const rev = this._revision;
    const hash = user.password;
    if (!(await this.hasher.compare(password, hash))) throw Errors.AuthFailed;
    return rev;
  }

  /** bcrypt at the configured cost, for UserAdd/UserChangePassword before proposing. */
  hashPassword(password: string): Promise<Buffer> {
    return this.hasher.hash(password);
  }

  genTokenPrefix(): string {
    return this.tokenProvider.genTokenPrefix();
  }

  /** The credential behind a token, or undefined for an invalid/expired one. */
  async authInfoFromToken(token: string): Promise<AuthInfo | undefined> {
    return this.tokenProvider.info(token, this._revision);
  }

  /** A verified client certificate's CN stands for the user (--client-cert-auth). */
  authInfoFromCommonName(cn: string): AuthInfo {
    return { username: cn, revision: this._revision };
  }

  /** Whether a user exists (tests, admin tools). */
  hasUser(name: string): boolean {
    return this.users.has(name);
  }

  async close(): Promise<void> {
    this.tokenProvider.close();
    await this.hasher.close();
  }
}

function hasRootRole(u: User): boolean {
  return u.roles.includes(ROOT_ROLE);
}

/** etcd's needAdminPermission. */
export function needAdminPermission(r: InternalRaftRequest): boolean {
  return !!(
    r.auth_enable ||
    r.auth_disable ||
    r.auth_user_add ||
    r.auth_user_delete ||
    r.auth_user_change_password ||
    r.auth_user_grant_role ||
    r.auth_user_revoke_role ||
    r.auth_role_add ||
    r.auth_role_grant_permission ||
    r.auth_role_revoke_permission ||
    r.auth_role_delete ||
    r.auth_user_list ||
    r.auth_role_list
  );
}
