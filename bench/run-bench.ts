// `npm run bench`: the shared Go load generator (official clientv3) against
// etcdesk-node and a real etcd 3.4 started the same way on this machine,
// alternating within one run (BENCH_ROUNDS rounds, default 3, the order
// reversed every other round; medians); prints each figure with the ratio
// ours/etcd and updates the sections it measured in bench/RESULTS.md,
// leaving every other section (and unmeasured rows of its tables) alone.
//
// `npm run bench -- --probes` runs the serving ceiling probes instead (bench/probes.ts).
// `npm run bench -- --ui` runs the app's responsiveness rows instead (bench/ui-bench.ts).
//
// `--rows='a;b'` (or env BENCH_ONLY='a;b') runs only the rows whose name
// contains one of the substrings (';' between them: names hold commas): load
// rows are named "<scenario> <workload>" (e.g. "single member put, 64",
// "three members range"); the other rows are "check perf", "watch ...",
// "auth" and "memory". BENCH_SCALE (default 1)
// multiplies request counts; BENCH_NO_WRITE=1 leaves RESULTS.md alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, etcdctl, startCluster, startEtcd, startEtcdesk, type ServerProc } from '../node-core/testing/processes';
import { runWatchBench, type WatchBenchResult } from './watch-bench';
import { runAuthBench, type AuthBenchRow } from './auth-bench';
import { runProbes } from './probes';
import { runUiBench } from './ui-bench';
import { renderMemoryTable, runMemoryBench, writeMemoryResults } from './memory-bench';

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

/** A started server (or cluster): its endpoints and process ids (for their CPU time). */
interface Started {
  endpoints: string;
  pids: number[];
  stop(): Promise<void>;
}

interface Scenario {
  name: string;
  start(kind: 'etcd' | 'etcdesk'): Promise<Started>;
  workloads: Workload[];
}

const scale = Number(process.env.BENCH_SCALE ?? '1');
const rowsArg = process.argv.find((a) => a.startsWith('--rows='))?.slice('--rows='.length) ?? process.env.BENCH_ONLY;
const wanted = rowsArg ? rowsArg.split(';').map((x) => x.trim()).filter(Boolean) : undefined;
const selected = (name: string): boolean => !wanted || wanted.some((w) => name.includes(w));
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'));
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

const single = (start: (o: object) => Promise<ServerProc>): Promise<Started> =>
  start({ extraArgs: ['--log-level', 'warn'] }).then((p) => ({ endpoints: p.endpoint, pids: [p.proc.pid!], stop: () => p.stop() }));

/** user + system CPU seconds of these processes so far (Linux /proc, all threads); the CPU a request costs holds up on a shared machine far better than qps. */
function cpuSeconds(pids: number[]): number {
  let t = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    t += (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  }
  return t;
}

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
      return { endpoints: c.endpoints, pids: c.members.map((m) => m.proc.pid!), stop: () => c.stop() };
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
  etcd: LoadResult[];
  ours: LoadResult[];
  /** server CPU µs per request, per round */
  etcdCpu: number[];
  oursCpu: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const RESULTS = path.join(REPO_ROOT, 'bench/RESULTS.md');
const today = (): string => new Date().toISOString().slice(0, 10);

/** Replaces the section under `heading` (up to the next `## `) or appends it; the rest of the file stays. */
export function replaceSection(text: string, heading: string, section: string): string {
  const at = text.startsWith(heading + '\n') ? 0 : text.indexOf('\n' + heading + '\n') + 1;
  if (at <= 0 && !text.startsWith(heading + '\n')) return `${text.replace(/\n*$/, '')}\n\n${section.replace(/\n*$/, '')}\n`;
  const next = text.indexOf('\n## ', at + heading.length);
  return `${text.slice(0, at)}${section.replace(/\n*$/, '')}\n${next < 0 ? '' : text.slice(next)}`;
}

function sectionOf(text: string, heading: string): string {
  const at = text.indexOf(heading + '\n');
  if (at < 0) return '';
  const next = text.indexOf('\n## ', at + heading.length);
  return next < 0 ? text.slice(at) : text.slice(at, next);
}

