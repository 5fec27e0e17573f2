// IPC handlers against a real etcd hosted by the etcd-binary engine, plus the
// browser shell's transport and guards, and the saved-connection store.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { utf8ToB64, type AuthOverview, type Channel, type EventMap, type EventChannel, type Req, type Res } from '../contract/index';
import { ConnectionManager } from './connection-manager';
import { checkPermission, createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { etcdBinaryEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { FileSecrets, KeychainSecrets, SessionSecrets, type SafeStorageLike } from './secrets';
import { startShellServer, type ShellServer } from '../shell/server';

const events: { event: string; payload: unknown }[] = [];
const ctx: HandlerContext = { clientId: 'test', emit: (event, payload) => events.push({ event, payload }) };

describe('IPC handlers on a hosted etcd', { timeout: 60_000 }, () => {
  let dir: string;
  let manager: ConnectionManager;
  let h: Handlers;
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw new Error(env.error.message);
    return env.value as Res<C>;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-handlers-'));
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), false);
    manager = new ConnectionManager({ dataDir: dir, engine: etcdBinaryEngine('etcd'), profiles, onStatus: () => undefined });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'etcd' } },
      broadcast: <E extends EventChannel>(event: E, payload: EventMap[E]) => events.push({ event, payload }),
      chooseSnapshotPath: async () => path.join(dir, 'snap.db'),
    });
    const s = await call('conn:connect', { id: 'embedded' });
    assert.equal(s.state, 'connected', s.error?.message);
  });
  after(async () => {
    await manager?.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('errors travel as {code, message} with etcd\'s message', async () => {
    const env = await dispatch(h, 'lease:revoke', { id: '99' }, ctx);
    assert.deepEqual(env, { ok: false, error: { code: 5, message: 'etcdserver: requested lease not found', etcdError: 'LeaseNotFound' } });
  });

  it('put with expectModRevision: success, then a conflict that leaves the value alone', async () => {
    const created = await call('kv:put', { key: utf8ToB64('/c'), value: utf8ToB64('1'), expectModRevision: 0 });
    assert.equal(created.ok, true);
    const mod = created.ok ? created.kv!.modRevision : 0;
    const again = await call('kv:put', { key: utf8ToB64('/c'), value: utf8ToB64('x'), expectModRevision: 0 });
    assert.equal(again.ok, false);
    await call('kv:put', { key: utf8ToB64('/c'), value: utf8ToB64('2') }); // someone else
    const stale = await call('kv:put', { key: utf8ToB64('/c'), value: utf8ToB64('mine'), expectModRevision: mod });
    assert.equal(stale.ok, false);
    assert.equal(!stale.ok && stale.current ? Buffer.from(stale.current.value, 'base64').toString() : '', '2');
    const hist = await call('kv:history', { key: utf8ToB64('/c') });
    assert.deepEqual(hist.entries.map((e) => Buffer.from(e.kv!.value, 'base64').toString()), ['2', '1']);
  });

  it('windows over a prefix, a tree by delimiter, and counts', async () => {
    for (let i = 0; i < 700; i++) await call('kv:put', { key: utf8ToB64(`/w/${i % 3}/k${String(i).padStart(4, '0')}`), value: utf8ToB64('v') });
    const first = await call('kv:window', { prefix: '/w/', offset: 0, limit: 50, refresh: true });
    assert.equal(first.total, 700);
    assert.equal(first.rows[0].keyText, '/w/0/k0000');
    const last = await call('kv:window', { prefix: '/w/', offset: 690, limit: 50 });
    assert.equal(last.rows.length, 10);
    assert.equal(last.rows.at(-1)?.keyText, '/w/2/k0698');
    const tree = await call('kv:tree', { prefix: '/w/', delimiter: '/' });
    assert.deepEqual(tree.nodes.map((n) => [n.name, n.count]), [['0/', 234], ['1/', 233], ['2/', 233]]);
    assert.equal((await call('kv:count', { prefix: '/w/1/' })).count, 233);
    const del = await call('kv:delete', { key: utf8ToB64('/w/'), prefix: true });
    assert.equal(del.ok && del.deleted, 700);
  });

  it('txn takes the else branch and reports each op', async () => {
    await call('kv:put', { key: utf8ToB64('/t'), value: utf8ToB64('blue') });
    const r = await call('kv:txn', {
      compares: [{ key: '/t', target: 'value', op: '=', operand: 'green' }],
      success: [{ type: 'put', key: '/t', value: 'then' }],
      failure: [{ type: 'get', key: '/t' }, { type: 'put', key: '/t2', value: 'else' }],
    });
    assert.equal(r.succeeded, false);
    assert.equal(r.results[0].kvs?.[0].keyText, '/t');
    assert.equal(r.results[1].type, 'put');
  });

  it('leases: grant, attach keeps the value, keep-alive ticks, revoke deletes the key', async () => {
    await call('kv:put', { key: utf8ToB64('/l'), value: utf8ToB64('keep') });
    const l = await call('lease:grant', { ttl: 30 });
    const attached = await call('lease:attach', { id: l.id, key: '/l' });
    assert.deepEqual(attached.keys, ['/l']);
    assert.equal((await call('kv:get', { key: utf8ToB64('/l') })).kv?.value, utf8ToB64('keep'));
    await call('lease:keepalive', { id: l.id, on: true });
    for (let i = 0; i < 40 && !events.some((e) => e.event === 'lease:tick'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(events.some((e) => e.event === 'lease:tick'));
    assert.ok((await call('lease:list', {})).some((x) => x.id === l.id && x.keepingAlive));
    await call('lease:revoke', { id: l.id });
    assert.equal((await call('kv:get', { key: utf8ToB64('/l') })).kv, null);
  });

  it('watch:start emits batched updates to the caller', async () => {
    events.length = 0;
    const w = await call('watch:start', { prefix: '/watched/' });
    await call('kv:put', { key: utf8ToB64('/watched/a'), value: utf8ToB64('1') });
    for (let i = 0; i < 40 && !events.some((e) => e.event === 'watch:update'); i++) await new Promise((r) => setTimeout(r, 50));
    const u = events.find((e) => e.event === 'watch:update')?.payload as EventMap['watch:update'];
    assert.equal(u.watchId, w.watchId);
    assert.equal(u.events[0].kv.keyText, '/watched/a');
    await call('watch:stop', { watchId: w.watchId });
  });

  it('RBAC round trip and auth enable as root, then disable', async () => {
    await call('auth:role-add', { name: 'reader' });
    const role = await call('auth:role-grant', { name: 'reader', perm: { type: 'read', scope: 'prefix', key: '/pub/' } });
    assert.deepEqual(role.perms, [{ type: 'read', key: '/pub/', rangeEnd: '/pub0', scope: 'prefix' }]);
    await call('auth:user-add', { name: 'bob', password: 'pw' });
    await call('auth:user-grant', { name: 'bob', role: 'reader' });
    let ov = await call('auth:overview', {});
    assert.equal(ov.enabled, false);
    ov = await call('auth:enable', { rootPassword: 'rootpw' });
    assert.equal(ov.enabled, true);
    assert.equal(manager.status().user, 'root');
    assert.equal((await call('auth:check', { user: 'bob', op: 'write', key: '/pub/x' })).allowed, false);
    assert.equal((await call('auth:check', { user: 'bob', op: 'read', key: '/pub/x' })).allowed, true);
    ov = await call('auth:disable', {});
    assert.equal(ov.enabled, false);
  });

  it('snapshot streams to the chosen file with progress events', async () => {
    events.length = 0;
    const r = await call('maint:snapshot', { opId: 's1' });
    assert.ok(r.bytes > 0 && r.path && fs.statSync(r.path).size === r.bytes);
    assert.ok(events.some((e) => e.event === 'progress' && (e.payload as EventMap['progress']).finished));
  });
});

describe('checkPermission', () => {
  const ov: AuthOverview = {
    enabled: true,
    restricted: false,
    users: [{ name: 'u', roles: ['r'] }, { name: 'admin', roles: ['root'] }],
    roles: [{ name: 'r', perms: [{ type: 'read', scope: 'range', key: 'a', rangeEnd: 'c' }, { type: 'write', scope: 'key', key: 'w', rangeEnd: '' }, { type: 'readwrite', scope: 'from-key', key: 'x', rangeEnd: '\\0' }] }],
  };
  it('follows etcd\'s range rules', () => {
    assert.equal(checkPermission(ov, 'u', 'read', 'b').allowed, true);
    assert.equal(checkPermission(ov, 'u', 'read', 'c').allowed, false);
    assert.equal(checkPermission(ov, 'u', 'write', 'b').allowed, false);
    assert.equal(checkPermission(ov, 'u', 'write', 'w').allowed, true);
    assert.equal(checkPermission(ov, 'u', 'write', 'zzz').allowed, true);
    assert.equal(checkPermission(ov, 'admin', 'write', 'anything').allowed, true);
    assert.equal(checkPermission(ov, 'nobody', 'read', 'b').allowed, false);
    assert.equal(checkPermission({ ...ov, enabled: false }, 'nobody', 'read', 'b').allowed, true);
  });
});

describe('ProfileStore and saved passwords', () => {
  /** A stand-in for Electron's safeStorage: reversible, and visibly not the plain text. */
  const fakeSafeStorage = (available = true): SafeStorageLike & { calls: number } => {
    const f = {
      calls: 0,
      isEncryptionAvailable: () => available,
      encryptString: (s: string) => {
        f.calls++;
        return Buffer.from(`enc:${Buffer.from(s).reverse().toString('hex')}`);
      },
      decryptString: (b: Buffer) => Buffer.from(b.toString().slice(4), 'hex').reverse().toString(),
    };
    return f;
  };

  it('keeps passwords out of connections.json: encrypted by safeStorage in a 0600 file, read back after a restart', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-profiles-'));
    const file = path.join(dir, 'c.json');
    const safe = fakeSafeStorage();
    const store = new ProfileStore(file, new KeychainSecrets(path.join(dir, 'secrets.json'), safe), true);
    const p = store.save({ id: '', name: 'prod', kind: 'remote', endpoints: ['https://etcd:2379'], username: 'admin', password: 'hunter2' });
    assert.ok(!fs.readFileSync(file, 'utf8').includes('hunter2'));
    assert.ok(!fs.readFileSync(path.join(dir, 'secrets.json'), 'utf8').includes('hunter2'));
    assert.equal(safe.calls, 1);
    assert.equal(fs.statSync(path.join(dir, 'secrets.json')).mode & 0o777, 0o600);
    const again = new ProfileStore(file, new KeychainSecrets(path.join(dir, 'secrets.json'), safe), true);
    assert.equal(again.password(p.id), 'hunter2');
    assert.equal(again.get(p.id)?.passwordStore, 'keychain');
    assert.equal(store.list().find((x) => x.id === p.id)?.hasPassword, true);
    assert.equal(store.list().find((x) => x.id === p.id)?.password, undefined);
    // The embedded node's root credentials, as auth:enable keeps them.
    store.setCredentials('embedded', 'root', 'root-pw', true);
    const third = new ProfileStore(file, new KeychainSecrets(path.join(dir, 'secrets.json'), safe), true);
    assert.equal(third.get('embedded')?.username, 'root');
    assert.equal(third.password('embedded'), 'root-pw');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('without a keychain safeStorage is never asked to encrypt and the password lives for the session only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-profiles-'));
    const safe = fakeSafeStorage(false);
    const plain = new ProfileStore(path.join(dir, 'd.json'), new KeychainSecrets(path.join(dir, 'secrets.json'), safe), false);
    const q = plain.save({ id: '', name: 'dev', kind: 'remote', endpoints: ['127.0.0.1:2379'], username: 'u', password: 'secret' });
    assert.equal(safe.calls, 0);
    assert.ok(!fs.readFileSync(path.join(dir, 'd.json'), 'utf8').includes('secret'));
    assert.ok(!fs.existsSync(path.join(dir, 'secrets.json')));
    assert.equal(plain.password(q.id), 'secret');
    assert.equal(new ProfileStore(path.join(dir, 'd.json'), new KeychainSecrets(path.join(dir, 'secrets.json'), safe), false).password(q.id), undefined);
    assert.deepEqual(plain.list().map((x) => x.kind), ['embedded', 'remote']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the shell keeps saved passwords in a 0600 file; remember off keeps them in memory only', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-profiles-'));
    const creds = path.join(dir, 'credentials.json');
    const store = new ProfileStore(path.join(dir, 'c.json'), new FileSecrets(creds), false);
    store.setCredentials('embedded', 'root', 'pw1', true);
    assert.equal(fs.statSync(creds).mode & 0o777, 0o600);
    assert.equal(new ProfileStore(path.join(dir, 'c.json'), new FileSecrets(creds), false).password('embedded'), 'pw1');
    assert.ok(!fs.readFileSync(path.join(dir, 'c.json'), 'utf8').includes('pw1'));
    store.setCredentials('embedded', 'root', 'pw2', false);
    assert.equal(store.password('embedded'), 'pw2');
    assert.equal(store.get('embedded')?.passwordStore, 'session');
    assert.ok(!fs.readFileSync(creds, 'utf8').includes('pw'));
    // Rename a built-in profile; removing it resets name and credentials.
    store.save({ ...store.get('embedded')!, name: 'My node' });
    assert.equal(new ProfileStore(path.join(dir, 'c.json'), new FileSecrets(creds), false).get('embedded')?.name, 'My node');
    store.delete('embedded');
    assert.equal(store.get('embedded')?.name, 'Embedded node');
    assert.equal(store.get('embedded')?.username, undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('browser shell transport', () => {
  let server: ShellServer;
  const rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-renderer-'));
  before(async () => {
    fs.writeFileSync(path.join(rendererDir, 'index.html'), '<!doctype html><title>t</title>');
    const handlers = { 'app:info': async () => ({ mode: 'shell', version: 't', platform: 'x', features: { localCluster: false, embeddedEngine: 'none' } }) } as unknown as Handlers;
    server = await startShellServer({ rendererDir, handlers: () => handlers, token: 'tok' });
  });
  after(async () => {
    await server.close();
    fs.rmSync(rendererDir, { recursive: true, force: true });
  });
  const post = (headers: Record<string, string>, channel = 'app:info'): Promise<Response> =>
    fetch(`http://127.0.0.1:${server.port}/api/invoke/${channel}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });

  it('serves invoke with the token, refuses without it, from other origins, hosts or channels', async () => {
    const ok = await post({ 'x-etcdesk-token': 'tok' });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { ok: boolean }).ok, true);
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ 'x-etcdesk-token': 'wrong' })).status, 401);
    assert.equal((await post({ 'x-etcdesk-token': 'tok', origin: 'https://evil.example' })).status, 403);
    assert.equal((await post({ 'x-etcdesk-token': 'tok' }, 'shell:exec')).status, 404);
    const page = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(server.url.startsWith('http://127.0.0.1:'), true);
  });

  it('pushes events over server-sent events to token holders', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/api/events?token=tok&session=s1`);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    server.broadcast('lease:tick', { id: '1', ttl: 5, at: 0 });
    let text = '';
    while (!text.includes('lease:tick')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /event: lease:tick\ndata: \{"id":"1","ttl":5,"at":0\}/);
    await reader.cancel();
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/api/events?token=no`)).status, 401);
  });
});

describe('local three-member cluster (etcd engine)', { timeout: 60_000 }, () => {
  it('starts three members with one leader and equal HashKV on every member', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-cluster-'));
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), true);
    const basePort = 30_000 + Math.floor(Math.random() * 5000) * 2;
    const manager = new ConnectionManager({ dataDir: dir, engine: etcdBinaryEngine('etcd'), profiles, onStatus: () => undefined, clusterBasePort: basePort });
    const h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: true, embeddedEngine: 'etcd' } },
      broadcast: () => undefined,
      chooseSnapshotPath: async () => null,
    });
    try {
      const s = await h['conn:connect']({ id: 'local-cluster' }, ctx);
      assert.equal(s.state, 'connected', s.error?.message);
      assert.equal(s.endpoints.length, 3);
      const info = await h['cluster:info']({}, ctx);
      assert.equal(info.members.length, 3);
      assert.equal(info.members.filter((m) => m.isLeader).length, 1);
      const hashes = await h['maint:hashkv']({}, ctx);
      assert.equal(new Set(hashes.hashes.map((x) => x.hash)).size, 1);
    } finally {
      await manager.shutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('browser shell static files', () => {
  it('never serves outside the renderer folder and survives malformed paths', async () => {
    const rendererDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-static-'));
    fs.writeFileSync(path.join(rendererDir, 'index.html'), 'INDEX');
    const server = await startShellServer({ rendererDir, handlers: () => ({}) as Handlers, token: 't' });
    try {
      const get = (p: string): Promise<Response> => fetch(`http://127.0.0.1:${server.port}${p}`);
      assert.equal(await (await get('/../../../etc/passwd')).text(), 'INDEX');
      assert.equal(await (await get('/%2e%2e/%2e%2e/etc/passwd')).text(), 'INDEX');
      assert.equal((await get('/%E0%A4%A')).status, 400);
      assert.equal((await get('/')).status, 200);
    } finally {
      await server.close();
      fs.rmSync(rendererDir, { recursive: true, force: true });
    }
  });
});
