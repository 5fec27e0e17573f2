// Test harness: real etcd and etcdesk-node processes on free loopback ports,
// and an etcdctl runner, for side-by-side compatibility and crash tests.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, isAddrInUse } from '../support/listen-address';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

export function hasEtcd(): boolean {
  return fs.existsSync(ETCD_BIN) && fs.existsSync(ETCDCTL_BIN);
}

const created: string[] = [];
// test data dirs go when the test process exits (WAL segments are preallocated: 32 MiB a member)
process.on('exit', () => {
  if (process.env.ETCDESK_KEEP_TEST_DIRS) return;
  for (const d of created) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Server processes still running. A test that fails between starting a server
 * and stopping it (e.g. `Promise.all([startEtcd(), startEtcdesk()])` where one
 * start fails) would leave the other alive, and its open pipes keep the test
 * file's process from ever exiting: the whole suite hangs. In a test process
 * (the runner sets NODE_TEST_CONTEXT), whatever is left is killed after the
 * file's tests; outside one (benchmarks), at exit.
 */
const live = new Set<ChildProcess>();
const killLeft = (): void => {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  live.clear();
};
if (process.env.NODE_TEST_CONTEXT) after(killLeft);
process.on('exit', killLeft);

export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `etcdesk-${prefix}-`));
  created.push(d);
  return d;
}

export { freePort };

export interface ServerProc {
  kind: 'etcd' | 'etcdesk';
  proc: ChildProcess;
  /** host:port for etcdctl --endpoints */
  endpoint: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  name: string;
  output(): string;
  /** SIGKILL, no cleanup (crash). */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
}

export interface StartOpts {
  name?: string;
  dataDir?: string;
  clientPort?: number;
  peerPort?: number;
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** default: wait for /health to answer 200 */
  waitReady?: boolean;
  timeoutMs?: number;
  /** etcdesk only: another checkout's bin/etcdesk-node.mjs (benchmarks comparing a baseline) */
  bin?: string;
}

function waitExit(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

export function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A member's current revision, from its /metrics (etcd's and ours carry the same gauge). */
export async function currentRevision(clientUrl: string): Promise<number> {
  const r = await httpGet(`${clientUrl}/metrics`, 2000);
  const m = /^etcd_debugging_mvcc_current_revision (\d+)$/m.exec(r.body);
  if (!m) throw new Error(`${clientUrl}/metrics has no current revision`);
  return Number(m[1]);
}

/** Polls `fn` until it holds; throws after `ms`, naming what it waited for. */
export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitHealthy(clientUrl: string, timeoutMs: number, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`process exited with ${proc.exitCode} before it was ready`);
    try {
      const r = await httpGet(`${clientUrl}/health`, 500);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${clientUrl} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startProc(kind: 'etcd' | 'etcdesk', opts: StartOpts): Promise<ServerProc> {
  // ports we pick may be taken before the process binds them: pick again (a fresh data dir too,
  // since member ids derive from the peer URL)
  const picked = opts.clientPort === undefined && opts.peerPort === undefined && opts.dataDir === undefined && opts.waitReady !== false;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startProcOnce(kind, opts);
    } catch (e) {
      if (!picked || attempt >= 3 || !isAddrInUse(e)) throw e;
    }
  }
}

