// The MVCC store: etcd 3.4's revision model (mvcc/kvstore*.go) with the
// request semantics of etcdserver/apply.go, over the LMDB backend's `key` and
// `meta` buckets laid out byte for byte as etcd's bolt buckets.
//
// Everything here is synchronous except physical compaction. The key index
// lives in memory (a Map for point lookups, a B-tree of latin1 strings for
// ordered ranges); values are read from the backend, whose overlay makes
// writes readable before they are committed.
import type { Backend, BackendSnapshot } from '../backend/backend';
import { Errors } from '../errors/index';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type CompactionRequest,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponseInit,
  type PutRequest,
  type PutResponseInit,
  type RangeRequest,
  type RangeResponseInit,
  type RequestOp,
  type ResponseOpInit,
  type TxnRequest,
  type TxnResponseInit,
} from '../proto/gen/etcdserverpb';
import { decodeKeyValue, Event_EventType, type Event, type KeyValue } from '../proto/gen/mvccpb';
import { EMPTY } from '../proto/wire';
import { Crc32c } from '../backend/crc32c';
import { goSort } from './go-sort';
import { KeyIndex, lastAtOrBefore, type RevRef } from './key-index';
import { KeyTree } from './key-tree';
import { encodeKv, encodeTombstone, readKvMeta, type KvMeta } from './kv-codec';
import { isTombstoneKey, RevSet, REV_BYTES_LEN, revKey, revMain, revSub, writeRev } from './revision';
import type { EventListener, HashKVResult, KVStore, LeaseHooks, WriteTxn } from './types';

const SCHEDULED_COMPACT_KEY = Buffer.from('scheduledCompactRev');
const FINISHED_COMPACT_KEY = Buffer.from('finishedCompactRev');
const KEY_BUCKET_NAME = Buffer.from('key');

const DEFAULT_COMPACTION_BATCH = 1000;
/** Records HashKV hashes between two turns of the event loop, at most (and HASH_SLICE_MS). */
const DEFAULT_HASH_SLICE = 8192;
const HASH_SLICE_MS = 8;
const ZERO_BYTE = Buffer.alloc(1);
// Values are read from LMDB's map on demand (verified against their checksum);
// the cache only spares hot keys that read, so it stays small whatever the data.
const DEFAULT_VALUE_CACHE_BYTES = 16 * 1024 * 1024;
/** Heap cost of a cached value beyond its bytes (the string's header). */
const VAL_OVERHEAD = 32;

export interface MvccStoreOptions {
  leases?: LeaseHooks;
  /** Keys deleted per physical-compaction step (etcd's CompactionBatchLimit). */
  compactionBatchLimit?: number;
  /** Records HashKV hashes per turn of the event loop, at most (tests make it small). */
  hashSliceRecords?: number;
  /**
   * Budget for keeping keys' live values in memory, so reads at the current
   * revision skip the backend (default 16 MiB; 0 disables). Past the budget
   * values are simply not cached.
   */
  valueCacheBytes?: number;
  /**
   * Called with every record of the `key` bucket as the index is rebuilt at
   * open (views valid during the call only), so the start-up checks share
   * the rebuild's one pass over the bucket.
   */
  eachRecord?: (key: Buffer, value: Buffer) => void;
}

const NO_LEASES: LeaseHooks = {
  exists: () => false,
  attach: () => undefined,
  detach: () => undefined,
};

// Result of visibleAt(); module-level so the range loop allocates nothing per key.
let hitMain = 0;
let hitSub = 0;

/** Finds the key's revision visible at atRev into hitMain/hitSub (etcd's keyIndex.get). */
function visibleAt(ki: KeyIndex, atRev: number): boolean {
  if (ki.modMain <= atRev) {
    // nothing changed since atRev: the key's state then is its state now
    if (ki.deleted) return false;
    hitMain = ki.modMain;
    hitSub = ki.modSub;
    return true;
  }
  const g = ki.genAt(atRev);
  if (!g) return false;
  const i = lastAtOrBefore(g.mains, atRev);
  if (i < 0) return false;
  hitMain = g.mains[i];
  hitSub = g.subs[i];
  return true;
}

