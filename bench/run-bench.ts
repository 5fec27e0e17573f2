// `npm run bench`: the shared Go load generator (official clientv3) against
// etcdesk-node and a real etcd 3.4 started the same way on this machine, one
// after the other in one run; prints each figure with the ratio ours/etcd and
// records the table in bench/RESULTS.md.
//
// `npm run bench -- --probes` runs the serving ceiling probes instead (bench/probes.ts).
// `npm run bench -- --ui` runs the app's responsiveness rows instead (bench/ui-bench.ts).
//
// Env: BENCH_SCALE (default 1) multiplies request counts; BENCH_ONLY=substr
// runs the matching rows only; BENCH_NO_WRITE=1 leaves RESULTS.md alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startCluster, startEtcd, startEtcdesk, type ServerProc } from '../node-core/testing/processes';
import { runWatchBench, type WatchBenchResult } from './watch-bench';
import { runAuthBench, type AuthBenchRow } from './auth-bench';
import { runProbes } from './probes';
import { runUiBench } from './ui-bench';

interface LoadResult {
  op: string;
  clients: number;
  total: number;
  errors: number;
  qps: number;
  p50_ms: number;
  p99_ms: number;
  first_error?: string;
}

interface Workload {
  name: string;
  args: string[];
}

interface Scenario {
  name: string;
  start(kind: 'etcd' | 'etcdesk'): Promise<{ endpoints: string; stop(): Promise<void> }>;
  workloads: Workload[];
}

const scale = Number(process.env.BENCH_SCALE ?? '1');
const only = process.env.BENCH_ONLY;
const n = (x: number): string => String(Math.max(100, Math.round(x * scale)));
const LOAD = path.join(REPO_ROOT, 'bench/.bin/etcdload');

