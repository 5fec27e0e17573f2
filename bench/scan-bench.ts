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
import { EtcdClient } from '../node-core/index';
import { startEtcd, startEtcdesk } from '../node-core/testing/processes';
import type { ScanProgressEvent } from '../electron/contract/index';
import { loadKeys, MB, sampleMemory, startAppMain } from './keyspace-fixture';

const KEYS = Number(process.env.SCAN_BENCH_KEYS ?? 1_000_000);
const VAL = Number(process.env.SCAN_BENCH_VAL_SIZE ?? 100);
const ENGINE = process.env.SCAN_BENCH_ENGINE === 'etcd' ? 'etcd' : 'etcdesk';

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
  const loader = new EtcdClient({ endpoints: [server.clientUrl], timeoutMs: 120_000 });
  try {
    console.log(`loading ${KEYS.toLocaleString('en-US')} keys (${VAL}-byte values) into ${ENGINE}…`);
    const loadSecs = await loadKeys(loader, KEYS, VAL);
    console.log(`loaded in ${loadSecs.toFixed(1)} s`);
    const app = await startAppMain([server.clientUrl]);
    const call = app.call;

    const rows: Row[] = [];
    const measure = async (scan: string, start: () => Promise<{ scanId: string; total: number }>, describe: (e: ScanProgressEvent) => string): Promise<void> => {
      const stop = await sampleMemory();
      app.eventBytes.n = 0;
      const t0 = process.hrtime.bigint();
      const s = await start();
      const last = await app.scanDone(s.scanId);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const mem = stop();
      if (last.error) throw new Error(`${scan}: ${last.error.message}`);
      rows.push({
        scan,
        seconds,
        keysPerSec: last.scanned / seconds,
        result: `${describe(last)}; ${(app.eventBytes.n / 1024).toFixed(0)} KiB of events`,
        rssBaseMb: mem.rssBaseMb,
        rssPeakMb: mem.rssPeakMb,
        heapPeakMb: mem.heapPeakMb,
      });
      console.log(rows[rows.length - 1]);
    };
    const hits = (e: ScanProgressEvent): string => `${e.scanned.toLocaleString('en-US')} scanned, ${(e.matched ?? 0).toLocaleString('en-US')} matches`;
    await measure('key contains, rare ("obj-00012")', () => call('scan:search', { mode: 'contains', pattern: 'obj-00012', prefix: '' }), hits);
    await measure('key contains, every key ("obj-"; hits capped at 10,000)', () => call('scan:search', { mode: 'contains', pattern: 'obj-', prefix: '' }), hits);
    await measure('key glob ("*/obj-*77")', () => call('scan:search', { mode: 'glob', pattern: '*/obj-*77', prefix: '' }), hits);
    await measure('value contains ("needle", case-insensitive)', () => call('scan:search', { mode: 'value', pattern: 'NEEDLE', prefix: '', caseSensitive: false }), hits);
    await measure('analyzer (whole keyspace)', () => call('scan:analyze', { prefix: '' }), (e) => `${e.report?.keys.toLocaleString("en-US")} keys, ${e.report?.tree.children[0]?.children[0]?.children.length} prefixes under /bench/`);
    await app.close();

    console.log(`\n${KEYS.toLocaleString('en-US')} keys of 24 bytes, ${VAL}-byte values, on ${ENGINE} (load: ${loadSecs.toFixed(0)} s, 16 txns of 128 puts in flight)\n`);
    console.log('| scan | seconds | keys/s | result | main RSS idle → peak MB | V8 heap peak MB |');
    console.log('|---|---:|---:|---|---:|---:|');
    for (const r of rows) console.log(`| ${r.scan} | ${r.seconds.toFixed(1)} | ${Math.round(r.keysPerSec).toLocaleString('en-US')} | ${r.result} | ${r.rssBaseMb.toFixed(0)} → ${r.rssPeakMb.toFixed(0)} | ${r.heapPeakMb.toFixed(0)} |`);
  } finally {
    loader.close();
    await server.stop();
  }
}

await main();
