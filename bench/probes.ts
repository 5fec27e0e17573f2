// `npm run bench -- --probes`: the serving ceiling. The same load (etcdload put, 64 clients over 8
// connections) against etcd, our node, and do-nothing servers that answer every call with a fixed
// response: on grpc-js, on bare node:http2, on node:http2 spread over worker processes, and on the
// node's own gRPC server (grpc-server.ts). Kinds alternate within each round so a machine shared
// with other work loads them alike; the table gives each kind's median and its ratio to etcd's.
//
// Env: PROBE_ROUNDS (3), PROBE_TOTAL (30000), PROBE_OP (put), PROBE_KINDS (comma list, default all),
// PROBE_BASELINE=<checkout> adds that checkout's node as kind `baseline` (before/after a change),
// PROBE_CPU_PROF=<dir> profiles our node (`node --cpu-prof`) in every round into <dir>,
// PROBE_CLIENTS (64) and PROBE_CONNS (8) shape the load (the bench's put/16 row is 16 clients over 1),
// PROBE_WARMUP (3000) puts before the measured run: our node's CPU per put falls for its first
// ~15,000 (V8 tiering up; bench/RESULTS.md "Per-batch CPU"), so 30000 measures it warmed up.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, REPO_ROOT, startEtcd, startEtcdesk, tempDir, waitHealthy } from '../node-core/testing/processes';

interface Target {
  endpoint: string;
  /** The server process, for its CPU time (children, as node:cluster workers, are not counted). */
  pid?: number;
  stop(): Promise<void>;
}

/** user + system CPU seconds a process has used so far (Linux /proc; all its threads). */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

const HERE = path.join(REPO_ROOT, 'bench/probes');

function waitExit(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

/** Starts a probe script and waits for its `ready` line. */
async function probe(args: string[]): Promise<Target> {
  const port = await freePort();
  const p = spawn(process.execPath, [...args, String(port)], { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`probe ${args.join(' ')} not ready: ${out}`)), 30_000);
    p.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    p.once('exit', (code) => reject(new Error(`probe exited ${code}: ${out}`)));
  });
  return {
    endpoint: `127.0.0.1:${port}`,
    pid: args[0].endsWith('workers.mjs') ? undefined : p.pid,
    async stop() {
      p.kill('SIGTERM');
      await waitExit(p);
    },
  };
}

async function baseline(dir: string, nodeArgs: string[] = []): Promise<Target> {
  const client = await freePort();
  const peer = await freePort();
  const url = `http://127.0.0.1:${client}`;
  const purl = `http://127.0.0.1:${peer}`;
  const args = ['--name', 'b', '--data-dir', tempDir('baseline'), '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', purl];
  args.push('--initial-advertise-peer-urls', purl, '--initial-cluster', `b=${purl}`, '--log-level', 'warn');
  const p = spawn(process.execPath, [...nodeArgs, path.join(dir, 'bin/etcdesk-node.mjs'), ...args], { stdio: 'ignore', cwd: dir });
  await waitHealthy(url, 30_000, p);
  return {
    endpoint: `127.0.0.1:${client}`,
    pid: p.pid,
    async stop() {
      p.kill('SIGTERM');
      await waitExit(p);
    },
  };
}

const KINDS: Record<string, () => Promise<Target>> = {
  etcd: () => startEtcd({ extraArgs: ['--log-level', 'warn'] }).then((p) => ({ endpoint: p.endpoint, pid: p.proc.pid, stop: () => p.stop() })),
  etcdesk: () => {
    // --cpu-prof is refused in NODE_OPTIONS: start the node ourselves with it
    const prof = process.env.PROBE_CPU_PROF;
    if (prof) return baseline(REPO_ROOT, ['--cpu-prof', `--cpu-prof-dir=${path.resolve(prof)}`]);
    return startEtcdesk({ extraArgs: ['--log-level', 'warn'] }).then((p) => ({ endpoint: p.endpoint, pid: p.proc.pid, stop: () => p.stop() }));
  },
  'grpcjs-noop': () => probe([path.join(HERE, 'grpcjs-noop.mjs')]),
  'rawh2-noop': () => probe([path.join(HERE, 'raw-h2.mjs')]),
  'rawh2-2workers': () => probe([path.join(HERE, 'raw-h2-workers.mjs')]).then((t) => t),
  'lean-noop': () => probe(['--import', 'tsx', path.join(HERE, 'lean-noop.ts')]),
  // the lean TypeScript HTTP/2 server (node-core/server/h2) over net.Socket, same fixed response as rawh2-noop
  'jsh2-noop': () => probe(['--import', 'tsx', path.join(HERE, 'js-h2-noop.ts')]),
};