const LOAD_HEADING = '## Throughput and latency (etcdload, alternating rounds)';
const LOAD_COLUMNS =
  '| scenario | workload | etcd qps | etcdesk qps | qps ratio | etcd p99 ms | etcdesk p99 ms | p99 ratio | etcd CPU µs/req | etcdesk CPU µs/req | CPU ratio | measured |';

function loadLine(r: Row): string {
  const f = (x: number | undefined, d = 0): string => (x === undefined ? '-' : x.toFixed(d));
  const eq = r.etcd.length ? median(r.etcd.map((x) => x.qps)) : undefined;
  const oq = r.ours.length ? median(r.ours.map((x) => x.qps)) : undefined;
  const ep = r.etcd.length ? median(r.etcd.map((x) => x.p99_ms)) : undefined;
  const op = r.ours.length ? median(r.ours.map((x) => x.p99_ms)) : undefined;
  const qr = eq && oq ? oq / eq : undefined;
  const pr = ep && op ? op / ep : undefined;
  const ec = r.etcdCpu.length ? median(r.etcdCpu) : undefined;
  const oc = r.oursCpu.length ? median(r.oursCpu) : undefined;
  const cr = ec && oc ? oc / ec : undefined;
  return `| ${r.scenario} | ${r.workload} | ${f(eq)} | ${f(oq)} | ${f(qr, 2)}x | ${f(ep, 2)} | ${f(op, 2)} | ${f(pr, 2)}x | ${f(ec)} | ${f(oc)} | ${f(cr, 2)}x | ${today()}, ${Math.max(r.etcd.length, r.ours.length)} rounds |`;
}

/** The load table: measured rows replace their earlier line, the others keep theirs (in the scenarios' order). */
function renderLoadSection(measured: Row[], old: string): string {
  const oldLines = new Map<string, string>();
  for (const l of old.split('\n')) {
    const c = l.split('|').map((x) => x.trim());
    if (c.length > 3 && c[1] && c[1] !== 'scenario' && !c[1].startsWith('---')) oldLines.set(`${c[1]}|${c[2]}`, l);
  }
  const lines: string[] = [];
  for (const sc of scenarios) {
    for (const w of sc.workloads) {
      const key = `${sc.name}|${w.name}`;
      const m = measured.find((r) => r.scenario === sc.name && r.workload === w.name);
      const l = m ? loadLine(m) : oldLines.get(key);
      if (l) lines.push(l);
    }
  }
  return [
    LOAD_HEADING,
    '',
    `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, etcd 3.4.23 from Debian; the shared`,
    '`etcdload` (official Go clientv3). Each round starts etcd and etcdesk in turn (default flags, loopback, fsync on; the',
    'order reversed every other round) and runs the scenario\'s rows on each; figures are medians over the rounds.',
    'Ratio = ours / etcd (qps: higher is better; p99 and CPU: lower is better). CPU = the server processes\' user + system',
    'time over the row\'s run divided by its requests (steadier than qps when other work shares the cores).',
    "`npm run bench -- --rows='a;b'` re-measures only",
    'the rows whose name ("<scenario> <workload>") contains a or b; the other rows keep their figures and date.',
    '',
    LOAD_COLUMNS,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...lines,
  ].join('\n');
}

const CHECK_PERF_HEADING = '## etcdctl check perf (--load=m and --load=l)';

interface CheckPerf {
  kind: 'etcd' | 'etcdesk';
  load: 'm' | 'l';
  pass: boolean;
  /** etcdctl's measured throughput ("Throughput is N writes/s"). */
  writesPerSec?: number;
  summary: string;
}

/**
 * `etcdctl check perf --load=m|l` against a fresh single member (60 s each).
 * Issue #15 asks --load=m to pass and --load=l (8,000 writes/s wanted, more than
 * this machine gives either server) to reach at least etcd's writes/s.
 */
