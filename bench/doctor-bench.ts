// The Doctor and the Space guardian at 1,000,000 keys: the same data set as
// scan-bench.ts (keyspace-fixture.ts), the reports run through the very
// handlers main runs (dispatch → handlers/doctor.ts), against one member or a
// three-member local cluster of etcdesk-node (or, with
// DOCTOR_BENCH_ENGINE=etcd, real etcd 3.4). This process plays Electron's
// main: each report's wall time and this process's RSS / V8 heap (idle →
// peak). Every report is also run on the empty store first, so what grows
// with the key count shows. HashKV is the expensive part: each member's
// HashKV at one revision is also timed on its own, one member at a time.
//
// Run alone: `node --expose-gc --import tsx bench/doctor-bench.ts` (env
// DOCTOR_BENCH_KEYS, DOCTOR_BENCH_VAL_SIZE, DOCTOR_BENCH_ENGINE=etcd|etcdesk,
// DOCTOR_BENCH_MEMBERS=1|3). Not a timed test: it prints a markdown table for
// bench/RESULTS.md.
import { EtcdClient } from '../node-core/index';
import { startCluster, startEtcd, startEtcdesk } from '../node-core/testing/processes';
import type { DoctorReport } from '../electron/contract/index';
import { loadKeys, MB, sampleMemory, startAppMain, type AppMain, type MemorySample } from './keyspace-fixture';

const KEYS = Number(process.env.DOCTOR_BENCH_KEYS ?? 1_000_000);
const VAL = Number(process.env.DOCTOR_BENCH_VAL_SIZE ?? 100);
const ENGINE = process.env.DOCTOR_BENCH_ENGINE === 'etcd' ? 'etcd' : 'etcdesk';
const MEMBERS = Number(process.env.DOCTOR_BENCH_MEMBERS ?? 1) === 3 ? 3 : 1;

interface Row extends MemorySample {
  keys: number;
  report: string;
  seconds: number;
  result: string;
}

/** The findings, but the disk-latency ones (WAL fsync, backend commit p99: this shared machine's disk, not the doctor's doing) only counted. */
const findingsOf = (r: DoctorReport): string => {
  const disk = r.findings.filter((f) => /WAL fsync p99|backend commit p99/.test(f.text));
  const rest = r.findings.filter((f) => !disk.includes(f));
  return [...rest.map((f) => `${f.severity}: ${f.text}`), ...(disk.length ? [`${disk.length} disk-latency warning(s)`] : [])].join(' / ') || 'no findings';
};

/** Each report once, through main's dispatch: wall time to the full report and main's memory. */
async function reports(app: AppMain, keys: number, rows: Row[]): Promise<void> {
  const measure = async <T>(report: string, run: () => Promise<T>, describe: (r: T) => string): Promise<T> => {
    const stop = await sampleMemory();
    const t0 = process.hrtime.bigint();
    const r = await run();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    rows.push({ keys, report, seconds, result: describe(r), ...stop() });
    console.log(rows[rows.length - 1]);
    return r;
  };
  await measure('space:report', () => app.call('space:report', {}), (r) => `db ${(r.dbSize / MB).toFixed(0)} MB (${(r.dbSizeInUse / MB).toFixed(0)} in use), ${r.members.length} member(s)`);
  await measure('doctor:report (poll, no HashKV)', () => app.call('doctor:report', {}), (r) => `${r.members.length} member(s); ${findingsOf(r)}`);
  await measure('doctor:report {hash: true}', () => app.call('doctor:report', { hash: true }), (r) => {
    const hashes = r.members.map((m) => m.hash?.hash ?? `error: ${m.hashError}`);
    return `HashKV at ${r.hashRevision}: ${new Set(hashes).size === 1 ? `all ${hashes.length} equal` : hashes.join(', ')}; ${findingsOf(r)}`;
  });
  // After HashKV: did it cost the cluster anything (leader changes, failed proposals)?
  await measure('doctor:report (poll after HashKV)', () => app.call('doctor:report', {}), (r) => findingsOf(r));
}

