// Memory and start-up beside a real etcd 3.4: each server in turn on a temp
// dir loads N unique keys (the shared etcdload's unique-put: `ack/<8 digits>`,
// 12-byte keys) and we record its RSS after the load; then it is stopped,
// restarted on the same dir, and we time process start → first successful
// Range, and record RSS after one Range over the whole key space.
//
// Run alone: `node --import tsx bench/memory-bench.ts` (env MEM_BENCH_KEYS,
// MEM_BENCH_VAL_SIZE, MEM_BENCH_NO_WRITE=1 to leave RESULTS.md alone,
// MEM_BENCH_BASELINE=<another checkout> to measure its etcdesk-node too, in
// the same pass), or call runMemoryBench() from the main bench.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EtcdClient } from '../node-core/client/index';
import { REPO_ROOT, ensureEtcdload, startEtcd, startEtcdesk, type ServerProc, type StartOpts } from '../node-core/testing/processes';

export interface MemoryBenchOptions {
  /** Keys loaded (default 200,000). */
  keys?: number;
  /** Value bytes (default 256). */
  valSize?: number;
  /** Another checkout (its bin/etcdesk-node.mjs) measured in the same pass, e.g. main before a change. */
  baseline?: string;
  /** Restarts per server, round-robin (default 3); the figures are their medians. */
  restarts?: number;
}

export interface MemoryFigures {
  /** RSS in MB after loading the keys. */
  rssAfterLoadMb: number;
  /** Process start → first successful linearizable Range, in ms. */
  restartToReadyMs: number;
  /** RSS in MB after the restart and one Range over every key. */
  rssAfterRestartRangeMb: number;
  /** Keys that Range returned (a check that the load landed). */
  rangedKeys: number;
  /** Each restart's time, in the order run. */
  restartsMs?: number[];
}

export interface MemoryBenchResult {
  keys: number;
  valSize: number;
  etcd: MemoryFigures;
  ours: MemoryFigures;
  baseline?: MemoryFigures;
}

const MB = 1024 * 1024;

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return (Number(m[1]) * 1024) / MB;
}

/**
 * RSS of the server idle: at least IDLE_MS after the work, then unchanged (within 1 MB) over three
 * samples 0.5 s apart (at most ~10 s more). Two samples were too few: a server still busy for a second
 * after the load (its last commits, a snapshot) looked settled before it had gone idle. The 10 s: an
 * idle server's memory is what an operator sees, and both runtimes give memory back on timers of
 * their own (Go's scavenger; V8 shrinks its young generation only once allocation has been slow for
 * ~5 s, which the node's idle GC then asks for); sampling at 2 s caught neither.
 */
const IDLE_MS = 10_000;

async function settledRssMb(pid: number): Promise<number> {
  await new Promise((r) => setTimeout(r, IDLE_MS));
  let last = rssMb(pid);
  let steady = 0;
  for (let i = 0; i < 20 && steady < 3; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = rssMb(pid);
    steady = Math.abs(now - last) < 1 ? steady + 1 : 0;
    last = now;
  }
  return last;
}

const start = (kind: 'etcd' | 'etcdesk', opts: StartOpts): Promise<ServerProc> =>
  (kind === 'etcd' ? startEtcd : startEtcdesk)({ ...opts, extraArgs: ['--log-level', 'warn'] });

async function firstRange(endpoint: string, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const c = new EtcdClient({ endpoints: [endpoint], timeoutMs: 1000 });
    try {
      await c.range({ key: Buffer.from('ack/00000000') });
      return;
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 10));
    } finally {
      c.close();
    }
  }
}

interface Loaded {
  kind: 'etcd' | 'etcdesk';
  bin?: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  rssAfterLoadMb: number;
}

