// The WAL and state-DB sync syscalls of a three-member cluster under put load, for etcd or etcdesk
// (bench/RESULTS.md "fsync and commit cost"). Each member starts under `strace --seccomp-bpf` (only the
// traced syscalls stop it: attaching with -p stops every syscall and cripples Go's runtime), a warm-up
// runs, then the measured load; only syscalls inside the measured run count. Per member it prints the
// fdatasync durations of the most-synced file (the WAL) and the next (LMDB / bolt), how many WAL syncs
// overlapped a DB sync, and the server's own wal_fsync / backend_commit histograms over the run.
// usage: node bench/probes/fsync-strace.mjs etcd|etcdesk [total=10000] [clients=64]
// needs strace and bench/.bin/etcdload (npm run bench builds it); data dirs go to the OS temp dir.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const kind = process.argv[2];
const total = process.argv[3] ?? '10000';
const clients = process.argv[4] ?? '64';
if (kind !== 'etcd' && kind !== 'etcdesk') throw new Error('usage: fsync-strace.mjs etcd|etcdesk [total] [clients]');
const LOAD = path.join(root, 'bench/.bin/etcdload');
const out = fs.mkdtempSync(path.join(os.tmpdir(), `fsync-strace-${kind}-`));

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function healthy(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const r = spawnSync('curl', ['-sf', '-m', '2', `${url}/health`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.includes('true')) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${url} not healthy`);
}

// the server's own histograms (sum, count) over the run
function metrics(url) {
  const t = spawnSync('curl', ['-sS', `${url}/metrics`], { encoding: 'utf8' }).stdout;
  const o = {};
  for (const m of t.matchAll(/^etcd_disk_(wal_fsync|backend_commit)_duration_seconds_(sum|count) ([0-9.e+-]+)$/gm)) o[`${m[1]}_${m[2]}`] = Number(m[3]);
  return o;
}

// fdatasync/fsync calls of one strace -f -T -ttt file: {tid, fd, start, dur} in seconds
function syncs(file) {
  const pending = new Map();
  const calls = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+)\s+([\d.]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, tid, ts, rest] = m;
    let fd, start, tail;
    if (rest.startsWith('<...')) {
      const p = pending.get(tid);
      if (!p) continue;
      pending.delete(tid);
      ({ fd, start } = p);
      tail = rest;
    } else {
      const c = /^f(?:data)?sync\((\d+)/.exec(rest);
      if (!c) continue;
      fd = c[1];
      start = Number(ts);
      if (rest.endsWith('<unfinished ...>')) {
        pending.set(tid, { fd, start });
        continue;
      }
      tail = rest;
    }
    const d = /<([\d.]+)>$/.exec(tail);
    if (d) calls.push({ tid, fd, start, dur: Number(d[1]) });
  }
  return calls;
}

const stat = (xs) => {
  if (!xs.length) return 'none';
  const s = [...xs].sort((a, b) => a - b);
  const ms = (x) => (x * 1000).toFixed(2);
  return `n=${s.length} mean ${ms(s.reduce((a, b) => a + b, 0) / s.length)} p50 ${ms(s[s.length >> 1])} p90 ${ms(s[Math.floor(s.length * 0.9)])} p99 ${ms(s[Math.floor(s.length * 0.99)])} ms`;
};

const ports = [];
for (let i = 0; i < 3; i++) ports.push({ c: await freePort(), p: await freePort() });
const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.p}`).join(',');
const dirs = [];
const procs = ports.map((p, i) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fsync-strace-${kind}-m${i + 1}-`));
  dirs.push(dir);
  const url = `http://127.0.0.1:${p.c}`;
  const args = ['--name', `m${i + 1}`, '--data-dir', dir, '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', `http://127.0.0.1:${p.p}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${p.p}`, '--initial-cluster', initial, '--initial-cluster-token', `fsync-strace-${ports[0].c}`, '--initial-cluster-state', 'new'];
  const cmd = kind === 'etcd' ? ['/usr/bin/etcd', ...args] : [process.execPath, path.join(root, 'bin/etcdesk-node.mjs'), ...args];
  const trace = ['strace', '--seccomp-bpf', '-f', '-T', '-ttt', '-e', 'trace=fdatasync,fsync', '-o', path.join(out, `m${i + 1}.trace`)];
  return spawn(trace[0], [...trace.slice(1), ...cmd], { stdio: ['ignore', 'ignore', fs.openSync(path.join(out, `m${i + 1}.log`), 'w')], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: '' } });
});
const urls = ports.map((p) => `http://127.0.0.1:${p.c}`);
const endpoints = ports.map((p) => `127.0.0.1:${p.c}`).join(',');
try {
  await Promise.all(urls.map((u) => healthy(u, 60_000)));
  spawnSync(LOAD, ['-endpoints', endpoints, '-op', 'put', '-clients', '16', '-total', '3000']);
  const m0 = urls.map(metrics);
  const t0 = Date.now() / 1000;
  const r = spawnSync(LOAD, ['-endpoints', endpoints, '-op', 'put', '-clients', clients, '-conns', '3', '-total', total], { encoding: 'utf8' });
  const t1 = Date.now() / 1000;
  const m1 = urls.map(metrics);
  console.log(`${kind}: ${r.stdout.trim()} (load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  // the members are stopped (below) before their traces are read, so every line is written
  await stop();
  procs.forEach((_, i) => {
    const calls = syncs(path.join(out, `m${i + 1}.trace`)).filter((c) => c.start >= t0 && c.start <= t1);
    const byFd = new Map();
    for (const c of calls) byFd.set(c.fd, (byFd.get(c.fd) ?? 0) + 1);
    const [walFd, dbFd] = [...byFd.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]);
    const wal = calls.filter((c) => c.fd === walFd);
    const db = calls.filter((c) => c.fd === dbFd);
    const overlaps = wal.filter((w) => db.some((d) => d.start < w.start + w.dur && w.start < d.start + d.dur));
    const d = (k) => m1[i][k] - m0[i][k];
    const mean = (k) => ((d(`${k}_sum`) / d(`${k}_count`)) * 1000).toFixed(2);
    console.log(`m${i + 1} WAL fdatasync ${stat(wal.map((c) => c.dur))}`);
    console.log(`   DB  fdatasync ${stat(db.map((c) => c.dur))}`);
    console.log(`   WAL syncs overlapping a DB sync: ${overlaps.length} (${stat(overlaps.map((c) => c.dur))})`);
    console.log(`   own histograms: wal_fsync mean ${mean('wal_fsync')} ms (n=${d('wal_fsync_count')}), backend_commit mean ${mean('backend_commit')} ms (n=${d('backend_commit_count')})`);
  });
} finally {
  await stop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  console.log(`traces and logs: ${out}`);
}

// SIGTERM to the traced server itself (strace's child): strace then exits with it and the server shuts down cleanly
async function stop() {
  await Promise.all(
    procs.map((pr) => {
      if (pr.exitCode !== null || pr.signalCode !== null) return undefined;
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${pr.pid}/task/${pr.pid}/children`, 'utf8').trim();
      } catch {
        // strace is gone already
      }
      for (const k of kids ? kids.split(/\s+/) : []) process.kill(Number(k), 'SIGTERM');
      if (!kids) pr.kill('SIGTERM');
      const hard = setTimeout(() => {
        for (const k of kids ? kids.split(/\s+/) : []) {
          try {
            process.kill(Number(k), 'SIGKILL');
          } catch {
            // exited
          }
        }
        pr.kill('SIGKILL');
      }, 10_000);
      return new Promise((res) => pr.once('exit', () => (clearTimeout(hard), res(undefined))));
    }),
  );
}
