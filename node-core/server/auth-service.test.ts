import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { BcryptHasher } from '../auth/password';
import { AuthStore } from '../auth/store';
import { tempBackend } from '../auth/test-helpers';
import { Metadata } from '@grpc/grpc-js';
import { authClient, call, serveAuth, TestAuthNode, type AuthClient } from './auth-harness.test';
import { resolveAuthInfo } from './auth-context';
import { Errors } from '../errors/index';

const rejectsWith = (p: Promise<unknown>, code: number, details: string) =>
  assert.rejects(p, (e: { code: number; details: string }) => {
    assert.equal(e.details, details);
    assert.equal(e.code, code);
    return true;
  });

describe('Auth gRPC service', () => {
  const tb = tempBackend('auth-svc');
  // etcd's default cost: the password checks below must not stall the event loop
  const hasher = new BcryptHasher({ cost: 10 });
  const store = new AuthStore(tb.backend, { hasher, bcryptCost: 10 });
  const node = new TestAuthNode(tb.backend, store);
  let server: { forceShutdown(): void };
  let c: AuthClient;
  let rootToken = '';

  before(async () => {
    const s = await serveAuth(node);
    server = s.server;
    c = authClient(s.port);
  });
  after(async () => {
    c.close();
    server.forceShutdown();
    await store.close();
    await tb.cleanup();
  });

  test('enable is refused until root exists with the root role', async () => {
    await rejectsWith(call(c, 'AuthEnable', {}), 9, 'etcdserver: root user does not exist');
    await call(c, 'UserAdd', { name: 'root', password: 'rootpw' });
    await rejectsWith(call(c, 'AuthEnable', {}), 9, 'etcdserver: root user does not have root role');
    await call(c, 'UserGrantRole', { user: 'root', role: 'root' });
    const res = await call(c, 'AuthEnable', {});
    assert.equal((res.header as { member_id: bigint }).member_id, 2n);
  });

  test('the log never carries a password: only bcrypt hashes', () => {
    for (const e of node.log) assert.ok(!e.includes(Buffer.from('rootpw')), 'plain password in a log entry');
    assert.ok(node.log.some((e) => e.includes(Buffer.from('$2a$10$'))), 'hash proposed at cost 10');
  });

  test('authenticate: wrong password, unknown user, then a token', async () => {
    await rejectsWith(call(c, 'Authenticate', { name: 'root', password: 'nope' }), 3, 'etcdserver: authentication failed, invalid user ID or password');
    await rejectsWith(call(c, 'Authenticate', { name: 'ghost', password: 'x' }), 3, 'etcdserver: authentication failed, invalid user ID or password');
    const res = await call(c, 'Authenticate', { name: 'root', password: 'rootpw' });
    rootToken = res.token as string;
    assert.match(rootToken, /^[a-zA-Z]{16}\.\d+$/);
    // the Authenticate entry carries the name and token prefix, not the password
    const last = node.log[node.log.length - 1];
    assert.ok(last.includes(Buffer.from(rootToken.split('.')[0])));
    assert.ok(!last.includes(Buffer.from('rootpw')));
  });

  test('management needs the root role; anonymous callers are refused', async () => {
    await rejectsWith(call(c, 'UserList', {}), 3, 'etcdserver: user name is empty');
    await rejectsWith(call(c, 'UserList', {}, 'bogus.1'), 16, 'etcdserver: invalid auth token');
    await call(c, 'UserAdd', { name: 'alice', password: 'alicepw' }, rootToken);
    await call(c, 'RoleAdd', { name: 'reader' }, rootToken);
    await call(c, 'RoleGrantPermission', { name: 'reader', perm: { permType: 0, key: Buffer.from('k'), range_end: Buffer.from('l') } }, rootToken);
    await call(c, 'UserGrantRole', { user: 'alice', role: 'reader' }, rootToken);
    assert.deepEqual((await call(c, 'UserList', {}, rootToken)).users, ['alice', 'root']);
    const alice = (await call(c, 'Authenticate', { name: 'alice', password: 'alicepw' })).token as string;
    await rejectsWith(call(c, 'UserList', {}, alice), 7, 'etcdserver: permission denied');
    await rejectsWith(call(c, 'RoleAdd', { name: 'x' }, alice), 7, 'etcdserver: permission denied');
    assert.deepEqual((await call(c, 'UserGet', { name: 'alice' }, alice)).roles, ['reader']);
    const perms = (await call(c, 'RoleGet', { role: 'reader' }, alice)).perm as Array<{ key: Buffer }>;
    assert.equal(Buffer.from(perms[0].key).toString(), 'k');
    await rejectsWith(call(c, 'UserGet', { name: 'root' }, alice), 7, 'etcdserver: permission denied');
    // the `authorization` metadata key is accepted too
    const md = new Metadata();
    md.set('authorization', alice);
    assert.equal((await resolveAuthInfo({ metadata: md }, { auth: store, clientCertAuth: false }))?.username, 'alice');
    // a password change kills the user's tokens
    await call(c, 'UserChangePassword', { name: 'alice', password: 'new' }, rootToken);
    await rejectsWith(call(c, 'UserGet', { name: 'alice' }, alice), 16, 'etcdserver: invalid auth token');
    await call(c, 'Authenticate', { name: 'alice', password: 'new' });
  });

  test('a no-password user cannot authenticate (etcd: Unknown with the auth package text)', async () => {
    await call(c, 'UserAdd', { name: 'svc', options: { no_password: true } }, rootToken);
    await rejectsWith(call(c, 'Authenticate', { name: 'svc', password: '' }), 2, 'auth: authentication failed, password was given for no password user');
  });

  test('root cannot be deleted nor lose the root role while auth is on', async () => {
    await rejectsWith(call(c, 'UserDelete', { name: 'root' }, rootToken), 3, 'etcdserver: invalid auth management');
    await rejectsWith(call(c, 'UserRevokeRole', { name: 'root', role: 'root' }, rootToken), 3, 'etcdserver: invalid auth management');
  });

  test('a burst of wrong passwords does not hold up other clients', async () => {
    // an ordering property, not a timing one (the machine may be loaded): a request sent after the
    // burst is answered while the password checks are still running off the event loop
    let burstDone = 0;
    const attempts = Promise.all(
      Array.from({ length: 6 }, () => call(c, 'Authenticate', { name: 'root', password: 'wrong' }).then(() => 'ok', (e: { code: number }) => e.code)),
    ).then((codes) => {
      burstDone = performance.now();
      return codes;
    });
    await call(c, 'UserGet', { name: 'root' }, rootToken);
    const otherDone = performance.now();
    const codes = await attempts;
    assert.deepEqual(codes, Array(6).fill(3));
    assert.ok(otherDone < burstDone, 'the other client was answered before the burst of bcrypt checks finished');
  });

  test('disable: tokens are dropped and a token is then refused as invalid (as etcd)', async () => {
    await call(c, 'AuthDisable', {}, rootToken);
    assert.equal(store.enabled, false);
    await rejectsWith(call(c, 'UserList', {}, rootToken), 16, 'etcdserver: invalid auth token');
    await rejectsWith(call(c, 'Authenticate', { name: 'root', password: 'rootpw' }), 9, 'etcdserver: authentication is not enabled');
    assert.ok((await call(c, 'UserList', {})).users);
    await assert.rejects(resolveAuthInfo({ metadata: (() => { const m = new Metadata(); m.set('token', rootToken); return m; })() }, { auth: store, clientCertAuth: false }), Errors.InvalidAuthToken);
  });
});

