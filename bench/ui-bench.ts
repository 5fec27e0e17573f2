// The app stays responsive while its nodes work: the UI's IPC round trip
// (`kv:get` through main's dispatch, the one way in for Electron's IPC and the
// shell's POST, paced as a UI calls: one at a time, every 10 ms; and conn:status, which main answers alone) measured idle
// and while etcdload puts with 64 clients against the embedded node, with the
// node in its worker thread (the app) and, for comparison, on main's own
// thread (as before). Then the cluster view under the same put load on the
// local three-member cluster: stop the leader as the UI does and time the
// pushes (member stopped; new leader shown) against when a member first
// reports the new leader (probed every 50 ms).
//
// `npm run bench -- --ui` or alone: node --import tsx bench/ui-bench.ts
// Env: UI_BENCH_TOTAL (puts per load run, default 30000); ETCDLOAD (the generator, default bench/.bin/etcdload);
// UI_BENCH_HOSTS (rows to take, comma list of 'worker thread', 'main thread', 'etcd 3.4': Debian's etcd as the
// embedded engine, the yardstick); UI_BENCH_NO_FAILOVER=1 skips the cluster view row.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EtcdClient, startNode } from '../node-core/index';
import type { ClusterInfo } from '../electron/contract/index';
import { createAppCore } from '../electron/main/app-core';
import { ConnectionManager } from '../electron/main/connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from '../electron/main/handlers';
import { freePort, type NodeEngine } from '../electron/main/node-host';
import { ProfileStore } from '../electron/main/profile-store';
import { SessionSecrets } from '../electron/main/secrets';
import { REPO_ROOT } from '../node-core/testing/processes';

const TOTAL = Number(process.env.UI_BENCH_TOTAL ?? '30000');
const PACE_MS = 20;
const ctx: HandlerContext = { clientId: 'bench', emit: () => undefined };

interface LoadResult {
  qps: number;
  p99_ms: number;
  errors: number;
}

