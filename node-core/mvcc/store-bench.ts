// Micro-benchmark of the store's hot paths (not a test):
//   node --import tsx node-core/mvcc/store-bench.ts
import { Backend } from '../backend/backend';
import { Compare_CompareResult, Compare_CompareTarget, decodePutRequest, decodeRangeRequest, encodePutRequest, encodeRangeRequest } from '../proto/gen/etcdserverpb';
import { EMPTY } from '../proto/wire';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MvccStore } from './store';

const N = Number(process.env.N ?? 200000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvcc-bench-'));
const backend = Backend.open(dir, { sync: false });
const store = MvccStore.open(backend);
store.subscribe(() => undefined);

// Wall time and the process's CPU time: the machine may be shared, and CPU
// time is the steadier measure of the store's own cost.
function time(name: string, n: number, fn: (i: number) => void): void {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(c0);
  const ns = Number(process.hrtime.bigint() - t0);
  const cpuUs = (c.user + c.system) / n;
  console.log(`${name.padEnd(36)} ${((n / ns) * 1e9).toFixed(0).padStart(9)} ops/s  wall ${(ns / n / 1000).toFixed(2)} µs/op  cpu ${cpuUs.toFixed(2)} µs/op`);
}

const value = Buffer.alloc(256, 0x61);
const keyOf = (i: number) => Buffer.from(`/registry/pods/ns${i % 100}/pod-${i.toString().padStart(8, '0')}`);
const putReqs = Array.from({ length: N }, (_, i) => decodePutRequest(encodePutRequest({ key: keyOf((i * 7919) % N), value })));
const getReqs = Array.from({ length: 1000 }, (_, i) => decodeRangeRequest(encodeRangeRequest({ key: keyOf((i * 104729) % N) })));

async function main(): Promise<void> {
  time('put (new keys, 256B)', N, (i) => store.put(putReqs[i]));
  await backend.commit();
  time('put (overwrite)', N, (i) => store.put(putReqs[i]));
  await backend.commit();
  time('range single key (committed)', 200000, (i) => store.range(getReqs[i % 1000]));
  const prefix = decodeRangeRequest(encodeRangeRequest({ key: Buffer.from('/registry/pods/ns1/'), range_end: Buffer.from('/registry/pods/ns10') }));
  time('range prefix ~N/100 keys, limit 100', 2000, () => store.range({ ...prefix, limit: 100 }));
  time('range prefix count_only', 2000, () => store.range({ ...prefix, count_only: true }));
  time('range prefix all', 200, () => store.range(prefix));
  // the Kubernetes write: put if the key's mod revision is unchanged, else read it
  const txns = Array.from({ length: 1000 }, (_, i) => keyOf((i * 104729) % N));
  time('txn mod==X ? put : get', 100000, (i) => {
    const key = txns[i % 1000];
    const mod = store.get(key)!.mod_revision;
    store.txn({
      compare: [{ key, range_end: EMPTY, target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, mod_revision: mod }],
      success: [{ request_put: { key, value, lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false } }],
      failure: [{ request_range: decodeRangeRequest(encodeRangeRequest({ key })) }],
    });
  });
  await backend.commit();
  const t0 = Date.now();
  const h = await store.hashKV(0);
  console.log(`hashKV over ${2 * N} revisions: ${Date.now() - t0} ms (${h.hash})`);
  const t1 = Date.now();
  const { done } = store.compact({ revision: store.rev - 10, physical: true });
  const t2 = Date.now();
  await done;
  console.log(`compact: index ${t2 - t1} ms, physical ${Date.now() - t2} ms`);
  await backend.close();
  const t3 = Date.now();
  const b2 = Backend.open(dir, { sync: false });
  MvccStore.open(b2);
  console.log(`reopen (restore index of ${N} keys): ${Date.now() - t3} ms`);
  await b2.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
void main();
