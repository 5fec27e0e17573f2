// End-to-end: backups (export from the File menu's action, checked by etcdctl;
// restore into a new local node, browsed in the key browser), the local
// three-node cluster (stop the leader, see a new one) and the maintenance view.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { etcdctl, launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

const run = promisify(execFile);

describe('Etcdesk backups, cluster and maintenance', { timeout: 120_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  let backupFile = '';

  const withShot = shotOnFailure('', () => page);

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
  });

  it('exports a backup from File → Export Backup…; etcdctl reads it and the shown sha256 is the appended one', withShot('backup-export', async () => {
    for (let i = 0; i < 20; i++) await etcdctl(shell, ['put', `/backup/item${String(i).padStart(2, '0')}`, `value-${i}`]);
    await etcdctl(shell, ['put', '/backup/known', 'hello-backup']);
    // The sidebar's File action runs the same onMenu('export-backup') as Electron's menu item.
    await page.getByTestId('file-export-backup').click();
    await page.getByTestId('export-done').waitFor({ timeout: 15_000 });
    const sha = await page.getByTestId('backup-sha256').getAttribute('data-sha256');
    backupFile = (await page.getByTestId('backup-path').textContent())!.trim();
    const shownBytes = Number(await page.getByTestId('backup-size').getAttribute('data-bytes'));
    assert.ok(fs.existsSync(backupFile), backupFile);
    const data = fs.readFileSync(backupFile);
    assert.equal(data.length, shownBytes);
    // etcd appends sha256(db) to a snapshot: the UI shows that value and it matches the data.
    assert.equal(sha, data.subarray(data.length - 32).toString('hex'));
    assert.equal(sha, createHash('sha256').update(data.subarray(0, data.length - 32)).digest('hex'));
    const { stdout } = await run('etcdctl', ['snapshot', 'status', backupFile, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
    const st = JSON.parse(stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    assert.ok(st.totalKey >= 21, `etcdctl sees ${st.totalKey} keys`);
    assert.ok(st.revision >= 21, `etcdctl sees revision ${st.revision}`);
    await shot(page, 'backup-export');
    await page.getByTestId('export-close').click();
  }));

  it('restores the backup into a new local node and finds a known key in the key browser', withShot('backup-restore', async () => {
    await page.getByTestId('file-restore-backup').click();
    await page.getByTestId('restore-files').waitFor();
    await page.getByTestId(`restore-file-${path.basename(backupFile)}`).click();
    await page.getByTestId('restore-done').waitFor({ timeout: 20_000 });
    await shot(page, 'backup-restore');
    await page.getByTestId('restore-browse').click();
    await page.getByTestId('conn-status').filter({ hasText: 'Restored' }).waitFor();
    await page.getByTestId('key-search').fill('/backup/');
    await page.locator('[data-key="/backup/known"]').click();
    await page.getByTestId('selected-key').filter({ hasText: '/backup/known' }).waitFor();
    assert.equal(await page.getByTestId('value-editor').textContent(), 'hello-backup');
    // A new node, not the embedded one: a write there is not seen by the source.
    const status = await shell.invoke('conn:status', {});
    assert.equal(status.kind, 'restored');
    assert.notEqual(status.endpoints[0], shell.endpoint);
  }));

  it('maintenance view: hash check, compaction and defragment on the restored node', withShot('maintenance', async () => {
    await page.getByTestId('nav-maintenance').click();
    await page.getByTestId('defrag-table').waitFor();
    await page.getByTestId('hashkv').click();
    await page.getByTestId('hash-verdict').filter({ hasText: 'agree' }).waitFor();
    const rev = (await shell.invoke('cluster:info', {})).revision;
    await page.getByTestId('compact-rev').fill(String(rev - 5));
    await page.getByTestId('compact').click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId('toast-ok').filter({ hasText: `Compacted to revision ${rev - 5}` }).waitFor();
    await page.getByTestId('defrag-restored').click();
    await page.getByTestId('toast-ok').filter({ hasText: 'defragmented' }).waitFor();
    await shot(page, 'maintenance');
  }));

  it('starts the local three-node cluster, stops the leader in the cluster view and sees a new leader', withShot('cluster-failover', async () => {
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('connect-local-cluster').click();
    await page.getByTestId('conn-status').filter({ hasText: 'Local 3-node cluster' }).filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('nav-cluster').click();
    await page.getByTestId('local-note').waitFor();
    const leaderChip = page.getByTestId('leader-name');
    await leaderChip.filter({ hasText: 'leader local' }).waitFor({ timeout: 15_000 });
    const first = (await leaderChip.textContent())!.replace('leader', '').trim();
    // A few writes so the chart has something to draw.
    for (let i = 0; i < 30; i++) await shell.invoke('kv:put', { key: Buffer.from(`/load/${i}`).toString('base64'), value: Buffer.from('x').toString('base64') });
    await page.waitForTimeout(1500);
    await shot(page, 'cluster-local');
    await page.getByTestId(`stop-${first}`).click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId(`health-${first}`).filter({ hasText: 'stopped' }).waitFor({ timeout: 15_000 });
    const second = await until(async () => {
      const t = (await leaderChip.textContent())?.replace('leader', '').trim();
      return t && t.startsWith('local') && t !== first ? t : null;
    }, 20_000, 'a new leader');
    // the new leader is a running member
    await page.getByTestId(`health-${second}`).filter({ hasText: 'healthy' }).waitFor({ timeout: 15_000 });
    await shot(page, 'cluster-failover');
    await page.getByTestId(`restart-${first}`).click();
    await page.getByTestId(`health-${first}`).filter({ hasText: 'healthy' }).waitFor({ timeout: 20_000 });
    // Move the leadership back to the restarted member (MoveLeader through the current leader).
    await page.getByTestId(`make-leader-${first}`).click();
    await leaderChip.filter({ hasText: `leader ${first}` }).waitFor({ timeout: 15_000 });
    // Every member applied the same history: HashKV agrees at one revision.
    await page.getByTestId('nav-maintenance').click();
    await until(async () => {
      await page.getByTestId('hashkv').click();
      await page.getByTestId('hash-verdict').waitFor();
      return (await page.getByTestId('hash-verdict').textContent())?.includes('All 3 members agree');
    }, 15_000, 'three members agreeing');
    await shot(page, 'maintenance-cluster');
    await page.getByTestId('toggle-theme').click();
    await page.getByTestId('nav-cluster').click();
    await page.getByTestId('member-table').waitFor();
    await page.waitForTimeout(300);
    await shot(page, 'cluster-dark');
    await page.getByTestId('toggle-theme').click();
  }));
});
