import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Errors } from '../errors/index';
import { decodeUser } from '../proto/gen/authpb';
import { AuthErrors } from './errors';
import { BcryptHasher } from './password';
import { SimpleTokenProvider } from './simple-token';
import { AuthStore } from './store';
import { newStore, READ, READWRITE, req, tempBackend, withRoot, WRITE } from './test-helpers';

const u = (name: string, hashed = `plain:${name}pw`) => req({ auth_user_add: { name, hashed_password: Buffer.from(hashed) } }).auth_user_add!;
const grant = (user: string, role: string) => req({ auth_user_grant_role: { user, role } }).auth_user_grant_role!;
const perm = (name: string, key: string, rangeEnd: string, permType: number) =>
  req({ auth_role_grant_permission: { name, perm: { key: Buffer.from(key), range_end: Buffer.from(rangeEnd), permType } } }).auth_role_grant_permission!;

describe('AuthStore rules and errors (etcd 3.4)', () => {
  const tb = tempBackend();
  after(() => tb.cleanup());

  test('a fresh store is at auth revision 1, stored big-endian in auth/authRevision', () => {
    const s = newStore(tb.backend);
    assert.equal(s.revision, 1);
    assert.equal(s.enabled, false);
    assert.deepEqual(tb.backend.get('auth', Buffer.from('authRevision')), Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]));
  });

  test('enable needs root with the root role; the flag is stored as etcd does', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      assert.throws(() => s.authEnable(), Errors.RootUserNotExist);
      s.userAdd(u('root'));
      assert.throws(() => s.authEnable(), Errors.RootRoleNotExist);
      // the root role need not exist as a role to be granted
      s.userGrantRole(grant('root', 'root'));
      const rev = s.revision;
      s.authEnable();
      assert.equal(s.enabled, true);
      assert.equal(s.revision, rev, 'etcd does not bump the revision on enable');
      assert.deepEqual(backend.get('auth', Buffer.from('authEnabled')), Buffer.from([1]));
      s.authEnable(); // already enabled: ignored
      s.authDisable();
      assert.equal(s.revision, rev + 1);
      assert.deepEqual(backend.get('auth', Buffer.from('authEnabled')), Buffer.from([0]));
    } finally {
      void cleanup();
    }
  });

  test('users: empty name, duplicates, no_password, stored bytes', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      assert.throws(() => s.userAdd(u('')), Errors.UserEmpty);
      s.userAdd(u('alice'));
      assert.throws(() => s.userAdd(u('alice')), Errors.UserAlreadyExist);
      s.userAdd(req({ auth_user_add: { name: 'svc', options: { no_password: true } } }).auth_user_add!);
      const stored = decodeUser(backend.get('authUsers', Buffer.from('alice'))!);
      assert.equal(stored.name.toString(), 'alice');
      assert.equal(stored.password.toString(), 'plain:alicepw');
      assert.deepEqual(stored.roles, []);
      assert.equal(stored.options?.no_password, false);
      const svc = decodeUser(backend.get('authUsers', Buffer.from('svc'))!);
      assert.equal(svc.password.length, 0);
      assert.equal(svc.options?.no_password, true);
      assert.deepEqual(s.userList().users, ['alice', 'svc']);
      // a plain password (an etcd-3.4-style proposal) is hashed at apply with bcrypt
      s.userAdd(req({ auth_user_add: { name: 'old', password: 'pw' } }).auth_user_add!);
      assert.match(decodeUser(backend.get('authUsers', Buffer.from('old'))!).password.toString(), /^\$2a\$04\$/);
    } finally {
      void cleanup();
    }
  });

  test('every change bumps the revision; no-op grant does not', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      let rev = s.revision;
      const bumped = (fn: () => void, by = 1) => {
        fn();
        assert.equal(s.revision, rev + by);
        rev = s.revision;
      };
      bumped(() => s.userAdd(u('a')));
      bumped(() => s.roleAdd({ name: 'r' }));
      bumped(() => s.userGrantRole(grant('a', 'r')));
      bumped(() => s.userGrantRole(grant('a', 'r')), 0);
      bumped(() => s.roleGrantPermission(perm('r', 'k', '', READ)));
      bumped(() => s.roleRevokePermission({ role: 'r', key: Buffer.from('k'), range_end: Buffer.alloc(0) }));
      bumped(() => s.userChangePassword(req({ auth_user_change_password: { name: 'a', hashed_password: Buffer.from('plain:x') } }).auth_user_change_password!));
      bumped(() => s.userRevokeRole({ name: 'a', role: 'r' }));
      bumped(() => s.roleDelete({ role: 'r' }));
      bumped(() => s.userDelete({ name: 'a' }));
    } finally {
      void cleanup();
    }
  });

  test('grant/revoke role errors', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      s.userAdd(u('a'));
      assert.throws(() => s.userGrantRole(grant('nobody', 'r')), Errors.UserNotFound);
      assert.throws(() => s.userGrantRole(grant('a', 'nope')), Errors.RoleNotFound);
      s.roleAdd({ name: 'z' });
      s.roleAdd({ name: 'b' });
      s.userGrantRole(grant('a', 'z'));
      s.userGrantRole(grant('a', 'b'));
      assert.deepEqual(s.userGet({ name: 'a' }).roles, ['b', 'z'], 'roles kept sorted');
      assert.throws(() => s.userRevokeRole({ name: 'a', role: 'q' }), Errors.RoleNotGranted);
      assert.throws(() => s.userRevokeRole({ name: 'x', role: 'b' }), Errors.UserNotFound);
      assert.throws(() => s.userGet({ name: 'x' }), Errors.UserNotFound);
      withRoot(s);
      s.authEnable();
      assert.throws(() => s.userRevokeRole({ name: 'root', role: 'root' }), Errors.InvalidAuthMgmt);
      assert.throws(() => s.userDelete({ name: 'root' }), Errors.InvalidAuthMgmt);
      assert.throws(() => s.userDelete({ name: 'x' }), Errors.UserNotFound);
    } finally {
      void cleanup();
    }
  });

  test('roles: empty, duplicate, delete strips users, root role protected while enabled', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      assert.throws(() => s.roleAdd({ name: '' }), Errors.RoleEmpty);
      s.roleAdd({ name: 'r1' });
      assert.throws(() => s.roleAdd({ name: 'r1' }), Errors.RoleAlreadyExist);
      assert.throws(() => s.roleGet({ role: 'x' }), Errors.RoleNotFound);
      assert.throws(() => s.roleDelete({ role: 'x' }), Errors.RoleNotFound);
      s.userAdd(u('a'));
      s.userGrantRole(grant('a', 'r1'));
      s.roleDelete({ role: 'r1' });
      assert.deepEqual(s.userGet({ name: 'a' }).roles, []);
      assert.equal(backend.get('authRoles', Buffer.from('r1')), undefined);
      s.roleAdd({ name: 'root' });
      withRoot(s);
      s.authEnable();
      assert.throws(() => s.roleDelete({ role: 'root' }), Errors.InvalidAuthMgmt);
      assert.deepEqual(s.roleList().roles, ['root']);
    } finally {
      void cleanup();
    }
  });

  test('permissions: merge like etcd (update same key+range_end, else append sorted by key), revoke', () => {
    const { backend, cleanup } = tempBackend();
    try {
      const s = newStore(backend);
      assert.throws(() => s.roleGrantPermission(perm('nope', 'k', '', READ)), Errors.RoleNotFound);
      s.roleAdd({ name: 'r' });
      s.roleGrantPermission(perm('r', 'm', '', READ));
      s.roleGrantPermission(perm('r', 'a', 'c', WRITE));
      s.roleGrantPermission(perm('r', 'm', '', READWRITE)); // update in place
      s.roleGrantPermission(perm('r', 'm', 'n', READ)); // same key, other range: appended after
      const got = s.roleGet({ role: 'r' }).perm!.map((p) => [Buffer.from(p.key!).toString(), Buffer.from(p.range_end!).toString(), p.permType]);
      assert.deepEqual(got, [
        ['a', 'c', WRITE],
        ['m', '', READWRITE],
        ['m', 'n', READ],
      ]);
      assert.throws(() => s.roleRevokePermission({ role: 'r', key: Buffer.from('a'), range_end: Buffer.alloc(0) }), Errors.PermissionNotGranted);
      assert.throws(() => s.roleRevokePermission({ role: 'x', key: Buffer.from('a'), range_end: Buffer.alloc(0) }), Errors.RoleNotFound);
      s.roleRevokePermission({ role: 'r', key: Buffer.from('a'), range_end: Buffer.from('c') });
      assert.equal(s.roleGet({ role: 'r' }).perm!.length, 2);
    } finally {
      void cleanup();
    }
  });

  test('state survives a reopen (loaded from the buckets at start)', async () => {
    const { backend, dir, cleanup } = tempBackend();
    const s = newStore(backend);
    withRoot(s);
    s.roleAdd({ name: 'r' });
    s.roleGrantPermission(perm('r', 'k', 'l', READ));
    s.userAdd(u('a'));
    s.userGrantRole(grant('a', 'r'));
    s.authEnable();
    const rev = s.revision;
    await backend.close();
    const { Backend } = await import('../backend/backend');
    const b2 = Backend.open(dir, { sync: false });
    const s2 = newStore(b2);
    assert.equal(s2.enabled, true);
    assert.equal(s2.revision, rev);
    assert.deepEqual(s2.userList().users, ['a', 'root']);
    assert.deepEqual(s2.userGet({ name: 'a' }).roles, ['r']);
    assert.equal(s2.roleGet({ role: 'r' }).perm!.length, 1);
    await b2.close();
    await cleanup().catch(() => undefined);
  });
});

