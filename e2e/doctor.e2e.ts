// End-to-end: the operator's console through the browser shell. The doctor on
// the local three-member cluster (every member listed, HashKV agreeing) and
// on a real etcd 3.4; the space plan on the local cluster, run step by step
// while the write probe's count grows and nothing fails.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startEtcd, type ServerProc } from '../node-core/testing/processes';
import { connectLocalCluster, connectRemote, launchBrowser, openApp, shot, startShell, type Shell, shotOnFailure } from './harness';

describe('Etcdesk operator console: doctor and space', { timeout: 240_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  let etcd: ServerProc | null = null;

  const withShot = shotOnFailure('', () => page);

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
    await etcd?.stop();
  });

  it('doctor on the local cluster: all three members listed and healthy, HashKV agrees', withShot('doctor-local', async () => {
    await connectLocalCluster(page);
    for (let i = 0; i < 50; i++) await shell.invoke('kv:put', { key: Buffer.from(`/doctor/${i % 5}`).toString('base64'), value: Buffer.from(`v${i}`).toString('base64') });
    await page.getByTestId('nav-doctor').click();
    for (const n of ['local1', 'local2', 'local3']) await page.getByTestId(`doctor-health-${n}`).filter({ hasText: 'healthy' }).waitFor({ timeout: 20_000 });
    await page.getByTestId('doctor-hash-verdict').filter({ hasText: 'HashKV agrees on every member' }).waitFor({ timeout: 20_000 });
    const hashes = await Promise.all(['local1', 'local2', 'local3'].map(async (n) => (await page.getByTestId(`doctor-hash-${n}`).textContent())?.trim()));
    assert.equal(new Set(hashes).size, 1, `hashes ${hashes.join(' ')}`);
    assert.match(hashes[0] ?? '', /^\d+$/);
    assert.equal(await page.locator('[data-testid=doctor-members] .chip.ok', { hasText: 'leader' }).count(), 1, 'one leader');
    // A second scrape gives an interval: the charts draw a line per member.
    await page.getByTestId('chart-wal').locator('.legend').filter({ hasText: 'local3' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-testid=finding][data-severity=critical]').count(), 0);
    await shot(page, 'doctor-local-cluster');
  }));

  it('space plan on the local cluster: reviewed, run step by step, every step verified, writes flowing', withShot('space-plan', async () => {
    await page.getByTestId('nav-space').click();
    await page.getByTestId('space-quota').waitFor();
    assert.match((await page.getByTestId('space-gauge').textContent()) ?? '', /read from the node/);
    await page.getByTestId('space-retention').fill('10');
    await page.getByTestId('space-review').click();
    await page.locator('[data-testid=space-plan][data-state=review]').waitFor();
    const steps = await page.locator('[data-testid^=space-step-]').count();
    assert.equal(steps, 6, 'compact, 2 follower defrags, move leader, defrag old leader, disarm');
    await shot(page, 'space-plan-review');
    await page.getByTestId('space-run').click();
    await page.getByTestId('confirm-ok').click();
    await page.locator('[data-testid=space-plan][data-state=running]').waitFor();
    await page.locator('[data-testid=space-plan][data-state=done]').waitFor({ timeout: 90_000 });
    for (const el of await page.locator('[data-testid^=space-step-]').all()) assert.match((await el.getAttribute('data-state')) ?? '', /^(done|skipped)$/);
    assert.match((await page.getByTestId('space-verify-compact').textContent()) ?? '', /refused as compacted/);
    const writes = Number(await page.getByTestId('space-probe-writes').textContent());
    const failures = Number(await page.getByTestId('space-probe-failures').textContent());
    assert.ok(writes > 0, `probe writes ${writes}`);
    assert.equal(failures, 0);
    await shot(page, 'space-plan-done');
  }));

  it('doctor and space on a real etcd 3.4', withShot('doctor-etcd', async () => {
    etcd = await startEtcd({ name: 'etcd34', extraArgs: ['--log-level', 'error'] });
    await connectRemote(page, 'etcd 3.4', etcd.clientUrl);
    await page.getByTestId('nav-doctor').click();
    const row = page.getByTestId('doctor-member-etcd34');
    await row.filter({ hasText: '3.4.' }).waitFor({ timeout: 20_000 });
    await page.getByTestId('doctor-health-etcd34').filter({ hasText: 'healthy' }).waitFor();
    await page.getByTestId('doctor-hash-verdict').filter({ hasText: 'HashKV agrees' }).waitFor({ timeout: 20_000 });
    // etcd exports every metric the doctor reads: no "does not export" finding.
    await page.getByTestId('chart-wal').locator('.legend').filter({ hasText: 'etcd34' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.getByTestId('chart-wal').locator('.legend').filter({ hasText: 'local1' }).count(), 0, 'the local cluster’s lines are gone');
    assert.equal(await page.getByTestId('finding').filter({ hasText: 'does not export' }).count(), 0);
    await shot(page, 'doctor-etcd34');
    await page.getByTestId('nav-space').click();
    await page.getByTestId('space-quota').filter({ hasText: '2.00 GiB' }).waitFor();
    assert.match((await page.getByTestId('space-gauge').textContent()) ?? '', /read from the node/);
    await shot(page, 'space-etcd34');
    await page.getByTestId('toggle-theme').click();
    await page.getByTestId('nav-doctor').click();
    await page.getByTestId('doctor-health-etcd34').waitFor();
    await shot(page, 'doctor-etcd34-dark');
    await page.getByTestId('toggle-theme').click();
  }));
});