async function runCheckPerf(kind: 'etcd' | 'etcdesk', load: 'm' | 'l'): Promise<CheckPerf> {
  const srv = await scenarios[0].start(kind);
  try {
    const r = await etcdctl(srv.endpoints, ['check', 'perf', `--load=${load}`], { timeoutMs: 180_000 });
    const out = (r.stdout + r.stderr).replace(/\r/g, '\n');
    const lines = out.split('\n').filter((l) => /^(PASS|FAIL)/.test(l.trim()));
    const wps = /Throughput (?:is|too low:) (\d+) writes\/s/.exec(out);
    return { kind, load, pass: r.code === 0 && !lines.some((l) => l.trim().startsWith('FAIL')), writesPerSec: wps ? Number(wps[1]) : undefined, summary: lines.map((l) => l.trim()).join('; ') };
  } finally {
    await srv.stop();
  }
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
    const wl = sc.workloads.filter((w) => selected(`${sc.name} ${w.name}`));
    if (!wl.length) continue;
    const scRows: Row[] = wl.map((w) => ({ scenario: sc.name, workload: w.name, etcd: [], ours: [], etcdCpu: [], oursCpu: [] }));
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? (['etcdesk', 'etcd'] as const) : (['etcd', 'etcdesk'] as const);
      for (const kind of order) {
        const srv = await sc.start(kind);
        try {
          // warm-up: JIT and connection setup should not count
          runLoad(srv.endpoints, ['-op', 'put', '-clients', '16', '-total', '3000']);
          wl.forEach((w, i) => {
            const c0 = cpuSeconds(srv.pids);
            const r = runLoad(srv.endpoints, w.args);
            const us = ((cpuSeconds(srv.pids) - c0) * 1e6) / r.total;
            (kind === 'etcd' ? scRows[i].etcd : scRows[i].ours).push(r);
            (kind === 'etcd' ? scRows[i].etcdCpu : scRows[i].oursCpu).push(us);
            process.stderr.write(
              `round ${round} ${kind.padEnd(7)} ${sc.name} / ${w.name}: ${r.qps.toFixed(0)} qps p99 ${r.p99_ms} ms ${us.toFixed(0)} µs CPU/request${r.errors ? ` errors ${r.errors}` : ''}\n`,
            );
          });
        } finally {
          await srv.stop();
        }
      }
    }
    rows.push(...scRows);
  }
  let checkPerf: CheckPerf[] = [];
  if (selected('check perf')) {
    for (const load of ['m', 'l'] as const) {
      for (const kind of ['etcdesk', 'etcd'] as const) {
        const c = await runCheckPerf(kind, load);
        checkPerf.push(c);
        process.stderr.write(`check perf --load=${load} ${c.kind}: ${c.pass ? 'PASS' : 'FAIL'} (${c.summary})\n`);
      }
    }
  }
  // watch fan-out: 10,000 watchers on one prefix (its own driver: etcdload has no watch op)
  const watchRows: { name: string; etcd?: WatchBenchResult; ours?: WatchBenchResult }[] = [];
  for (const w of [
    { name: '10,000 watchers, 20 writes/s', opts: { watchers: 10000, connections: 4, writes: Math.round(200 * scale), writesPerSec: 20 } },
    { name: '10,000 watchers, unpaced', opts: { watchers: 10000, connections: 4, writes: Math.round(200 * scale) } },
  ]) {
    if (!selected(`watch ${w.name}`)) continue;
    const row: (typeof watchRows)[number] = { name: w.name };
    row.ours = await runWatchBench('etcdesk', w.opts);
    row.etcd = await runWatchBench('etcd', w.opts);
    process.stderr.write(`watch ${w.name}: etcdesk ${row.ours.eventsPerSec.toFixed(0)} ev/s p99 ${row.ours.p99Ms} ms; etcd ${row.etcd.eventsPerSec.toFixed(0)} ev/s p99 ${row.etcd.p99Ms} ms\n`);
    watchRows.push(row);
  }
  // auth on vs off on our own node (etcdload has no user/password option: a grpc-js driver for both)
  let authRows: AuthBenchRow[] = [];
  if (selected('auth')) authRows = await runAuthBench(Math.round(20000 * scale));
  const memory = selected('memory') ? await runMemoryBench({ keys: Math.max(1000, Math.round(200_000 * scale)) }) : undefined;

  let text = fs.existsSync(RESULTS) ? fs.readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const show: string[] = [];
  if (rows.length) {
    const sec = renderLoadSection(rows, sectionOf(text, LOAD_HEADING));
    text = replaceSection(text, LOAD_HEADING, sec);
    show.push(sec);
  }
  if (checkPerf.length) {
    const sec = [
      CHECK_PERF_HEADING,
      '',
      `Measured ${today()} on a fresh single member each (60 s of puts from etcdctl itself; --load=m asks 1,000 writes/s from 200 clients, --load=l 8,000 from 500).`,
      '',
      '| load | server | result | writes/s | ratio to etcd | checks |',
      '|---|---|---|---:|---:|---|',
      ...checkPerf.map((c) => {
        const etcd = checkPerf.find((e) => e.kind === 'etcd' && e.load === c.load)?.writesPerSec;
        const ratio = c.kind === 'etcdesk' && etcd && c.writesPerSec !== undefined ? `${(c.writesPerSec / etcd).toFixed(2)}x` : '';
        return `| ${c.load} | ${c.kind} | ${c.pass ? 'PASS' : 'FAIL'} | ${c.writesPerSec ?? '-'} | ${ratio} | ${c.summary} |`;
      }),
    ].join('\n');
    text = replaceSection(text, CHECK_PERF_HEADING, sec);
    show.push(sec);
  }
  if (authRows.length) {
    const get = (op: string, auth: boolean): AuthBenchRow | undefined => authRows.find((r) => r.op === op && r.auth === auth);
    const sec = [
      '## Auth on vs off (etcdesk only)',
      '',
      `Measured ${today()}.`,
      '',
      '| etcdesk, 64 in flight | auth off qps | auth on (simple token) qps | ratio | auth off p99 ms | auth on p99 ms |',
      '|---|---:|---:|---:|---:|---:|',
      ...(['put', 'range'] as const).map((op) => {
        const off = get(op, false)!;
        const on = get(op, true)!;
        return `| ${op} | ${off.qps.toFixed(0)} | ${on.qps.toFixed(0)} | ${(on.qps / off.qps).toFixed(2)}x | ${off.p99Ms.toFixed(2)} | ${on.p99Ms.toFixed(2)} |`;
      }),
    ].join('\n');
    text = replaceSection(text, '## Auth on vs off (etcdesk only)', sec);
    show.push(sec);
  }
  if (watchRows.length) {
    const f = (x: number | undefined, d = 0): string => (x === undefined ? '-' : x.toFixed(d));
    const sec = [
      '## Watch fan-out',
      '',
      `Measured ${today()}.`,
      '',
      '| watch | etcd events/s | etcdesk events/s | ratio | etcd p99 ms | etcdesk p99 ms | p99 ratio |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...watchRows.map(
        (r) =>
          `| ${r.name} | ${f(r.etcd?.eventsPerSec)} | ${f(r.ours?.eventsPerSec)} | ${f(r.ours && r.etcd ? r.ours.eventsPerSec / r.etcd.eventsPerSec : undefined, 2)}x | ${f(r.etcd?.p99Ms, 1)} | ${f(r.ours?.p99Ms, 1)} | ${f(r.ours && r.etcd ? r.ours.p99Ms / r.etcd.p99Ms : undefined, 2)}x |`,
      ),
    ].join('\n');
    text = replaceSection(text, '## Watch fan-out', sec);
    show.push(sec);
  }
  if (memory) show.push(renderMemoryTable(memory));
  process.stdout.write(show.join('\n\n') + '\n');
  if (!process.env.BENCH_NO_WRITE) {
    fs.writeFileSync(RESULTS, text);
    if (memory) writeMemoryResults(memory, RESULTS);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'bench/run-bench.ts')) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