describe('authenticate, tokens and passwords', () => {
  const tb = tempBackend();
  let now = 1_000_000;
  const tp = new SimpleTokenProvider({ now: () => now, sweep: false });
  const hasher = new BcryptHasher({ cost: 4 });
  let s: AuthStore;
  before(async () => {
    s = new AuthStore(tb.backend, { tokenProvider: tp, hasher, bcryptCost: 4 });
    s.userAdd(req({ auth_user_add: { name: 'root', hashed_password: await hasher.hash('rootpw') } }).auth_user_add!);
    s.userGrantRole(grant('root', 'root'));
    s.userAdd(req({ auth_user_add: { name: 'alice', hashed_password: await hasher.hash('alicepw') } }).auth_user_add!);
    s.userAdd(req({ auth_user_add: { name: 'svc', options: { no_password: true } } }).auth_user_add!);
  });
  after(async () => {
    await s.close();
    await tb.cleanup();
  });

  test('password checks: disabled, unknown, wrong, no-password user, right', async () => {
    await assert.rejects(s.checkPassword('alice', 'alicepw'), Errors.AuthNotEnabled);
    assert.throws(() => s.authenticate('alice', { index: 5, simpleTokenPrefix: 'p' }), Errors.AuthNotEnabled);
    s.authEnable();
    await assert.rejects(s.checkPassword('nobody', 'x'), Errors.AuthFailed);
    await assert.rejects(s.checkPassword('alice', 'wrong'), Errors.AuthFailed);
    await assert.rejects(s.checkPassword('svc', ''), AuthErrors.NoPasswordUser);
    assert.equal(await s.checkPassword('alice', 'alicepw'), s.revision);
    const stored = decodeUser(tb.backend.get('authUsers', Buffer.from('alice'))!).password.toString();
    assert.match(stored, /^\$2a\$04\$/, 'bcrypt hash with the Go prefix');
    assert.ok(!stored.includes('alicepw'));
  });

  test('authenticate (apply) issues "<prefix>.<index>"; no-password and unknown users fail', async () => {
    const prefix = s.genTokenPrefix();
    assert.match(prefix, /^[a-zA-Z]{16}$/);
    const { token } = s.authenticate('alice', { index: 42, simpleTokenPrefix: prefix });
    assert.equal(token, `${prefix}.42`);
    assert.deepEqual(await s.authInfoFromToken(token!), { username: 'alice', revision: s.revision });
    assert.throws(() => s.authenticate('svc', { index: 43, simpleTokenPrefix: prefix }), Errors.AuthFailed);
    assert.throws(() => s.authenticate('bob', { index: 44, simpleTokenPrefix: prefix }), Errors.AuthFailed);
  });

  test('tokens die with a password change, a user delete, and auth disable', async () => {
    const t1 = s.authenticate('alice', { index: 50, simpleTokenPrefix: 'aaaaaaaaaaaaaaaa' }).token!;
    const t2 = s.authenticate('root', { index: 51, simpleTokenPrefix: 'bbbbbbbbbbbbbbbb' }).token!;
    s.userChangePassword(req({ auth_user_change_password: { name: 'alice', hashed_password: await hasher.hash('new') } }).auth_user_change_password!);
    assert.equal(await s.authInfoFromToken(t1), undefined);
    assert.ok(await s.authInfoFromToken(t2));
    assert.equal(await s.checkPassword('alice', 'new'), s.revision);
    const t3 = s.authenticate('alice', { index: 52, simpleTokenPrefix: 'cccccccccccccccc' }).token!;
    s.userDelete({ name: 'alice' });
    assert.equal(await s.authInfoFromToken(t3), undefined);
    s.authDisable();
    assert.equal(await s.authInfoFromToken(t2), undefined);
    now += 1;
  });
});

