import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Event_EventType } from '../proto/gen/mvccpb';
import { b, delReq, openTestStore, putReq, rangeReq, txnReq, type TestStore } from './test-helpers';
import type { MvccStore } from './store';

interface ModelKv {
  value: string;
  create: number;
  mod: number;
  ver: number;
}
type State = Map<string, ModelKv>;

/** A reference model: the whole state after every revision. */
class Model {
  states: State[] = [new Map(), new Map()]; // revisions 0 and 1 are empty
  events: [number, string, string][][] = [[], []];
  get rev(): number {
    return this.states.length - 1;
  }
  /** Applies one write txn given as a list of changes; returns false when nothing changed. */
  apply(ops: ({ put: [string, string] } | { del: string })[]): void {
    const rev = this.rev + 1;
    const next = new Map(this.states[this.rev]);
    const evs: [number, string, string][] = [];
    for (const op of ops) {
      if ('put' in op) {
        const [k, v] = op.put;
        const old = next.get(k);
        next.set(k, { value: v, create: old ? old.create : rev, mod: rev, ver: old ? old.ver + 1 : 1 });
        evs.push([Event_EventType.PUT, k, v]);
      } else if (next.has(op.del)) {
        next.delete(op.del);
        evs.push([Event_EventType.DELETE, op.del, '']);
      }
    }
    if (evs.length === 0) return;
    this.states.push(next);
    this.events.push(evs);
  }
}

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', '\u0000x', '\u00ffz'].map((k) => Buffer.from(k, 'latin1').toString('latin1'));
const kb = (k: string) => Buffer.from(k, 'latin1');

function dump(s: MvccStore, rev: number): [string, ModelKv][] {
  return s.range(rangeReq({ key: b('\0'), range_end: b('\0'), revision: rev })).kvs!.map((kv) => [
    Buffer.from(kv.key!).toString('latin1'),
    { value: Buffer.from(kv.value!).toString('latin1'), create: kv.create_revision!, mod: kv.mod_revision!, ver: kv.version! },
  ]);
}

