// End-to-end: connections and credentials in the browser shell. Auth turned on
// behind the app's back makes Reconnect ask to sign in (not "0 keys · No keys
// yet"); remembered credentials survive an app restart; a user without read
// permission is told so; the key list follows writes by itself (main applies
// watch events); profiles are renamed and removed, restored backups included.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { etcdctl, etcdctlTry, launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

describe('Etcdesk connections and sign-in', { timeout: 200_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  const withShot = shotOnFailure('connections-', () => page);

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await etcdctlTry(shell, ['auth', 'disable'], 'root:root-pw');
    await browser?.close();
    await shell?.stop();
  });

  it('the key list follows writes made elsewhere without a refresh', withShot('live-list', async () => {
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-search').fill('/live/');
    await page.locator('[data-testid=keys-status][data-prefix="/live/"]').waitFor();
    for (let i = 0; i < 5; i++) await etcdctl(shell, ['put', `/live/k${i}`, 'v']);
    await page.locator('[data-key="/live/k4"]').waitFor();
    await until(async () => (await page.getByTestId('key-total').textContent())?.startsWith('5 keys'), 5000, '5 keys');
    await etcdctl(shell, ['del', '/live/k0']);
    await page.locator('[data-key="/live/k0"]').waitFor({ state: 'detached' });
    await until(async () => (await page.getByTestId('key-total').textContent())?.startsWith('4 keys'), 5000, '4 keys');
  }));

  it('renames the embedded profile; a restored backup\'s connection is removed with its data folder', withShot('rename-remove', async () => {
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('edit-embedded').click();
    await page.getByTestId('conn-name').fill('Dev node');
    await page.getByTestId('conn-save').click();
    await page.getByTestId('conn-embedded').filter({ hasText: 'Dev node' }).waitFor();
    assert.equal((await shell.invoke('conn:list', {})).find((p) => p.id === 'embedded')?.name, 'Dev node');

    await page.getByTestId('file-export-backup').click();
    await page.getByTestId('backup-sha256').waitFor({ timeout: 20_000 });
    await page.getByTestId('export-close').click();
    await page.getByTestId('file-restore-backup').click();
    await page.getByTestId('restore-files').waitFor();
    await page.getByTestId('restore-files').locator('button').first().click();
    await page.getByTestId('restore-done').waitFor({ timeout: 20_000 });
    const restored = (await shell.invoke('conn:list', {})).find((p) => p.kind === 'restored');
    assert.ok(restored?.dataDir && fs.existsSync(restored.dataDir));
    await page.getByTestId('restore-browse').click();
    await page.getByTestId('nav-connections').click();
    await page.getByTestId(`remove-${restored.id}`).click();
    await page.getByTestId('confirm-message').filter({ hasText: 'data folder' }).waitFor();
    await shot(page, 'remove-restored');
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId(`conn-${restored.id}`).waitFor({ state: 'detached' });
    assert.ok(!fs.existsSync(restored.dataDir));
    assert.ok(!(await shell.invoke('conn:list', {})).some((p) => p.id === restored.id));
  }));
  it('auth enabled outside the app: Reconnect asks to sign in; root signs in and the keys are back; a restart remembers', withShot('sign-in', async () => {
    await etcdctl(shell, ['put', '/conn/known', 'here']);
    await etcdctl(shell, ['user', 'add', 'root:root-pw']);
    await etcdctl(shell, ['user', 'grant-role', 'root', 'root']);
    await etcdctl(shell, ['auth', 'enable']);
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('connect-embedded').click();
    await page.getByTestId('sign-in-dialog').waitFor();
    assert.match((await page.getByTestId('sign-in-reason').textContent()) ?? '', /user name is empty/);
    assert.equal(await page.getByTestId('sign-in-user').inputValue(), 'root');
    await shot(page, 'sign-in');
    // A wrong password: etcd's answer, the dialog stays.
    await page.getByTestId('sign-in-password').fill('wrong');
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('sign-in-error').filter({ hasText: 'authentication failed' }).waitFor();
    await page.getByTestId('sign-in-password').fill('root-pw');
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('sign-in-dialog').waitFor({ state: 'detached' });
    await page.getByTestId('conn-state').filter({ hasText: 'connected · root' }).waitFor();
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-search').fill('/conn/');
    await page.locator('[data-key="/conn/known"]').waitFor();
    // Remembered in a file only this user can read, never in the connections file.
    const creds = path.join(shell.dataDir, 'credentials.json');
    assert.equal(fs.statSync(creds).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(path.join(shell.dataDir, 'connections.json'), 'utf8').includes('root-pw'));

    // The app restarts on the same data folder: it signs in as root by itself.
    await page.close();
    const dataDir = shell.dataDir;
    await shell.stop({ keepData: true });
    shell = await startShell({ dataDir });
    page = await openApp(browser, shell);
    await page.getByTestId('conn-state').filter({ hasText: 'connected · root' }).waitFor();
    await page.getByTestId('key-search').fill('/conn/');
    await page.locator('[data-key="/conn/known"]').waitFor();
  }));

  it('a user without read permission is told who is signed in and what they may not read', withShot('denied', async () => {
    await etcdctl(shell, ['user', 'add', 'bob:bob-pw'], { user: 'root:root-pw' });
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('edit-embedded').click();
    await page.getByTestId('conn-user').fill('bob');
    await page.getByTestId('conn-password').fill('bob-pw');
    await page.getByTestId('conn-save-connect').click();
    await page.getByTestId('conn-state').filter({ hasText: 'connected · bob' }).waitFor();
    await page.getByTestId('key-search').fill('/conn/');
    await page.getByTestId('keys-denied-reason').filter({ hasText: 'Signed in as bob: no read permission on "/conn/"' }).waitFor();
    assert.equal(await page.getByTestId('keys-empty').count(), 0, 'never "No keys yet"');
    await shot(page, 'keys-denied');
    // Back to root through the same dialog.
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('edit-embedded').click();
    await page.getByTestId('conn-user').fill('root');
    await page.getByTestId('conn-password').fill('root-pw');
    await page.getByTestId('conn-save-connect').click();
    await page.getByTestId('conn-state').filter({ hasText: 'connected · root' }).waitFor();
    await etcdctl(shell, ['auth', 'disable'], { user: 'root:root-pw' });
  }));
});
