// End-to-end: the chaos lab on the local three-member cluster. Start the
// sample workload, kill the leader from the lab, see the leader change in the
// timeline, stop, and read the summary with a linearizable verdict.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openApp, shot, startShell, type Shell } from './harness';

describe('Etcdesk chaos lab', { timeout: 150_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
  });

  it('kill the leader while the workload runs: the timeline shows the leader change; the summary says linearizable', async () => {
    try {
      // Elsewhere than the local cluster the lab says where it runs.
      await page.getByTestId('nav-chaos').click();
      await page.getByTestId('chaos-local-only').waitFor();
      await page.getByTestId('nav-connections').click();
      await page.getByTestId('connect-local-cluster').click();
      await page.getByTestId('conn-status').filter({ hasText: 'Local 3-node cluster' }).filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
      await page.getByTestId('nav-chaos').click();
      await page.getByTestId('chaos-start').click();
      const leader = page.getByTestId('chaos-leader');
      await leader.filter({ hasText: /^local\d$/ }).waitFor({ timeout: 20_000 });
      const old = ((await leader.textContent()) ?? '').trim();
      await page.getByTestId(`chaos-kill-${old}`).click();
      const timeline = page.getByTestId('chaos-timeline');
      await timeline.locator('li[data-kind="fault"]').filter({ hasText: `${old} killed (the leader)` }).waitFor({ timeout: 15_000 });
      await timeline.locator('li[data-kind="leader"]').filter({ hasText: `leader ${old}→local` }).waitFor({ timeout: 20_000 });
      assert.notEqual(((await leader.textContent()) ?? '').trim(), old);
      await shot(page, 'chaos-leader-killed');
      await page.getByTestId('chaos-stop').click();
      const summary = page.getByTestId('chaos-summary');
      await summary.waitFor({ timeout: 30_000 });
      await summary.getByText(/^history linearizable \([\d,]+ ops\)$/).waitFor();
      await summary.getByText(`${old} killed (the leader) at`, { exact: false }).waitFor();
      await summary.getByText('0 acknowledged writes lost').waitFor();
      assert.equal(((await page.getByTestId('chaos-verdict').textContent()) ?? '').trim(), 'linearizable');
      await summary.scrollIntoViewIfNeeded();
      await shot(page, 'chaos-summary');
    } catch (e) {
      await shot(page, 'FAILED-chaos').catch(() => undefined);
      throw e;
    }
  });
});
