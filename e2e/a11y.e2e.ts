// Accessibility: axe-core on every view and the app's dialogs, in the light and
// the dark theme. No serious or critical violation may remain; the rest are
// printed so they stay visible.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { etcdctl, launchBrowser, openApp, root, shot, startShell, type Shell } from './harness';

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: string[]; failureSummary?: string }[] }[];
}

describe('Accessibility (axe-core) on every view, light and dark', { timeout: 180_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  const axeSource = fs.readFileSync(path.join(root, 'node_modules/axe-core/axe.min.js'), 'utf8');

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
    // Through the debugger protocol: the app's CSP (script-src 'self') rightly refuses an inline script tag.
    await page.evaluate(axeSource);
    await etcdctl(shell, ['put', '/a11y/config.json', '{"name":"web","replicas":2}']);
    await etcdctl(shell, ['put', '/a11y/config.json', '{"name":"web","replicas":3}']);
    await etcdctl(shell, ['put', '/a11y/plain', 'hello']);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
  });

  /** Serious/critical findings of the current test; asserted empty at its end so one run shows them all. */
  let found: string[] = [];
  /** Runs axe on the page as it is; records serious/critical violations, lists lesser ones. */
  async function audit(name: string): Promise<void> {
    // Let transitions and lazy chunks settle: axe reads computed colours.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const res = (await page.evaluate(() => (globalThis as unknown as { axe: { run(o: unknown): Promise<unknown> } }).axe.run({ resultTypes: ['violations'] }))) as AxeResult;
    const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    for (const v of res.violations.filter((x) => !bad.includes(x))) console.log(`  ${name}: ${v.impact} ${v.id} (${v.nodes.length}) ${v.help}`);
    if (bad.length) await shot(page, `FAILED-a11y-${name}`);
    for (const v of bad) found.push(`${name}: ${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 6).map((n) => `${n.target.join(' ')} ${n.failureSummary?.split('\n')[1]?.trim() ?? ''}`).join(' | ')}`);
  }
  const verdict = (): void => {
    const f = found;
    found = [];
    assert.deepEqual(f, [], 'serious or critical accessibility violations');
  };

  const views = ['keys', 'txn', 'leases', 'auth', 'cluster', 'doctor', 'space', 'analyzer', 'chaos', 'maintenance', 'backups', 'data', 'connections'] as const;

  for (const theme of ['light', 'dark'] as const) {
    it(`every view passes axe (${theme})`, async () => {
      const isDark = await page.evaluate(() => document.documentElement.classList.contains('dark'));
      if (isDark !== (theme === 'dark')) await page.getByTestId('toggle-theme').click();
      for (const v of views) {
        await page.getByTestId(`nav-${v}`).click();
        await page.getByTestId(`view-${v}`).waitFor();
        if (v === 'keys') {
          await page.getByTestId('key-search').fill('/a11y/');
          await page.locator('[data-key="/a11y/config.json"]').click();
          await page.getByTestId('value-editor').waitFor();
          await page.getByTestId('load-history').click();
          await page.getByTestId('history').waitFor();
        }
        if (v === 'txn' && !(await page.getByTestId('compare-0').count())) {
          await page.getByTestId('add-compare').click();
          await page.getByTestId('add-success').click();
        }
        if (v === 'doctor') await page.getByTestId('doctor-hash-verdict').waitFor({ timeout: 20_000 });
        if (v === 'space') {
          await page.getByTestId('space-quota').waitFor();
          if (!(await page.getByTestId('space-plan').count())) await page.getByTestId('space-review').click();
          await page.getByTestId('space-plan').waitFor();
        }
        if (v === 'leases' && !(await page.getByTestId('lease-row').count())) {
          await page.getByTestId('grant-lease').click();
          await page.getByTestId('lease-row').first().waitFor();
        }
        if (v === 'analyzer' && !(await page.getByTestId('analyzer-summary').count())) {
          await page.getByTestId('analyzer-k8s').check();
          await page.getByTestId('analyzer-run').click();
          await page.getByTestId('analyzer-summary').waitFor();
          await page.getByTestId('inspect-key').fill('/a11y/config.json');
          await page.getByTestId('inspect-run').click();
          await page.getByTestId('decoded-json').waitFor();
        }
        await audit(`${v}-${theme}`);
      }
      // The Keys view's search panel with results (value search: rows with snippets).
      await page.getByTestId('nav-keys').click();
      await page.getByTestId('open-search').click();
      await page.getByTestId('search-mode-value').click();
      await page.getByTestId('search-pattern').fill('web');
      await page.getByTestId('search-run').click();
      await page.getByTestId('search-done').waitFor();
      await audit(`keys-search-${theme}`);
      await page.getByTestId('open-search').click();
      verdict();
    });

    it(`dialogs, the palette, the shortcut sheet and an error pass axe (${theme})`, async () => {
      await page.getByTestId('nav-keys').click();
      await page.getByTestId('new-key').click();
      await page.getByTestId('new-key-dialog').waitFor();
      await audit(`new-key-dialog-${theme}`);
      await page.keyboard.press('Escape');
      await page.locator('[data-key="/a11y/config.json"]').click();
      await page.getByTestId('load-history').click();
      await page.getByTestId('diff-open').click();
      await page.locator('[data-testid=revision-diff] .cm-mergeView').waitFor();
      await audit(`diff-dialog-${theme}`);
      await page.keyboard.press('Escape');
      await page.getByTestId('value-editor').fill('{"broken": ');
      await page.getByTestId('value-error').waitFor();
      await audit(`value-error-${theme}`);
      await page.getByTestId('revert').click();
      await page.getByTestId('delete-key').click();
      await page.getByTestId('confirm-delete').waitFor();
      await audit(`confirm-${theme}`);
      await page.keyboard.press('Escape');
      await page.getByTestId('open-palette').click();
      await page.getByTestId('command-palette').waitFor();
      await audit(`palette-${theme}`);
      await page.keyboard.press('Escape');
      await page.getByTestId('open-shortcuts').click();
      await page.getByTestId('shortcut-sheet').waitFor();
      await audit(`shortcuts-${theme}`);
      await page.keyboard.press('Escape');
      // An explained error toast.
      await page.getByTestId('nav-leases').click();
      const id = (await page.getByTestId('lease-row').first().getAttribute('data-lease-id'))!;
      await page.getByTestId(`attach-${id}`).click();
      await page.getByTestId('attach-key').fill('/a11y/missing');
      await page.getByTestId('attach-ok').click();
      await page.getByTestId('toast-error').first().waitFor();
      await audit(`error-toast-${theme}`);
      for (const b of await page.locator('.toast button').all()) await b.click({ timeout: 500 }).catch(() => undefined);
      verdict();
    });
  }
});
