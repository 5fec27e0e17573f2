// Differential test against a real etcd 3.4: the same random requests go to
// etcd over gRPC and to MvccStore; responses must be byte-identical (after
// encoding ours with the same codec), errors identical, and HashKV equal.
// Skipped when /usr/bin/etcd is missing.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../testing/processes';
import { EtcdError } from '../errors/index';
import { decodeEvent, encodeEvent, type Event } from '../proto/gen/mvccpb';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  KVService,
  LeaseService,
  MaintenanceService,
  WatchService,
  type WatchResponse,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  decodeDeleteRangeResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeTxnResponse,
  encodeDeleteRangeResponse,
  encodePutResponse,
  encodeRangeResponse,
  encodeTxnResponse,
  type CompareInit,
  type DeleteRangeResponse,
  type PutResponse,
  type RangeResponse,
  type TxnResponse,
  type DeleteRangeRequestInit,
  type PutRequestInit,
  type RangeRequestInit,
  type RequestOpInit,
  type TxnRequestInit,
} from '../proto/gen/etcdserverpb';
import { delReq, openTestStore, putReq, rangeReq, txnReq, type TestStore } from './test-helpers';

const ETCD = process.env.ETCD_BIN ?? '/usr/bin/etcd';
const HAVE_ETCD = fs.existsSync(ETCD);
const LEASE = 0x1000n;

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
type Client = grpc.Client & Record<string, Unary>;

function makeClient(def: Record<string, unknown>, name: string, addr: string): Client {
  const Ctor = grpc.makeGenericClientConstructor(def as grpc.ServiceDefinition, name);
  return new Ctor(addr, grpc.credentials.createInsecure()) as unknown as Client;
}

function call<T>(c: Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => c[method].call(c, req, (err, res) => (err ? reject(err) : resolve(res as T))));
}

interface Outcome {
  ok?: unknown;
  err?: string;
}

/** Runs a request on both sides and returns the two normalized outcomes. */
async function both<T extends { header?: { revision?: number } }>(
  etcd: () => Promise<T>,
  mine: () => T,
  roundTrip: (m: T) => T,
  rev: () => number,
): Promise<[Outcome, Outcome]> {
  let a: Outcome;
  let b: Outcome;
  try {
    const r = await etcd();
    r.header = { revision: r.header?.revision ?? 0 };
    a = { ok: r };
  } catch (e) {
    a = { err: `${(e as grpc.ServiceError).code} ${(e as grpc.ServiceError).details}` };
  }
  try {
    const r = roundTrip(mine());
    r.header = { revision: rev() };
    b = { ok: r };
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
    b = { err: `${e.code} ${e.message}` };
  }
  return [a, b];
}

function show(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('latin1');
    return v;
  });
}

type WatchClient = grpc.Client & { Watch(): grpc.ClientDuplexStream<unknown, WatchResponse> };

/**
 * History from etcd's watch: the events from startRev on (until `expect`
 * arrived or the stream went quiet), or the compact revision when refused.
 */
