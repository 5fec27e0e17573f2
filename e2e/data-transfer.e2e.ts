// End-to-end: moving data in the browser shell on the embedded node. Export a
// prefix as an etcdctl script and replay it with sh into a real etcd 3.4 (same
// keys and bytes); export JSON, edit it, import it with a preview (new, changed,
// unchanged) and see a key changed meanwhile skipped, not overwritten; rename a
// prefix after a check, then find it moved.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startEtcd, type ServerProc } from '../node-core/testing/processes';
import { etcdctl, launchBrowser, openApp, pickKeys, shot, startShell, type Shell, shotOnFailure } from './harness';

describe('moving data: export, import with preview, rename a prefix', { timeout: 180_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  let etcd: ServerProc;

  const withShot = shotOnFailure('data-', () => page);
  const exportAs = async (prefix: string, format: 'json' | 'yaml' | 'etcdctl'): Promise<string> => {
    await page.getByTestId('export-prefix').fill(prefix);
    await page.getByTestId('export-format').selectOption(format);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
    return fs.readFileSync((await download.path())!, 'utf8');
  };
  const getJson = (endpoint: string, prefix: string): unknown =>
    (JSON.parse(execFileSync('etcdctl', ['--endpoints', endpoint, 'get', '--prefix', prefix, '-w', 'json']).toString()) as { kvs?: { key: string; value?: string }[] }).kvs?.map((k) => [k.key, k.value ?? '']);

  before(async () => {
    [shell, browser, etcd] = await Promise.all([startShell(), launchBrowser(), startEtcd()]);
    page = await openApp(browser, shell);
    await etcdctl(shell, ['put', '/exp/a', 'alpha']);
    await etcdctl(shell, ['put', '/exp/quote', "it's 100% \\ true"]);
    await etcdctl(shell, ['put', '/exp/multi'], { input: 'line one\nline two\n' });
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
    await etcd?.stop();
  });

  it('an etcdctl-script export replays into a real etcd with the same keys and bytes', withShot('export', async () => {
    await page.getByTestId('nav-data').click();
    const script = await exportAs('/exp/', 'etcdctl');
    assert.match(script, /^#!\/bin\/sh/);
    const file = `${shell.dataDir}/replay.sh`;
    fs.writeFileSync(file, script);
    execFileSync('sh', [file], { env: { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: etcd.clientUrl } });
    assert.deepEqual(getJson(etcd.endpoint, '/exp/'), getJson(shell.endpoint, '/exp/'));
    await page.getByTestId('export-result').filter({ hasText: '3 keys' }).waitFor();
    await shot(page, 'data-export');
  }));

  it('an edited JSON export is previewed as a diff, and a key changed meanwhile is not overwritten', withShot('import', async () => {
    const doc = JSON.parse(await exportAs('/exp/', 'json')) as { keys: { key: string; value: string }[] };
    doc.keys.find((k) => k.key === '/exp/a')!.value = 'ALPHA';
    doc.keys.find((k) => k.key === '/exp/quote')!.value = 'edited in the file';
    doc.keys.push({ key: '/exp/new', value: 'fresh' });
    await page.getByTestId('import-data-file').setInputFiles({ name: 'edited.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(doc)) });
    await page.getByTestId('count-create').filter({ hasText: '1 new' }).waitFor();
    await page.getByTestId('count-update').filter({ hasText: '2 changed' }).waitFor();
    await page.getByTestId('count-unchanged').filter({ hasText: '1 unchanged' }).waitFor();
    await shot(page, 'data-import-preview');
    await etcdctl(shell, ['put', '/exp/quote', 'changed by a colleague']); // after the preview
    await page.getByTestId('import-apply').click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('import-result').filter({ hasText: 'Imported 2 keys' }).waitFor();
    assert.match((await page.getByTestId('import-result').textContent()) ?? '', /1 key changed by someone else meanwhile and left as they are \(\/exp\/quote\)/);
    assert.equal((await etcdctl(shell, ['get', '--print-value-only', '/exp/quote'])).trim(), 'changed by a colleague');
    assert.equal((await etcdctl(shell, ['get', '--print-value-only', '/exp/a'])).trim(), 'ALPHA');
    assert.equal((await etcdctl(shell, ['get', '--print-value-only', '/exp/new'])).trim(), 'fresh');
  }));

  it('many keys picked in the list are deleted at once; one changed after it was picked is kept', withShot('bulk-delete', async () => {
    for (const k of ['a', 'b', 'c', 'd', 'e']) await etcdctl(shell, ['put', `/bulk/${k}`, 'v']);
    await pickKeys(page, '/bulk/', 'e', ['a', 'b', 'c']);
    await etcdctl(shell, ['put', '/bulk/b', 'changed by a colleague']); // after it was picked
    await shot(page, 'keys-bulk-select');
    await page.getByTestId('delete-picked').click();
    await page.getByTestId('confirm-message').filter({ hasText: 'One transaction' }).waitFor();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('toast-error').filter({ hasText: 'Deleted 2 keys; 1 key changed meanwhile and kept (/bulk/b)' }).waitFor();
    assert.deepEqual((await etcdctl(shell, ['get', '--prefix', '/bulk/', '--keys-only'])).split('\n').filter(Boolean), ['/bulk/b', '/bulk/d', '/bulk/e']);
    await page.getByTestId('nav-data').click();
  }));

  it('renames a prefix after a check: the keys are under the new prefix and gone from the old', withShot('rename', async () => {
    await page.getByTestId('copy-from').fill('/exp/');
    await page.getByTestId('copy-to').fill('/moved/');
    await page.getByTestId('mode-rename').check();
    await page.getByTestId('copy-check').click();
    await page.getByTestId('copy-plan').filter({ hasText: '4 keys under /exp/' }).waitFor();
    await shot(page, 'data-rename-plan');
    await page.getByTestId('copy-run').click();
    await page.getByTestId('confirm-message').filter({ hasText: 'One transaction' }).waitFor();
    await page.getByTestId('confirm-ok').click();
    // Keys, not operations: four keys renamed are eight writes and deletes in the one txn.
    await page.getByTestId('copy-result').filter({ hasText: 'Renamed 4 keys in 1 txn' }).waitFor();
    assert.equal((await etcdctl(shell, ['get', '--prefix', '/exp/', '--keys-only'])).trim(), '');
    assert.deepEqual((await etcdctl(shell, ['get', '--prefix', '/moved/', '--keys-only'])).split('\n').filter(Boolean), ['/moved/a', '/moved/multi', '/moved/new', '/moved/quote']);
  }));
});