/** etcd's mkGteRange: undefined = single key, empty = open-ended. */
function rangeEndOf(rangeEnd: Buffer): Buffer | undefined {
  if (rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return EMPTY;
  return rangeEnd;
}

/**
 * A key for the lease hooks, which may keep it as long as the lease lives: a
 * buffer of its own, since a view into a shared slab or pool would keep all
 * of that memory alive with it.
 */
function ownedKey(key: string): Buffer {
  const b = Buffer.allocUnsafeSlow(key.length);
  b.write(key, 0, 'latin1');
  return b;
}

const EMPTY_KV: KeyValue = { key: EMPTY, create_revision: 0, mod_revision: 0, version: 0, value: EMPTY, lease: 0n };

function compareNum(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareKV(c: Compare, kv: KeyValue): boolean {
  let result: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      result = Buffer.compare(kv.value, c.value ?? EMPTY);
      break;
    case Compare_CompareTarget.CREATE:
      result = compareNum(kv.create_revision, c.create_revision ?? 0);
      break;
    case Compare_CompareTarget.MOD:
      result = compareNum(kv.mod_revision, c.mod_revision ?? 0);
      break;
    case Compare_CompareTarget.VERSION:
      result = compareNum(kv.version, c.version ?? 0);
      break;
    case Compare_CompareTarget.LEASE: {
      const l = c.lease ?? 0n;
      result = kv.lease < l ? -1 : kv.lease > l ? 1 : 0;
      break;
    }
    default:
      result = 0;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return result === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return result !== 0;
    case Compare_CompareResult.GREATER:
      return result > 0;
    case Compare_CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

type KvLess = (a: KeyValue, b: KeyValue) => boolean;
/** etcd's kvSortBy* Less functions (by key needs none: results come in key order). */
const LESS: Record<number, KvLess> = {
  [RangeRequest_SortTarget.VERSION]: (a, b) => a.version < b.version,
  [RangeRequest_SortTarget.CREATE]: (a, b) => a.create_revision < b.create_revision,
  [RangeRequest_SortTarget.MOD]: (a, b) => a.mod_revision < b.mod_revision,
  [RangeRequest_SortTarget.VALUE]: (a, b) => Buffer.compare(a.value, b.value) < 0,
};

function isTxnReadonly(rt: TxnRequest): boolean {
  for (const op of rt.success) if (!op.request_range) return false;
  for (const op of rt.failure) if (!op.request_range) return false;
  return true;
}

export class MvccStore implements KVStore {
  private readonly backend: Backend;
  private readonly hooks: LeaseHooks;
  private readonly batchLimit: number;
  private readonly hashSlice: number;
  /** Point lookups; the tree below holds the same KeyIndex objects in key order. */
  private readonly keys = new Map<string, KeyIndex>();
  private tree = new KeyTree<KeyIndex>();
  private readonly cacheLimit: number;
  private cacheBytes = 0;
  private currentRev = 1;
  private compactMainRev = -1;
  private listeners: EventListener[] = [];

  // The write txn in progress (at most one: everything is synchronous).
  private inTxn = false;
  private beginRev = 0;
  private changes = 0;
  private events: Event[] = [];

  private compaction: Promise<void> = Promise.resolve();
  /** HashKVs not yet holding their read snapshot: physical compaction deletes nothing meanwhile. */
  private readonly hashesOpening = new Set<Promise<void>>();
  private closed = false;
  private readonly readKey = Buffer.alloc(REV_BYTES_LEN);
  private readonly txView: WriteTxn;

  private constructor(backend: Backend, opts: MvccStoreOptions) {
    this.backend = backend;
    this.hooks = opts.leases ?? NO_LEASES;
    this.batchLimit = opts.compactionBatchLimit ?? DEFAULT_COMPACTION_BATCH;
    this.hashSlice = Math.max(1, opts.hashSliceRecords ?? DEFAULT_HASH_SLICE);
    this.cacheLimit = opts.valueCacheBytes ?? DEFAULT_VALUE_CACHE_BYTES;
    this.txView = {
      put: (req) => this.txPut(req),
      deleteRange: (req) => this.txDeleteRange(req),
      range: (req) => this.rangeIn(req, this.txReadRev()),
    };
  }

  /** Opens the store over `backend`, rebuilding the key index from the `key` bucket. */
  static open(backend: Backend, opts: MvccStoreOptions = {}): MvccStore {
    const s = new MvccStore(backend, opts);
    s.restore(opts.eachRecord);
    return s;
  }

  get rev(): number {
    return this.currentRev;
  }

  /** etcd's compactMainRev: -1 until the first compaction. */
  get compactRev(): number {
    return this.compactMainRev;
  }

  /** Resolves when every compaction scheduled so far (including one resumed at open) is physically done. */
  compactionDone(): Promise<void> {
    return this.compaction.catch(() => undefined);
  }

  /**
   * Rebuilds the index from the backend after its buckets were replaced under
   * a running member (a raft snapshot installed); subscribers are kept. The
   * replaced data must be committed first (restore reads committed data).
   */
  reload(): void {
    this.keys.clear();
    this.tree = new KeyTree<KeyIndex>();
    this.cacheBytes = 0;
    this.currentRev = 1;
    this.compactMainRev = -1;
    this.restore();
  }

  /** Stops physical compaction between batches (it resumes at the next open). Close the backend after. */
  async close(): Promise<void> {
    this.closed = true;
    await this.compactionDone();
  }

  // ---------------------------------------------------------------- reads

  range(req: RangeRequest): RangeResponseInit {
    return this.rangeIn(req, this.currentRev);
  }

  get(key: Buffer): KeyValue | undefined {
    // at the current revision: inside a write txn, like range(), it does not see the txn's writes
    const ki = this.keys.get(key.toString('latin1'));
    if (!ki || !visibleAt(ki, this.currentRev)) return undefined;
    return this.readKv(ki, hitMain, hitSub);
  }

  private txReadRev(): number {
    return this.changes > 0 ? this.beginRev + 1 : this.beginRev;
  }

  /** etcd's applierV3backend.Range over a view whose current revision is curRev. */
  private rangeIn(r: RangeRequest, curRev: number): RangeResponseInit {
    const filtered = r.min_mod_revision !== 0 || r.max_mod_revision !== 0 || r.min_create_revision !== 0 || r.max_create_revision !== 0;
    let limit = r.limit;
    if (r.sort_order !== RangeRequest_SortOrder.NONE || filtered) limit = 0;
    if (limit > 0) limit++;

    let rev = r.revision;
    if (rev > curRev) throw Errors.FutureRev;
    if (rev <= 0) rev = curRev;
    if (rev < this.compactMainRev) throw Errors.Compacted;

    let kvs: KeyValue[] = [];
    const count = this.rangeKeys(r.key, rangeEndOf(r.range_end), rev, limit, r.count_only ? null : kvs);

    if (filtered && kvs.length) {
      const maxMod = r.max_mod_revision;
      const minMod = r.min_mod_revision;
      const maxCreate = r.max_create_revision;
      const minCreate = r.min_create_revision;
      kvs = kvs.filter(
        (kv) =>
          !(maxMod !== 0 && kv.mod_revision > maxMod) &&
          !(minMod !== 0 && kv.mod_revision < minMod) &&
          !(maxCreate !== 0 && kv.create_revision > maxCreate) &&
          !(minCreate !== 0 && kv.create_revision < minCreate),
      );
    }

    let order = r.sort_order;
    if (r.sort_target !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) order = RangeRequest_SortOrder.ASCEND;
    if (order !== RangeRequest_SortOrder.NONE && kvs.length > 1) {
      // Go's sort.Sort, as etcd: the order of ties is part of the answer.
      // Keys are unique and already ascending, so by key needs no sort.
      const less = LESS[r.sort_target];
      if (order === RangeRequest_SortOrder.ASCEND) {
        if (less) goSort(kvs, less);
      } else if (order === RangeRequest_SortOrder.DESCEND) {
        if (less) goSort(kvs, (a, b) => less(b, a));
        else kvs.reverse();
      }
    }

    let more = false;
    if (r.limit > 0 && kvs.length > r.limit) {
      kvs.length = r.limit;
      more = true;
    }
    if (r.keys_only) for (const kv of kvs) kv.value = EMPTY;
    return { header: { revision: curRev }, kvs, more, count };
  }

  /**
   * etcd's rangeKeys after the revision checks: counts the keys of the range
   * alive at rev and reads the first `limit` (all when 0) into out (nothing
   * when out is null, for count_only).
   */
  private rangeKeys(key: Buffer, end: Buffer | undefined, rev: number, limit: number, out: KeyValue[] | null): number {
    if (end === undefined) {
      const ki = this.keys.get(key.toString('latin1'));
      if (!ki || !visibleAt(ki, rev)) return 0;
      if (out) out.push(this.readKv(ki, hitMain, hitSub));
      return 1;
    }
    const lo = key.toString('latin1');
    const hi = end.length === 0 ? null : end.toString('latin1');
    if (hi !== null && hi <= lo) return 0;
    const want = out === null ? 0 : limit > 0 ? limit : Infinity;
    let count = 0;
    // Reads are deferred until the scan is done: the count needs the whole
    // range, the values only the first `want` keys.
    const kis: KeyIndex[] = [];
    const mains: number[] = [];
    const subs: number[] = [];
    let leaf = this.tree.seek(lo);
    let i = this.tree.seekIndex;
    scan: for (; leaf; leaf = leaf.next, i = 0) {
      const ks = leaf.keys;
      const vs = leaf.vals;
      for (; i < ks.length; i++) {
        if (hi !== null && ks[i] >= hi) break scan;
        const ki = vs[i];
        if (!visibleAt(ki, rev)) continue;
        if (count < want) {
          kis.push(ki);
          mains.push(hitMain);
          subs.push(hitSub);
        }
        count++;
      }
    }
    if (out) for (let j = 0; j < kis.length; j++) out.push(this.readKv(kis[j], mains[j], subs[j]));
    return count;
  }

  /**
   * A fresh KeyValue of ki at revision (main, sub). The live revision comes
   * from the index and the value cache when cached: every other field of it
   * is in the index already.
   */
  private readKv(ki: KeyIndex, main: number, sub: number): KeyValue {
    // a key has one revision per main revision, so main alone identifies it
    const live = !ki.deleted && ki.modMain === main;
    if (live && ki.val !== undefined) {
      return {
        key: Buffer.from(ki.key, 'latin1'),
        create_revision: ki.created,
        mod_revision: main,
        version: ki.ver,
        value: ki.val.length === 0 ? EMPTY : Buffer.from(ki.val, 'latin1'),
        lease: ki.lease,
      };
    }
    const k = this.readKey;
    writeRev(k, main, sub);
    const v = this.backend.get('key', k);
    if (v === undefined) throw new Error(`mvcc: revision ${main}_${sub} is in the index but not in the key bucket`);
    const kv = decodeKeyValue(v);
    if (live) this.cache(ki, kv.value);
    return kv;
  }

  /** Caches ki's live value, within the budget; a value past it is left uncached. */
  private cache(ki: KeyIndex, value: Buffer): void {
    if (ki.val !== undefined) {
      this.cacheBytes -= ki.val.length + VAL_OVERHEAD;
      ki.val = undefined;
    }
    const cost = value.length + VAL_OVERHEAD;
    if (this.cacheBytes + cost <= this.cacheLimit) {
      ki.val = value.toString('latin1');
      this.cacheBytes += cost;
    }
  }

  // --------------------------------------------------------------- writes

  write<T>(fn: (tx: WriteTxn) => T): T {
    this.beginTxn();
    try {
      return fn(this.txView);
    } finally {
      this.endTxn();
    }
  }

  put(req: PutRequest): PutResponseInit {
    this.beginTxn();
    try {
      return this.txPut(req);
    } finally {
      this.endTxn();
    }
  }

  deleteRange(req: DeleteRangeRequest): DeleteRangeResponseInit {
    this.beginTxn();
    try {
      return this.txDeleteRange(req);
    } finally {
      this.endTxn();
    }
  }

  private beginTxn(): void {
    if (this.inTxn) throw new Error('mvcc: a write txn is already in progress');
    this.inTxn = true;
    this.beginRev = this.currentRev;
    this.changes = 0;
  }

  // A txn whose fn threw after changing something still lands whole: its
  // changes are already in the backend and index, and etcd cannot roll back
  // either (it panics), so the revision and events stay consistent with them.
  private endTxn(): void {
    this.inTxn = false;
    if (this.changes === 0) return;
    const rev = ++this.currentRev;
    const evs = this.events;
    this.events = [];
    this.changes = 0;
    let err: unknown;
    for (const l of this.listeners) {
      try {
        l(evs, rev);
      } catch (e) {
        err ??= e;
      }
    }
    if (err !== undefined) throw err;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** etcd's applierV3backend.Put inside a write txn. */
  private txPut(p: PutRequest): PutResponseInit {
    let leaseId = p.lease;
    if (leaseId !== 0n && !this.hooks.exists(leaseId)) throw Errors.LeaseNotFound;
    const kstr = p.key.toString('latin1');
    let ki = this.keys.get(kstr);
    const live = ki !== undefined && !ki.deleted;
    let prev: KeyValue | undefined;
    if ((p.ignore_value || p.ignore_lease || p.prev_kv) && live) prev = this.readKv(ki!, ki!.modMain, ki!.modSub);
    let value = p.value;
    if (p.ignore_value || p.ignore_lease) {
      if (!prev) throw Errors.KeyNotFound;
      if (p.ignore_value) value = prev.value;
      if (p.ignore_lease) leaseId = prev.lease;
    }

    const rev = this.beginRev + 1;
    const sub = this.changes;
    let create = rev;
    let ver = 1;
    let oldLease = 0n;
    if (live && ki) {
      create = ki.created;
      ver = ki.ver + 1;
      oldLease = ki.lease;
    }
    const kv = encodeKv(p.key, value, create, rev, ver, leaseId);
    this.backend.put('key', revKey(rev, sub, false), kv.encoded);
    if (!ki) {
      ki = new KeyIndex(kstr);
      this.keys.set(kstr, ki);
      this.tree.insert(kstr, ki);
    }
    ki.put(rev, sub);
    this.cache(ki, value);
    this.changes++;
    this.events.push({ type: Event_EventType.PUT, kv });
    ki.lease = leaseId;
    if (oldLease !== 0n || leaseId !== 0n) {
      const key = ownedKey(ki.key);
      if (oldLease !== 0n) this.hooks.detach(oldLease, key);
      if (leaseId !== 0n) this.hooks.attach(leaseId, key);
    }
    const resp: PutResponseInit = { header: { revision: rev } };
    if (p.prev_kv && prev) resp.prev_kv = prev;
    return resp;
  }

  /** etcd's applierV3backend.DeleteRange inside a write txn. */
  private txDeleteRange(dr: DeleteRangeRequest): DeleteRangeResponseInit {
    const end = rangeEndOf(dr.range_end);
    const resp: DeleteRangeResponseInit = {};
    if (dr.prev_kv) {
      const prevKvs: KeyValue[] = [];
      this.rangeKeys(dr.key, end, this.txReadRev(), 0, prevKvs);
      resp.prev_kvs = prevKvs;
    }
    const doomed: KeyIndex[] = [];
    if (end === undefined) {
      const ki = this.keys.get(dr.key.toString('latin1'));
      if (ki?.live()) doomed.push(ki);
    } else {
      const lo = dr.key.toString('latin1');
      const hi = end.length === 0 ? null : end.toString('latin1');
      if (hi === null || hi > lo) {
        this.tree.forRange(lo, hi, (_k, ki) => {
          if (ki.live()) doomed.push(ki);
        });
      }
    }
    for (const ki of doomed) this.tombstone(ki);
    resp.deleted = doomed.length;
    resp.header = { revision: this.changes > 0 ? this.beginRev + 1 : this.beginRev };
    return resp;
  }

  private tombstone(ki: KeyIndex): void {
    const rev = this.beginRev + 1;
    const sub = this.changes;
    const val = encodeTombstone(Buffer.from(ki.key, 'latin1'));
    const key = ki.key.length ? val.subarray(val.length - ki.key.length) : EMPTY;
    this.backend.put('key', revKey(rev, sub, true), val);
    ki.tombstone(rev, sub);
    if (ki.val !== undefined) {
      this.cacheBytes -= ki.val.length + VAL_OVERHEAD;
      ki.val = undefined;
    }
    this.changes++;
    this.events.push({
      type: Event_EventType.DELETE,
      kv: { key, create_revision: 0, mod_revision: rev, version: 0, value: EMPTY, lease: 0n },
    });
    const lease = ki.lease;
    if (lease !== 0n) {
      ki.lease = 0n;
      this.hooks.detach(lease, ownedKey(ki.key));
    }
  }

  // ------------------------------------------------------------------ txn

  /** etcd's applierV3backend.Txn: compares and checks first, then one write txn. */
  txn(rt: TxnRequest): TxnResponseInit {
    const path: boolean[] = [];
    this.compareToPath(rt, path);
    if (!isTxnReadonly(rt)) this.checkRequests(rt, path, { i: 0 }, true);
    this.checkRequests(rt, path, { i: 0 }, false);
    this.beginTxn();
    let resp: TxnResponseInit;
    try {
      resp = this.applyTxn(rt, path, { i: 0 });
    } finally {
      this.endTxn();
    }
    resp.header = { revision: this.currentRev };
    return resp;
  }

  // Every compare of the txn and of the nested txns on the taken branches is
  // evaluated against the state before any of the txn's writes, as etcd 3.4.
  private compareToPath(rt: TxnRequest, path: boolean[]): void {
    let ok = true;
    for (const c of rt.compare) {
      if (!this.applyCompare(c)) {
        ok = false;
        break;
      }
    }
    path.push(ok);
    for (const op of ok ? rt.success : rt.failure) if (op.request_txn) this.compareToPath(op.request_txn, path);
  }

  /** etcd 3.4's applyCompare: every key of the range must satisfy it; none compares as a zero KeyValue. */
  private applyCompare(c: Compare): boolean {
    const end = rangeEndOf(c.range_end);
    let found = false;
    let ok = true;
    const check = (ki: KeyIndex): boolean => {
      if (ki.deleted) return true;
      found = true;
      ok = compareKV(c, this.compareView(ki, c.target === Compare_CompareTarget.VALUE));
      return ok;
    };
    if (end === undefined) {
      const ki = this.keys.get(c.key.toString('latin1'));
      if (ki) check(ki);
    } else {
      const lo = c.key.toString('latin1');
      const hi = end.length === 0 ? null : end.toString('latin1');
      if (hi === null || hi > lo) this.tree.forRange(lo, hi, (_k, ki) => check(ki));
    }
    if (!found) return c.target !== Compare_CompareTarget.VALUE && compareKV(c, EMPTY_KV);
    return ok;
  }

  // Compares run before the txn writes, at the current revision, where all
  // but the value is in the index: only a VALUE compare reads it.
  private readonly cmpKv: KeyValue = { key: EMPTY, create_revision: 0, mod_revision: 0, version: 0, value: EMPTY, lease: 0n };
  private compareView(ki: KeyIndex, withValue: boolean): KeyValue {
    if (withValue) return this.readKv(ki, ki.modMain, ki.modSub);
    const kv = this.cmpKv;
    kv.create_revision = ki.created;
    kv.mod_revision = ki.modMain;
    kv.version = ki.ver;
    kv.lease = ki.lease;
    return kv;
  }

  private checkRequests(rt: TxnRequest, path: boolean[], at: { i: number }, puts: boolean): void {
    const reqs = path[at.i++] ? rt.success : rt.failure;
    for (const op of reqs) {
      if (op.request_txn) {
        this.checkRequests(op.request_txn, path, at, puts);
        continue;
      }
      if (puts) {
        const p = op.request_put;
        if (!p) continue;
        if (p.ignore_value || p.ignore_lease) {
          const ki = this.keys.get(p.key.toString('latin1'));
          if (!ki?.live()) throw Errors.KeyNotFound;
        }
        if (p.lease !== 0n && !this.hooks.exists(p.lease)) throw Errors.LeaseNotFound;
      } else {
        const r = op.request_range;
        if (!r || r.revision === 0) continue;
        if (r.revision > this.currentRev) throw Errors.FutureRev;
        if (r.revision < this.compactMainRev) throw Errors.Compacted;
      }
    }
  }

  private applyTxn(rt: TxnRequest, path: boolean[], at: { i: number }): TxnResponseInit {
    const succeeded = path[at.i++];
    const reqs: RequestOp[] = succeeded ? rt.success : rt.failure;
    const responses: ResponseOpInit[] = new Array<ResponseOpInit>(reqs.length);
    for (let i = 0; i < reqs.length; i++) {
      const op = reqs[i];
      if (op.request_range) responses[i] = { response_range: this.rangeIn(op.request_range, this.txReadRev()) };
      else if (op.request_put) responses[i] = { response_put: this.txPut(op.request_put) };
      else if (op.request_delete_range) responses[i] = { response_delete_range: this.txDeleteRange(op.request_delete_range) };
      else if (op.request_txn) {
        // a nested txn's response carries an empty header in etcd
        const nested = this.applyTxn(op.request_txn, path, at);
        nested.header = {};
        responses[i] = { response_txn: nested };
      } else responses[i] = {};
    }
    return { succeeded, responses };
  }

  // ----------------------------------------------------------- compaction

  compact(req: CompactionRequest): { done: Promise<void> } {
    if (this.inTxn) throw new Error('mvcc: compact inside a write txn');
    const rev = req.revision;
    if (rev <= this.compactMainRev) throw Errors.Compacted;
    if (rev > this.currentRev) throw Errors.FutureRev;
    return { done: this.startCompaction(rev) };
  }

  private startCompaction(rev: number): Promise<void> {
    this.compactMainRev = rev;
    this.backend.put('meta', SCHEDULED_COMPACT_KEY, revKey(rev, 0, false));
    const keep = this.compactIndex(rev);
    const run = (): Promise<void> => this.physicalCompaction(rev, keep);
    const p = this.compaction.then(run, run);
    // done may be ignored by callers; its failure must not become an unhandled rejection
    p.catch(() => undefined);
    this.compaction = p;
    return p;
  }

  /** etcd's treeIndex.Compact: drops superseded revisions, returns the ones to keep on disk. */
  private compactIndex(rev: number): RevSet {
    const available = new RevSet();
    const emptied: string[] = [];
    for (const ki of this.keys.values()) {
      ki.compact(rev, available);
      if (ki.isEmpty()) emptied.push(ki.key);
    }
    for (const k of emptied) {
      this.keys.delete(k);
      this.tree.remove(k);
    }
    return available;
  }

  /** etcd's scheduleCompaction: deletes revisions <= rev not in keep, a batch per event-loop turn. */
  private async physicalCompaction(rev: number, keep: RevSet): Promise<void> {
    // the scan reads committed data only, and every revision <= rev must be in it
    await this.backend.commit();
    const end = Buffer.allocUnsafe(8);
    end.writeUInt32BE(Math.floor((rev + 1) / 4294967296), 0);
    end.writeUInt32BE((rev + 1) >>> 0, 4);
    let last: Buffer = Buffer.alloc(REV_BYTES_LEN);
    for (;;) {
      // a HashKV opening its snapshot must find every revision it will hash
      while (this.hashesOpening.size) await Promise.all(this.hashesOpening);
      if (this.closed) return;
      let n = 0;
      let lastMain = 0;
      let lastSub = 0;
      const doomed: Buffer[] = [];
      for (const [k] of this.backend.range('key', last, end, { limit: this.batchLimit })) {
        n++;
        lastMain = revMain(k);
        lastSub = revSub(k);
        if (!keep.has(lastMain, lastSub)) doomed.push(Buffer.from(k));
      }
      for (const k of doomed) this.backend.del('key', k);
      if (n < this.batchLimit) {
        this.backend.put('meta', FINISHED_COMPACT_KEY, revKey(rev, 0, false));
        return;
      }
      last = revKey(lastMain, lastSub + 1, false);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  // ----------------------------------------------------------------- hash

  /**
   * etcd 3.4's HashByRev. The scan runs in
   * slices with a turn of the event loop between them, so the member keeps
   * ticking, answering peers and serving clients during a scan of millions of
   * records (etcd runs it on a goroutine beside its raft loop). Its result is
   * that of the store at the call, whatever happens during the scan: the
   * compaction keep-set is taken from the index before the first yield and
   * the bucket is read through one LMDB snapshot holding every revision up to
   * `rev` (writes in flight are committed first; a physical compaction waits
   * until the snapshot is open, as etcd's compactor waits for the read lock).
   */
  async hashKV(rev: number): Promise<HashKVResult> {
    const compactRev = this.compactMainRev;
    const currentRev = this.currentRev;
    if (rev > 0 && rev <= compactRev) throw Errors.Compacted;
    if (rev > 0 && rev > currentRev) throw Errors.FutureRev;
    if (rev === 0) rev = currentRev;

    const h = new Crc32c();
    h.update(KEY_BUCKET_NAME);
    if (rev < 0) return { hash: h.sum(), compactRev, rev: currentRev };

    // What compaction keeps at rev (only needed below the compaction: never on
    // a store not compacted, a walk of every key saved). Taken now: a
    // compaction requested during the scan changes the index at once.
    let keep: RevSet | undefined;
    if (compactRev > 0) {
      keep = new RevSet();
      for (const ki of this.keys.values()) ki.keep(rev, keep);
      if (keep.size === 0) {
        // etcd's HashByRev filters nothing then: it hashes what compaction left
        // below compactRev, which the index lists (a physical compaction still
        // deleting would otherwise make the hash depend on its progress)
        const refs: RevRef[] = [];
        for (const ki of this.keys.values()) ki.since(0, compactRev, refs);
        for (const r of refs) keep.add(r.main, r.sub);
      }
    }
    const filterBelow = keep ? compactRev : 0;

    let opened!: () => void;
    const opening = new Promise<void>((r) => (opened = r));
    this.hashesOpening.add(opening);
    let snap: BackendSnapshot;
    try {
      // revisions up to rev still in flight would be missing from the snapshot
      if (this.backend.hasPending()) await this.backend.commit();
      snap = await this.backend.openSnapshot();
    } finally {
      this.hashesOpening.delete(opening);
      opened();
    }
    try {
      const end = Buffer.allocUnsafe(8);
      end.writeUInt32BE(Math.floor((rev + 1) / 4294967296), 0);
      end.writeUInt32BE((rev + 1) >>> 0, 4);
      let from: Buffer | undefined;
      for (;;) {
        if (this.closed) throw new Error('mvcc: store closed during HashKV');
        const t0 = performance.now();
        let n = 0;
        let next: Buffer | undefined;
        for (const [k, v] of snap.range('key', from, end)) {
          if (filterBelow === 0 || revMain(k) > filterBelow || keep!.has(revMain(k), revSub(k))) {
            h.update(k);
            h.update(v);
          }
          // a slice ends after so many records, or on time (records may be large)
          if (++n >= this.hashSlice || ((n & 255) === 0 && performance.now() - t0 > HASH_SLICE_MS)) {
            // the next slice starts just after this record (revision keys sort bytewise)
            next = Buffer.concat([k, ZERO_BYTE]);
            break;
          }
        }
        if (!next) break;
        from = next;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      snap.release();
    }
    return { hash: h.sum(), compactRev, rev: currentRev };
  }

  // -------------------------------------------------------------- history

  eventsBetween(key: Buffer, rangeEnd: Buffer | undefined, fromRev: number, toRev: number, prevKv: boolean): Event[] {
    if (fromRev < this.compactMainRev) throw Errors.Compacted;
    if (toRev > this.currentRev) toRev = this.currentRev;
    const refs: RevRef[] = [];
    const end = rangeEnd === undefined ? undefined : rangeEndOf(rangeEnd);
    if (end === undefined) {
      this.keys.get(key.toString('latin1'))?.since(fromRev, toRev, refs);
    } else {
      const lo = key.toString('latin1');
      const hi = end.length === 0 ? null : end.toString('latin1');
      if (hi === null || hi > lo) {
        this.tree.forRange(lo, hi, (_k, ki) => {
          // keys untouched since fromRev are skipped without walking their history
          if (ki.modMain >= fromRev) ki.since(fromRev, toRev, refs);
        });
        refs.sort((a, b) => a.main - b.main || a.sub - b.sub);
      }
    }
    const evs: Event[] = new Array<Event>(refs.length);
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i];
      const v = this.backend.get('key', revKey(r.main, r.sub, r.tomb));
      if (v === undefined) throw new Error(`mvcc: revision ${r.main}_${r.sub} is in the index but not in the key bucket`);
      const kv = decodeKeyValue(v);
      const ev: Event = { type: r.tomb ? Event_EventType.DELETE : Event_EventType.PUT, kv };
      if (r.tomb) kv.mod_revision = r.main;
      if (prevKv && r.main - 1 >= this.compactMainRev) {
        const ki = this.keys.get(r.key);
        if (ki && visibleAt(ki, r.main - 1)) ev.prev_kv = this.readKv(ki, hitMain, hitSub);
      }
      evs[i] = ev;
    }
    return evs;
  }

  // -------------------------------------------------------------- restore

  /** etcd's store.restore: index from the key bucket, leases re-attached, unfinished compaction resumed. */
  private restore(eachRecord?: (key: Buffer, value: Buffer) => void): void {
    const finished = this.backend.get('meta', FINISHED_COMPACT_KEY);
    if (finished && finished.length >= REV_BYTES_LEN) this.compactMainRev = revMain(finished);
    const scheduledBytes = this.backend.get('meta', SCHEDULED_COMPACT_KEY);
    let scheduled = scheduledBytes && scheduledBytes.length >= REV_BYTES_LEN ? revMain(scheduledBytes) : 0;

    let cur = 1;
    const meta: KvMeta = { keyStart: 0, keyEnd: 0, create: 0, version: 0, lease: 0n };
    this.backend.scanKeyRecords((k, v) => {
      const main = revMain(k);
      const sub = revSub(k);
      const tomb = isTombstoneKey(k);
      readKvMeta(v, meta);
      const kstr = v.toString('latin1', meta.keyStart, meta.keyEnd);
      cur = main;
      let ki = this.keys.get(kstr);
      if (ki) {
        if (tomb) {
          ki.tombstone(main, sub);
          ki.lease = 0n;
        } else {
          ki.put(main, sub);
          ki.lease = meta.lease;
        }
      } else if (!tomb) {
        ki = new KeyIndex(kstr);
        ki.restore(meta.create, main, sub, meta.version);
        ki.lease = meta.lease;
        this.keys.set(kstr, ki);
      }
      eachRecord?.(k, v);
    });
    // Array#sort without a comparator orders strings by UTF-16 code unit, which
    // for latin1 strings is byte order, and is several times faster than with one.
    const names = [...this.keys.keys()];
    let sorted = true;
    for (let i = 1; i < names.length && sorted; i++) sorted = names[i - 1] < names[i];
    if (!sorted) names.sort();
    const keys = this.keys;
    this.tree.load(
      names,
      names.map((k) => keys.get(k)!),
    );
    this.currentRev = cur < this.compactMainRev ? this.compactMainRev : cur;
    if (scheduled <= this.compactMainRev) scheduled = 0;

    for (const ki of this.keys.values()) {
      if (ki.lease !== 0n && ki.live()) this.hooks.attach(ki.lease, ownedKey(ki.key));
    }
    if (scheduled !== 0 && scheduled <= this.currentRev) this.startCompaction(scheduled);
  }
}
