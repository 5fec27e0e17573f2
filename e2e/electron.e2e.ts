// The same app driven through Electron (playwright's _electron) when the
// binary exists; skipped with a clear reason otherwise (this machine installs
// electron with ELECTRON_SKIP_BINARY_DOWNLOAD=1). The skip is loud: it is a
// test-level skip (counted in the run's "skipped" summary line; a skipped
// describe is not counted) and a banner on stderr, and this file runs last in
// test:e2e so the banner sits just above the summary. What only Electron has
// (the preload whitelist, the sender-frame check, safeStorage) is unit-tested
// in electron/preload/bridge.test.ts, electron/main/ipc-contract.test.ts and
// electron/main/handlers.test.ts.
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { describe, it } from 'node:test';
import { _electron } from 'playwright-core';
import { electronBinary } from '../electron/electron-binary.mjs';
import { root, shot, etcdctl, type Shell } from './harness';

const bin = electronBinary();
const skip = bin ? false : 'SKIPPED: Electron binary not installed (ELECTRON_SKIP_BINARY_DOWNLOAD=1); the browser-shell specs cover the same UI';
if (skip) {
  process.once('exit', () => {
    const line = '⚠  ELECTRON E2E SKIPPED: no Electron binary here. Only the browser shell was driven end to end.';
    process.stderr.write(`\n${'═'.repeat(line.length)}\n${line}\n${'═'.repeat(line.length)}\n`);
  });
}

describe('Etcdesk in Electron', () => {
  it('starts on the embedded node, browses keys, edits a value with a conflict check', { skip }, async () => {
    const userData = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-electron-'));
    const app = await _electron.launch({
      executablePath: bin!,
      args: [path.join(root, 'out/main/index.js'), `--user-data-dir=${userData}`, '--no-sandbox'],
      env: { ...process.env, ETCDESK_ENGINE: process.env.ETCDESK_ENGINE ?? 'node-core' },
    });
    try {
      const page = await app.firstWindow();
      await page.getByTestId('conn-state').filter({ hasText: 'connected' }).waitFor();
      const endpoint = (await page.getByTestId('conn-status').textContent())?.match(/127\.0\.0\.1:\d+/)?.[0];
      assert.ok(endpoint);
      const shell = { endpoint: `http://${endpoint}` } as Shell;
      await etcdctl(shell, ['put', '/electron/k', 'v1']);
      await page.getByTestId('refresh-keys').click();
      await page.locator('[data-key="/electron/k"]').click();
      await page.getByTestId('value-mode-text').click();
      await page.getByTestId('value-editor').fill('from-ui');
      await etcdctl(shell, ['put', '/electron/k', 'v2']);
      await page.getByTestId('save-value').click();
      await page.getByTestId('conflict').waitFor();
      assert.equal((await etcdctl(shell, ['get', '/electron/k', '--print-value-only'])).trim(), 'v2');
      // The bridge is all the page sees: no Node, no ipcRenderer.
      assert.equal(await page.evaluate(() => typeof (globalThis as { require?: unknown }).require), 'undefined');
      assert.deepEqual(await page.evaluate(() => Object.keys((globalThis as unknown as { etcdesk: object }).etcdesk).sort()), ['invoke', 'on']);
      await shot(page, 'electron-keys');
    } finally {
      await app.close();
      fs.rmSync(userData, { recursive: true, force: true });
    }
  });
});