describe('authorize (the applier guard)', () => {
  const tb = tempBackend();
  after(() => tb.cleanup());
  const leases = new Map<bigint, string[]>([[7n, ['a/1', 'b/1']], [8n, ['a/2']]]);
  const s = newStore(tb.backend, { leaseKeys: (id) => leases.get(id) });
  withRoot(s);
  s.userAdd(u('alice'));
  s.roleAdd({ name: 'ra' });
  s.roleGrantPermission(perm('ra', 'a/', 'a0', READWRITE));
  s.userGrantRole(grant('alice', 'ra'));
  const hdr = (username: string, rev = s.revision) => ({ username, auth_revision: rev });

  test('everything passes while auth is disabled', () => {
    s.authorize(req({ put: { key: Buffer.from('zzz') } }));
    s.authorize(req({ auth_user_add: { name: 'x' } }));
  });

  test('admin-only requests need the root role', () => {
    s.authEnable();
    s.authorize(req({ header: hdr('root'), auth_role_add: { name: 'x' } }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), auth_role_add: { name: 'x' } })), Errors.PermissionDenied);
    assert.throws(() => s.authorize(req({ auth_user_list: {} })), Errors.UserEmpty);
    assert.throws(() => s.authorize(req({ header: hdr('ghost'), auth_enable: {} })), Errors.UserNotFound);
    // a user may read itself and the roles it holds
    s.authorize(req({ header: hdr('alice'), auth_user_get: { name: 'alice' } }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), auth_user_get: { name: 'root' } })), Errors.PermissionDenied);
    s.authorize(req({ header: hdr('alice'), auth_role_get: { role: 'ra' } }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), auth_role_get: { role: 'root' } })), Errors.PermissionDenied);
  });

  test('stale revision, no user, unknown user', () => {
    assert.throws(() => s.authorize(req({ header: hdr('alice', s.revision - 1), put: { key: Buffer.from('a/x') } })), Errors.AuthOldRevision);
    assert.throws(() => s.authorize(req({ put: { key: Buffer.from('a/x') } })), Errors.UserEmpty);
    assert.throws(() => s.authorize(req({ header: hdr('ghost'), put: { key: Buffer.from('a/x') } })), Errors.PermissionDenied);
    // a newer revision than the store's is accepted (etcd only refuses older ones)
    s.authorize(req({ header: hdr('alice', s.revision + 5), put: { key: Buffer.from('a/x') } }));
  });

  test('put with a lease and lease revoke need write on every attached key', () => {
    s.authorize(req({ header: hdr('alice'), put: { key: Buffer.from('a/x'), lease: 8n } }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), put: { key: Buffer.from('a/x'), lease: 7n } })), Errors.PermissionDenied);
    s.authorize(req({ header: hdr('alice'), lease_revoke: { ID: 8n } }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), lease_revoke: { ID: 7n } })), Errors.PermissionDenied);
    s.authorize(req({ header: hdr('root'), lease_revoke: { ID: 7n } }));
    s.authorize(req({ header: hdr('alice'), lease_revoke: { ID: 99n } }));
  });

  test('txn: compares and both branches, nested txns included', () => {
    const ok = { compare: [{ key: Buffer.from('a/c') }], success: [{ request_put: { key: Buffer.from('a/1') } }], failure: [{ request_range: { key: Buffer.from('a/2') } }] };
    s.authorize(req({ header: hdr('alice'), txn: ok }));
    assert.throws(() => s.authorize(req({ header: hdr('alice'), txn: { ...ok, compare: [{ key: Buffer.from('b') }] } })), Errors.PermissionDenied);
    assert.throws(() => s.authorize(req({ header: hdr('alice'), txn: { ...ok, failure: [{ request_delete_range: { key: Buffer.from('b') } }] } })), Errors.PermissionDenied);
    assert.throws(
      () => s.authorize(req({ header: hdr('alice'), txn: { ...ok, success: [{ request_txn: { success: [{ request_put: { key: Buffer.from('b') } }] } }] } })),
      Errors.PermissionDenied,
    );
  });
});

