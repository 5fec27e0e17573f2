// Watch fan-out benchmark: many watchers on one prefix (clientv3's layout:
// all watchers of a connection multiplexed on one Watch stream, a few
// connections), one writer putting keys under the prefix; measures events
// delivered per second and the delivery latency (put sent → event received,
// same clock) against etcdesk-node and real etcd 3.4.
//
// Run alone: node --import tsx bench/watch-bench.ts [watchers] [writes] [writes/s]
// (env WATCH_BENCH_ONLY=etcd|etcdesk). run-bench.ts may call runWatchBench().
import * as grpc from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { KVService, WatchService, type PutRequestInit, type PutResponse, type WatchRequestInit, type WatchResponse } from '../node-core/proto/gen/etcdserverpb';
import { startEtcd, startEtcdesk, type ServerProc } from '../node-core/testing/processes';

export interface WatchBenchOptions {
  watchers?: number;
  connections?: number;
  writes?: number;
  /** Puts in flight at once. */
  writeConcurrency?: number;
  /** Paced writes (puts per second) to measure delivery latency below saturation; unpaced when absent. */
  writesPerSec?: number;
}

export interface WatchBenchResult {
  server: 'etcd' | 'etcdesk';
  watchers: number;
  connections: number;
  writes: number;
  events: number;
  expected: number;
  eventsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  setupMs: number;
}

const PREFIX = 'wb/';
const PREFIX_END = 'wb0';

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Runs the workload against an already running server. */
export async function runWatchLoad(endpoint: string, opts: WatchBenchOptions = {}): Promise<Omit<WatchBenchResult, 'server'>> {
  const watchers = opts.watchers ?? 10_000;
  const connections = opts.connections ?? 4;
  const writes = opts.writes ?? 100;
  const conc = opts.writeConcurrency ?? 4;
  const expected = watchers * writes;
  const t0 = performance.now();
  // distinct channel options → distinct TCP connections
  const clients = Array.from({ length: connections }, (_, i) => new grpc.Client(endpoint, grpc.credentials.createInsecure(), { 'bench.conn': i, 'grpc.max_receive_message_length': -1 }));
  const m = WatchService.Watch;
  let created = 0;
  let events = 0;
  const lat = new Float64Array(expected);
  let lastAt = 0;
  let doneResolve: () => void = () => undefined;
  const done = new Promise<void>((r) => (doneResolve = r));
  let createdResolve: () => void = () => undefined;
  const allCreated = new Promise<void>((r) => (createdResolve = r));
  const streams = clients.map((c) => {
    const call = c.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => WatchResponse, new grpc.Metadata(), {});
    call.on('data', (r: WatchResponse) => {
      if (r.created) {
        if (++created === watchers) createdResolve();
        return;
      }
      const now = performance.now();
      for (const ev of r.events) {
        const sent = Number(ev.kv!.value.toString('latin1'));
        if (events < expected) lat[events] = now - sent;
        events++;
      }
      lastAt = now;
      if (events >= expected) doneResolve();
    });
    call.on('error', () => undefined);
    return call;
  });
  for (let i = 0; i < watchers; i++) {
    const req: WatchRequestInit = { create_request: { key: Buffer.from(PREFIX), range_end: Buffer.from(PREFIX_END) } };
    streams[i % connections].write(req);
  }
  await allCreated;
  const setupMs = performance.now() - t0;

  const writer = new grpc.Client(endpoint, grpc.credentials.createInsecure(), { 'bench.conn': 'writer' });
  const put = (req: PutRequestInit): Promise<PutResponse> =>
    new Promise((resolve, reject) => {
      const pm = KVService.Put;
      writer.makeUnaryRequest(pm.path, pm.requestSerialize, pm.responseDeserialize as (b: Buffer) => PutResponse, req, (err, v) => (err ? reject(err) : resolve(v!)));
    });
  const start = performance.now();
  let next = 0;
  const rate = opts.writesPerSec;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < writes) {
        const i = next++;
        if (rate) {
          const due = start + (i * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        await put({ key: Buffer.from(`${PREFIX}k${i % 100}`), value: Buffer.from(String(performance.now())) });
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 120_000)))]);
  clearTimeout(timer);
  const elapsed = (lastAt || performance.now()) - start;
  for (const s of streams) s.cancel();
  for (const c of clients) c.close();
  writer.close();
  const n = Math.min(events, expected);
  const sorted = lat.subarray(0, n).sort();
  return {
    watchers,
    connections,
    writes,
    events,
    expected,
    eventsPerSec: Math.round((events / elapsed) * 1000),
    p50Ms: Number(quantile(sorted, 0.5).toFixed(1)),
    p99Ms: Number(quantile(sorted, 0.99).toFixed(1)),
    setupMs: Math.round(setupMs),
  };
}

/** Starts the server, runs the load, stops the server. */
export async function runWatchBench(kind: 'etcd' | 'etcdesk', opts: WatchBenchOptions = {}): Promise<WatchBenchResult> {
  const start = kind === 'etcd' ? startEtcd : startEtcdesk;
  const p: ServerProc = await start({ extraArgs: ['--log-level', 'warn'] });
  try {
    return { server: kind, ...(await runWatchLoad(p.endpoint, opts)) };
  } finally {
    await p.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const watchers = Number(process.argv[2] ?? 10_000);
  const writes = Number(process.argv[3] ?? 100);
  const writesPerSec = process.argv[4] ? Number(process.argv[4]) : undefined;
  const only = process.env.WATCH_BENCH_ONLY;
  for (const kind of ['etcd', 'etcdesk'] as const) {
    if (only && only !== kind) continue;
    const r = await runWatchBench(kind, { watchers, writes, writesPerSec });
    console.log(JSON.stringify({ ...r, writesPerSec: writesPerSec ?? 'unpaced' }));
  }
}