function modelDump(m: Model, rev: number): [string, ModelKv][] {
  return [...m.states[rev]].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function randomOps(s: MvccStore, m: Model, r: () => number, n: number): void {
  for (let i = 0; i < n; i++) {
    const k = KEYS[Math.floor(r() * KEYS.length)];
    const x = r();
    if (x < 0.6) {
      const v = `v${Math.floor(r() * 1000)}`;
      s.put(putReq({ key: kb(k), value: kb(v) }));
      m.apply([{ put: [k, v] }]);
    } else if (x < 0.8) {
      s.deleteRange(delReq({ key: kb(k) }));
      m.apply([{ del: k }]);
    } else {
      // a txn putting two keys and deleting a third (distinct keys, as the server requires)
      const [k1, k2, k3] = [...KEYS].sort(() => r() - 0.5);
      s.txn(
        txnReq({
          success: [{ request_put: { key: kb(k1), value: kb('t1') } }, { request_delete_range: { key: kb(k3) } }, { request_put: { key: kb(k2), value: kb('t2') } }],
        }),
      );
      m.apply([{ put: [k1, 't1'] }, { del: k3 }, { put: [k2, 't2'] }]);
    }
  }
}

function checkAll(s: MvccStore, m: Model, from: number): void {
  assert.equal(s.rev, m.rev);
  for (let rev = Math.max(from, 1); rev <= m.rev; rev++) assert.deepEqual(dump(s, rev), modelDump(m, rev), `state at ${rev}`);
  const evs = s.eventsBetween(b('\0'), b('\0'), from + 1, m.rev, false);
  const want = m.events.slice(from + 1).flatMap((e, i) => e.map(([type, k, v]) => [from + 1 + i, type, k, v]));
  assert.deepEqual(
    evs.map((e) => [e.kv!.mod_revision, e.type, Buffer.from(e.kv!.key).toString('latin1'), Buffer.from(e.kv!.value).toString('latin1')]),
    want,
  );
}

describe('mvcc store: persistence and hash', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
  });
  afterEach(async () => {
    await t.close();
  });

  for (const [name, opts] of [
    ['value cache on', {}],
    ['value cache off', { valueCacheBytes: 0 }],
    ['value cache nearly full', { valueCacheBytes: 300 }],
  ] as const) {
    it(`matches a reference model across compaction and reopen (${name})`, async () => {
      await t.reopen(opts);
      const m = new Model();
      const r = rand(42);
      randomOps(t.store, m, r, 300);
      checkAll(t.store, m, 1);
      const compactAt = Math.floor(m.rev / 2);
      await t.store.compact({ revision: compactAt, physical: true }).done;
      checkAll(t.store, m, compactAt);
      randomOps(t.store, m, r, 200);
      checkAll(t.store, m, compactAt);
      const hash = await t.store.hashKV(0);
      await t.reopen(opts);
      checkAll(t.store, m, compactAt);
      assert.deepEqual(await t.store.hashKV(0), hash);
      await t.store.compact({ revision: m.rev - 5, physical: true }).done;
      randomOps(t.store, m, r, 50);
      await t.reopen(opts);
      checkAll(t.store, m, t.store.compactRev);
    });
  }

  it('round-trips binary keys and values of every byte', async () => {
    for (let i = 0; i < 256; i++) t.store.put(putReq({ key: Buffer.from([i]), value: Buffer.from([255 - i, i]) }));
    const big = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) big[i] = 255 - i;
    t.store.put(putReq({ key: big, value: big }));
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    t.store.put(putReq({ key: all, value: all }));

    const check = () => {
      const r = t.store.range(rangeReq({ key: Buffer.from([0]), range_end: Buffer.from([0]) }));
      assert.equal(r.count, 258);
      const keys = r.kvs!.map((kv) => Buffer.from(kv.key!));
      for (let i = 1; i < keys.length; i++) assert.ok(Buffer.compare(keys[i - 1], keys[i]) < 0, `order at ${i}`);
      assert.deepEqual(keys[0], Buffer.from([0]));
      assert.deepEqual(keys[1], all);
      assert.deepEqual(keys[257], big);
      for (let i = 0; i < 256; i++) {
        const kv = t.store.get(Buffer.from([i]))!;
        assert.deepEqual(Buffer.from(kv.value), Buffer.from([255 - i, i]));
      }
      assert.deepEqual(Buffer.from(t.store.get(big)!.value), big);
      assert.deepEqual(Buffer.from(t.store.get(all)!.value), all);
      // byte-order ranges across the 0x7f/0x80 boundary
      const mid = t.store.range(rangeReq({ key: Buffer.from([0x7f]), range_end: Buffer.from([0x81]) }));
      assert.deepEqual(
        mid.kvs!.map((kv) => Buffer.from(kv.key!).toString('hex')),
        ['7f', '80'],
      );
    };
    check();
    const hash = await t.store.hashKV(0);
    await t.reopen();
    check();
    assert.deepEqual(await t.store.hashKV(0), hash);
    assert.equal(t.store.deleteRange(delReq({ key: Buffer.from([0xff]), range_end: Buffer.from([0]) })).deleted, 2);
  });

  it('hashKV is equal for equal histories, stable across reopen and commit, and bounded by rev', async () => {
    const u = await openTestStore();
    try {
      const r1 = rand(7);
      const r2 = rand(7);
      randomOps(t.store, new Model(), r1, 120);
      randomOps(u.store, new Model(), r2, 120);
      const pending = await t.store.hashKV(0);
      assert.deepEqual(await u.store.hashKV(0), pending);
      await t.backend.commit();
      assert.equal(t.backend.hasPending(), false);
      assert.deepEqual(await t.store.hashKV(0), pending);
      // every historical revision hashes the same either way
      const mid = Math.floor(t.store.rev / 2);
      const hMid = await t.store.hashKV(mid);
      assert.equal((await u.store.hashKV(mid)).hash, hMid.hash);
      assert.notEqual(hMid.hash, pending.hash);
      assert.equal(hMid.rev, t.store.rev);

      await t.store.compact({ revision: mid, physical: true }).done;
      await u.store.compact({ revision: mid, physical: true }).done;
      const afterCompact = await t.store.hashKV(0);
      assert.equal(afterCompact.compactRev, mid);
      assert.deepEqual(await u.store.hashKV(0), afterCompact);
      // a pending write path and the committed-scan path agree after compaction
      t.store.put(putReq({ key: b('late'), value: b('1') }));
      u.store.put(putReq({ key: b('late'), value: b('1') }));
      const hp = await t.store.hashKV(0);
      await u.backend.commit();
      assert.deepEqual(await u.store.hashKV(0), hp);
      await t.reopen();
      assert.deepEqual(await t.store.hashKV(0), hp);
      assert.deepEqual(await t.store.hashKV(mid + 1), await u.store.hashKV(mid + 1));
      // a different history hashes differently
      u.store.put(putReq({ key: b('late'), value: b('2') }));
      t.store.put(putReq({ key: b('late'), value: b('3') }));
      assert.notEqual((await t.store.hashKV(0)).hash, (await u.store.hashKV(0)).hash);
    } finally {
      await u.close();
    }
  });
});
