// Keyspace scans at 1,000,000 keys: the app's search (key contains, glob,
// value contains) and analyzer, run through the very handlers main runs
// (dispatch → handlers/scan.ts), against an etcdesk-node process (or, with
// SCAN_BENCH_ENGINE=etcd, a real etcd 3.4) loaded with structured keys
// (/bench/ns-<i % 100>/obj-<i>). This process plays Electron's main: we record
// each scan's wall time and this process's memory (RSS and V8 heap, sampled
// every 50 ms: the peak and its growth over the idle baseline), which must stay
// bounded whatever the keyspace (only a page, capped hits, aggregates).
//
// Run alone: `node --import tsx bench/scan-bench.ts` (env SCAN_BENCH_KEYS,
// SCAN_BENCH_VAL_SIZE, SCAN_BENCH_ENGINE=etcd|etcdesk). Not a timed test:
// it prints a markdown table for bench/RESULTS.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EtcdClient, type EtcdPb } from '../node-core/index';
import { startEtcd, startEtcdesk } from '../node-core/testing/processes';
import type { Channel, Req, Res, ScanProgressEvent } from '../electron/contract/index';
import { ConnectionManager } from '../electron/main/connection-manager';
import { createHandlers, dispatch, type HandlerContext } from '../electron/main/handlers';
import { ProfileStore } from '../electron/main/profile-store';
import { SessionSecrets } from '../electron/main/secrets';

const KEYS = Number(process.env.SCAN_BENCH_KEYS ?? 1_000_000);
const VAL = Number(process.env.SCAN_BENCH_VAL_SIZE ?? 100);
const ENGINE = process.env.SCAN_BENCH_ENGINE === 'etcd' ? 'etcd' : 'etcdesk';
const MB = 1024 * 1024;

async function load(c: EtcdClient): Promise<number> {
  const t0 = Date.now();
  const filler = 'v'.repeat(Math.max(0, VAL - 12));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const from = next;
      if (from >= KEYS) return;
      next = Math.min(KEYS, from + 128);
      const ops: EtcdPb.RequestOpInit[] = [];
      for (let i = from; i < next; i++) {
        // One value in 100,000 holds the needle the value search looks for.
        const v = i % 100_000 === 777 ? `needle ${filler}` : `${String(i).padStart(10, '0')} ${filler}`;
        ops.push({ request_put: { key: Buffer.from(`/bench/ns-${String(i % 100).padStart(2, '0')}/obj-${String(i).padStart(7, '0')}`), value: Buffer.from(v.slice(0, VAL)) } });
      }
      await c.txn({ success: ops });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return (Date.now() - t0) / 1000;
}

interface Row {
  scan: string;
  seconds: number;
  keysPerSec: number;
  result: string;
  rssBaseMb: number;
  rssPeakMb: number;
  heapPeakMb: number;
}

async function main(): Promise<void> {
  const server = await (ENGINE === 'etcd' ? startEtcd : startEtcdesk)({ extraArgs: ['--log-level', 'warn', '--quota-backend-bytes', String(8 * 1024 * MB)] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-scan-bench-'));
  const loader = new EtcdClient({ endpoints: [server.clientUrl], timeoutMs: 120_000 });
  try {
    console.log(`loading ${KEYS.toLocaleString('en-US')} keys (${VAL}-byte values) into ${ENGINE}…`);
    const loadSecs = await load(loader);
    console.log(`loaded in ${loadSecs.toFixed(1)} s`);

    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), false);
    const manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
    const handlers = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'bench', platform: process.platform, features: { localCluster: false, embeddedEngine: 'none' } },
      broadcast: () => undefined,
      chooseSnapshotPath: async () => null,
    });
    const done = new Map<string, (e: ScanProgressEvent) => void>();
    let eventBytes = 0;
    // As the shell does: every event is serialized (what Electron's IPC would copy).
    const ctx: HandlerContext = {
      clientId: 'bench',
      emit: (event, payload) => {
        eventBytes += JSON.stringify(payload).length;
        const p = payload as ScanProgressEvent;
        if (event === 'scan:progress' && p.done) done.get(p.scanId)?.(p);
      },
    };
    const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
      const env = await dispatch(handlers, c, req, ctx);
      if (!env.ok) throw new Error(env.error.message);
      return env.value as Res<C>;
    };
    const saved = await call('conn:save', { id: '', name: 'bench', kind: 'remote', endpoints: [server.clientUrl] });
    const st = await call('conn:connect', { id: saved.id });
    if (st.state !== 'connected') throw new Error(st.error?.message);

    const rows: Row[] = [];
    const measure = async (scan: string, start: () => Promise<{ scanId: string; total: number }>, describe: (e: ScanProgressEvent) => string): Promise<void> => {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 200));
      const base = process.memoryUsage();
      let rssPeak = base.rss;
      let heapPeak = base.heapUsed;
      const sampler = setInterval(() => {
        const m = process.memoryUsage();
        rssPeak = Math.max(rssPeak, m.rss);
        heapPeak = Math.max(heapPeak, m.heapUsed);
      }, 50);
      eventBytes = 0;
      const t0 = process.hrtime.bigint();
      const s = await start();
      const last = await new Promise<ScanProgressEvent>((resolve) => done.set(s.scanId, resolve));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(sampler);
      if (last.error) throw new Error(`${scan}: ${last.error.message}`);
      rows.push({
        scan,
        seconds,
        keysPerSec: last.scanned / seconds,
        result: `${describe(last)}; ${(eventBytes / 1024).toFixed(0)} KiB of events`,
        rssBaseMb: base.rss / MB,
        rssPeakMb: rssPeak / MB,
        heapPeakMb: heapPeak / MB,
      });
      console.log(rows[rows.length - 1]);
    };
    const hits = (e: ScanProgressEvent): string => `${e.scanned.toLocaleString('en-US')} scanned, ${(e.matched ?? 0).toLocaleString('en-US')} matches`;
    await measure('key contains, rare ("obj-00012")', () => call('scan:search', { mode: 'contains', pattern: 'obj-00012', prefix: '' }), hits);
    await measure('key contains, every key ("obj-"; hits capped at 10,000)', () => call('scan:search', { mode: 'contains', pattern: 'obj-', prefix: '' }), hits);
    await measure('key glob ("*/obj-*77")', () => call('scan:search', { mode: 'glob', pattern: '*/obj-*77', prefix: '' }), hits);
    await measure('value contains ("needle", case-insensitive)', () => call('scan:search', { mode: 'value', pattern: 'NEEDLE', prefix: '', caseSensitive: false }), hits);
    await measure('analyzer (whole keyspace)', () => call('scan:analyze', { prefix: '' }), (e) => `${e.report?.keys.toLocaleString("en-US")} keys, ${e.report?.tree.children[0]?.children[0]?.children.length} prefixes under /bench/`);
    await manager.shutdown();

    console.log(`\n${KEYS.toLocaleString('en-US')} keys of 24 bytes, ${VAL}-byte values, on ${ENGINE} (load: ${loadSecs.toFixed(0)} s, 16 txns of 128 puts in flight)\n`);
    console.log('| scan | seconds | keys/s | result | main RSS idle → peak MB | V8 heap peak MB |');
    console.log('|---|---:|---:|---|---:|---:|');
    for (const r of rows) console.log(`| ${r.scan} | ${r.seconds.toFixed(1)} | ${Math.round(r.keysPerSec).toLocaleString('en-US')} | ${r.result} | ${r.rssBaseMb.toFixed(0)} → ${r.rssPeakMb.toFixed(0)} | ${r.heapPeakMb.toFixed(0)} |`);
  } finally {
    loader.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
