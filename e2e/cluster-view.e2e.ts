// End-to-end: the cluster view tells the truth. On the local three-member
// cluster, stopping the leader from the UI shows the member stopped while the
// stop is still answering (main pushes it as the stop starts), the new leader
// is shown, and the sidebar leaves the stopped member; switching connection,
// the charts carry only the new connection's series. (Speed: bench/.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Route } from 'playwright-core';
import { launchBrowser, openApp, shot, startShell, until, type Shell, shotOnFailure } from './harness';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('Etcdesk cluster view', { timeout: 150_000 }, () => {
  let shell: Shell;
  let browser: Browser;
  let page: Page;

  const withShot = shotOnFailure('cluster-view-', () => page);

  before(async () => {
    [shell, browser] = await Promise.all([startShell(), launchBrowser()]);
    page = await openApp(browser, shell);
  });
  after(async () => {
    await browser?.close();
    await shell?.stop();
  });

  const leaderChip = (): ReturnType<Page['getByTestId']> => page.getByTestId('leader-name');
  const leaderName = async (): Promise<string> => ((await leaderChip().textContent()) ?? '').replace('leader', '').trim();

  it('stop the leader: shown stopped before the stop call answers, never as leader again; the new leader is shown; the sidebar leaves it', withShot('stop-leader', async () => {
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('connect-local-cluster').click();
    await page.getByTestId('conn-status').filter({ hasText: 'Local 3-node cluster' }).filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
    await page.getByTestId('nav-cluster').click();
    await leaderChip().filter({ hasText: 'leader local' }).waitFor({ timeout: 15_000 });
    // The member the connection uses leads: stopping it tests the sidebar too.
    const info = await shell.invoke('cluster:info', {});
    const active = (await shell.invoke('conn:status', {})).activeEndpoint!;
    const target = info.members.find((m) => m.clientUrls[0] === active)!.name;
    if ((await leaderName()) !== target) {
      await page.getByTestId(`make-leader-${target}`).click();
      await leaderChip().filter({ hasText: `leader ${target}` }).waitFor({ timeout: 15_000 });
    }
    await page.getByTestId('conn-status').filter({ hasText: active.replace(/^https?:\/\//, '') }).waitFor();
    // Writes so the chart of this connection climbs well above a fresh node's raft index.
    for (let i = 0; i < 150; i++) await shell.invoke('kv:put', { key: b64(`/cv/${i}`), value: b64('x') });

    // Hold the stop call's answer: the view must not need it to show the member stopped.
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    let answered = false;
    await page.route('**/api/invoke/cluster:local-stop', async (route: Route) => {
      const res = await route.fetch();
      await released;
      answered = true;
      await route.fulfill({ response: res });
    });
    await page.getByTestId(`stop-${target}`).click();
    await page.getByTestId('confirm-ok').click();
    await page.getByTestId(`health-${target}`).filter({ hasText: 'stopped' }).waitFor({ timeout: 15_000 });
    assert.equal(answered, false, 'shown stopped while the stop call had not answered');
    assert.notEqual(await page.getByTestId(`member-${target}`).getAttribute('data-leader'), 'true', 'a stopped member is not shown leading');
    await shot(page, 'cluster-view-stopped');
    // The new leader appears (pushed by main) while the stop call is still held.
    const next = await until(async () => {
      const t = await leaderName();
      return t.startsWith('local') && t !== target ? t : null;
    }, 20_000, 'a new leader');
    await page.getByTestId(`health-${next}`).filter({ hasText: 'healthy' }).waitFor();
    // The sidebar names a live member's endpoint, not the stopped one's.
    await until(async () => {
      const pill = (await page.getByTestId('conn-status').textContent()) ?? '';
      return !pill.includes(active.replace(/^https?:\/\//, '')) && /127\.0\.0\.1:\d+/.test(pill);
    }, 15_000, 'the sidebar on a live member');
    await shot(page, 'cluster-view-new-leader');
    release();
    // the held answer arrives: the button leaves "Stopping…"
    await page.getByTestId(`restart-${target}`).filter({ hasText: 'Restart' }).waitFor({ timeout: 15_000 });
    assert.ok(answered);
    await page.unroute('**/api/invoke/cluster:local-stop');
  }));

  it('switch connection: the charts show only the new connection\'s series', withShot('switch', async () => {
    const before = await shell.invoke('cluster:info', {});
    const localIndex = Math.max(...before.members.map((m) => (m.status && 'raftIndex' in m.status ? m.status.raftIndex : 0)));
    const charts = page.getByTestId('cluster-charts');
    await until(async () => Number(await charts.getAttribute('data-samples')) >= 2, 10_000, 'the local cluster\'s chart');
    await page.getByTestId('nav-connections').click();
    await page.getByTestId('connect-embedded').click();
    await page.getByTestId('conn-status').filter({ hasText: 'connected' }).filter({ hasNotText: 'Local 3-node' }).waitFor({ timeout: 30_000 });
    const status = await shell.invoke('conn:status', {});
    assert.equal(status.profileId, 'embedded');
    await page.getByTestId('nav-cluster').click();
    await page.getByTestId('local-note').waitFor({ state: 'detached' });
    await charts.and(page.locator(`[data-connection="${status.connectionId}"]`)).waitFor();
    await until(async () => Number(await charts.getAttribute('data-samples')) >= 3, 10_000, 'three samples of the embedded node');
    const embedded = await shell.invoke('cluster:info', {});
    const index = embedded.members[0].status && 'raftIndex' in embedded.members[0].status ? embedded.members[0].status.raftIndex : 0;
    assert.ok(index < localIndex, `the embedded node's index ${index} is below the cluster's ${localIndex}`);
    // Every point of the raft chart is the embedded node's: its max is at most the node's index now.
    const max = Number(/max ([\d,]+)/.exec((await page.getByTestId('chart-raft').textContent()) ?? '')?.[1].replace(/,/g, '') ?? NaN);
    assert.ok(max > 0 && max <= index, `chart max ${max} ≤ embedded index ${index}`);
    assert.equal(await charts.getAttribute('data-connection'), String(status.connectionId));
    await shot(page, 'cluster-view-switched');
  }));
});