async function loadOne(kind: 'etcd' | 'etcdesk', load: string, keys: number, valSize: number, bin?: string): Promise<Loaded> {
  const first = await start(kind, { bin });
  const dataDir = first.dataDir;
  const clientPort = Number(first.endpoint.split(':')[1]);
  const peerPort = Number(new URL(first.peerUrl).port);
  try {
    const r = spawnSync(load, ['-endpoints', first.endpoint, '-op', 'unique-put', '-clients', '64', '-total', String(keys), '-val-size', String(valSize), '-timeout', '10m'], {
      encoding: 'utf8',
      timeout: 900_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    const res = JSON.parse(line) as { errors: number; total: number; qps: number };
    if (res.errors) throw new Error(`${kind}: ${res.errors} puts failed while loading`);
    process.stderr.write(`${kind.padEnd(7)} loaded ${res.total} keys at ${res.qps.toFixed(0)} puts/s\n`);
    return { kind, bin, dataDir, clientPort, peerPort, rssAfterLoadMb: await settledRssMb(first.proc.pid!) };
  } finally {
    await first.stop();
  }
}

/** One restart on the loaded dir (same ports): ready = a linearizable Range answered; then RSS after a Range over every key. */
async function restartOne(l: Loaded): Promise<{ restartToReadyMs: number; rssAfterRestartRangeMb: number; rangedKeys: number }> {
  const t0 = performance.now();
  const again = await start(l.kind, { dataDir: l.dataDir, clientPort: l.clientPort, peerPort: l.peerPort, waitReady: false, bin: l.bin });
  try {
    await firstRange(again.endpoint, 120_000);
    const restartToReadyMs = performance.now() - t0;
    const c = new EtcdClient({ endpoints: [again.endpoint], timeoutMs: 120_000 });
    let rangedKeys: number;
    try {
      const all = await c.range({ key: Buffer.from([0]), range_end: Buffer.from([0]) });
      rangedKeys = all.kvs.length;
    } finally {
      c.close();
    }
    const rssAfterRestartRangeMb = await settledRssMb(again.proc.pid!);
    return { restartToReadyMs, rssAfterRestartRangeMb, rangedKeys };
  } finally {
    await again.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Loads each server in turn (one at a time, so they do not share the two
 * cores), then restarts them round-robin `restarts` times (a busy machine
 * moves a single restart by seconds) and reports the medians.
 */
export async function runMemoryBench(opts: MemoryBenchOptions = {}): Promise<MemoryBenchResult> {
  const keys = opts.keys ?? 200_000;
  const valSize = opts.valSize ?? 256;
  const load = await ensureEtcdload();
  const loaded: Loaded[] = [];
  try {
    if (opts.baseline) loaded.push(await loadOne('etcdesk', load, keys, valSize, path.join(opts.baseline, 'bin/etcdesk-node.mjs')));
    loaded.push(await loadOne('etcdesk', load, keys, valSize));
    loaded.push(await loadOne('etcd', load, keys, valSize));
    const runs = loaded.map(() => [] as Awaited<ReturnType<typeof restartOne>>[]);
    for (let round = 0; round < (opts.restarts ?? 3); round++) {
      for (let i = 0; i < loaded.length; i++) runs[i].push(await restartOne(loaded[i]));
    }
    const figures = loaded.map((l, i): MemoryFigures => ({
      rssAfterLoadMb: l.rssAfterLoadMb,
      restartToReadyMs: median(runs[i].map((r) => r.restartToReadyMs)),
      rssAfterRestartRangeMb: median(runs[i].map((r) => r.rssAfterRestartRangeMb)),
      rangedKeys: Math.min(...runs[i].map((r) => r.rangedKeys)),
      restartsMs: runs[i].map((r) => Math.round(r.restartToReadyMs)),
    }));
    const n = figures.length;
    return { keys, valSize, etcd: figures[n - 1], ours: figures[n - 2], baseline: opts.baseline ? figures[0] : undefined };
  } finally {
    for (const l of loaded) fs.rmSync(l.dataDir, { recursive: true, force: true });
  }
}

/** The Markdown table (with its heading) for bench/RESULTS.md. */
export function renderMemoryTable(r: MemoryBenchResult): string {
  const row = (name: string, e: number, o: number, unit: string): string =>
    `| ${name} | ${e.toFixed(0)} ${unit} | ${o.toFixed(0)} ${unit} | ${(o / e).toFixed(2)}x |`;
  return [
    '## Memory and start-up',
    '',
    `${r.keys.toLocaleString('en-US')} keys of 12 bytes (etcdload unique-put, 64 clients) with ${r.valSize}-byte values; RSS from /proc after`,
    'it settles; restart = process start → first linearizable Range answered; then one Range over every key (medians of',
    `${r.ours.restartsMs?.length ?? 1} restarts each, round-robin). Measured ${new Date().toISOString().slice(0, 10)}, load average ${os.loadavg()[0].toFixed(1)} at the end.`,
    'Ratio = ours / etcd (lower is better). `node --import tsx bench/memory-bench.ts`.',
    '',
    '| figure | etcd | etcdesk | ratio |',
    '|---|---:|---:|---:|',
    row('RSS after load', r.etcd.rssAfterLoadMb, r.ours.rssAfterLoadMb, 'MB'),
    row('restart to ready', r.etcd.restartToReadyMs, r.ours.restartToReadyMs, 'ms'),
    row('RSS after restart + full range', r.etcd.rssAfterRestartRangeMb, r.ours.rssAfterRestartRangeMb, 'MB'),
  ].join('\n');
}

/** Replaces (or appends) the "Memory and start-up" section of RESULTS.md, leaving the rest alone. */
export function writeMemoryResults(r: MemoryBenchResult, file = path.join(REPO_ROOT, 'bench/RESULTS.md')): void {
  const table = renderMemoryTable(r);
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const at = text.indexOf('## Memory and start-up');
  let out: string;
  if (at < 0) out = `${text.replace(/\n*$/, '')}\n\n${table}\n`;
  else {
    const next = text.indexOf('\n## ', at + 1);
    out = `${text.slice(0, at)}${table}\n${next < 0 ? '' : text.slice(next)}`;
  }
  fs.writeFileSync(file, out);
}

async function cli(): Promise<void> {
  const r = await runMemoryBench({
    keys: Number(process.env.MEM_BENCH_KEYS ?? 200_000),
    valSize: Number(process.env.MEM_BENCH_VAL_SIZE ?? 256),
    baseline: process.env.MEM_BENCH_BASELINE,
    restarts: process.env.MEM_BENCH_RESTARTS ? Number(process.env.MEM_BENCH_RESTARTS) : undefined,
  });
  for (const [kind, f] of [['etcd', r.etcd], ['ours', r.ours]] as const) {
    if (f.rangedKeys !== r.keys) throw new Error(`${kind}: the full range returned ${f.rangedKeys} keys, not ${r.keys}`);
  }
  const table = renderMemoryTable(r);
  process.stdout.write(`${table}\n`);
  if (r.baseline) process.stdout.write(`baseline (${process.env.MEM_BENCH_BASELINE}): ${JSON.stringify(r.baseline)}\nours: ${JSON.stringify(r.ours)}\netcd: ${JSON.stringify(r.etcd)}\n`);
  if (!process.env.MEM_BENCH_NO_WRITE) writeMemoryResults(r);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