/** etcdload in the background; resolves with its summary when it ends. */
function loadInBackground(bin: string, endpoints: string[], total = TOTAL): Promise<LoadResult> {
  const eps = endpoints.map((u) => u.replace(/^https?:\/\//, '')).join(',');
  const p = spawn(bin, ['-endpoints', eps, '-op', 'put', '-clients', '64', '-total', String(total), '-timeout', '240s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    p.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult);
      } catch {
        reject(new Error(`etcdload failed (${code}): ${out}\n${err}`));
      }
    }),
  );
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Round trips one at a time every PACE_MS until `until` settles (or n rounds
 * without it): kv:get (reaches the node) and conn:status (main alone: what a
 * busy main thread costs every call).
 */
async function roundTrips(handlers: Handlers, until: Promise<unknown> | null, n = 250): Promise<{ get: number[]; status: number[] }> {
  let done = false;
  void until?.then(
    () => (done = true),
    () => (done = true),
  );
  const key = Buffer.from('ui-bench/key').toString('base64');
  const out = { get: [] as number[], status: [] as number[] };
  // A call arrives as an event (an IPC message, an HTTP request): main answers it once its loop gets to it.
  const arrive = (): Promise<void> => new Promise((r) => setImmediate(r));
  for (let i = 0; until ? !done : i < n; i++) {
    let t = performance.now();
    await arrive();
    const r = await dispatch(handlers, 'kv:get', { key }, ctx);
    out.get.push(performance.now() - t);
    if (!r.ok) throw new Error(`kv:get failed: ${r.error.message}`);
    await sleep(PACE_MS / 2);
    t = performance.now();
    await arrive();
    await dispatch(handlers, 'conn:status', {}, ctx);
    out.status.push(performance.now() - t);
    await sleep(PACE_MS / 2);
  }
  return out;
}

/** The embedded node on main's own thread: how the app hosted it before worker threads. */
function mainThreadEngine(): NodeEngine {
  return {
    name: 'node-core (main thread)',
    async startSingle(dataDir) {
      const c = `http://127.0.0.1:${await freePort()}`;
      const p = `http://127.0.0.1:${await freePort()}`;
      const node = await startNode({ name: 'etcdesk', dataDir, listenClientUrls: [c], advertiseClientUrls: [c], listenPeerUrls: [p], initialAdvertisePeerUrls: [p], initialCluster: `etcdesk=${p}` });
      return { clientUrls: node.clientUrls, stop: () => node.stop() };
    },
  };
}

type IpcHost = 'worker thread' | 'main thread' | 'etcd 3.4';
const IPC_HOSTS: readonly IpcHost[] = ['worker thread', 'main thread', 'etcd 3.4'];

interface IpcRow {
  host: IpcHost;
  idleP50: number;
  idleP99: number;
  loadP50: number;
  loadP99: number;
  loadMax: number;
  calls: number;
  statusIdleP99: number;
  statusLoadP99: number;
  putQps: number;
  putP99: number;
}

async function ipcRow(bin: string, host: IpcHost): Promise<IpcRow> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-ui-bench-'));
  let handlers: Handlers;
  let manager: ConnectionManager;
  const engineWas = process.env.ETCDESK_ENGINE;
  if (host !== 'main thread') {
    // the yardstick: Debian's etcd 3.4 as the embedded engine, behind the same main and dispatch
    if (host === 'etcd 3.4') process.env.ETCDESK_ENGINE = 'etcd';
    const core = createAppCore({ dataDir, mode: 'shell', version: 'bench', secrets: new SessionSecrets(), broadcast: () => undefined, chooseSnapshotPath: async () => null });
    handlers = core.handlers;
    manager = core.manager;
    if (engineWas === undefined) delete process.env.ETCDESK_ENGINE;
    else process.env.ETCDESK_ENGINE = engineWas;
  } else {
    const secrets = new SessionSecrets();
    const profiles = new ProfileStore(path.join(dataDir, 'connections.json'), secrets, false);
    manager = new ConnectionManager({ dataDir, engine: mainThreadEngine(), profiles, onStatus: () => undefined });
    const info = { mode: 'shell' as const, version: 'bench', platform: process.platform, features: { localCluster: false, embeddedEngine: 'main thread' } };
    handlers = createHandlers({ manager, profiles, info, broadcast: () => undefined, chooseSnapshotPath: async () => null });
  }
  try {
    const s = await manager.connect('embedded');
    if (s.state !== 'connected') throw new Error(`embedded: ${s.error?.message}`);
    await dispatch(handlers, 'kv:put', { key: Buffer.from('ui-bench/key').toString('base64'), value: Buffer.from('v').toString('base64') }, ctx);
    const idle = await roundTrips(handlers, null, 250);
    // etcd serves the same puts ~3x faster: give it as many to keep the load on as long
    const load = loadInBackground(bin, s.endpoints, host === 'etcd 3.4' ? TOTAL * 3 : TOTAL);
    const busy = await roundTrips(handlers, load);
    const r = await load;
    return {
      host,
      idleP50: quantile(idle.get, 0.5),
      idleP99: quantile(idle.get, 0.99),
      loadP50: quantile(busy.get, 0.5),
      loadP99: quantile(busy.get, 0.99),
      loadMax: Math.max(...busy.get),
      calls: busy.get.length,
      statusIdleP99: quantile(idle.status, 0.99),
      statusLoadP99: quantile(busy.status, 0.99),
      putQps: r.qps,
      putP99: r.p99_ms,
    };
  } finally {
    await manager.shutdown();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

interface FailoverRow {
  stoppedMs: number;
  electedMs: number;
  shownMs: number;
}

/** Local cluster under put load: stop the leader as the UI does; when is it shown stopped, and the new leader shown? */
async function failoverRow(bin: string): Promise<FailoverRow> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-ui-bench-'));
  const core = createAppCore({ dataDir, mode: 'shell', version: 'bench', secrets: new SessionSecrets(), broadcast: () => undefined, chooseSnapshotPath: async () => null, clusterBasePort: 0 });
  const probes: EtcdClient[] = [];
  try {
    const s = await core.manager.connect('local-cluster');
    if (s.state !== 'connected') throw new Error(`local cluster: ${s.error?.message}`);
    const pushes: { t: number; info: ClusterInfo }[] = [];
    let waiter: (() => void) | null = null;
    core.manager.startClusterMonitor('bench', (info) => {
      pushes.push({ t: performance.now(), info });
      waiter?.();
    });
    const next = async (pred: (i: ClusterInfo) => boolean, from: number): Promise<number> => {
      for (;;) {
        const hit = pushes.slice(from).find((p) => pred(p.info));
        if (hit) return hit.t;
        await new Promise<void>((r) => (waiter = r));
      }
    };
    await next((i) => i.members.some((m) => m.isLeader), 0);
    const load = loadInBackground(bin, s.endpoints, TOTAL * 2);
    await sleep(3000); // the load is on
    const last = pushes[pushes.length - 1].info;
    const leader = last.members.find((m) => m.isLeader) ?? last.members[0];
    const index = last.local!.find((x) => x.clientUrl === leader.clientUrls[0])!.index;
    const others = last.members.filter((m) => m.id !== leader.id);
    // When a member first reports a new leader: Status every 50 ms on the two left, 200 ms deadline.
    probes.push(...others.map((m) => new EtcdClient({ endpoints: m.clientUrls, timeoutMs: 200 })));
    let elected = 0;
    const from = pushes.length;
    const t0 = performance.now();
    void dispatch(core.handlers, 'cluster:local-stop', { index }, ctx);
    const probing = (async () => {
      while (!elected && performance.now() - t0 < 30_000) {
        const ls = await Promise.all(probes.map((c) => c.status().then((x) => x.leader, () => 0n)));
        if (ls.some((l) => l && l.toString() !== leader.id)) elected = performance.now();
        else await sleep(50);
      }
    })();
    const stopped = await next((i) => i.members.some((m) => m.id === leader.id && !!m.status && 'error' in m.status), from);
    const shown = await next((i) => i.members.some((m) => m.isLeader && m.id !== leader.id), from);
    await probing;
    if (process.env.UI_BENCH_TRACE) {
      for (const p of pushes.slice(from)) {
        const ms = p.info.members.map((m) => `${m.name}${m.isLeader ? '*' : ''}:${m.status && 'raftTerm' in m.status ? `t${m.status.raftTerm}` : m.status && 'error' in m.status ? m.status.error.slice(0, 40) : '?'}`);
        process.stderr.write(`  +${(p.t - t0).toFixed(0)} ms ${ms.join(' ')}\n`);
      }
    }
    await load.catch(() => undefined);
    return { stoppedMs: stopped - t0, electedMs: elected - t0, shownMs: shown - t0 };
  } finally {
    for (const c of probes) c.close();
    await core.shutdown();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runUiBench(bin = process.env.ETCDLOAD ?? path.join(REPO_ROOT, 'bench/.bin/etcdload')): Promise<string> {
  const rows: IpcRow[] = [];
  // UI_BENCH_HOSTS: a comma list of rows to take (default all three)
  const hosts = process.env.UI_BENCH_FAILOVER_ONLY ? [] : IPC_HOSTS.filter((h) => !process.env.UI_BENCH_HOSTS || process.env.UI_BENCH_HOSTS.split(',').includes(h));
  for (const host of hosts) {
    const r = await ipcRow(bin, host);
    process.stderr.write(
      `ui ipc, node in ${host}: kv:get idle p99 ${r.idleP99.toFixed(1)} ms; under put/64 p50 ${r.loadP50.toFixed(1)} p99 ${r.loadP99.toFixed(1)} max ${r.loadMax.toFixed(0)} ms (${r.calls} calls, ${r.putQps.toFixed(0)} puts/s); conn:status p99 idle ${r.statusIdleP99.toFixed(1)} under load ${r.statusLoadP99.toFixed(1)} ms\n`,
    );
    rows.push(r);
  }
  const f = process.env.UI_BENCH_NO_FAILOVER ? null : await failoverRow(bin);
  if (f) process.stderr.write(`cluster view under put/64: stopped shown ${f.stoppedMs.toFixed(0)} ms, new leader elected ~${f.electedMs.toFixed(0)} ms, shown ${f.shownMs.toFixed(0)} ms after the stop\n`);
  const label = (h: IpcHost): string => (h === 'worker thread' ? 'embedded node in a worker thread (the app)' : h === 'main thread' ? 'embedded node in a main thread (before)' : 'etcd 3.4 as the embedded engine (yardstick)');
  const lines = [
    '| UI round trip through main\'s dispatch (one call at a time, every 10 ms) | `kv:get` idle p50 ms | idle p99 ms | under put/64 p50 ms | **under put/64 p99 ms** | max ms | `conn:status` (main only) p99 idle / under put/64 ms | puts/s meanwhile (etcdload p99 ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${label(r.host)} | ${r.idleP50.toFixed(1)} | ${r.idleP99.toFixed(1)} | ${r.loadP50.toFixed(1)} | ${r.loadP99.toFixed(1)} | ${r.loadMax.toFixed(0)} | ${r.statusIdleP99.toFixed(1)} / ${r.statusLoadP99.toFixed(1)} | ${r.putQps.toFixed(0)} (${r.putP99.toFixed(0)}) |`,
    ),
  ];
  if (f) {
    lines.push(
      '',
      '| cluster view, local cluster under put/64, leader stopped as the UI does | ms after the stop |',
      '|---|---:|',
      `| member shown stopped (cluster:changed push) | ${f.stoppedMs.toFixed(0)} |`,
      `| a member first reports the new leader (Status probed every 50 ms) | ${f.electedMs.toFixed(0)} |`,
      `| new leader shown (push) | ${f.shownMs.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runUiBench().then(
    (t) => process.stdout.write(t + '\n'),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