/** Each member's HashKV at one revision, one member at a time, straight from a client. */
async function hashEach(urls: string[]): Promise<string> {
  const any = new EtcdClient({ endpoints: urls, timeoutMs: 120_000 });
  const rev = (await any.range({ key: Buffer.from([0]), count_only: true })).header?.revision ?? 0;
  any.close();
  const out: string[] = [];
  for (const [i, url] of urls.entries()) {
    const one = new EtcdClient({ endpoints: [url], timeoutMs: 120_000 });
    try {
      // A linearizable read first: the member has applied everything up to rev (else HashKV says future revision).
      await one.range({ key: Buffer.from([0]), count_only: true });
      const before = await one.status();
      const t0 = process.hrtime.bigint();
      const h = await one.hashKV(rev);
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      // A member whose HashKV stalls its raft loop past the election timeout costs the cluster its leader.
      const moved = urls.length > 1 && (await one.status()).leader !== before.leader ? ', leader changed' : '';
      const role = urls.length > 1 && before.leader === before.header?.member_id ? ' (leader)' : '';
      out.push(`m${i + 1}${role} ${secs.toFixed(2)} s (${h.hash}${moved})`);
    } catch (e) {
      out.push(`m${i + 1} failed: ${(e as Error).message}`);
    } finally {
      one.close();
    }
  }
  return `HashKV at revision ${rev}: ${out.join(', ')}`;
}

async function main(): Promise<void> {
  const args = ['--log-level', 'warn', '--quota-backend-bytes', String(8 * 1024 * MB)];
  const servers =
    MEMBERS === 3
      ? await startCluster(ENGINE, 3, args).then((c) => ({ urls: c.members.map((m) => m.clientUrl), procs: c.members, stop: () => c.stop() }))
      : await (ENGINE === 'etcd' ? startEtcd : startEtcdesk)({ extraArgs: args }).then((s) => ({ urls: [s.clientUrl], procs: [s], stop: () => s.stop() }));
  const loader = new EtcdClient({ endpoints: servers.urls, timeoutMs: 120_000 });
  const rows: Row[] = [];
  try {
    const app = await startAppMain(servers.urls);
    await reports(app, 0, rows);
    console.log(`loading ${KEYS.toLocaleString('en-US')} keys (${VAL}-byte values) into ${MEMBERS} ${ENGINE} member(s)…`);
    const loadSecs = await loadKeys(loader, KEYS, VAL);
    console.log(`loaded in ${loadSecs.toFixed(1)} s`);
    const hashLine = await hashEach(servers.urls);
    console.log(hashLine);
    await reports(app, KEYS, rows);
    await app.close();

    console.log(`\n${ENGINE}, ${MEMBERS} member(s), ${KEYS.toLocaleString('en-US')} keys of 24 bytes, ${VAL}-byte values (load: ${loadSecs.toFixed(0)} s, 16 txns of 128 puts in flight); ${hashLine}\n`);
    console.log('| keys | report | seconds | main RSS idle → peak MB | V8 heap idle → peak MB | result |');
    console.log('|---:|---|---:|---:|---:|---|');
    for (const r of rows) console.log(`| ${r.keys.toLocaleString('en-US')} | ${r.report} | ${r.seconds.toFixed(2)} | ${r.rssBaseMb.toFixed(0)} → ${r.rssPeakMb.toFixed(0)} | ${r.heapBaseMb.toFixed(0)} → ${r.heapPeakMb.toFixed(0)} | ${r.result} |`);
  } finally {
    // What the members said (a member that died or lost its leader says so here).
    for (const p of servers.procs) console.log(`--- ${p.name} (exit ${p.proc.exitCode ?? 'running'})\n${p.output().slice(-1500)}`);
    loader.close();
    await servers.stop();
  }
}

await main();
