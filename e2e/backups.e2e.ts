// End-to-end: backups a user can trust, in the browser shell on the embedded
// node. "Back up now" runs the three checks and the history shows them; a
// schedule is saved per connection; a verified backup opens as a restored node
// holding the keys written before it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { etcdctl, launchBrowser, openApp, shot, startShell, type Shell, shotOnFailure } from './harness';

describe('verified and scheduled backups', { timeout: 180_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  const withShot = shotOnFailure('backups-', () => page);

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
    for (let i = 0; i < 20; i++) await etcdctl(shell, ['put', `/bk/k${i}`, `v${i}`]);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
  });

  it('back up now: the run is verified three ways and listed in the history', withShot('run-now', async () => {
    await page.getByTestId('nav-backups').click();
    await page.getByTestId('backup-history-empty').waitFor();
    await page.getByTestId('sched-profile').selectOption('embedded');
    await page.getByTestId('backup-run-now').click();
    const row = page.locator('[data-testid=backup-run][data-status=verified]').first();
    await row.waitFor({ timeout: 60_000 });
    assert.match((await row.textContent()) ?? '', /✓ ✓ ✓/);
    const { history } = await shell.invoke('backup:schedules', {});
    assert.equal(history[0].status, 'verified');
    assert.deepEqual(history[0].checks, { sha256: true, restored: true, hashKV: true });
    await shot(page, 'backups-history');
  }));

  it('a schedule is saved for the connection', withShot('schedule', async () => {
    await page.getByTestId('sched-every').fill('30');
    await page.getByTestId('sched-keep').fill('3');
    await page.getByTestId('sched-save').click();
    await page.getByTestId('sched-remove').waitFor();
    const { schedules } = await shell.invoke('backup:schedules', {});
    assert.deepEqual(schedules.map((s) => [s.profileId, s.everyMinutes, s.keep, s.enabled]), [['embedded', 30, 3, true]]);
  }));

  it('a verified backup restored into the local three-member cluster: all members on it', withShot('restore-cluster', async () => {
    const { history } = await shell.invoke('backup:schedules', {});
    await page.getByTestId('nav-backups').click();
    await page.getByTestId(`restore-cluster-${history[0].id}`).click();
    await page.getByTestId('confirm-message').filter({ hasText: 'current keys are replaced' }).waitFor();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('view-cluster').waitFor({ timeout: 60_000 });
    const st = await shell.invoke('conn:status', {});
    assert.equal(st.kind, 'local-cluster');
    assert.equal((await shell.invoke('kv:count', { prefix: '/bk/' })).count, 20);
    const info = await shell.invoke('cluster:info', {});
    assert.equal(info.members.length, 3);
    await shot(page, 'backups-restored-cluster');
    await page.getByTestId('nav-backups').click();
    await page.getByTestId('sched-profile').selectOption('embedded');
  }));

  it('a verified backup opens as a restored node with the keys', withShot('open', async () => {
    await etcdctl(shell, ['put', '/bk/after-backup', 'not in it']);
    const { history } = await shell.invoke('backup:schedules', {});
    await page.getByTestId(`open-backup-${history[0].id}`).click();
    await page.getByTestId('restore-done').waitFor({ timeout: 30_000 });
    const st = await shell.invoke('conn:status', {});
    assert.equal(st.kind, 'restored');
    const count = await shell.invoke('kv:count', { prefix: '/bk/' });
    assert.equal(count.count, 20, 'the restored node holds the keys as they were at the backup');
  }));
});
