// e2e harness: the browser shell in a child process (hosting the embedded
// node), Debian's Chromium through playwright-core, and etcdctl for checking
// results outside the UI.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import type { Channel, Req, Res, Envelope } from '../electron/contract/index';

const run = promisify(execFile);
export const root = path.resolve(import.meta.dirname, '..');
export const artifacts = path.join(root, 'e2e-artifacts');
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

export interface Shell {
  url: string;
  token: string;
  port: number;
  endpoint: string;
  dataDir: string;
  invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>>;
  /** keepData: leave the data folder for a restart on it (startShell({ dataDir })). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/** dataDir: start on an existing data folder (an app restart); default a fresh one. */
export async function startShell(opts: { dataDir?: string } = {}): Promise<Shell> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-e2e-'));
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'electron/shell/main.ts'), '--port', '0', '--data-dir', dataDir], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    // the embedded node-core engine by default (the product); ETCDESK_ENGINE=etcd runs the same
    // specs against Debian's etcd binary, to tell a UI bug from a node bug.
    // The local three-node cluster on free ports, never the fixed 23790.. a developer's cluster may hold.
    env: { ...process.env, ETCDESK_ENGINE: process.env.ETCDESK_ENGINE ?? 'node-core', ETCDESK_CLUSTER_BASE_PORT: process.env.ETCDESK_CLUSTER_BASE_PORT ?? '0' },
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  let url = '';
  while (!url) {
    const m = /Etcdesk shell: (\S+)/.exec(out);
    if (m) url = m[1];
    else if (proc.exitCode !== null) throw new Error(`shell exited: ${out}`);
    else if (Date.now() > deadline) throw new Error(`shell did not start: ${out}`);
    else await sleep(100);
  }
  const token = url.split('token=')[1];
  const port = Number(new URL(url).port);
  const invoke = async <C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/invoke/${channel}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-etcdesk-token': token },
      body: JSON.stringify(req),
    });
    const env = (await r.json()) as Envelope<Res<C>>;
    if (!env.ok) throw new Error(env.error.message);
    return env.value;
  };
  let endpoint = '';
  while (!endpoint) {
    const s = await invoke('conn:status', {});
    if (s.state === 'connected') endpoint = s.endpoints[0];
    else if (s.state === 'error') throw new Error(`embedded node failed: ${s.error?.message}`);
    else if (Date.now() > deadline) throw new Error('embedded node did not come up');
    else await sleep(100);
  }
  return {
    url,
    token,
    port,
    endpoint,
    dataDir,
    invoke,
    async stop(o = {}) {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(t);
      }
      if (!o.keepData) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

export async function openApp(browser: Browser, shell: Shell): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1320, height: 820 } });
  page.on('pageerror', (e) => console.error('pageerror:', e.message));
  if (process.env.E2E_TRACE) page.on('request', (r) => r.url().includes('/api/invoke/') && console.error('invoke', r.url().split('/api/invoke/')[1], r.postData()?.slice(0, 200)));
  page.on('console', (m) => {
    if (m.type() === 'warning' || m.type() === 'error') console.error(`browser ${m.type()}: ${m.text()}`);
  });
  await page.goto(shell.url);
  await page.getByTestId('conn-state').filter({ hasText: 'connected' }).waitFor();
  return page;
}

/** etcdctl against a target: the shell's embedded node, or any `{ endpoint }` (comma-separated endpoints too). */
export async function etcdctl(shell: Pick<Shell, 'endpoint'>, args: string[], opts: { user?: string; input?: string } = {}): Promise<string> {
  const full = ['--endpoints', shell.endpoint, ...(opts.user ? ['--user', opts.user] : []), ...args];
  if (opts.input !== undefined) {
    return new Promise((resolve, reject) => {
      const p = spawn('etcdctl', full, { env: { ...process.env, ETCDCTL_API: '3' } });
      let o = '';
      let e = '';
      p.stdout.on('data', (d: Buffer) => (o += d.toString()));
      p.stderr.on('data', (d: Buffer) => (e += d.toString()));
      p.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(e || o))));
      p.stdin.end(opts.input);
    });
  }
  const { stdout } = await run('etcdctl', full, { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

/** etcdctl that may fail: returns stdout+stderr and whether it succeeded. */
export async function etcdctlTry(shell: Pick<Shell, 'endpoint'>, args: string[], user?: string): Promise<{ ok: boolean; out: string }> {
  try {
    return { ok: true, out: await etcdctl(shell, args, { user }) };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { ok: false, out: err.stderr || err.message };
  }
}

/** Connects to the app's own local three-member cluster from the Connections view, as a user does. */
export async function connectLocalCluster(page: Page): Promise<void> {
  await page.getByTestId('nav-connections').click();
  await page.getByTestId('connect-local-cluster').click();
  await page.getByTestId('conn-status').filter({ hasText: 'Local 3-node cluster' }).filter({ hasText: 'connected' }).waitFor({ timeout: 30_000 });
}

/** Adds a remote profile (name, comma-separated endpoints) in the Connections view and connects to it. */
export async function connectRemote(page: Page, name: string, endpoints: string): Promise<void> {
  await page.getByTestId('nav-connections').click();
  await page.getByTestId('new-connection').click();
  await page.getByTestId('conn-name').fill(name);
  await page.getByTestId('conn-endpoints').fill(endpoints);
  await page.getByTestId('conn-save-connect').click();
  await page.getByTestId('conn-status').filter({ hasText: name }).filter({ hasText: 'connected' }).waitFor({ timeout: 20_000 });
}

/** In the Keys view, lists `prefix` (its last key `last` shown), turns on Select and picks `names` under it. */
export async function pickKeys(page: Page, prefix: string, last: string, names: string[]): Promise<void> {
  await page.getByTestId('nav-keys').click();
  await page.getByTestId('key-search').fill(prefix);
  await page.locator(`[data-testid=keys-status][data-prefix="${prefix}"]`).waitFor();
  await page.locator(`[data-key="${prefix}${last}"]`).waitFor();
  await page.getByTestId('select-mode').click();
  for (const k of names) await page.locator(`[data-key="${prefix}${k}"]`).click();
  await page.getByTestId('picked-count').filter({ hasText: `${names.length} keys selected` }).waitFor();
}

/** Backups view: "Back up now" for a profile; resolves with the run's row once it shows verified. */
export async function backUpNow(page: Page, profileId: string): Promise<Locator> {
  await page.getByTestId('nav-backups').click();
  await page.getByTestId('sched-profile').selectOption(profileId);
  await page.getByTestId('backup-run-now').click();
  const row = page.locator('[data-testid=backup-run][data-status=verified]').first();
  await row.waitFor({ timeout: 60_000 });
  return row;
}

export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

/**
 * A test body that leaves a screenshot (FAILED-<prefix><name>.png) when it
 * fails: `const withShot = shotOnFailure('backups-', () => page);` then
 * `it('…', withShot('name', async () => { … }))`.
 */
export function shotOnFailure(prefix: string, page: () => Page | undefined): (name: string, fn: () => Promise<void>) => () => Promise<void> {
  return (name, fn) => async () => {
    try {
      await fn();
    } catch (e) {
      const p = page();
      if (p) await shot(p, `FAILED-${prefix}${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60)}`).catch(() => undefined);
      throw e;
    }
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(fn: () => Promise<T | null | undefined | false>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
