// End-to-end: reaching a production-like etcd 3.4 that is only reachable through
// a bastion. In the browser shell a user adds a remote profile with an SSH tunnel
// (key authentication, Debian's openssh-server on loopback), connects, sees the
// tunnel named in the top bar and the remote's keys; exports the profiles (no
// secrets in the file) and imports them into a fresh app; ticks "skip
// certificate verification" and is warned before saving.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startEtcd, type ServerProc } from '../node-core/testing/processes';
import { hasSshd, startSshd, type Sshd } from '../node-core/testing/sshd';
import { backUpNow, launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

describe('remote access: SSH tunnel, TLS warning, profiles export/import', { timeout: 180_000, skip: !hasSshd() && 'no /usr/sbin/sshd: apt-get install openssh-server' }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  let sshd: Sshd;
  let etcd: ServerProc;
  let exported = '';

  const withShot = shotOnFailure('remote-', () => page);

  before(async () => {
    [shell, browser, sshd, etcd] = await Promise.all([startShell(), launchBrowser(), startSshd(), startEtcd()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
    await etcd?.stop();
    sshd?.stop();
  });

  it('adds a profile with an SSH tunnel, connects through it and lists the remote keys', withShot('ssh', async () => {
    const { execFileSync } = await import('node:child_process');
    execFileSync('etcdctl', ['--endpoints', etcd.endpoint, 'put', '/behind/bastion', 'yes']);
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('new-connection').click();
    await page.getByTestId('conn-name').fill('prod via bastion');
    await page.getByTestId('conn-endpoints').fill(etcd.clientUrl);
    await page.locator('summary', { hasText: 'SSH tunnel' }).click();
    await page.getByTestId('ssh-on').check();
    await page.getByTestId('ssh-host').fill('127.0.0.1');
    await page.getByTestId('ssh-port').fill(String(sshd.port));
    await page.getByTestId('ssh-user').fill((await import('node:os')).userInfo().username);
    await page.getByTestId('ssh-key-file').fill(sshd.userKey);
    await shot(page, 'remote-ssh-dialog');
    await page.getByTestId('conn-save-connect').click();
    await page.getByTestId('tunnel-chip').waitFor({ timeout: 20_000 });
    assert.match((await page.getByTestId('tunnel-chip').textContent()) ?? '', new RegExp(`via SSH .*@127\\.0\\.0\\.1:${sshd.port}`));
    await page.getByTestId('key-search').fill('/behind/');
    await page.locator('[data-key="/behind/bastion"]').waitFor();
    await shot(page, 'remote-ssh-connected');
    const p = (await shell.invoke('conn:list', {})).find((x) => x.name === 'prod via bastion');
    assert.equal(p?.ssh?.hostKeySha256, sshd.hostKeySha256, 'host key pinned on first connect');
  }));

  it('back up now through the SSH tunnel: the snapshot streams through it and is verified; etcdctl reads it at the shown revision', withShot('ssh-backup', async () => {
    const p = (await shell.invoke('conn:list', {})).find((x) => x.name === 'prod via bastion')!;
    const row = await backUpNow(page, p.id);
    assert.match((await row.textContent()) ?? '', /✓ ✓ ✓/);
    const run = (await shell.invoke('backup:schedules', {})).history[0];
    assert.equal(run.profileId, p.id);
    const { execFileSync } = await import('node:child_process');
    const st = JSON.parse(execFileSync('etcdctl', ['snapshot', 'status', run.file!, '-w', 'json']).toString()) as { revision: number };
    assert.equal(st.revision, run.revision);
    assert.equal(Number((await row.locator('td').nth(4).textContent())?.trim()), run.revision);
    await shot(page, 'remote-ssh-backup');
  }));

  it('exports the profiles without secrets; a fresh app imports them', withShot('export-import', async () => {
    await page.getByTestId('nav-connections').click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-connections').click()]);
    const file = await download.path();
    exported = fs.readFileSync(file!, 'utf8');
    const doc = JSON.parse(exported) as { profiles: { name: string; ssh?: { hostKeySha256?: string } }[] };
    assert.deepEqual(doc.profiles.map((x) => x.name), ['prod via bastion']);
    assert.equal(doc.profiles[0].ssh?.hostKeySha256, undefined, 'the pinned key stays on this machine');

    const fresh = await startShell();
    try {
      const page2 = await openApp(browser, fresh);
      await page2.getByTestId('nav-connections').click();
      await page2.getByTestId('import-file').setInputFiles({ name: 'etcdesk-connections.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
      await page2.locator('[data-testid^="conn-"]', { hasText: 'prod via bastion' }).waitFor();
      await until(async () => (await fresh.invoke('conn:list', {})).some((x) => x.name === 'prod via bastion' && x.ssh?.host === '127.0.0.1'), 5000, 'imported profile');
      await shot(page2, 'remote-imported');
      await page2.close();
    } finally {
      await fresh.stop();
    }
  }));

  it('skipping certificate verification warns in the dialog and on the profile', withShot('insecure', async () => {
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('new-connection').click();
    await page.getByTestId('conn-name').fill('self-signed lab');
    await page.getByTestId('conn-endpoints').fill('https://127.0.0.1:1');
    await page.locator('summary', { hasText: 'TLS' }).click();
    await page.getByTestId('conn-insecure').check();
    await page.getByTestId('conn-insecure-warning').waitFor();
    await shot(page, 'remote-insecure-warning');
    await page.getByTestId('conn-save').click();
    const p = (await shell.invoke('conn:list', {})).find((x) => x.name === 'self-signed lab');
    assert.equal(p?.tls?.insecureSkipVerify, true);
    await page.getByTestId(`insecure-${p!.id}`).waitFor();
  }));
});
