// End-to-end (issue #12): the operator's console proven against each target a
// user connects to: the shell's embedded node, the app's local three-member
// cluster (started from the Connections view) and a real etcd 3.4 (Debian's
// binary on free ports, added as a remote connection in the UI). One shell per
// target, the features in sequence, each asserted on what the user sees and,
// where a value can be checked outside the app, checked with etcdctl (or the
// member's /metrics) against that target:
//   doctor: every member listed and healthy, HashKV agreeing, each shown hash
//     equal to `etcdctl endpoint hashkv` at the shown revision;
//   space guardian: the gauge's file size and quota are the members'; the plan
//     compacts and defragments every member, each step verified, and etcdctl
//     then finds the revision before the compaction refused on every member;
//   analyzer: per-prefix counts and Kubernetes kinds of a prefix written here,
//     a ConfigMap decoded;
//   import & export: a prefix exported as JSON, imported with a preview under
//     another prefix, renamed after a check; the bytes read back with etcdctl;
//   bulk delete: keys picked in the list deleted, the rest kept;
//   backups: "back up now" verified three ways; etcdctl reads the file at the
//     shown revision and gives the shown HashKV.
// Elsewhere: SSH tunnel, TLS skip-verify and profile export/import against a
// real etcd 3.4 (remote-access.e2e.ts). The chaos lab runs on the local
// cluster only, by nature (its faults act on the app's own member threads):
// chaos.e2e.ts; on other connections it says so (checked there too).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { EtcdClient } from '../node-core/index';
import { httpGet, startEtcd } from '../node-core/testing/processes';
import { backUpNow, connectLocalCluster, connectRemote, etcdctl, etcdctlTry, launchBrowser, openApp, pickKeys, shot, shotOnFailure, startShell, until, type Shell } from './harness';

interface Connected {
  /** etcdctl's --endpoints for the target (every member, comma-separated). */
  endpoint: string;
  /** The connection profile the Backups view picks. */
  profileId: string;
  members: number;
  stop?: () => Promise<void>;
}
interface Target {
  name: string;
  /** Points the app at the target through the UI, as a user would. */
  connect(page: Page, shell: Shell): Promise<Connected>;
}

const TARGETS: Target[] = [
  { name: 'embedded', connect: async (_page, shell) => ({ endpoint: shell.endpoint, profileId: 'embedded', members: 1 }) },
  {
    name: 'local-cluster',
    async connect(page, shell) {
      await connectLocalCluster(page);
      const st = await shell.invoke('conn:status', {});
      return { endpoint: st.endpoints.join(','), profileId: 'local-cluster', members: 3 };
    },
  },
  {
    name: 'etcd34',
    async connect(page, shell) {
      const etcd = await startEtcd({ name: 'etcd34', extraArgs: ['--log-level', 'error'] });
      await connectRemote(page, 'etcd 3.4', etcd.clientUrl);
      const st = await shell.invoke('conn:status', {});
      assert.equal(st.kind, 'remote');
      return { endpoint: etcd.endpoint, profileId: st.profileId!, members: 1, stop: () => etcd.stop() };
    },
  },
];

const url = (e: string): string => (/^https?:\/\//.test(e) ? e : `http://${e}`);
const num = (s: string | null): number => Number((s ?? '').replace(/[^\d]/g, ''));
/** "20.0 KiB" → bytes, and the precision the text was shown with. */
function parseSize(text: string): { bytes: number; unit: number } {
  const m = /([\d.]+) (B|KiB|MiB|GiB)/.exec(text);
  if (!m) throw new Error(`no size in "${text}"`);
  const unit = 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(m[2]);
  return { bytes: Number(m[1]) * unit, unit };
}

// Values a copy must keep byte for byte: quotes, a newline, non-ASCII, bytes that are not text.
const SRC: [string, Buffer][] = [
  ['/ct/src/plain', Buffer.from('alpha')],
  ['/ct/src/quoted', Buffer.from('it\'s "100%" \\ true\nsecond line · ü')],
  ['/ct/src/binary', Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x27])],
];
const configMap = (ns: string, name: string): Buffer => Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { k: 'v' } }));
const REGISTRY: [string, Buffer][] = [
  ...['a', 'b'].flatMap((ns) => [0, 1, 2].map((i): [string, Buffer] => [`/registry/configmaps/${ns}/cm-${i}`, configMap(ns, `cm-${i}`)])),
  ['/registry/secrets/a/s-0', Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's-0', namespace: 'a' } }))],
];
const BULK: [string, Buffer][] = ['a', 'b', 'c', 'd', 'e'].map((k) => [`/ct/bulk/${k}`, Buffer.from('v')]);

