// Credentials for the app's own node: enabling auth remembers root's password
// (a 0600 file here, as in the shell), so a restart signs in again; without
// saved credentials the connection asks to sign in instead of showing an empty
// key list; a user without read permission gets etcd's PermissionDenied by name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { utf8ToB64, type Channel, type Req, type Res } from '../contract/index';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { etcdBinaryEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';

const ctx: HandlerContext = { clientId: 'c', emit: () => undefined };

describe('signing in to the embedded node once auth is on', { timeout: 90_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-signin-'));
  let manager: ConnectionManager;
  let h: Handlers;

  const start = (): void => {
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'credentials.json')), false);
    manager = new ConnectionManager({ dataDir: dir, engine: etcdBinaryEngine('etcd'), profiles, onStatus: () => undefined });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'etcd' } },
      broadcast: () => undefined,
      chooseSnapshotPath: async () => null,
    });
  };
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw Object.assign(new Error(env.error.message), env.error);
    return env.value as Res<C>;
  };

  before(start);
  after(async () => {
    // Leave the data dir as found: auth off (root's saved password still works here).
    await manager.shutdown().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('auth:enable keeps root\'s credentials; after a restart the app signs in by itself', async () => {
    assert.equal((await call('conn:connect', { id: 'embedded' })).state, 'connected');
    await call('kv:put', { key: utf8ToB64('/secret/a'), value: utf8ToB64('1') });
    await call('auth:enable', { rootPassword: 'root-pw' });
    assert.equal(manager.status().user, 'root');
    const creds = path.join(dir, 'credentials.json');
    assert.equal(fs.statSync(creds).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(path.join(dir, 'connections.json'), 'utf8').includes('root-pw'));

    await manager.shutdown();
    start(); // the app restarts on the same data folder
    const s = await call('conn:connect', { id: 'embedded' });
    assert.equal(s.state, 'connected', s.error?.message);
    assert.equal(s.user, 'root');
    const w = await call('kv:window', { prefix: '/secret/', offset: 0, limit: 10 });
    assert.deepEqual(w.rows.map((r) => r.keyText), ['/secret/a']);
  });

  it('without saved credentials the connection asks to sign in; a wrong password asks again; the right one connects', async () => {
    await call('conn:delete', { id: 'embedded' }); // a built-in profile: its name and credentials reset
    let s = await call('conn:connect', { id: 'embedded' });
    assert.equal(s.state, 'error');
    assert.equal(s.signInRequired, true);
    assert.equal(s.error?.etcdError, 'UserEmpty');
    s = await call('conn:sign-in', { id: 'embedded', username: 'root', password: 'nope', remember: false });
    assert.equal(s.signInRequired, true);
    assert.equal(s.error?.etcdError, 'AuthFailed');
    s = await call('conn:sign-in', { id: 'embedded', username: 'root', password: 'root-pw', remember: false });
    assert.equal(s.state, 'connected');
    assert.equal(s.user, 'root');
    assert.equal(fs.readFileSync(path.join(dir, 'credentials.json'), 'utf8').includes('root-pw'), false, 'remember off: not written');
  });

  it('a user without read permission connects, and the list is refused as PermissionDenied', async () => {
    await call('auth:user-add', { name: 'bob', password: 'bob-pw' });
    const s = await call('conn:sign-in', { id: 'embedded', username: 'bob', password: 'bob-pw', remember: false });
    assert.equal(s.state, 'connected', s.error?.message);
    await assert.rejects(call('kv:window', { prefix: '/secret/', offset: 0, limit: 10, refresh: true }), (e: Error & { etcdError?: string }) => e.etcdError === 'PermissionDenied');
    await call('conn:sign-in', { id: 'embedded', username: 'root', password: 'root-pw', remember: false });
    await call('auth:disable', {});
  });
});