function etcdHistory(
  w: WatchClient,
  key: Buffer,
  rangeEnd: Buffer | undefined,
  startRev: number,
  prevKv: boolean,
  expect: number,
): Promise<{ events: Event[] } | { compacted: number }> {
  return new Promise((resolve, reject) => {
    const stream = w.Watch();
    const events: Event[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (r: { events: Event[] } | { compacted: number }) => {
      clearTimeout(timer);
      stream.removeAllListeners('data');
      stream.on('error', () => undefined);
      stream.cancel();
      resolve(r);
    };
    // etcd syncs lagging watchers every 100 ms
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish({ events }), 400);
    };
    stream.on('data', (resp: WatchResponse) => {
      if (resp.compact_revision) return finish({ compacted: resp.compact_revision });
      events.push(...resp.events);
      if (events.length >= expect && expect > 0) finish({ events });
      else quiet();
    });
    stream.on('error', reject);
    stream.write({ create_request: { key, range_end: rangeEnd, start_revision: startRev, prev_kv: prevKv } });
    quiet();
  });
}

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('mvcc store vs etcd 3.4', { skip: !HAVE_ETCD && 'etcd not installed' }, () => {
  let proc: ChildProcess | undefined;
  let dataDir = '';
  let kv: Client;
  let maint: Client;
  let lease: Client;
  let watch: WatchClient;
  let t: TestStore;
  let output = '';

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvcc-etcd-'));
    const [cp, pp] = [await freePort(), await freePort()];
    proc = spawn(
      ETCD,
      [
        '--name=m',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=http://127.0.0.1:${cp}`,
        `--advertise-client-urls=http://127.0.0.1:${cp}`,
        `--listen-peer-urls=http://127.0.0.1:${pp}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${pp}`,
        `--initial-cluster=m=http://127.0.0.1:${pp}`,
        '--log-level=error',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const addr = `127.0.0.1:${cp}`;
    kv = makeClient(KVService, 'KV', addr);
    maint = makeClient(MaintenanceService, 'Maintenance', addr);
    lease = makeClient(LeaseService, 'Lease', addr);
    watch = makeClient(WatchService, 'Watch', addr) as unknown as WatchClient;
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        await call(kv, 'Range', { key: Buffer.from('x') });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`etcd did not start: ${String(e)}\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await call(lease, 'LeaseGrant', { TTL: 3600, ID: LEASE });
    t = await openTestStore({ leases: { exists: (id) => id === LEASE, attach: () => undefined, detach: () => undefined } });
  });

  after(async () => {
    kv?.close();
    maint?.close();
    lease?.close();
    watch?.close();
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await new Promise((r) => proc!.once('exit', r));
    }
    if (t) await t.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('gives identical responses, errors and hashes for a random workload', { timeout: 60000 }, async () => {
    const r = rand(Number(process.env.MVCC_COMPAT_SEED ?? 20240611));
    const stats = new Map<string, number>();
    const count = (k: string) => stats.set(k, (stats.get(k) ?? 0) + 1);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
    const keys = ['a', 'b', 'c', 'd', 'k/1', 'k/2', 'k/3', 'z', '\u0000x', '\u00ffy'].map((k) => Buffer.from(k, 'latin1'));
    // more keys make bigger sorted results (Go sorts more than 12 items unstably)
    for (let i = 0; i < Number(process.env.MVCC_COMPAT_EXTRA_KEYS ?? 20); i++) keys.push(Buffer.from(`m/${i}`));
    const values = ['', '1', '2', '10', 'v', 'zz'].map((v) => Buffer.from(v));
    const revisionChoice = (): number => {
      const cur = t.store.rev;
      const c = t.store.compactRev;
      return pick([0, 0, 0, -1, cur, cur + 1, Math.max(1, c), Math.max(1, c - 1), 1 + Math.floor(r() * cur)]);
    };
    const rangeEndFor = (k: Buffer): Buffer | undefined => {
      const x = r();
      if (x < 0.4) return undefined;
      if (x < 0.6) return Buffer.from([0]);
      if (x < 0.8) return Buffer.concat([k.subarray(0, Math.max(0, k.length - 1)), Buffer.from([k.length ? k[k.length - 1] + 1 : 1])]);
      return pick(keys);
    };
    const mkRange = (): RangeRequestInit => {
      const key = pick(keys);
      const q: RangeRequestInit = { key, range_end: rangeEndFor(key) };
      if (r() < 0.4) q.limit = Math.floor(r() * 4);
      if (r() < 0.4) q.sort_order = pick([0, 1, 2]) as RangeRequest_SortOrder;
      if (r() < 0.4) q.sort_target = pick([0, 1, 2, 3, 4]) as RangeRequest_SortTarget;
      if (r() < 0.2) q.keys_only = true;
      if (r() < 0.1) q.count_only = true;
      if (r() < 0.3) q.revision = revisionChoice();
      if (r() < 0.15) q.min_mod_revision = Math.floor(r() * t.store.rev);
      if (r() < 0.15) q.max_mod_revision = Math.floor(r() * t.store.rev);
      if (r() < 0.15) q.min_create_revision = Math.floor(r() * t.store.rev);
      if (r() < 0.15) q.max_create_revision = Math.floor(r() * t.store.rev);
      return q;
    };
    const mkPut = (key: Buffer): PutRequestInit => {
      const q: PutRequestInit = { key, value: pick(values) };
      if (r() < 0.3) q.prev_kv = true;
      const x = r();
      if (x < 0.15) q.lease = LEASE;
      else if (x < 0.2) {
        q.ignore_value = true;
        q.value = undefined;
      } else if (x < 0.25) q.ignore_lease = true;
      return q;
    };
    const mkDel = (key: Buffer, single: boolean): DeleteRangeRequestInit => ({
      key,
      range_end: single ? undefined : rangeEndFor(key),
      prev_kv: r() < 0.5,
    });
    const mkCompare = (): CompareInit => {
      const key = pick(keys);
      const target = pick([0, 1, 2, 3, 4]) as Compare_CompareTarget;
      const c: CompareInit = { key, target, result: pick([0, 1, 2, 3]) as Compare_CompareResult };
      if (r() < 0.3) c.range_end = rangeEndFor(key);
      const n = Math.floor(r() * (t.store.rev + 1));
      if (target === Compare_CompareTarget.VERSION) c.version = Math.floor(r() * 4);
      else if (target === Compare_CompareTarget.CREATE) c.create_revision = n;
      else if (target === Compare_CompareTarget.MOD) c.mod_revision = n;
      else if (target === Compare_CompareTarget.VALUE) c.value = pick(values);
      else c.lease = pick([0n, LEASE]);
      return c;
    };
    // write ops of one txn touch distinct single keys, as etcd's server requires
    const mkOps = (free: Buffer[], depth: number): RequestOpInit[] => {
      const ops: RequestOpInit[] = [];
      const n = Math.floor(r() * 4);
      for (let i = 0; i < n; i++) {
        const x = r();
        if (x < 0.3 || free.length === 0) ops.push({ request_range: mkRange() });
        else if (x < 0.65) ops.push({ request_put: mkPut(free.pop()!) });
        else if (x < 0.85) ops.push({ request_delete_range: mkDel(free.pop()!, true) });
        else if (depth < 2) ops.push({ request_txn: mkTxn(free, depth + 1) });
      }
      return ops;
    };
    const mkTxn = (free: Buffer[], depth: number): TxnRequestInit => {
      const compare: CompareInit[] = [];
      const n = Math.floor(r() * 3);
      for (let i = 0; i < n; i++) compare.push(mkCompare());
      return { compare, success: mkOps(free, depth), failure: mkOps(free, depth) };
    };

    const check = async <T extends { header?: { revision?: number } }>(what: string, etcd: () => Promise<T>, mine: () => T, rt: (m: T) => T) => {
      const [a, b] = await both(etcd, mine, rt, () => t.store.rev);
      count(`${what.split(' ')[0]} ${a.err ?? 'ok'}`);
      assert.deepEqual(b, a, what);
    };

    // before any write or compaction: revision 1, compact revision -1
    const h0 = await call<{ hash: number; compact_revision: number; header?: { revision: number } }>(maint, 'HashKV', { revision: 0 });
    assert.deepEqual(await t.store.hashKV(0), { hash: h0.hash, compactRev: h0.compact_revision, rev: h0.header?.revision });

    const N = Number(process.env.MVCC_COMPAT_OPS ?? 600);
    for (let i = 0; i < N; i++) {
      const x = r();
      if (x < 0.3) {
        const q = mkPut(pick(keys));
        await check(`put ${show(q)}`, () => call<PutResponse>(kv, 'Put', q), () => t.store.put(putReq(q)), (m) => decodePutResponse(encodePutResponse(m)));
      } else if (x < 0.4) {
        const q = mkDel(pick(keys), false);
        await check(
          `delete ${show(q)}`,
          () => call<DeleteRangeResponse>(kv, 'DeleteRange', q),
          () => t.store.deleteRange(delReq(q)),
          (m) => decodeDeleteRangeResponse(encodeDeleteRangeResponse(m)),
        );
      } else if (x < 0.7) {
        const q = mkRange();
        await check(`range ${show(q)}`, () => call<RangeResponse>(kv, 'Range', q), () => t.store.range(rangeReq(q)), (m) => decodeRangeResponse(encodeRangeResponse(m)));
      } else if (x < 0.97) {
        const free = [...keys].sort(() => r() - 0.5);
        const q = mkTxn(free, 0);
        await check(`txn ${show(q)}`, () => call<TxnResponse>(kv, 'Txn', q), () => t.store.txn(txnReq(q)), (m) => decodeTxnResponse(encodeTxnResponse(m)));
      } else {
        const rev = pick([t.store.compactRev, t.store.rev + 1, t.store.compactRev + 1 + Math.floor(r() * (t.store.rev - t.store.compactRev))]);
        let a = 'ok';
        let b = 'ok';
        try {
          await call(kv, 'Compact', { revision: rev, physical: true });
        } catch (e) {
          a = (e as grpc.ServiceError).details;
        }
        try {
          await t.store.compact({ revision: rev, physical: true }).done;
        } catch (e) {
          b = (e as Error).message;
        }
        assert.equal(b, a, `compact ${rev}`);
        count(`compact ${a}`);
      }
      if (i % 100 === 99) {
        // history as a watcher catching up sees it, from just below the
        // compact revision (refused), from it, and from later
        const key = pick(keys);
        let end = rangeEndFor(key);
        // etcd refuses an empty watch range before looking at history
        if (end && end.length && !(end.length === 1 && end[0] === 0) && Buffer.compare(key, end) >= 0) end = undefined;
        const c = t.store.compactRev;
        const from = Math.max(1, pick([c - 1, c, c + Math.floor(r() * (t.store.rev - c + 1))]));
        const prevKv = r() < 0.5;
        let mine: { events: Event[] } | { compacted: number };
        try {
          mine = { events: t.store.eventsBetween(key, end, from, t.store.rev, prevKv).map((e) => decodeEvent(encodeEvent(e))) };
        } catch (e) {
          if (!(e instanceof EtcdError)) throw e;
          mine = { compacted: t.store.compactRev };
        }
        const theirs = await etcdHistory(watch, key, end, from, prevKv, 'events' in mine ? mine.events.length : 0);
        assert.deepEqual(mine, theirs, `history of ${show({ key, end, from, prevKv })} at ${t.store.rev}`);
        count(`watch ${'events' in mine ? mine.events.length : 'compacted'}`);
      }
      if (i % 50 === 49 || i === N - 1) {
        await t.backend.commit();
        for (const rev of [0, t.store.rev - 3]) {
          const eh = await call<{ hash: number; compact_revision: number; header?: { revision: number } }>(maint, 'HashKV', { revision: rev }).catch(
            (e: grpc.ServiceError) => ({ err: e.details }),
          );
          let mh: unknown;
          try {
            const h = await t.store.hashKV(rev);
            mh = { hash: h.hash, compact_revision: h.compactRev, rev: h.rev };
          } catch (e) {
            mh = { err: (e as Error).message };
          }
          const norm: unknown =
            'err' in eh ? eh : { hash: eh.hash, compact_revision: eh.compact_revision, rev: eh.header?.revision ?? 0 };
          assert.deepEqual(mh, norm, `hashKV(${rev}) after op ${i}`);
          count(`hash ${'err' in eh ? eh.err : 'ok'}`);
        }
      }
    }
    if (process.env.MVCC_COMPAT_STATS) console.log([...stats].sort(), t.store.rev, t.store.compactRev);
  });
});
