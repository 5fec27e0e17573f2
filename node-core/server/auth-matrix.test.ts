// The permission matrix: users × roles × key ranges × {range, put, delete,
// txn, read-only txn, watch}, every cell checked through the path a real
// request takes: reads and watches through the API-layer guard with a token,
// writes and txns through the applier's authorize() with the user header.
import { Metadata } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SimpleTokenProvider } from '../auth/simple-token';
import { newStore, READ, READWRITE, req, tempBackend, withRoot, WRITE } from '../auth/test-helpers';
import { Errors } from '../errors/index';
import { createAuthGuard } from './auth-context';

const b = (s: string) => Buffer.from(s);

// role → permissions [key, range_end, type]
const ROLES: Record<string, Array<[string, string, number]>> = {
  rk: [['foo', '', READWRITE]], // one key
  rp: [['app/', 'app0', READ]], // a prefix
  rw: [['b', 'd', WRITE]], // a range
  rf: [['x', '\0', READWRITE]], // from a key on
  rr: [['m', 'o', READ], ['o', 'q', READ]], // two adjacent ranges: contiguous union
};
const USERS: Record<string, string[]> = {
  alice: ['rk'],
  bob: ['rp', 'rw'],
  carol: ['rf'],
  dan: ['rr'],
  eve: [],
  root: ['root'],
};
// target → [key, range_end]
const TARGETS: Record<string, [string, string]> = {
  T1: ['foo', ''],
  T2: ['foo', 'fop'],
  T3: ['app/x', ''],
  T4: ['app/', 'app0'],
  T5: ['a', 'z'],
  T6: ['c', ''],
  T7: ['b', 'd'],
  T8: ['x', '\0'],
  T9: ['y', ''],
  T10: ['m', 'q'],
  T11: ['m', 'r'],
};
// r: read the target range; w: write (delete) the target range; p: write the target's first key
const ALLOWED: Record<string, Record<string, string>> = {
  alice: { T1: 'rwp', T2: 'p' },
  bob: { T3: 'r', T4: 'r', T6: 'wp', T7: 'wp' },
  carol: { T8: 'rwp', T9: 'rwp' },
  dan: { T10: 'r' },
  eve: {},
  root: Object.fromEntries(Object.keys(TARGETS).map((t) => [t, 'rwp'])),
};

describe('permission matrix', () => {
  const tb = tempBackend();
  after(() => tb.cleanup());
  const s = newStore(tb.backend, { tokenProvider: new SimpleTokenProvider({ sweep: false }) });
  withRoot(s);
  for (const [role, perms] of Object.entries(ROLES)) {
    s.roleAdd({ name: role });
    for (const [key, re, permType] of perms)
      s.roleGrantPermission(req({ auth_role_grant_permission: { name: role, perm: { key: b(key), range_end: b(re), permType } } }).auth_role_grant_permission!);
  }
  for (const [user, roles] of Object.entries(USERS)) {
    if (user !== 'root') s.userAdd(req({ auth_user_add: { name: user, hashed_password: b('plain:pw') } }).auth_user_add!);
    for (const r of roles) s.userGrantRole({ user, role: r });
  }
  s.authEnable();
  const guard = createAuthGuard({ auth: s, clientCertAuth: false });
  let index = 100;
  const tokens = new Map(Object.keys(USERS).map((u) => [u, s.authenticate(u, { index: index++, simpleTokenPrefix: s.genTokenPrefix() }).token!]));
  const call = (user: string) => {
    const metadata = new Metadata();
    metadata.set('token', tokens.get(user)!);
    return { metadata };
  };
  const header = (user: string) => ({ username: user, auth_revision: s.revision });

  const outcome = async (fn: () => unknown): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (e) {
      assert.equal(e, Errors.PermissionDenied);
      return false;
    }
  };

  for (const user of Object.keys(USERS)) {
    test(`${user}: every target × every operation`, async () => {
      for (const [t, [k, re]] of Object.entries(TARGETS)) {
        const want = ALLOWED[user][t] ?? '';
        const r = want.includes('r');
        const w = want.includes('w');
        const p = want.includes('p');
        const key = b(k);
        const rangeEnd = b(re);
        const cell = `${user} ${t} [${k}, ${JSON.stringify(re)})`;
        assert.equal(await outcome(() => guard.forRead(call(user), key, rangeEnd)), r, `${cell} range`);
        assert.equal(await outcome(() => s.authorize(req({ header: header(user), put: { key } }))), p, `${cell} put`);
        assert.equal(await outcome(() => s.authorize(req({ header: header(user), delete_range: { key, range_end: rangeEnd } }))), w, `${cell} delete`);
        assert.equal(
          await outcome(() => s.authorize(req({ header: header(user), delete_range: { key, range_end: rangeEnd, prev_kv: true } }))),
          w && r,
          `${cell} delete prev_kv`,
        );
        assert.equal(
          await outcome(() => s.authorize(req({ header: header(user), txn: { compare: [{ key, range_end: rangeEnd }], success: [{ request_put: { key } }] } }))),
          r && p,
          `${cell} txn compare+put`,
        );
        assert.equal(
          await outcome(() => guard.forTxnRead(call(user), req({ txn: { success: [{ request_range: { key, range_end: rangeEnd } }] } }).txn!)),
          r,
          `${cell} read-only txn`,
        );
        const reason = await guard.forWatch(call(user), { key, range_end: rangeEnd });
        assert.equal(reason === undefined, r, `${cell} watch`);
        if (!r) assert.equal(reason, 'rpc error: code = PermissionDenied desc = etcdserver: permission denied');
      }
    });
  }

  test('watch from-key checks only the start key (etcd 3.4 normalization)', async () => {
    // carol may read [x, ∞); bob may not read x: the from-key watch on x follows the point check
    assert.equal(await guard.forWatch(call('carol'), { key: b('x'), range_end: b('\0') }), undefined);
    // dan reads [m, q): a from-key watch at "m" is allowed although [m, ∞) is not readable
    assert.equal(await guard.forWatch(call('dan'), { key: b('m'), range_end: b('\0') }), undefined);
    await assert.rejects(guard.forRead(call('dan'), b('m'), b('\0')), Errors.PermissionDenied);
  });

  test('anonymous and stale callers', async () => {
    await assert.rejects(guard.forRead({ metadata: new Metadata() }, b('foo'), b('')), Errors.UserEmpty);
    assert.equal(await guard.forWatch({ metadata: new Metadata() }, { key: b('foo'), range_end: b('') }), 'rpc error: code = InvalidArgument desc = etcdserver: user name is empty');
    const md = new Metadata();
    md.set('token', 'nosuch.1');
    await assert.rejects(guard.forRead({ metadata: md }, b('foo'), b('')), Errors.InvalidAuthToken);
    assert.equal(await guard.forWatch({ metadata: md }, { key: b('foo'), range_end: b('') }), 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token');
    await assert.rejects(guard.forAdmin(call('alice')), Errors.PermissionDenied);
    await guard.forAdmin(call('root'));
    await assert.rejects(guard.forAdmin({ metadata: new Metadata() }), Errors.UserEmpty);
  });
});