describe('resolveAuthInfo (token, then certificate CN)', () => {
  const tb = tempBackend('auth-ctx');
  const store = new AuthStore(tb.backend, { hasher: new BcryptHasher({ cost: 4 }) });
  after(async () => {
    await store.close();
    await tb.cleanup();
  });
  const certCall = (cn: unknown, md = new Metadata()) => ({
    metadata: md,
    getAuthContext: () => ({ transportSecurityType: 'ssl', sslPeerCertificate: { subject: { CN: cn } } as never }),
  });

  test('the CN counts only with --client-cert-auth, and never through a gateway', async () => {
    assert.equal(await resolveAuthInfo(certCall('alice'), { auth: store, clientCertAuth: false }), undefined);
    assert.deepEqual(await resolveAuthInfo(certCall('alice'), { auth: store, clientCertAuth: true }), { username: 'alice', revision: store.revision });
    // Go keeps the last CN attribute
    assert.equal((await resolveAuthInfo(certCall(['a', 'b']), { auth: store, clientCertAuth: true }))?.username, 'b');
    const gw = new Metadata();
    gw.set('grpcgateway-accept', 'application/json');
    assert.equal(await resolveAuthInfo(certCall('alice', gw), { auth: store, clientCertAuth: true }), undefined);
    // no certificate (plain text or not verified): anonymous
    assert.equal(await resolveAuthInfo({ metadata: new Metadata(), getAuthContext: () => ({}) }, { auth: store, clientCertAuth: true }), undefined);
  });

  test('a token wins over the certificate; a simple token waits for its index to be applied', async () => {
    store.userAdd({ name: 'root', password: '', hashed_password: Buffer.from('x') });
    store.userGrantRole({ user: 'root', role: 'root' });
    store.authEnable();
    const token = store.authenticate('root', { index: 77, simpleTokenPrefix: store.genTokenPrefix() }).token!;
    const md = new Metadata();
    md.set('token', token);
    const waited: number[] = [];
    const ai = await resolveAuthInfo(certCall('alice', md), {
      auth: store,
      clientCertAuth: true,
      waitApplied: async (i) => {
        waited.push(i);
      },
    });
    assert.equal(ai?.username, 'root');
    assert.deepEqual(waited, [77]);
  });
});