describe('bcrypt runner', () => {
  test('hashes as Go does ($2a$, the given cost) and compares off the main thread', async () => {
    const h = new BcryptHasher({ cost: 4 });
    const hash = await h.hash('pw');
    assert.match(hash.toString(), /^\$2a\$04\$.{53}$/);
    assert.equal(await h.compare('pw', hash), true);
    assert.equal(await h.compare('px', hash), false);
    assert.equal(await h.compare('pw', Buffer.from('not a hash')), false);
    assert.equal(await h.compare('pw', Buffer.alloc(0)), false);
    // a hash made by Go's x/crypto/bcrypt (as etcd 3.4 stores) for "rootpw" at cost 4
    const goHash = Buffer.from('$2a$04$I9XrQeoDTZxvidtzQ.qn5OAtQdTO3uB9BGLls/MLToBuXPDfZ2O0G');
    assert.equal(await h.compare('rootpw', goHash), true);
    assert.equal(await h.compare('rootpx', goHash), false);
    await h.close();
  });

  test('a flood beyond the queue bound fails fast with "too many requests"', async () => {
    const h = new BcryptHasher({ cost: 4, maxPending: 2 });
    const hash = await h.hash('pw');
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => h.compare('x', hash)));
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'rejected'],
    );
    assert.equal((results[3] as PromiseRejectedResult).reason, Errors.RequestTooManyRequests);
    await h.close();
  });

  test('out-of-range costs fall back to etcd\'s default 10', () => {
    assert.equal(new BcryptHasher({ cost: 3 }).cost, 10);
    assert.equal(new BcryptHasher({ cost: 32 }).cost, 10);
    assert.equal(new BcryptHasher({ cost: 12 }).cost, 12);
  });
});
