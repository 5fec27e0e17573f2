// End-to-end: a new user's first hour, journey by journey, through the browser
// shell on the embedded node. Outcomes are checked outside the UI too (etcdctl),
// and each journey leaves screenshots in e2e-artifacts/ (fh-*.png, light and dark).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { etcdctl, etcdctlTry, launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

describe('A new user\'s first hour', { timeout: 240_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  const withShot = shotOnFailure('fh-', () => page);
  /** Both themes of the same screen (the theme is CSS variables on <html>: flipping the class repaints, even under a dialog). */
  const shots = async (name: string): Promise<void> => {
    const flip = (): Promise<boolean> => page.evaluate(() => document.documentElement.classList.toggle('dark'));
    const dark = await flip();
    await shot(page, `fh-${name}-${dark ? 'dark' : 'light'}`);
    await flip();
    await shot(page, `fh-${name}-${dark ? 'light' : 'dark'}`);
  };
  /** The confirmation names what will happen; Cancel changes nothing, the action button does it. */
  const confirm = async (message: RegExp, action: RegExp): Promise<void> => {
    const dlg = page.getByTestId('confirm-dialog');
    await dlg.waitFor();
    assert.match((await page.getByTestId('confirm-message').textContent()) ?? '', message);
    assert.match((await page.getByTestId('confirm-ok').textContent()) ?? '', action);
    await page.getByTestId('confirm-ok').click();
    await dlg.waitFor({ state: 'detached' });
  };
  // the newest matching toast: an earlier attempt's toast may still be on screen
  const errorToast = (text: RegExp): Locator => page.getByTestId('toast-error').filter({ hasText: text }).last();
  const dismissToasts = async (): Promise<void> => {
    // A toast may time out on its own meanwhile: never wait for one that is gone.
    for (const b of await page.locator('.toast button').all()) await b.click({ timeout: 500 }).catch(() => undefined);
  };
  const selectKey = async (key: string): Promise<void> => {
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-search').fill(key.slice(0, key.lastIndexOf('/') + 1));
    await page.locator(`[data-key="${key}"]`).click();
    await page.getByTestId('selected-key').filter({ hasText: key }).waitFor();
  };

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await etcdctlTry(shell, ['auth', 'disable'], 'root:root-pw');
    await browser?.close();
    await shell?.stop();
  });

  it('the tree opens past the lone "/" root; arrow keys move through the key list', withShot('tree-arrows', async () => {
    for (const k of ['a', 'b', 'c']) await etcdctl(shell, ['put', `/fh/list/${k}`, k]);
    await page.getByTestId('refresh-keys').click();
    await page.getByTestId('mode-tree').click();
    // No "/" node to click first: the root shows what is under "/".
    await page.getByTestId('tree-node-fh/').waitFor();
    assert.equal(await page.getByTestId('tree-node-/').count(), 0);
    await page.getByTestId('tree-node-fh/').click();
    await page.getByTestId('tree-node-list/').click();
    await page.getByTestId('tree-node-a').waitFor();
    await shot(page, 'fh-tree');
    await page.getByTestId('mode-flat').click();
    await page.getByTestId('key-search').fill('/fh/list/');
    await page.locator('[data-testid=keys-status][data-prefix="/fh/list/"]').waitFor();
    await page.locator('[data-key="/fh/list/a"]').click();
    await page.getByTestId('selected-key').filter({ hasText: '/fh/list/a' }).waitFor();
    await page.getByTestId('key-list').focus();
    await page.keyboard.press('ArrowDown');
    await page.getByTestId('selected-key').filter({ hasText: '/fh/list/b' }).waitFor();
    await page.keyboard.press('ArrowDown');
    await page.getByTestId('selected-key').filter({ hasText: '/fh/list/c' }).waitFor();
    await page.keyboard.press('ArrowUp');
    await page.getByTestId('selected-key').filter({ hasText: '/fh/list/b' }).waitFor();
    // From the search box, ↓ enters the list.
    await page.getByTestId('key-search').focus();
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'key-list');
  }));

  it('values open in a code editor: JSON and YAML highlighted and foldable, YAML detected, the error below the tabs', withShot('editor', async () => {
    await etcdctl(shell, ['put', '/fh/cfg/deploy.yaml', 'service:\n  name: web\n  replicas: 3\n  ports:\n    - 80\n    - 443\n']);
    await etcdctl(shell, ['put', '/fh/cfg/app.json', JSON.stringify({ name: 'web', limits: { cpu: '500m', memory: '256Mi' }, replicas: 1 })]);
    await selectKey('/fh/cfg/deploy.yaml');
    await page.locator('[data-testid=value-mode-yaml].on').waitFor();
    // Highlighted: the key names are styled tokens, not plain text.
    await page.locator('.cm-content span', { hasText: 'replicas' }).first().waitFor();
    await shots('editor-yaml');
    await selectKey('/fh/cfg/app.json');
    await page.locator('[data-testid=value-mode-json].on').waitFor();
    assert.match((await page.getByTestId('value-editor').textContent()) ?? '', /"limits": \{/);
    // Folding: the gutter folds the "limits" object into a placeholder.
    const lines = await page.locator('.cm-content .cm-line').count();
    await page.locator('.cm-foldGutter [title="Fold line"]').nth(1).click();
    await page.locator('.cm-foldPlaceholder').waitFor();
    assert.ok((await page.locator('.cm-content .cm-line').count()) < lines, 'folded lines are hidden');
    await page.locator('.cm-foldPlaceholder').click();
    // An invalid edit explains itself below the editor, leaving every format tab uncovered and clickable.
    await page.getByTestId('value-editor').fill('{"name": "web", "replicas": ');
    const err = page.getByTestId('value-error');
    await err.waitFor();
    assert.match((await err.textContent()) ?? '', /Not valid JSON/);
    assert.equal(await page.getByTestId('save-value').isDisabled(), true);
    const e = (await err.boundingBox())!;
    for (const m of ['text', 'json', 'yaml', 'hex', 'base64']) {
      const tab = (await page.getByTestId(`value-mode-${m}`).boundingBox())!;
      const overlap = tab.x < e.x + e.width && e.x < tab.x + tab.width && tab.y < e.y + e.height && e.y < tab.y + tab.height;
      assert.equal(overlap, false, `the error covers the ${m} tab`);
      const onTop = await page.evaluate(([x, y]) => document.elementFromPoint(x, y)?.getAttribute('data-testid'), [tab.x + tab.width / 2, tab.y + tab.height / 2]);
      assert.equal(onTop, `value-mode-${m}`);
    }
    await shot(page, 'fh-editor-json-error');
    await page.getByTestId('revert').click();
    await err.waitFor({ state: 'detached' });
  }));

  it('restored revisions come back pretty-printed; any two revisions diff side by side', withShot('history', async () => {
    await etcdctl(shell, ['put', '/fh/cfg/app.json', JSON.stringify({ name: 'web', limits: { cpu: '1', memory: '512Mi' }, replicas: 4 })]);
    await selectKey('/fh/cfg/app.json');
    await page.getByTestId('load-history').click();
    await page.getByTestId('history').waitFor();
    const revs = await page.locator('[data-testid^=restore-]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-testid')!.slice('restore-'.length))));
    assert.equal(revs.length, 2);
    const older = Math.min(...revs);
    await page.getByTestId(`restore-${older}`).click();
    // Stored compact ({"replicas":1}), restored indented as the JSON view shows it.
    await until(async () => /"replicas": 1/.test((await page.getByTestId('value-editor').textContent()) ?? ''), 5000, 'restored revision in the editor');
    const lines = await page.locator('.cm-content .cm-line').count();
    assert.ok(lines >= 5, `restored JSON spans ${lines} lines`);
    await page.getByTestId('revert').click();
    await page.getByTestId('diff-open').click();
    await page.getByTestId('diff-dialog').waitFor();
    await page.locator('[data-testid=revision-diff] .cm-mergeView').waitFor();
    assert.equal(Number(await page.getByTestId('diff-a').inputValue()), older);
    // Changed lines are marked on both sides.
    await page.locator('.cm-merge-a .cm-changedLine').first().waitFor();
    await page.locator('.cm-merge-b .cm-changedLine').first().waitFor();
    assert.match((await page.locator('.cm-merge-a').textContent()) ?? '', /512Mi|256Mi/);
    await shots('revision-diff');
    await page.keyboard.press('Escape');
    await page.getByTestId('diff-dialog').waitFor({ state: 'detached' });
  }));

  it('keys attach to leases chosen from a picker, never by pasting an id', withShot('lease-picker', async () => {
    await page.getByTestId('nav-leases').click();
    await page.getByTestId('lease-ttl').fill('300');
    await page.getByTestId('grant-lease').click();
    const id = (await page.getByTestId('lease-row').first().getAttribute('data-lease-id'))!;
    const hex = BigInt(id).toString(16);
    // New key with a lease from the picker.
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('new-key').click();
    await page.getByTestId('new-key-name').fill('/fh/lease/session');
    await page.getByTestId('new-key-value').fill('alive');
    await page.getByTestId('new-key-lease').selectOption(id);
    assert.match((await page.getByTestId('new-key-lease').locator('option:checked').textContent()) ?? '', new RegExp(`${hex} · \\d+s of 300s left · 0 keys`));
    await shot(page, 'fh-new-key-lease');
    await page.getByTestId('new-key-create').click();
    await page.getByTestId('meta-lease').filter({ hasText: id }).waitFor();
    // An existing key, attached from the key view.
    await etcdctl(shell, ['put', '/fh/lease/other', 'x']);
    await selectKey('/fh/lease/other');
    await page.getByTestId('attach-lease').click();
    await page.getByTestId('attach-lease-picker').selectOption(id);
    await page.getByTestId('attach-lease-ok').click();
    await page.getByTestId('meta-lease').filter({ hasText: id }).waitFor();
    const ttl = await etcdctl(shell, ['lease', 'timetolive', hex, '--keys']);
    assert.match(ttl, /\/fh\/lease\/session/);
    assert.match(ttl, /\/fh\/lease\/other/);
  }));

  it('every error a user can cause says its cause and its fix', withShot('errors', async () => {
    // A value over etcd's request limit (1.5 MiB), then over the gRPC message limit (2 MiB).
    for (const [size, name] of [[1.6 * 1024 * 1024, 'big1'], [2.5 * 1024 * 1024, 'big2']] as const) {
      await page.getByTestId('nav-keys').click();
      await page.getByTestId('new-key').click();
      await page.getByTestId('new-key-name').fill(`/fh/${name}`);
      await page.getByTestId('new-key-value').fill('x'.repeat(Math.floor(size)));
      await page.getByTestId('new-key-create').click();
      const t = errorToast(/Value too large/);
      await t.waitFor({ timeout: 15_000 });
      assert.match((await t.textContent()) ?? '', /1\.5 MiB request limit \(2 MiB per gRPC message\).*--max-request-bytes/);
      if (name === 'big2') await shot(page, 'fh-error-too-large');
      await page.keyboard.press('Escape');
      await dismissToasts();
      assert.equal((await etcdctl(shell, ['get', `/fh/${name}`, '--keys-only'])).trim(), '');
    }
    // Attaching a lease to a key that does not exist.
    await page.getByTestId('nav-leases').click();
    await page.getByTestId('lease-ttl').fill('300');
    await page.getByTestId('grant-lease').click();
    const granted = page.getByTestId('toast-ok').filter({ hasText: 'Granted lease' }).last();
    const id = /Granted lease (\d+)/.exec((await granted.textContent()) ?? '')![1];
    await page.getByTestId(`attach-${id}`).click();
    await page.getByTestId('attach-key').fill('/fh/missing');
    await page.keyboard.press('Enter');
    const missing = errorToast(/Key does not exist/);
    await missing.waitFor();
    assert.match((await missing.textContent()) ?? '', /create the key first/);
    assert.match((await missing.textContent()) ?? '', /etcdserver: key not found/);
    await shot(page, 'fh-error-missing-key');
    await dismissToasts();
    // An endpoint nobody listens on: the reason and the fix, no dangling "Resolution note:".
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('new-connection').click();
    await page.getByTestId('conn-name').fill('nowhere');
    await page.getByTestId('conn-endpoints').fill('http://127.0.0.1:1');
    await page.getByTestId('conn-save-connect').click();
    const note = page.getByTestId('conn-error');
    await note.waitFor({ timeout: 30_000 });
    const text = (await note.textContent()) ?? '';
    assert.match(text, /Endpoint unreachable\..*check the endpoints/);
    assert.doesNotMatch(await page.locator('body').innerText(), /Resolution note/);
    await shots('error-unreachable');
    // Deleting that connection asks first.
    const card = page.locator('.card[data-testid^=conn-]').filter({ hasText: 'nowhere' }).first();
    const cardId = (await card.getAttribute('data-testid'))!.slice('conn-'.length);
    await page.getByTestId(`remove-${cardId}`).click();
    await page.getByTestId('confirm-cancel').click();
    await page.getByTestId(`conn-${cardId}`).waitFor();
    await page.getByTestId(`remove-${cardId}`).click();
    await confirm(/"nowhere" and its saved password are forgotten\. The cluster itself is not touched/, /Delete nowhere/);
    await page.getByTestId(`conn-${cardId}`).waitFor({ state: 'detached' });
    await page.getByTestId('connect-embedded').click();
    await page.getByTestId('conn-state').filter({ hasText: 'connected' }).waitFor();
    await dismissToasts();
  }));

  it('destructive actions on users, roles and auth confirm, saying what will happen; root is protected while auth is on', withShot('auth', async () => {
    await page.getByTestId('nav-auth').click();
    await page.getByTestId('auth-state').filter({ hasText: 'disabled' }).waitFor();
    // The permission checker says that with auth off everything is allowed.
    await page.getByTestId('check-auth-state').filter({ hasText: 'auth off' }).waitFor();
    await page.getByTestId('role-name').fill('ops');
    await page.keyboard.press('Enter');
    await page.getByTestId('role-ops').waitFor();
    await page.getByTestId('grant-perm-ops').click();
    // The dialog took focus: typing goes to its first field, Enter grants.
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'perm-type');
    await page.getByTestId('perm-key').fill('/ops/');
    await page.keyboard.press('Enter');
    await page.getByTestId('role-ops').filter({ hasText: '/ops/' }).waitFor();
    await page.getByTestId('user-name').fill('bob');
    await page.getByTestId('user-password').fill('bob-pw');
    await page.keyboard.press('Enter');
    await page.getByTestId('user-bob').waitFor();
    await page.getByTestId('grant-role-select-bob').selectOption('ops');
    await page.getByTestId('grant-role-bob').click();
    await page.getByTestId('user-bob').filter({ hasText: 'ops' }).waitFor();
    await page.getByTestId('check-user').selectOption('bob');
    await page.getByTestId('check-op').selectOption('write');
    await page.getByTestId('check-key').fill('/ops/x');
    await page.getByTestId('check-run').click();
    await page.getByTestId('check-result').filter({ hasText: 'Once authentication is enabled' }).waitFor();
    await shot(page, 'fh-auth-off');
    // Revoke a permission, then a role: each asks, naming what is lost.
    await page.getByTestId('revoke-perm-ops-/ops/').click();
    await confirm(/Role ops no longer grants read on prefix "\/ops\/"/, /Revoke permission/);
    await page.getByTestId('role-ops').filter({ hasText: '/ops/' }).waitFor({ state: 'detached' });
    await page.getByTestId('revoke-role-bob-ops').click();
    await confirm(/bob loses every permission role ops grants/, /Revoke ops/);
    await page.getByTestId('revoke-role-bob-ops').waitFor({ state: 'detached' });
    assert.doesNotMatch(await etcdctl(shell, ['user', 'get', 'bob']), /ops/);
    // Cancel keeps the user; the action button deletes it.
    await page.getByTestId('delete-user-bob').click();
    await page.getByTestId('confirm-dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
    assert.match(await etcdctl(shell, ['user', 'list']), /bob/);
    await page.getByTestId('delete-user-bob').click();
    await confirm(/User bob is removed with its password and role grants/, /Delete user bob/);
    await page.getByTestId('user-bob').waitFor({ state: 'detached' });
    assert.doesNotMatch(await etcdctl(shell, ['user', 'list']), /bob/);
    await page.getByTestId('delete-role-ops').click();
    await confirm(/Role ops and its permissions are removed/, /Delete role ops/);
    await page.getByTestId('role-ops').waitFor({ state: 'detached' });
    // Auth on: root cannot be deleted, and the error says why and what to do.
    await page.getByTestId('enable-auth').click();
    await page.getByTestId('root-password').fill('root-pw');
    await page.keyboard.press('Enter');
    await page.getByTestId('auth-state').filter({ hasText: 'enabled' }).waitFor();
    await page.getByTestId('check-auth-state').filter({ hasText: 'auth on' }).waitFor();
    await page.getByTestId('delete-user-root').click();
    await confirm(/User root is removed/, /Delete user root/);
    const t = errorToast(/Root is protected/);
    await t.waitFor();
    assert.match((await t.textContent()) ?? '', /disable authentication first/);
    await shots('error-root-protected');
    await dismissToasts();
    await page.getByTestId('disable-auth').click();
    await confirm(/Every client, signed in or not, can then read and write every key/, /Disable authentication/);
    await page.getByTestId('auth-state').filter({ hasText: 'disabled' }).waitFor();
    assert.equal((await etcdctlTry(shell, ['get', '/fh/list/a'])).ok, true);
  }));

  it('the txn preview is etcdctl txn input: etcdctl gets what Run got; Go and TypeScript exports', withShot('txn', async () => {
    await etcdctl(shell, ['put', '/fh/txn/state', 'blue']);
    await page.getByTestId('nav-txn').click();
    await page.getByTestId('add-compare').click();
    await page.getByTestId('compare-0-target').selectOption('value');
    await page.getByTestId('compare-0-key').fill('/fh/txn/state');
    await page.getByTestId('compare-0-operand').fill('green');
    await page.getByTestId('add-compare').click();
    await page.getByTestId('compare-1-key').fill('/fh/txn/state');
    await page.getByTestId('compare-1-op').selectOption('>');
    await page.getByTestId('compare-1-operand').fill('0');
    await page.getByTestId('add-success').click();
    await page.getByTestId('success-0-key').fill('/fh/txn/out');
    await page.getByTestId('success-0-value').fill('then');
    await page.getByTestId('add-failure').click();
    await page.getByTestId('failure-0-key').fill('/fh/txn/out');
    await page.getByTestId('failure-0-value').fill('else: two words "quoted"');
    await page.getByTestId('add-failure').click();
    await page.getByTestId('failure-1-type').selectOption('get');
    await page.getByTestId('failure-1-key').fill('/fh/txn/');
    await page.locator('[data-testid=failure-1] input[type=checkbox]').check();
    const preview = (await page.getByTestId('txn-preview').textContent())!;
    await page.getByTestId('run-txn').click();
    await page.getByTestId('txn-result').waitFor();
    const uiBranch = /Else/.test((await page.getByTestId('txn-branch').textContent()) ?? '') ? 'FAILURE' : 'SUCCESS';
    const uiGet = (await page.getByTestId('txn-result-1').textContent()) ?? '';
    const afterUi = (await etcdctl(shell, ['get', '/fh/txn/out', '--print-value-only'])).trim();
    await shots('txn');
    // The same text, fed to etcdctl, takes the same branch, reads the same keys and writes the same value.
    await etcdctl(shell, ['del', '/fh/txn/out']);
    const out = await etcdctl(shell, ['txn'], { input: preview });
    assert.equal(out.split('\n')[0], uiBranch);
    assert.equal(uiBranch, 'FAILURE');
    assert.match(out, /\/fh\/txn\/out\nelse: two words "quoted"/);
    assert.match(uiGet, /\/fh\/txn\/out = else: two words "quoted"/);
    assert.match(out, /\/fh\/txn\/state\nblue/);
    assert.match(uiGet, /\/fh\/txn\/state = blue/);
    assert.equal((await etcdctl(shell, ['get', '/fh/txn/out', '--print-value-only'])).trim(), afterUi);
    // Code to take elsewhere.
    await page.getByTestId('txn-format-go').click();
    const go = (await page.getByTestId('txn-export-go').textContent())!;
    assert.match(go, /clientv3\.Compare\(clientv3\.Value\("\/fh\/txn\/state"\), "=", "green"\)/);
    assert.match(go, /clientv3\.OpGet\("\/fh\/txn\/", clientv3\.WithPrefix\(\)\)/);
    await page.getByTestId('txn-format-ts').click();
    const ts = (await page.getByTestId('txn-export-ts').textContent())!;
    assert.match(ts, /\.if\("\/fh\/txn\/state", "Value", "==", "green"\)\s*\.and\("\/fh\/txn\/state", "Mod", ">", 0\)/);
    assert.match(ts, /client\.getAll\(\)\.prefix\("\/fh\/txn\/"\)/);
    await shot(page, 'fh-txn-typescript');
    await page.getByTestId('txn-format-etcdctl').click();
  }));

  it('keyboard: ? sheet, Ctrl/Cmd+K palette, g-jumps, dialogs take focus with Enter and Esc, no browser shortcut taken', withShot('keyboard', async () => {
    await page.getByTestId('nav-keys').click();
    await page.locator('body').click({ position: { x: 700, y: 10 } });
    await page.keyboard.press('?');
    await page.getByTestId('shortcut-sheet').waitFor();
    assert.ok(await page.evaluate(() => !!document.activeElement?.closest('[data-testid=shortcut-sheet]')), 'the sheet has focus');
    await shots('shortcut-sheet');
    await page.keyboard.press('Escape');
    await page.getByTestId('shortcut-sheet').waitFor({ state: 'detached' });
    await page.keyboard.press('Control+k');
    await page.getByTestId('command-palette').waitFor();
    await page.keyboard.type('leases');
    await shots('palette');
    await page.keyboard.press('Enter');
    await page.getByTestId('view-leases').waitFor();
    await page.keyboard.press('g');
    await page.keyboard.press('k');
    await page.getByTestId('view-keys').waitFor();
    // n opens New key with the cursor in its first field; Enter creates; Esc cancels.
    await page.keyboard.press('n');
    await page.getByTestId('new-key-dialog').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'new-key-name');
    await page.keyboard.type('/fh/kbd/made-by-enter');
    await page.keyboard.press('Enter');
    await page.getByTestId('selected-key').filter({ hasText: '/fh/kbd/made-by-enter' }).waitFor();
    assert.equal((await etcdctl(shell, ['get', '/fh/kbd/made-by-enter', '--keys-only'])).trim(), '/fh/kbd/made-by-enter');
    await page.locator('body').click({ position: { x: 700, y: 10 } });
    await page.keyboard.press('n');
    await page.getByTestId('new-key-dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId('new-key-dialog').waitFor({ state: 'detached' });
    // Typing in a field is typing, not shortcuts.
    await page.getByTestId('key-search').fill('');
    await page.getByTestId('key-search').pressSequentially('gn?');
    assert.equal(await page.getByTestId('new-key-dialog').count(), 0);
    assert.equal(await page.getByTestId('shortcut-sheet').count(), 0);
    await page.getByTestId('key-search').fill('');
    // The browser's own Ctrl shortcuts stay the browser's.
    const taken = await page.evaluate(() =>
      ['r', 't', 'w', 'l', 'n', 'f', 'd', '1', '2'].filter((key) => {
        const e = new KeyboardEvent('keydown', { key, ctrlKey: true, bubbles: true, cancelable: true });
        document.body.dispatchEvent(e);
        return e.defaultPrevented;
      }),
    );
    assert.deepEqual(taken, []);
  }));

  it('one primary button per view; compact prefilled and confirmed; plurals; placeholders fit', withShot('views', async () => {
    const views = ['keys', 'txn', 'leases', 'auth', 'cluster', 'maintenance', 'doctor', 'space', 'connections'];
    for (const v of views) {
      await page.getByTestId(`nav-${v}`).click();
      await page.getByTestId(`view-${v}`).waitFor();
      if (v === 'keys') {
        await page.getByTestId('key-search').fill('/fh/list/');
        await page.locator('[data-key="/fh/list/a"]').click();
        await page.getByTestId('value-editor').waitFor();
      }
      const primaries = await page.locator('.content .btn.primary:visible').count();
      assert.ok(primaries <= 1, `${v} has ${primaries} primary buttons`);
      // No placeholder is cut off by its field.
      const cut = await page.evaluate(() => {
        const ctx = document.createElement('canvas').getContext('2d')!;
        return [...document.querySelectorAll<HTMLInputElement>('.content input[placeholder]')]
          .filter((i) => i.offsetParent !== null)
          .filter((i) => {
            const cs = getComputedStyle(i);
            ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
            const room = i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - (i.type === 'number' ? 18 : 0);
            return ctx.measureText(i.placeholder).width > room + 0.5;
          })
          .map((i) => `${i.dataset.testid ?? i.getAttribute('aria-label')}: "${i.placeholder}"`);
      });
      assert.deepEqual(cut, [], `${v}: placeholders cut off`);
      await shots(`view-${v}`);
    }
    // Compact: prefilled with the current revision, confirmed with what it drops.
    await page.getByTestId('nav-maintenance').click();
    const header = JSON.parse(await etcdctl(shell, ['get', 'x', '-w', 'json'])) as { header: { revision: number } };
    await until(async () => Number(await page.getByTestId('compact-rev').inputValue()) === header.header.revision, 5000, 'compact field prefilled');
    await page.getByTestId('compact').click();
    await confirm(new RegExp(`older than revision ${header.header.revision.toLocaleString('en-US')} is dropped for good`), /Compact to/);
    await page.getByTestId('toast-ok').filter({ hasText: `Compacted to revision ${header.header.revision}` }).waitFor();
    const old = await etcdctlTry(shell, ['get', '/fh/cfg/app.json', '--rev', '2']);
    assert.equal(old.ok, false);
    assert.match(old.out, /required revision has been compacted/);
    // Plurals: "1 key", not "1 keys".
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('key-search').fill('/fh/kbd/');
    await page.locator('[data-testid=keys-status][data-prefix="/fh/kbd/"]').waitFor();
    await page.getByTestId('key-total').filter({ hasText: /^1 key$/ }).waitFor();
    await page.getByTestId('delete-prefix').click();
    assert.match((await page.getByTestId('confirm-prefix').textContent()) ?? '', /1 key under \/fh\/kbd\//);
    assert.equal(await page.getByTestId('confirm-prefix-ok').textContent(), 'Delete 1 key');
    await page.keyboard.press('Escape');
  }));
});
