// End-to-end: the browser shell on the embedded node, driven in Chromium.
// Every spec checks its outcome outside the UI too (etcdctl or the client).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EtcdClient } from '../node-core/index';
import { startEtcd } from '../node-core/testing/processes';
import { artifacts, etcdctl, etcdctlTry, launchBrowser, openApp, shot, startShell, until, sleep, type Shell, shotOnFailure } from './harness';

describe('Etcdesk in the browser shell', { timeout: 200_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  const withShot = shotOnFailure('', () => page);

  before(async () => {
    // Failure screenshots of an earlier run would mislead.
    if (fs.existsSync(artifacts)) for (const f of fs.readdirSync(artifacts)) if (f.startsWith('FAILED-')) fs.rmSync(path.join(artifacts, f));
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    // Never leave auth on for the next spec if one failed half-way.
    await etcdctlTry(shell, ['auth', 'disable'], 'root:root-pw');
    await browser?.close();
    await shell?.stop();
  });

  it('shell refuses requests without the token or from another origin', withShot('shell refuses requests without the token or from another origin', async () => {
    const base = `http://127.0.0.1:${shell.port}/api/invoke/conn:status`;
    const noToken = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(noToken.status, 401);
    const evil = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json', 'x-etcdesk-token': shell.token, origin: 'http://evil.example' }, body: '{}' });
    assert.equal(evil.status, 403);
  }));

  it('browses and searches keys (list and tree)', withShot('browses and searches keys (list and tree)', async () => {
    for (let i = 0; i < 12; i++) await etcdctl(shell, ['put', `/app/config/svc${String(i).padStart(2, '0')}`, JSON.stringify({ replicas: i, image: `nginx:1.${i}` })]);
    await etcdctl(shell, ['put', '/app/feature/dark-mode', 'on']);
    await etcdctl(shell, ['put', '/other/key', 'x']);
    await page.getByTestId('refresh-keys').click();
    await page.locator('[data-key="/other/key"]').waitFor();
    await page.getByTestId('key-search').fill('/app/config/');
    await page.locator('[data-testid=keys-status][data-prefix="/app/config/"]').waitFor();
    await until(async () => (await page.getByTestId('key-total').textContent())?.startsWith('12 keys'), 5000, 'search result count');
    assert.equal(await page.locator('[data-key="/other/key"]').count(), 0);
    await page.locator('[data-key="/app/config/svc03"]').click();
    await page.getByTestId('selected-key').filter({ hasText: '/app/config/svc03' }).waitFor();
    assert.match((await page.getByTestId('value-editor').textContent()) ?? '', /"replicas": 3/);
    assert.equal(await page.getByTestId('value-mode-json').getAttribute('class'), 'on');
    await page.getByTestId('load-history').click();
    await page.getByTestId('history').waitFor();
    await shot(page, 'keys-list');
    // Tree by delimiter.
    await page.getByTestId('key-search').fill('');
    await page.getByTestId('mode-tree').click();
    // The lone "/" root opens by itself.
    await page.getByTestId('tree-node-app/').click();
    await page.getByTestId('tree-node-config/').waitFor();
    await shot(page, 'keys-tree');
    await page.getByTestId('mode-flat').click();
    const count = (await etcdctl(shell, ['get', '/app/config/', '--prefix', '--limit', '1', '-w', 'json'])).match(/"count":(\d+)/)?.[1];
    assert.equal(count, '12');
  }));

  it('edits a value, meets a conflict from etcdctl, never overwrites silently', withShot('edits a value, meets a conflict from etcdctl, never overwrites silently', async () => {
    await page.getByTestId('key-search').fill('/app/feature/');
    await page.locator('[data-key="/app/feature/dark-mode"]').click();
    await page.getByTestId('selected-key').filter({ hasText: '/app/feature/dark-mode' }).waitFor();
    await page.getByTestId('value-mode-text').click();
    await page.getByTestId('value-editor').fill('off-from-ui');
    // Someone else writes meanwhile.
    await etcdctl(shell, ['put', '/app/feature/dark-mode', 'changed-by-etcdctl']);
    await page.getByTestId('save-value').click();
    await page.getByTestId('conflict').waitFor();
    assert.match(await page.getByTestId('conflict-theirs').textContent() ?? '', /changed-by-etcdctl/);
    await shot(page, 'keys-conflict');
    assert.equal((await etcdctl(shell, ['get', '/app/feature/dark-mode', '--print-value-only'])).trim(), 'changed-by-etcdctl');
    // Explicit overwrite after seeing theirs.
    await page.getByTestId('conflict-overwrite').click();
    await page.getByTestId('conflict').waitFor({ state: 'detached' });
    assert.equal((await etcdctl(shell, ['get', '/app/feature/dark-mode', '--print-value-only'])).trim(), 'off-from-ui');
    // A plain save without interference.
    await page.getByTestId('value-editor').fill('plain-save');
    await page.getByTestId('save-value').click();
    await until(async () => (await etcdctl(shell, ['get', '/app/feature/dark-mode', '--print-value-only'])).trim() === 'plain-save', 5000, 'saved value');
    // Invalid JSON cannot be saved.
    await page.getByTestId('value-mode-json').click();
    await page.getByTestId('value-editor').fill('{"broken": ');
    await page.getByTestId('value-error').waitFor();
    assert.equal(await page.getByTestId('save-value').isDisabled(), true);
    await page.getByTestId('revert').click();
  }));

  it('creates and deletes keys, deletes a prefix with confirmation', withShot('creates and deletes keys, deletes a prefix with confirmation', async () => {
    await page.getByTestId('new-key').click();
    await page.getByTestId('new-key-name').fill('/tmp/a');
    await page.getByTestId('new-key-value').fill('A');
    await page.getByTestId('new-key-create').click();
    await page.getByTestId('selected-key').filter({ hasText: '/tmp/a' }).waitFor();
    await etcdctl(shell, ['put', '/tmp/b', 'B']);
    await page.getByTestId('delete-key').click();
    await page.getByTestId('confirm-delete-ok').click();
    await until(async () => (await etcdctl(shell, ['get', '/tmp/a'])).trim() === '', 5000, 'key deleted');
    await page.getByTestId('key-search').fill('/tmp/');
    await page.locator('[data-testid=keys-status][data-prefix="/tmp/"]').waitFor();
    await until(async () => (await page.getByTestId('key-total').textContent())?.startsWith('1 key'), 5000, 'one key left');
    await page.getByTestId('delete-prefix').click();
    assert.match((await page.getByTestId('confirm-prefix').textContent()) ?? '', /1 key under \/tmp\//);
    await page.getByTestId('confirm-prefix-ok').click();
    await until(async () => (await etcdctl(shell, ['get', '/tmp/', '--prefix', '--keys-only'])).trim() === '', 5000, 'prefix deleted');
    await page.getByTestId('key-search').fill('');
  }));

  it('runs a txn that takes the Else branch; the preview replays in etcdctl', withShot('runs a txn that takes the Else branch; the preview replays in etcdctl', async () => {
    await etcdctl(shell, ['put', '/txn/state', 'blue']);
    await page.getByTestId('nav-txn').click();
    await page.getByTestId('add-compare').click();
    await page.getByTestId('compare-0-target').selectOption('value');
    await page.getByTestId('compare-0-key').fill('/txn/state');
    await page.getByTestId('compare-0-op').selectOption('=');
    await page.getByTestId('compare-0-operand').fill('green');
    await page.getByTestId('add-success').click();
    await page.getByTestId('success-0-key').fill('/txn/result');
    await page.getByTestId('success-0-value').fill('then');
    await page.getByTestId('add-failure').click();
    await page.getByTestId('failure-0-key').fill('/txn/result');
    await page.getByTestId('failure-0-value').fill('else');
    await page.getByTestId('add-failure').click();
    await page.getByTestId('failure-1-type').selectOption('get');
    await page.getByTestId('failure-1-key').fill('/txn/state');
    const preview = await page.getByTestId('txn-preview').textContent();
    assert.match(preview ?? '', /val\("\/txn\/state"\) = "green"/);
    await page.getByTestId('run-txn').click();
    await page.getByTestId('txn-result').waitFor();
    assert.match((await page.getByTestId('txn-branch').textContent()) ?? '', /Else/);
    assert.match((await page.getByTestId('txn-result-1').textContent()) ?? '', /\/txn\/state = blue/);
    await shot(page, 'txn');
    assert.equal((await etcdctl(shell, ['get', '/txn/result', '--print-value-only'])).trim(), 'else');
    // The preview itself, fed to etcdctl (without the prompts etcdctl prints), runs the same txn.
    const input = (preview ?? '')
      .split('\n')
      .filter((l) => !/^(compares|success requests \(get, put, del\)|failure requests \(get, put, del\)):$/.test(l))
      .join('\n');
    await etcdctl(shell, ['put', '/txn/result', 'reset']);
    const out = await etcdctl(shell, ['txn'], { input: `${input}\n\n` });
    assert.match(out, /^FAILURE\n/);
    assert.match(out, /\/txn\/state\nblue\n/);
    assert.equal((await etcdctl(shell, ['get', '/txn/result', '--print-value-only'])).trim(), 'else');
  }));

  it('grants a lease, attaches a key, and the key vanishes on expiry', withShot('grants a lease, attaches a key, and the key vanishes on expiry', async () => {
    await etcdctl(shell, ['put', '/lease/session', 'alive']);
    await page.getByTestId('nav-leases').click();
    await page.getByTestId('lease-ttl').fill('4');
    await page.getByTestId('grant-lease').click();
    const row = page.getByTestId('lease-row').first();
    await row.waitFor();
    const id = (await row.getAttribute('data-lease-id')) ?? '';
    await page.getByTestId(`attach-${id}`).click();
    await page.getByTestId('attach-key').fill('/lease/session');
    await page.getByTestId('attach-ok').click();
    await page.getByTestId('lease-key-/lease/session').waitFor();
    await shot(page, 'leases');
    const ttl = await etcdctl(shell, ['lease', 'timetolive', BigInt(id).toString(16), '--keys']);
    assert.match(ttl, /\/lease\/session/);
    // Watch it vanish in the key browser (live, via watch).
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-search').fill('/lease/');
    await page.locator('[data-key="/lease/session"]').waitFor();
    await page.locator('[data-key="/lease/session"]').click();
    await page.getByTestId('meta-lease').filter({ hasText: id }).waitFor();
    await page.getByTestId('deleted-banner').waitFor({ timeout: 15_000 });
    await page.locator('[data-key="/lease/session"]').waitFor({ state: 'detached', timeout: 5000 });
    assert.equal((await etcdctl(shell, ['get', '/lease/session'])).trim(), '');
    await page.getByTestId('key-search').fill('');
  }));

  it('creates a user and a role, checks denied access, enables auth', withShot('creates a user and a role, checks denied access, enables auth', async () => {
    await page.getByTestId('nav-auth').click();
    await page.getByTestId('auth-state').filter({ hasText: 'disabled' }).waitFor();
    await page.getByTestId('role-name').fill('reader');
    await page.getByTestId('add-role').click();
    await page.getByTestId('role-reader').waitFor();
    await page.getByTestId('grant-perm-reader').click();
    await page.getByTestId('perm-type').selectOption('read');
    await page.getByTestId('perm-scope').selectOption('prefix');
    await page.getByTestId('perm-key').fill('/app/');
    await page.getByTestId('perm-ok').click();
    await page.getByTestId('role-reader').filter({ hasText: '/app/' }).waitFor();
    await page.getByTestId('user-name').fill('alice');
    await page.getByTestId('user-password').fill('alice-pw');
    await page.getByTestId('add-user').click();
    await page.getByTestId('user-alice').waitFor();
    await page.getByTestId('grant-role-select-alice').selectOption('reader');
    await page.getByTestId('grant-role-alice').click();
    await page.getByTestId('user-alice').filter({ hasText: 'reader' }).waitFor();
    // The checker: write is denied, read is allowed (auth still off: it reports that too).
    await page.getByTestId('check-user').selectOption('alice');
    await page.getByTestId('check-op').selectOption('write');
    await page.getByTestId('check-key').fill('/app/config/svc01');
    await page.getByTestId('check-run').click();
    await page.getByTestId('check-result').waitFor();
    // Enable auth (the dialog creates root and reconnects as root).
    await page.getByTestId('enable-auth').click();
    await page.getByTestId('root-password').fill('root-pw');
    await page.getByTestId('enable-auth-ok').click();
    await page.getByTestId('auth-state').filter({ hasText: 'enabled' }).waitFor();
    await page.getByTestId('conn-state').filter({ hasText: 'root' }).waitFor();
    await page.getByTestId('check-run').click();
    await page.getByTestId('check-result').filter({ hasText: 'Denied' }).waitFor();
    await shot(page, 'auth');
    await page.getByTestId('check-op').selectOption('read');
    await page.getByTestId('check-run').click();
    await page.getByTestId('check-result').filter({ hasText: 'Allowed' }).waitFor();
    // Outside the UI: etcd agrees.
    const denied = await etcdctlTry(shell, ['put', '/app/config/svc01', 'hacked'], 'alice:alice-pw');
    assert.equal(denied.ok, false);
    assert.match(denied.out, /permission denied/);
    const read = await etcdctlTry(shell, ['get', '/app/config/svc01', '--print-value-only'], 'alice:alice-pw');
    assert.equal(read.ok, true);
    const anon = await etcdctlTry(shell, ['get', '/app/config/svc01']);
    assert.equal(anon.ok, false);
    // The app keeps working as root: the key browser still lists.
    await page.getByTestId('nav-keys').click();
    await page.locator('[data-key="/app/config/svc01"]').waitFor();
    await page.getByTestId('nav-auth').click();
    await page.getByTestId('disable-auth').click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('auth-state').filter({ hasText: 'disabled' }).waitFor();
    assert.equal((await etcdctlTry(shell, ['get', '/app/config/svc01'])).ok, true);
  }));

  it('cluster view shows the member; connections view lists the built-ins', withShot('cluster view shows the member; connections view lists the built-ins', async () => {
    await page.getByTestId('nav-cluster').click();
    await page.getByTestId('member-table').waitFor();
    await page.getByTestId('leader-name').filter({ hasText: 'leader' }).waitFor();
    await shot(page, 'cluster');
    await page.getByTestId('nav-maintenance').click();
    await page.getByTestId('hashkv').click();
    await page.getByTestId('hash-verdict').filter({ hasText: 'agree' }).waitFor();
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('conn-embedded').waitFor();
    await shot(page, 'connections');
    await page.getByTestId('toggle-theme').click();
    await page.getByTestId('nav-keys').click();
    await page.locator('[data-key="/app/config/svc01"]').click();
    await sleep(200);
    await shot(page, 'keys-dark');
    await page.getByTestId('toggle-theme').click();
  }));

  it('large keyspace: 100,000 keys, first page, scroll to the end with bounded memory', withShot('large keyspace: 100,000 keys, first page, scroll to the end with bounded memory', async () => {
    const client = new EtcdClient({ endpoints: [shell.endpoint] });
    try {
      const N = 100_000;
      const BATCH = 128; // etcd's default --max-txn-ops
      const batches: number[] = [];
      for (let i = 0; i < N; i += BATCH) batches.push(i);
      const val = Buffer.from('v');
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < batches.length) {
            const start = batches[next++];
            const ops = [];
            for (let j = start; j < Math.min(N, start + BATCH); j++) ops.push({ request_put: { key: Buffer.from(`/big/${String(j).padStart(6, '0')}`), value: val } });
            await client.txn({ success: ops });
          }
        }),
      );
    } finally {
      client.close();
    }
    await page.getByTestId('key-search').fill('');
    const t0 = Date.now();
    await page.getByTestId('key-search').fill('/big/');
    await page.locator('[data-testid=keys-status][data-prefix="/big/"]').waitFor();
    await page.locator('[data-key="/big/000000"]').waitFor();
    // The search box debounces 200 ms before asking; what matters is the server round trip.
    const elapsed = Date.now() - t0;
    const firstPageMs = await page.evaluate(() => (globalThis as unknown as { __etcdesk: { firstPageMs(): number } }).__etcdesk.firstPageMs());
    // (how fast is the benchmark's business: logged, not a verdict)
    console.log(`first page: ${firstPageMs.toFixed(0)} ms in the store, ${elapsed} ms from typing (incl. 200 ms debounce)`);
    assert.match((await page.getByTestId('key-total').textContent()) ?? '', /100[,.\s\u202f]?000 keys/);
    const list = page.getByTestId('key-list');
    await list.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await page.locator('[data-key="/big/050000"]').waitFor({ timeout: 20_000 });
    await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.locator('[data-key="/big/099999"]').waitFor({ timeout: 30_000 });
    await shot(page, 'keys-100k-end');
    const held = await page.evaluate(() => (globalThis as unknown as { __etcdesk: { loadedKeyRows(): number } }).__etcdesk.loadedKeyRows());
    assert.ok(held <= 2400, `renderer holds ${held} rows`);
    const domRows = await page.locator('.krow').count();
    assert.ok(domRows < 200, `${domRows} rows in the DOM`);
    assert.equal((await etcdctl(shell, ['get', '/big/', '--prefix', '--limit', '1', '-w', 'json'])).match(/"count":(\d+)/)?.[1], '100000');
  }));

  it('connects to a remote etcd with a user and password from the Connections view', withShot('remote connection', async () => {
    const remote = await startEtcd({ extraArgs: ['--log-level', 'error'] });
    try {
      const r = { endpoint: remote.clientUrl } as Shell;
      await etcdctl(r, ['user', 'add', 'root:rootpw']);
      await etcdctl(r, ['role', 'add', 'root']);
      await etcdctl(r, ['user', 'grant-role', 'root', 'root']);
      await etcdctl(r, ['put', '/remote/hello', 'world']);
      await etcdctl(r, ['auth', 'enable']);
      await page.getByTestId('nav-connections').click();
      await page.getByTestId('new-connection').click();
      await page.getByTestId('conn-name').fill('remote test');
      // A dead endpoint first: the client fails over to the live one.
      await page.getByTestId('conn-endpoints').fill(`http://127.0.0.1:1, ${remote.clientUrl}`);
      await page.getByTestId('conn-user').fill('root');
      await page.getByTestId('conn-password').fill('rootpw');
      await page.getByTestId('conn-save-connect').click();
      await page.getByTestId('conn-state').filter({ hasText: 'connected · root' }).waitFor();
      await page.getByTestId('conn-status').filter({ hasText: 'remote test' }).waitFor();
      await page.getByTestId('nav-keys').click();
      await page.locator('[data-key="/remote/hello"]').click();
      await page.getByTestId('value-editor').fill('edited-remotely');
      await page.getByTestId('save-value').click();
      await until(async () => (await etcdctl(r, ['get', '/remote/hello', '--print-value-only'], { user: 'root:rootpw' })).trim() === 'edited-remotely', 5000, 'remote write');
      // The list follows through the watch (authenticated stream on the remote).
      await page.locator('[data-key="/remote/hello"]').filter({ hasText: 'v2' }).waitFor({ timeout: 5000 });
      await shot(page, 'remote-keys');
      // The password never reaches the connections file in plain text.
      const saved = fs.readFileSync(path.join(shell.dataDir, 'connections.json'), 'utf8');
      assert.ok(saved.includes('remote test') && !saved.includes('rootpw'));
    } finally {
      await page.getByTestId('nav-connections').click();
      await page.getByTestId('connect-embedded').click();
      await page.getByTestId('conn-status').filter({ hasText: 'Embedded node' }).waitFor();
      await remote.stop();
    }
  }));
});