async function startProcOnce(kind: 'etcd' | 'etcdesk', opts: StartOpts): Promise<ServerProc> {
  const name = opts.name ?? 'default';
  const dataDir = opts.dataDir ?? tempDir(kind);
  const clientPort = opts.clientPort ?? (await freePort());
  const peerPort = opts.peerPort ?? (await freePort());
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    ...(opts.extraArgs ?? []),
  ];
  if (!args.includes('--initial-cluster')) args.push('--initial-cluster', `${name}=${peerUrl}`);
  if (kind === 'etcd') args.push('--logger', 'zap', '--log-outputs', 'stderr');
  const cmd = kind === 'etcd' ? ETCD_BIN : process.execPath;
  const fullArgs = kind === 'etcd' ? args : [opts.bin ?? path.join(REPO_ROOT, 'bin/etcdesk-node.mjs'), ...args];
  const env = { ...process.env, ...(kind === 'etcd' ? { ETCD_UNSUPPORTED_ARCH: '' } : {}), ...(opts.env ?? {}) };
  const proc = spawn(cmd, fullArgs, { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const sp: ServerProc = {
    kind,
    proc,
    endpoint: `127.0.0.1:${clientPort}`,
    clientUrl,
    peerUrl,
    dataDir,
    name,
    output: () => out,
    async kill() {
      proc.kill('SIGKILL');
      await waitExit(proc);
    },
    async stop() {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await waitExit(proc);
      clearTimeout(t);
    },
  };
  if (opts.waitReady !== false) {
    try {
      await waitHealthy(clientUrl, opts.timeoutMs ?? 20000, proc);
    } catch (e) {
      await sp.kill();
      throw new Error(`${kind} did not start: ${(e as Error).message}\n${out.slice(-3000)}`);
    }
  }
  return sp;
}

export const startEtcd = (opts: StartOpts = {}): Promise<ServerProc> => startProc('etcd', opts);
export const startEtcdesk = (opts: StartOpts = {}): Promise<ServerProc> => startProc('etcdesk', opts);

export interface CtlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs etcdctl (API v3) against one endpoint; stdin for interactive txn. */
export function etcdctl(endpoint: string, args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CtlResult> {
  return new Promise((resolve) => {
    const p = spawn(ETCDCTL_BIN, [`--endpoints=${endpoint}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3', ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 15000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ stdout, stderr, code: code ?? -1 });
    });
    // etcdctl may have exited before its stdin is written (a loaded machine): EPIPE there is no test failure
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.stdin ?? '');
  });
}

export function etcdctlSync(endpoint: string, args: string[]): CtlResult {
  const r = spawnSync(ETCDCTL_BIN, [`--endpoints=${endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'latin1' });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status ?? -1 };
}

/** Builds the shared Go load generator once (bench/.bin/etcdload) and returns its path. */
export async function ensureEtcdload(): Promise<string> {
  const out = path.join(REPO_ROOT, 'bench/.bin/etcdload');
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn('bash', [path.join(REPO_ROOT, '../shared/bench/etcdload/build.sh'), out], { stdio: 'ignore' });
    p.on('close', resolve);
  });
  if (code !== 0 || !fs.existsSync(out)) throw new Error('building the shared etcdload failed');
  return out;
}

export interface ClusterProcs {
  members: ServerProc[];
  /** --initial-cluster-token, for members that join later */
  token: string;
  /** comma-separated client endpoints, for etcdctl and etcdload */
  endpoints: string;
  /**
   * restarts member i on its data dir (after kill/stop), with extra flags for this start only;
   * waits for /health unless `wait` is false (a member with an alarm raised is never healthy)
   */
  restart(i: number, moreArgs?: string[], wait?: boolean, env?: NodeJS.ProcessEnv): Promise<ServerProc>;
  stop(): Promise<void>;
}

/** A three (or n) member cluster of real etcd or etcdesk-node processes on free loopback ports. */
export async function startCluster(kind: 'etcd' | 'etcdesk', n = 3, extraArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<ClusterProcs> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(kind, n, extraArgs, env);
    } catch (e) {
      // a port found free was taken before its member bound it: all new ports (ids derive from them)
      if (attempt >= 3 || !isAddrInUse(e)) throw e;
    }
  }
}

async function startClusterOnce(kind: 'etcd' | 'etcdesk', n: number, extraArgs: string[], env: NodeJS.ProcessEnv | undefined): Promise<ClusterProcs> {
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), peer: await freePort() })));
  const token = `tok-${process.pid}-${ports[0].client}`;
  const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const dirs = ports.map((_, i) => tempDir(`${kind}-m${i + 1}`));
  const startOne = (i: number, wait: boolean, moreArgs: string[] = [], moreEnv?: NodeJS.ProcessEnv): Promise<ServerProc> =>
    startProc(kind, {
      env: { ...env, ...moreEnv },
      name: `m${i + 1}`,
      dataDir: dirs[i],
      clientPort: ports[i].client,
      peerPort: ports[i].peer,
      waitReady: wait,
      extraArgs: ['--initial-cluster', initial, '--initial-cluster-token', token, '--initial-cluster-state', 'new', ...extraArgs, ...moreArgs],
    });
  const members = await Promise.all(ports.map((_, i) => startOne(i, false)));
  try {
    await Promise.all(members.map((m) => waitHealthy(m.clientUrl, 30_000, m.proc)));
  } catch (e) {
    await Promise.all(members.map((m) => m.kill()));
    throw new Error(`${kind} cluster did not start: ${(e as Error).message}\n${members.map((m) => `--- ${m.name}\n${m.output().slice(-1500)}`).join('\n')}`);
  }
  const c: ClusterProcs = {
    members,
    token,
    endpoints: members.map((m) => m.endpoint).join(','),
    async restart(i: number, moreArgs: string[] = [], wait = true, moreEnv?: NodeJS.ProcessEnv) {
      const m = await startOne(i, false, moreArgs, moreEnv);
      c.members[i] = m;
      if (wait) await waitHealthy(m.clientUrl, 30_000, m.proc);
      return m;
    },
    async stop() {
      await Promise.all(c.members.map((m) => m.stop()));
    },
  };
  return c;
}

/** Index of the member that leads, per `etcdctl endpoint status` (-1 when none answers as leader). */
export async function findLeader(c: ClusterProcs, among: number[] = c.members.map((_, i) => i)): Promise<number> {
  for (const i of among) {
    const r = await etcdctl(c.members[i].endpoint, ['endpoint', 'status', '-w', 'json'], { timeoutMs: 3000 });
    if (r.code !== 0) continue;
    try {
      const st = JSON.parse(r.stdout) as { Status: { header: { member_id: number | string }; leader: number | string } }[];
      if (String(st[0].Status.leader) === String(st[0].Status.header.member_id)) return i;
    } catch {
      // not JSON: not answering
    }
  }
  return -1;
}

/**
 * Repeats an etcdctl command while it fails with `unhealthy cluster` (etcd's
 * strict reconfiguration check wants peers connected for 5 s first).
 */
export async function etcdctlUntil(endpoint: string, args: string[], timeoutMs = 20_000): Promise<CtlResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await etcdctl(endpoint, args, { timeoutMs: 15_000 });
    if (r.code === 0 || !/unhealthy cluster/.test(r.stderr) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}