describe('the operator console against every target', { timeout: 600_000 }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  for (const target of TARGETS) {
    describe(`on ${target.name}`, () => {
      let shell: Shell;
      let page: Page;
      let t: Connected;
      const withShot = shotOnFailure(`console-${target.name}-`, () => page);
      const screenshot = (name: string): Promise<void> => shot(page, `console-${target.name}-${name}`);
      const text = async (testid: string): Promise<string> => ((await page.getByTestId(testid).first().textContent()) ?? '').trim();
      const members = async (): Promise<{ name: string; clientURLs: string[] }[]> => (JSON.parse(await etcdctl(t, ['member', 'list', '-w', 'json'])) as { members: { name: string; clientURLs: string[] }[] }).members;
      /** Each member's HashKV at `rev`, by client URL, from etcdctl. */
      const hashKV = async (rev: number): Promise<Map<string, number>> => {
        const urls = (await members()).map((m) => m.clientURLs[0]);
        const out = JSON.parse(await etcdctl({ endpoint: urls.join(',') }, ['endpoint', 'hashkv', '--rev', String(rev), '-w', 'json'])) as { Endpoint: string; HashKV: { hash: number } }[];
        return new Map(out.map((h) => [h.Endpoint, h.HashKV.hash]));
      };
      const valuesUnder = async (prefix: string): Promise<[string, string][]> =>
        ((JSON.parse(await etcdctl(t, ['get', '--prefix', prefix, '-w', 'json'])) as { kvs?: { key: string; value?: string }[] }).kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString().slice(prefix.length), kv.value ?? '']);

      before(async () => {
        shell = await startShell();
        page = await openApp(browser, shell);
        t = await target.connect(page, shell);
        const client = new EtcdClient({ endpoints: t.endpoint.split(',').map(url), timeoutMs: 30_000 });
        try {
          await client.txn({ success: [...SRC, ...REGISTRY, ...BULK].map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: v } })) });
        } finally {
          client.close();
        }
      });
      after(async () => {
        await page?.close();
        await shell?.stop();
        await t?.stop?.();
      });

      it('doctor: every member listed and healthy; HashKV agrees and equals etcdctl\'s', withShot('doctor', async () => {
        const ms = await members();
        assert.equal(ms.length, t.members);
        await page.getByTestId('nav-doctor').click();
        for (const m of ms) await page.getByTestId(`doctor-health-${m.name}`).filter({ hasText: 'healthy' }).waitFor({ timeout: 20_000 });
        assert.equal(await page.locator('[data-testid^=doctor-member-]').count(), ms.length);
        assert.equal(await page.locator('[data-testid=doctor-members] .chip.ok', { hasText: 'leader' }).count(), 1, 'one leader');
        // The member shown leading is the one etcdctl says leads (its table: JSON would round 64-bit ids).
        const table = (await etcdctl({ endpoint: ms.map((m) => m.clientURLs[0]).join(',') }, ['endpoint', 'status', '-w', 'table'])).split('\n').filter((l) => l.startsWith('|')).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
        const isLeader = table[0].indexOf('IS LEADER');
        const leaderUrl = table.slice(1).find((row) => row[isLeader] === 'true')?.[0];
        const leader = ms.find((m) => m.clientURLs[0] === leaderUrl);
        assert.ok(leader, `etcdctl's leader ${leaderUrl}`);
        await page.getByTestId(`doctor-member-${leader.name}`).locator('.chip.ok', { hasText: 'leader' }).waitFor();
        const verdict = page.getByTestId('doctor-hash-verdict');
        await verdict.filter({ hasText: 'HashKV agrees on every member' }).waitFor({ timeout: 20_000 });
        const rev = num(/revision ([\d,]+)/.exec((await verdict.textContent()) ?? '')?.[1] ?? null);
        const theirs = await hashKV(rev);
        for (const m of ms) assert.equal(num(await text(`doctor-hash-${m.name}`)), theirs.get(m.clientURLs[0]), `${m.name}'s HashKV at ${rev}`);
        assert.equal(await page.locator('[data-testid=finding][data-severity=critical]').count(), 0);
        await screenshot('doctor');
      }));

      it('analyzer: counts per prefix and Kubernetes kinds of a prefix written here; a ConfigMap decoded', withShot('analyzer', async () => {
        await page.getByTestId('nav-analyzer').click();
        await page.getByTestId('analyzer-prefix').fill('/registry/');
        await page.getByTestId('analyzer-k8s').check();
        await page.getByTestId('analyzer-run').click();
        await page.getByTestId('analyzer-keys').filter({ hasText: new RegExp(`^${REGISTRY.length}$`) }).waitFor({ timeout: 30_000 });
        const countOf = async (label: string): Promise<number> => num(await page.getByTestId(`prefix-row-${label}`).getByTestId('prefix-count').textContent());
        const countCtl = async (prefix: string): Promise<number> => (JSON.parse(await etcdctl(t, ['get', '--prefix', prefix, '--keys-only', '-w', 'json'])) as { count: number }).count;
        assert.equal(await countOf('configmaps/'), await countCtl('/registry/configmaps/'));
        assert.equal(await countOf('configmaps/'), 6);
        assert.equal(await countOf('secrets/'), await countCtl('/registry/secrets/'));
        assert.equal(num(await page.getByTestId('kind-ConfigMap').locator('td').nth(2).textContent()), 6);
        assert.equal(num(await page.getByTestId('kind-Secret').locator('td').nth(2).textContent()), 1);
        await screenshot('analyzer');
        await page.getByTestId('inspect-key').fill('/registry/configmaps/b/cm-1');
        await page.getByTestId('inspect-run').click();
        await page.getByTestId('decoded-kind').filter({ hasText: 'ConfigMap' }).waitFor();
        const stored = JSON.parse(await etcdctl(t, ['get', '--print-value-only', '/registry/configmaps/b/cm-1'])) as unknown;
        assert.deepEqual(JSON.parse(await text('decoded-json')), stored);
        await page.getByTestId('decoded-json').scrollIntoViewIfNeeded();
        await screenshot('analyzer-decoded');
      }));

      it('import & export: a prefix exported, imported with a preview under another prefix, renamed; bytes read back with etcdctl', withShot('data', async () => {
        const src = await valuesUnder('/ct/src/');
        assert.equal(src.length, SRC.length);
        await page.getByTestId('nav-data').click();
        await page.getByTestId('export-prefix').fill('/ct/src/');
        await page.getByTestId('export-format').selectOption('json');
        const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-run').click()]);
        const file = fs.readFileSync((await download.path())!, 'utf8');
        assert.equal((JSON.parse(file) as { keys: unknown[] }).keys.length, SRC.length);
        await page.getByTestId('export-result').filter({ hasText: `${SRC.length} keys` }).waitFor();

        await page.getByTestId('import-data-file').setInputFiles({ name: 'ct-src.json', mimeType: 'application/json', buffer: Buffer.from(file) });
        // Against its own prefix the file changes nothing.
        await page.getByTestId('count-unchanged').filter({ hasText: `${SRC.length} unchanged` }).waitFor();
        await page.getByTestId('import-target').fill('/ct/copy/');
        await page.getByTestId('import-preview').click();
        await page.getByTestId('count-create').filter({ hasText: `${SRC.length} new` }).waitFor();
        assert.equal(await text('count-update'), '0 changed');
        assert.equal(await text('count-unchanged'), '0 unchanged');
        await screenshot('import-preview');
        await page.getByTestId('import-apply').click();
        await page.getByTestId('confirm-ok').click();
        await page.getByTestId('import-result').filter({ hasText: `Imported ${SRC.length} keys in 1 txn; every key read back as written` }).waitFor();
        assert.deepEqual(await valuesUnder('/ct/copy/'), src);

        await page.getByTestId('copy-from').fill('/ct/copy/');
        await page.getByTestId('copy-to').fill('/ct/moved/');
        await page.getByTestId('mode-rename').check();
        await page.getByTestId('copy-check').click();
        await page.getByTestId('copy-plan').filter({ hasText: `${SRC.length} keys under /ct/copy/` }).waitFor();
        await page.getByTestId('copy-run').click();
        await page.getByTestId('confirm-ok').click();
        await page.getByTestId('copy-result').filter({ hasText: 'every key read back as written' }).waitFor();
        assert.deepEqual(await valuesUnder('/ct/copy/'), []);
        assert.deepEqual(await valuesUnder('/ct/moved/'), src);
        await screenshot('data');
      }));

      it('bulk delete: keys picked in the list are deleted, the others kept', withShot('bulk-delete', async () => {
        await pickKeys(page, '/ct/bulk/', 'e', ['a', 'b', 'c']);
        await screenshot('bulk-select');
        await page.getByTestId('delete-picked').click();
        await page.getByTestId('confirm-ok').click();
        await page.getByTestId('toast-ok').filter({ hasText: 'Deleted 3 keys' }).waitFor();
        assert.deepEqual((await etcdctl(t, ['get', '--prefix', '/ct/bulk/', '--keys-only'])).split('\n').filter(Boolean), ['/ct/bulk/d', '/ct/bulk/e']);
        await page.locator('[data-key="/ct/bulk/a"]').waitFor({ state: 'detached' });
      }));

      it('space guardian: the gauge shows the members\' size and quota; the plan compacts and defragments every member', withShot('space', async () => {
        const ms = await members();
        await page.getByTestId('nav-space').click();
        await page.getByTestId('space-gauge').filter({ hasText: 'read from the node' }).waitFor();
        const quota = /^etcd_server_quota_backend_bytes (\S+)$/m.exec((await httpGet(`${ms[0].clientURLs[0]}/metrics`, 2000)).body)?.[1];
        assert.equal(parseSize(await text('space-quota')).bytes, Number(quota));
        // Only a defragment shrinks a database file: each member's, before and after, from etcdctl. The
        // write probe stays off so nothing grows them meanwhile (doctor.e2e.ts runs the plan with it on).
        const sizes = async (): Promise<Map<string, number>> => new Map((JSON.parse(await etcdctl({ endpoint: ms.map((m) => m.clientURLs[0]).join(',') }, ['endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: { dbSize: number } }[]).map((s) => [s.Endpoint, s.Status.dbSize]));
        // History worth reclaiming: a 100 KiB value written three times, then deleted; a last write
        // makes the delete fall at or below the compaction revision, so all of it goes.
        for (let i = 0; i < 3; i++) await etcdctl(t, ['put', '/ct/space/blob'], { input: String(i).repeat(100 * 1024) });
        await etcdctl(t, ['del', '/ct/space/blob']);
        await etcdctl(t, ['put', '/ct/space/last', 'x']);
        const before = await sizes();
        await page.getByTestId('space-retention').fill('1');
        await page.getByTestId('space-probe').uncheck();
        await page.getByTestId('space-review').click();
        await page.locator('[data-testid=space-plan][data-state=review]').waitFor();
        // compact, a defragment per member (+ move the leader off when there are followers), disarm
        const defrags = page.locator('[data-testid^=space-step-defrag-]');
        assert.equal(await defrags.count(), ms.length);
        assert.equal(await page.locator('[data-testid^=space-step-]').count(), ms.length > 1 ? ms.length + 3 : ms.length + 2);
        const compactTo = num(/Compact to revision ([\d,]+)/.exec(await text('space-step-compact'))?.[1] ?? null);
        assert.ok(compactTo > 1, 'there is history to compact');
        await page.getByTestId('space-run').click();
        await page.getByTestId('confirm-ok').click();
        await page.locator('[data-testid=space-plan][data-state=done]').waitFor({ timeout: 90_000 });
        assert.equal(await page.getByTestId('space-step-compact').getAttribute('data-state'), 'done');
        for (const d of await defrags.all()) assert.equal(await d.getAttribute('data-state'), 'done');
        const after = await sizes();
        for (const m of ms) assert.ok(after.get(m.clientURLs[0])! < before.get(m.clientURLs[0])!, `${m.name}'s file shrank: ${before.get(m.clientURLs[0])} → ${after.get(m.clientURLs[0])} bytes`);
        assert.match(await text('space-verify-compact'), new RegExp(`compacted to ${compactTo}: revision ${compactTo - 1} is refused as compacted on`));
        for (const m of ms) {
          const r = await etcdctlTry({ endpoint: m.clientURLs[0] }, ['get', '--consistency', 's', '--rev', String(compactTo - 1), '/ct/']);
          assert.ok(!r.ok && r.out.includes('required revision has been compacted'), `${m.name}: ${r.out}`);
        }
        // The gauge (largest member's file) follows the defragmented sizes etcdctl reports.
        await until(async () => {
          const largest = Math.max(...(await sizes()).values());
          const shown = parseSize(await text('space-dbsize'));
          return Math.abs(shown.bytes - largest) <= shown.unit * 0.05;
        }, 15_000, 'the gauge showing the largest member\'s file');
        await screenshot('space');
      }));

      it('backups: back up now is verified three ways; etcdctl reads the file at the shown revision with the shown HashKV', withShot('backup', async () => {
        const row = await backUpNow(page, t.profileId);
        assert.match((await row.textContent()) ?? '', /✓ ✓ ✓/);
        const toast = (await page.getByTestId('toast-ok').filter({ hasText: 'verified: restored at revision' }).first().textContent()) ?? '';
        const m = /restored at revision (\d+), HashKV (\d+) equal/.exec(toast);
        assert.ok(m, toast);
        const [rev, hash] = [Number(m[1]), Number(m[2])];
        assert.equal(num(await row.locator('td').nth(4).textContent()), rev);
        const { history } = await shell.invoke('backup:schedules', {});
        const file = history[0].file!;
        assert.match((await row.textContent()) ?? '', new RegExp(path.basename(file).replace(/\./g, '\\.')));
        const status = JSON.parse(await etcdctl(t, ['snapshot', 'status', file, '-w', 'json'])) as { revision: number; totalKey: number };
        assert.equal(status.revision, rev);
        for (const [endpoint, h] of await hashKV(rev)) assert.equal(h, hash, `${endpoint}'s HashKV at ${rev}`);
        await screenshot('backup');
      }));
    });
  }
});