function ensureLoadGenerator(): void {
  if (fs.existsSync(LOAD)) return;
  fs.mkdirSync(path.dirname(LOAD), { recursive: true });
  const r = spawnSync('bash', [path.join(REPO_ROOT, '../shared/bench/etcdload/build.sh'), LOAD], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('building etcdload failed');
}

function runLoad(endpoints: string, args: string[]): LoadResult {
  const r = spawnSync(LOAD, ['-endpoints', endpoints, ...args], { encoding: 'utf8', timeout: 300_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as LoadResult;
  } catch {
    throw new Error(`etcdload failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

const single = (start: (o: object) => Promise<ServerProc>): Promise<{ endpoints: string; stop(): Promise<void> }> =>
  start({ extraArgs: ['--log-level', 'warn'] }).then((p) => ({ endpoints: p.endpoint, stop: () => p.stop() }));

const scenarios: Scenario[] = [
  {
    name: 'single member',
    start: (kind) => single(kind === 'etcd' ? startEtcd : startEtcdesk),
    workloads: [
      { name: 'put, 1 client', args: ['-op', 'put', '-clients', '1', '-total', n(3000)] },
      { name: 'put, 16 clients', args: ['-op', 'put', '-clients', '16', '-total', n(20000)] },
      { name: 'put, 64 clients', args: ['-op', 'put', '-clients', '64', '-total', n(40000)] },
      { name: 'range (linearizable), 64 clients', args: ['-op', 'range', '-clients', '64', '-total', n(60000)] },
      { name: 'range (serializable), 64 clients', args: ['-op', 'range-serializable', '-clients', '64', '-total', n(60000)] },
      { name: 'txn-put, 64 clients', args: ['-op', 'txn-put', '-clients', '64', '-total', n(30000)] },
    ],
  },
  {
    name: 'three members',
    start: async (kind) => {
      const c = await startCluster(kind, 3, ['--log-level', 'warn']);
      return { endpoints: c.endpoints, stop: () => c.stop() };
    },
    workloads: [
      { name: 'put, 64 clients', args: ['-op', 'put', '-clients', '64', '-conns', '3', '-total', n(40000)] },
      { name: 'range (linearizable), 64 clients', args: ['-op', 'range', '-clients', '64', '-conns', '3', '-total', n(60000)] },
      { name: 'range (serializable), 64 clients', args: ['-op', 'range-serializable', '-clients', '64', '-conns', '3', '-total', n(60000)] },
    ],
  },
];

interface Row {
  scenario: string;
  workload: string;
  etcd?: LoadResult;
  ours?: LoadResult;
}

async function main(): Promise<void> {
  ensureLoadGenerator();
  if (process.argv.includes('--probes')) {
    process.stdout.write((await runProbes(LOAD)) + '\n');
    return;
  }
  if (process.argv.includes('--ui')) {
    process.stdout.write((await runUiBench(LOAD)) + '\n');
    return;
  }
  const rows: Row[] = [];
  for (const sc of scenarios) {
    const wl = sc.workloads.filter((w) => !only || `${sc.name} ${w.name}`.includes(only));
    if (!wl.length) continue;
    const scRows = wl.map((w) => ({ scenario: sc.name, workload: w.name }) as Row);
    for (const kind of ['etcdesk', 'etcd'] as const) {
      const srv = await sc.start(kind);
      try {
        // warm-up: JIT and connection setup should not count
        runLoad(srv.endpoints, ['-op', 'put', '-clients', '16', '-total', '3000']);
        wl.forEach((w, i) => {
          const r = runLoad(srv.endpoints, w.args);
          if (kind === 'etcd') scRows[i].etcd = r;
          else scRows[i].ours = r;
          process.stderr.write(`${kind.padEnd(7)} ${sc.name} / ${w.name}: ${r.qps.toFixed(0)} qps p99 ${r.p99_ms} ms${r.errors ? ` errors ${r.errors}` : ''}\n`);
        });
      } finally {
        await srv.stop();
      }
    }
    rows.push(...scRows);
  }
  // watch fan-out: 10,000 watchers on one prefix (its own driver: etcdload has no watch op)
  const watchRows: { name: string; etcd?: WatchBenchResult; ours?: WatchBenchResult }[] = [];
  for (const w of [
    { name: '10,000 watchers, 20 writes/s', opts: { watchers: 10000, connections: 4, writes: Math.round(200 * scale), writesPerSec: 20 } },
    { name: '10,000 watchers, unpaced', opts: { watchers: 10000, connections: 4, writes: Math.round(200 * scale) } },
  ]) {
    if (only && !`watch ${w.name}`.includes(only)) continue;
    const row: (typeof watchRows)[number] = { name: w.name };
    row.ours = await runWatchBench('etcdesk', w.opts);
    row.etcd = await runWatchBench('etcd', w.opts);
    process.stderr.write(`watch ${w.name}: etcdesk ${row.ours.eventsPerSec.toFixed(0)} ev/s p99 ${row.ours.p99Ms} ms; etcd ${row.etcd.eventsPerSec.toFixed(0)} ev/s p99 ${row.etcd.p99Ms} ms\n`);
    watchRows.push(row);
  }
  // auth on vs off on our own node (etcdload has no user/password option: a grpc-js driver for both)
  let authRows: AuthBenchRow[] = [];
  if (!only || 'auth'.includes(only) || only.includes('auth')) authRows = await runAuthBench(Math.round(20000 * scale));
  let table = render(rows);
  if (authRows.length) {
    const get = (op: string, auth: boolean): AuthBenchRow | undefined => authRows.find((r) => r.op === op && r.auth === auth);
    table += '\n\n| etcdesk, 64 in flight | auth off qps | auth on (simple token) qps | ratio | auth off p99 ms | auth on p99 ms |\n|---|---:|---:|---:|---:|---:|\n';
    table += (['put', 'range'] as const)
      .map((op) => {
        const off = get(op, false)!;
        const on = get(op, true)!;
        return `| ${op} | ${off.qps.toFixed(0)} | ${on.qps.toFixed(0)} | ${(on.qps / off.qps).toFixed(2)}x | ${off.p99Ms.toFixed(2)} | ${on.p99Ms.toFixed(2)} |`;
      })
      .join('\n');
  }
  if (watchRows.length) {
    const f = (x: number | undefined, d = 0): string => (x === undefined ? '-' : x.toFixed(d));
    table += '\n\n| watch | etcd events/s | etcdesk events/s | ratio | etcd p99 ms | etcdesk p99 ms | p99 ratio |\n|---|---:|---:|---:|---:|---:|---:|\n';
    table += watchRows
      .map((r) => `| ${r.name} | ${f(r.etcd?.eventsPerSec)} | ${f(r.ours?.eventsPerSec)} | ${f(r.ours && r.etcd ? r.ours.eventsPerSec / r.etcd.eventsPerSec : undefined, 2)}x | ${f(r.etcd?.p99Ms, 1)} | ${f(r.ours?.p99Ms, 1)} | ${f(r.ours && r.etcd ? r.ours.p99Ms / r.etcd.p99Ms : undefined, 2)}x |`)
      .join('\n');
  }
  process.stdout.write(table + '\n');
  if (!process.env.BENCH_NO_WRITE && !only) {
    const head = [
      '# Benchmark results',
      '',
      `Run by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, etcd 3.4.23 from Debian.`,
      'The load generator is the shared `etcdload` (official Go clientv3, one gRPC connection); both servers run with',
      'default flags on loopback, fsync on, one after the other. Ratio = ours / etcd (qps: higher is better; p99: lower is better).',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(REPO_ROOT, 'bench/RESULTS.md'), head + table + '\n');
  }
}

function render(rows: Row[]): string {
  const f = (x: number | undefined, d = 0): string => (x === undefined ? '-' : x.toFixed(d));
  const out = [
    '| scenario | workload | etcd qps | etcdesk qps | qps ratio | etcd p99 ms | etcdesk p99 ms | p99 ratio |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const qr = r.etcd && r.ours ? r.ours.qps / r.etcd.qps : undefined;
    const pr = r.etcd && r.ours ? r.ours.p99_ms / r.etcd.p99_ms : undefined;
    out.push(
      `| ${r.scenario} | ${r.workload} | ${f(r.etcd?.qps)} | ${f(r.ours?.qps)} | ${f(qr, 2)}x | ${f(r.etcd?.p99_ms, 2)} | ${f(r.ours?.p99_ms, 2)} | ${f(pr, 2)}x |`,
    );
  }
  return out.join('\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