interface LoadResult {
  qps: number;
  p99_ms: number;
  errors: number;
  first_error?: string;
}

function load(bin: string, endpoint: string, op: string, total: number): LoadResult {
  // etcdload seeds the key space with sequential puts before a range run: 100 keys keep that out of the CPU figure
  const keys = op.startsWith('range') ? ['-key-space', '100'] : [];
  const shape = ['-clients', process.env.PROBE_CLIENTS ?? '64', '-conns', process.env.PROBE_CONNS ?? '8'];
  const r = spawnSync(bin, ['-endpoints', endpoint, '-op', op, ...shape, '-total', String(total), '-timeout', '60s', ...keys], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as LoadResult;
  } catch {
    throw new Error(`etcdload failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function runProbes(loadBin: string): Promise<string> {
  const rounds = Number(process.env.PROBE_ROUNDS ?? '3');
  const total = Number(process.env.PROBE_TOTAL ?? '30000');
  const op = process.env.PROBE_OP ?? 'put';
  const kinds: Record<string, () => Promise<Target>> = { ...KINDS };
  if (process.env.PROBE_BASELINE) kinds.baseline = () => baseline(path.resolve(process.env.PROBE_BASELINE!));
  const wanted = process.env.PROBE_KINDS?.split(',') ?? Object.keys(kinds);
  const qps = new Map<string, number[]>(wanted.map((k) => [k, []]));
  // CPU time per request holds up on a shared machine far better than qps does
  const cpuUs = new Map<string, number[]>(wanted.map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++) {
    // alternate the order too, so no kind always runs first in a round
    const order = round % 2 ? wanted : [...wanted].reverse();
    for (const kind of order) {
      const start = kinds[kind];
      if (!start) throw new Error(`unknown probe kind ${kind}; known: ${Object.keys(kinds).join(', ')}`);
      const t = await start();
      try {
        load(loadBin, t.endpoint, op, Number(process.env.PROBE_WARMUP ?? '3000')); // warm-up: JIT and connections
        const c0 = cpuSeconds(t.pid);
        const r = load(loadBin, t.endpoint, op, total);
        const c1 = cpuSeconds(t.pid);
        const us = c0 !== undefined && c1 !== undefined ? ((c1 - c0) * 1e6) / total : undefined;
        qps.get(kind)!.push(r.qps);
        if (us !== undefined) cpuUs.get(kind)!.push(us);
        process.stderr.write(
          `round ${round} ${kind.padEnd(15)} ${r.qps.toFixed(0)} qps p99 ${r.p99_ms} ms${us !== undefined ? ` ${us.toFixed(0)} µs CPU/request` : ''}${r.errors ? ` errors ${r.errors} (${r.first_error})` : ''}\n`,
        );
      } finally {
        await t.stop();
      }
    }
  }
  const etcd = qps.get('etcd')?.length ? median(qps.get('etcd')!) : undefined;
  const lines = [
    `Probes: ${op}, ${process.env.PROBE_CLIENTS ?? '64'} clients over ${process.env.PROBE_CONNS ?? '8'} connections, ${total} requests, ${rounds} alternating rounds after ${process.env.PROBE_WARMUP ?? '3000'} warm-up requests; ${os.cpus().length} cores, load average at the end ${os.loadavg()[0].toFixed(1)}.`,
    '',
    '| server | median qps | rounds | vs etcd | median server CPU µs/request | vs etcd |',
    '|---|---:|---|---:|---:|---:|',
  ];
  const etcdCpu = cpuUs.get('etcd')?.length ? median(cpuUs.get('etcd')!) : undefined;
  for (const [k, xs] of qps) {
    const m = median(xs);
    const cs = cpuUs.get(k)!;
    const c = cs.length ? median(cs) : undefined;
    lines.push(
      `| ${k} | ${m.toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} | ${etcd ? (m / etcd).toFixed(2) + 'x' : '-'} | ${c !== undefined ? c.toFixed(0) : '-'} | ${c !== undefined && etcdCpu ? (c / etcdCpu).toFixed(2) + 'x' : '-'} |`,
    );
  }
  return lines.join('\n');
}

/** For `node --import tsx bench/probes.ts` directly. */
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, 'bench/probes.ts')) {
  const bin = path.join(REPO_ROOT, 'bench/.bin/etcdload');
  const loadBin = fs.existsSync(bin) ? bin : '/work/main/bench/.bin/etcdload';
  runProbes(loadBin)
    .then((t) => process.stdout.write(t + '\n'))
    .catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
}
