// End-to-end: search beyond prefixes (Keys view) and the keyspace analyzer,
// through the browser shell. Key substring and glob searches, a value search
// cancelled part-way then run to its single match in 20,000 values, and the
// analyzer on a few thousand keys: per-prefix counts, drill-down, Kubernetes
// kinds and a Pod decoded from its protobuf envelope; the analyzer also runs
// against a real etcd 3.4 connected as a remote profile.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EtcdClient, type EtcdPb } from '../node-core/index';
import { startEtcd } from '../node-core/testing/processes';
import { k8sPod } from '../electron/main/testing/kubernetes-pod';
import { launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

async function putAll(c: EtcdClient, kvs: [string, Buffer][]): Promise<void> {
  for (let i = 0; i < kvs.length; i += 100) {
    const ops: EtcdPb.RequestOpInit[] = kvs.slice(i, i + 100).map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: v } }));
    await c.txn({ success: ops });
  }
}

/** A few thousand Kubernetes-looking keys: 3 namespaces × perNs pods (protobuf) and 200 configmaps (JSON). */
async function seedRegistry(c: EtcdClient, perNs: number): Promise<void> {
  const kvs: [string, Buffer][] = [];
  for (const ns of ['a', 'b', 'c']) for (let i = 0; i < perNs; i++) kvs.push([`/registry/pods/${ns}/pod-${i}`, k8sPod(`pod-${i}`, ns, { app: 'web' }, `uid-${ns}-pod-${i}`)]);
  for (let i = 0; i < 200; i++) kvs.push([`/registry/configmaps/default/cm-${i}`, Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` }, data: { k: 'v'.repeat(100) } }))]);
  await putAll(c, kvs);
}

describe('Search beyond prefixes and the keyspace analyzer', { timeout: 400_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;
  let client: EtcdClient;

  const withShot = shotOnFailure('scan-', () => page);
  const text = async (testid: string): Promise<string> => (await page.getByTestId(testid).textContent()) ?? '';

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    client = new EtcdClient({ endpoints: [shell.endpoint.startsWith('http') ? shell.endpoint : `http://${shell.endpoint}`], timeoutMs: 30_000 });
    await seedRegistry(client, 1000);
    // 20,000 values of 2 KiB: a value search long enough to cancel; one value holds the needle.
    const filler = 'x'.repeat(2048);
    const bulk: [string, Buffer][] = [];
    for (let i = 0; i < 20_000; i++) bulk.push([`/bulk/item-${String(i).padStart(5, '0')}`, Buffer.from(i === 17_345 ? `${filler.slice(0, 1000)} the NEEDLE is here ${filler.slice(0, 900)}` : filler)]);
    await putAll(client, bulk);
    page = await openApp(browser, shell);
  });
  after(async () => {
    client?.close();
    await browser?.close();
    await shell?.stop();
  });

  it('key substring search over the whole keyspace, results virtualized', withShot('contains', async () => {
    await page.getByTestId('nav-keys').click();
    await page.getByTestId('open-search').click();
    await page.getByTestId('search-mode-contains').click();
    await page.getByTestId('search-pattern').fill('pod-7');
    await page.getByTestId('search-run').click();
    await page.getByTestId('search-done').waitFor({ timeout: 30_000 });
    // pod-7, pod-70..79, pod-700..799 in each of three namespaces.
    assert.equal((await text('search-matched')).trim(), '333 matches');
    assert.match(await text('search-progress'), /^23,\d{3} \/ 23,\d{3} keys scanned$/);
    const first = await page.getByTestId('search-hit-0').getAttribute('data-key');
    assert.equal(first, '/registry/pods/a/pod-7');
    // Virtual: only rows near the view are in the page.
    const rendered = await page.locator('[data-testid^=search-hit-]').count();
    assert.ok(rendered < 333, `${rendered} rows rendered`);
    await shot(page, 'search-contains');
    await page.getByTestId('search-hit-1').click();
    await page.getByTestId('selected-key').filter({ hasText: '/registry/pods/a/pod-70' }).waitFor();
  }));

  it('glob search over whole keys', withShot('glob', async () => {
    await page.getByTestId('search-mode-glob').click();
    await page.getByTestId('search-pattern').fill('/registry/pods/b/pod-1?');
    await page.getByTestId('search-run').click();
    await page.getByTestId('search-done').waitFor({ timeout: 30_000 });
    assert.equal((await text('search-matched')).trim(), '10 matches');
    // The glob's literal head narrowed the scan to /registry/pods/b/pod-1: 111 keys, not the whole keyspace.
    assert.equal((await text('search-progress')).trim(), '111 / 111 keys scanned');
    const keys = await page.locator('[data-testid^=search-hit-]').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
    assert.deepEqual(keys, Array.from({ length: 10 }, (_, i) => `/registry/pods/b/pod-1${i}`));
    await shot(page, 'search-glob');
  }));

  it('value search within a prefix: cancel stops it part-way; run again it finds the one value', withShot('value', async () => {
    await page.getByTestId('open-search').click(); // close: set the prefix in the browser
    await page.getByTestId('key-search').fill('/bulk/');
    await page.locator('[data-testid=keys-status][data-prefix="/bulk/"]').waitFor();
    await page.getByTestId('open-search').click();
    await page.getByTestId('search-mode-value').click();
    await page.getByTestId('search-case').uncheck();
    await page.getByTestId('search-pattern').fill('needle');
    await page.getByTestId('search-run').click();
    await page.getByTestId('search-cancel').click();
    await page.getByTestId('search-cancelled').waitFor({ timeout: 30_000 });
    const progress = await text('search-progress');
    const [scanned, total] = progress.split(' / ').map((s) => Number.parseInt(s.replace(/,/g, ''), 10));
    assert.equal(total, 20_000);
    assert.ok(scanned < total, `cancelled after ${scanned} of ${total}`);
    await shot(page, 'search-value-cancelled');

    await page.getByTestId('search-run').click();
    await page.getByTestId('search-done').waitFor({ timeout: 120_000 });
    assert.equal((await text('search-matched')).trim(), '1 match');
    assert.equal((await text('search-progress')).trim(), '20,000 / 20,000 keys scanned');
    assert.equal(await page.getByTestId('search-hit-0').getAttribute('data-key'), '/bulk/item-17345');
    assert.match(await text('search-snippet'), /the NEEDLE is here/);
    await shot(page, 'search-value');
  }));

  async function analyzeRegistry(perNs: number, name: string): Promise<void> {
    await page.getByTestId('nav-analyzer').click();
    await page.getByTestId('analyzer-prefix').fill('/registry/');
    await page.getByTestId('analyzer-k8s').check();
    await page.getByTestId('analyzer-run').click();
    await page.getByTestId('analyzer-summary').waitFor({ timeout: 60_000 });
    await until(async () => (await text('analyzer-keys')) === (3 * perNs + 200).toLocaleString('en-US'), 30_000, 'the report of this run');
    const countOf = async (label: string): Promise<string> => (await page.getByTestId(`prefix-row-${label}`).getByTestId('prefix-count').textContent()) ?? '';
    assert.equal(await countOf('pods/'), (3 * perNs).toLocaleString('en-US'));
    assert.equal(await countOf('configmaps/'), '200');
    await page.getByTestId('tile-pods/').waitFor();
    await shot(page, `analyzer-${name}`);
    // Drill down by path segment: the treemap and the table show the namespaces.
    await page.getByTestId('drill-pods/').click();
    await page.getByTestId('prefix-row-a/').waitFor();
    for (const ns of ['a/', 'b/', 'c/']) assert.equal(await countOf(ns), perNs.toLocaleString('en-US'));
    await page.getByTestId('tile-b/').click();
    await page.getByTestId('prefix-row-(keys here)').waitFor();
    assert.equal(await countOf('(keys here)'), perNs.toLocaleString('en-US'));
    // From a folder to its keys in the Keys view.
    await page.getByTestId('analyzer-browse').click();
    await page.locator('[data-testid=keys-status][data-prefix="/registry/pods/b/"]').waitFor();
    await until(async () => (await text('key-total')) === `${perNs.toLocaleString('en-US')} keys`, 10_000, 'the folder\'s keys listed');
    await page.getByTestId('nav-analyzer').click();
    await page.getByTestId('analyzer-crumb-0').click();
    await page.getByTestId('prefix-row-pods/').waitFor();
    // Kubernetes mode: kinds counted from the protobuf envelope and from JSON.
    assert.equal(await page.getByTestId('kind-Pod').locator('td').nth(2).textContent(), (3 * perNs).toLocaleString('en-US'));
    assert.equal(await page.getByTestId('kind-ConfigMap').locator('td').nth(2).textContent(), '200');
    // A Pod decoded, read-only.
    await page.getByTestId('inspect-key').fill('/registry/pods/b/pod-5');
    await page.getByTestId('inspect-run').click();
    await page.getByTestId('decoded-kind').filter({ hasText: 'Pod' }).waitFor();
    assert.equal(await text('decoded-format'), 'kubernetes-protobuf');
    assert.equal(await text('decoded-apiversion'), 'v1');
    const json = JSON.parse(await text('decoded-json')) as { kind: string; metadata: { name: string; namespace: string; labels: Record<string, string> } };
    assert.deepEqual([json.kind, json.metadata.name, json.metadata.namespace, json.metadata.labels], ['Pod', 'pod-5', 'b', { app: 'web' }]);
    assert.match(await text('history-estimate'), /Estimate/);
    await page.getByTestId('analyzer-storage').scrollIntoViewIfNeeded();
    await shot(page, `analyzer-${name}-tables`);
    await page.getByTestId('decoded-json').scrollIntoViewIfNeeded();
    await shot(page, `analyzer-${name}-decoded`);
  }

  it('analyzer on a few thousand keys: counts per prefix, drill-down, kinds, a Pod decoded', withShot('analyzer', async () => {
    await analyzeRegistry(1000, 'embedded');
  }));

  it('the analyzer against a real etcd 3.4 (a remote connection)', withShot('analyzer-etcd', async () => {
    const etcd = await startEtcd({ extraArgs: ['--log-level', 'error'] });
    const remote = new EtcdClient({ endpoints: [etcd.clientUrl], timeoutMs: 30_000 });
    try {
      await seedRegistry(remote, 300);
      const saved = await shell.invoke('conn:save', { id: '', name: 'etcd 3.4', kind: 'remote', endpoints: [etcd.clientUrl] });
      const status = await shell.invoke('conn:connect', { id: saved.id });
      assert.equal(status.state, 'connected', status.error?.message);
      await page.getByTestId('conn-status').filter({ hasText: 'etcd 3.4' }).waitFor();
      await analyzeRegistry(300, 'etcd34');
    } finally {
      remote.close();
      await shell.invoke('conn:connect', { id: 'embedded' }).catch(() => undefined);
      await etcd.stop();
    }
  }));
});
