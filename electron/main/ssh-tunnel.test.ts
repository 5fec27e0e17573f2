// Remote connections through an SSH tunnel, against Debian's openssh-server on
// loopback (its own sshd_config, host key and authorized_keys in a temp dir) and
// a real etcd 3.4 behind it: key and password authentication, the host key
// pinned on first use and a changed one refused, a wrong password named as
// such, and a dropped tunnel shown as an error instead of "connected".
// Password authentication needs a system user with a password: created here
// when running as root (CI), skipped loudly otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { b64ToUtf8, utf8ToB64, type Channel, type ConnectionProfile, type Req, type Res } from '../contract/index';
import { startEtcd, waitFor, type ServerProc } from '../../node-core/testing/processes';
import { hasSshd, SSHD_BIN, startSshd, type Sshd } from '../../node-core/testing/sshd';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';

const TEST_USER = 'etcdesk-tunnel';
const TEST_PASSWORD = 'tunnel-pw-7319';
const ctx: HandlerContext = { clientId: 'c', emit: () => undefined };
const isRoot = process.getuid?.() === 0;

/** Creates (once) a local user with a known password for sshd's password authentication. */
function ensurePasswordUser(): boolean {
  if (!isRoot) return false;
  try {
    execFileSync('id', [TEST_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-M', '-s', '/bin/sh', TEST_USER]);
  }
  execFileSync('chpasswd', { input: `${TEST_USER}:${TEST_PASSWORD}\n` });
  return true;
}

describe('remote connections through an SSH tunnel (Debian openssh-server, real etcd)', { timeout: 120_000, skip: !hasSshd() && `no ${SSHD_BIN}: apt-get install openssh-server` }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-ssh-'));
  let sshd: Sshd;
  let sshPort = 0;
  let etcd: ServerProc;
  let manager: ConnectionManager;
  let profiles: ProfileStore;
  let h: Handlers;
  let userKey = '';
  const user = os.userInfo().username;
  let passwordUser = false;

  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw Object.assign(new Error(env.error.message), env.error);
    return env.value as Res<C>;
  };

  const remote = (over: Partial<ConnectionProfile>): ConnectionProfile => ({
    id: '',
    name: 'behind bastion',
    kind: 'remote',
    // The endpoint as seen from the SSH server, not from here: the tunnel dials it there.
    endpoints: [etcd.clientUrl],
    ...over,
  });

  before(async () => {
    passwordUser = ensurePasswordUser();
    sshd = await startSshd();
    sshPort = sshd.port;
    userKey = sshd.userKey;
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'credentials.json')), false);
    manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'none' } },
      broadcast: () => undefined,
      chooseSnapshotPath: async () => null,
    });
  });

  after(async () => {
    await manager?.shutdown().catch(() => undefined);
    await etcd?.stop().catch(() => undefined);
    sshd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('key authentication: connects through the tunnel, reads and writes, and pins the host key', async () => {
    const saved = await call('conn:save', remote({ ssh: { host: '127.0.0.1', port: sshPort, username: user, keyFile: userKey } }));
    const s = await call('conn:connect', { id: saved.id });
    assert.equal(s.state, 'connected', s.error?.message);
    assert.equal(s.tunnel, `${user}@127.0.0.1:${sshPort}`);
    // The client dials a loopback listener of the tunnel, never etcd's own port.
    assert.ok(!s.endpoints.includes(etcd.clientUrl), `client dialled etcd directly: ${s.endpoints.join(',')}`);
    await call('kv:put', { key: utf8ToB64('/via/ssh'), value: utf8ToB64('tunnelled') });
    const got = await call('kv:get', { key: utf8ToB64('/via/ssh') });
    assert.equal(b64ToUtf8(got.kv!.value), 'tunnelled');
    assert.equal(profiles.get(saved.id)!.ssh!.hostKeySha256, sshd.hostKeySha256, 'the host key is pinned as OpenSSH prints it');
  });

  it('a changed host key is refused, naming both fingerprints', async () => {
    const p = profiles.list().find((x) => x.ssh)!;
    const pinned = p.ssh!.hostKeySha256!;
    await call('conn:save', { ...p, ssh: { ...p.ssh!, hostKeySha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    const s = await call('conn:connect', { id: p.id });
    assert.equal(s.state, 'error');
    assert.match(s.error!.message, /host key of 127\.0\.0\.1 changed/);
    assert.ok(s.error!.message.includes(pinned), 'the key actually seen is named');
    await call('conn:save', { ...p, ssh: { ...p.ssh!, hostKeySha256: pinned } });
  });

  it('password authentication, and a wrong password named as such', { skip: !isRoot && 'password authentication needs a local user with a password: run as root (CI does)' }, async () => {
    assert.ok(passwordUser);
    const bad = await call('conn:save', remote({ name: 'pw bad', ssh: { host: '127.0.0.1', port: sshPort, username: TEST_USER }, sshSecret: 'not-it' }));
    const sb = await call('conn:connect', { id: bad.id });
    assert.equal(sb.state, 'error');
    assert.match(sb.error!.message, /authentication failed \(wrong password\)/);

    const good = await call('conn:save', remote({ name: 'pw good', ssh: { host: '127.0.0.1', port: sshPort, username: TEST_USER }, sshSecret: TEST_PASSWORD }));
    assert.equal(profiles.get(good.id)!.hasSshSecret, true);
    assert.ok(!fs.readFileSync(path.join(dir, 'connections.json'), 'utf8').includes(TEST_PASSWORD), 'the SSH password never goes in the connections file');
    const s = await call('conn:connect', { id: good.id });
    assert.equal(s.state, 'connected', s.error?.message);
    assert.equal(b64ToUtf8((await call('kv:get', { key: utf8ToB64('/via/ssh') })).kv!.value), 'tunnelled');
  });

  it('the SSH server going away turns the connection into an error', async () => {
    const p = profiles.list().find((x) => x.ssh?.keyFile)!;
    assert.equal((await call('conn:connect', { id: p.id })).state, 'connected');
    sshd.crash();
    await waitFor('status error after the tunnel dropped', () => manager.status().state === 'error', 20_000);
    assert.match(manager.status().error!.message, /SSH tunnel through 127\.0\.0\.1 closed/);
  });
});

describe('profiles export and import', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-profiles-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('exports remote profiles without any secret or pinned key, and imports them once', () => {
    const a = new ProfileStore(path.join(dir, 'a.json'), new FileSecrets(path.join(dir, 'a-secrets.json')), false);
    a.save({ id: '', name: 'prod', kind: 'remote', endpoints: ['https://10.0.0.1:2379'], username: 'root', password: 'prod-pw', tls: { caFile: '/ca.pem' }, ssh: { host: 'bastion', username: 'ops', hostKeySha256: 'SHA256:x' }, sshSecret: 'ssh-pw' });
    const text = JSON.stringify(a.exportProfiles());
    assert.ok(!text.includes('prod-pw') && !text.includes('ssh-pw') && !text.includes('SHA256:x'), text);
    const doc = JSON.parse(text);
    assert.deepEqual(doc.profiles, [{ name: 'prod', endpoints: ['https://10.0.0.1:2379'], username: 'root', tls: { caFile: '/ca.pem' }, ssh: { host: 'bastion', username: 'ops' } }]);

    const b = new ProfileStore(path.join(dir, 'b.json'), new FileSecrets(path.join(dir, 'b-secrets.json')), false);
    const first = b.importProfiles(text);
    assert.deepEqual(first.added.map((p) => [p.name, p.endpoints, p.ssh?.host, p.hasPassword]), [['prod', ['https://10.0.0.1:2379'], 'bastion', false]]);
    assert.deepEqual(b.importProfiles(text), { added: [], skipped: ['prod'] }, 'a second import adds nothing');
  });

  it('refuses what is not an export, a bad field, or a file carrying a password', () => {
    const s = new ProfileStore(path.join(dir, 'c.json'), new FileSecrets(path.join(dir, 'c-secrets.json')), false);
    assert.throws(() => s.importProfiles('{'), /not JSON/);
    assert.throws(() => s.importProfiles('{"profiles":[]}'), /not a profiles file/);
    assert.throws(() => s.importProfiles('{"etcdeskProfiles":1,"profiles":[{"name":"x","endpoints":[]}]}'), /profile 1: endpoints/);
    assert.throws(() => s.importProfiles('{"etcdeskProfiles":1,"profiles":[{"name":"x","endpoints":["h:1"],"ssh":{"host":"b","username":"u","port":70000}}]}'), /profile 1: ssh/);
    assert.throws(() => s.importProfiles('{"etcdeskProfiles":1,"profiles":[{"name":"x","endpoints":["h:1"],"password":"p"}]}'), /holds a secret/);
    assert.equal(s.list().filter((p) => p.kind === 'remote').length, 0);
  });
});
