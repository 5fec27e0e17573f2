// "Skip certificate verification" on a remote profile: a self-signed etcd is
// refused by default (the user is told the certificate is not trusted), is
// reachable with the option, and the status says so (the app shows a warning
// chip while such a connection is used).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import https from 'node:https';
import { freePort, startEtcd, waitFor, type ServerProc } from '../../node-core/testing/processes';
import { ConnectionManager } from './connection-manager';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';

describe('TLS without verification, against a self-signed etcd 3.4', { timeout: 60_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-insecure-'));
  let etcd: ServerProc;
  let manager: ConnectionManager;
  let profiles: ProfileStore;
  let url = '';

  before(async () => {
    const key = path.join(dir, 'server.key');
    const cert = path.join(dir, 'server.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=self-signed', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    url = `https://127.0.0.1:${await freePort()}`;
    // The later --listen/advertise-client-urls override the helper's http ones.
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd'), waitReady: false, extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url, '--cert-file', cert, '--key-file', key] });
    const healthy = (): Promise<boolean> =>
      new Promise((resolve) => {
        https.get(`${url}/health`, { rejectUnauthorized: false, timeout: 500 }, (r) => resolve(r.statusCode === 200)).on('error', () => resolve(false));
      });
    await waitFor('self-signed etcd healthy', healthy, 20_000);
    profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'secrets.json')), false);
    manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
  });
  after(async () => {
    await manager?.shutdown();
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is refused without the option, connects with it, and says the certificate is not verified', async () => {
    const p = profiles.save({ id: '', name: 'self-signed', kind: 'remote', endpoints: [url] });
    const refused = await manager.connect(p.id);
    assert.equal(refused.state, 'error');
    assert.equal(refused.insecure, undefined);

    profiles.save({ ...p, tls: { insecureSkipVerify: true } });
    const s = await manager.connect(p.id);
    assert.equal(s.state, 'connected', s.error?.message);
    assert.equal(s.insecure, true);
    const c = manager.requireClient();
    await c.put({ key: Buffer.from('/tls/k'), value: Buffer.from('v') });
    assert.equal(Buffer.from((await c.get('/tls/k'))!.value).toString(), 'v');
  });
});
