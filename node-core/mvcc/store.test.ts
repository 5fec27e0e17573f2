import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Errors } from '../errors/index';
import { RangeRequest_SortOrder as Order, RangeRequest_SortTarget as Target } from '../proto/gen/etcdserverpb';
import { Event_EventType, type Event } from '../proto/gen/mvccpb';
import type { LeaseHooks } from './types';
import { b, del, delReq, keysOf, openTestStore, plain, put, putReq, rangeReq, type TestStore } from './test-helpers';

describe('mvcc store: revisions', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
  });
  afterEach(async () => {
    await t.close();
  });

  it('starts at revision 1 with nothing in it', () => {
    assert.equal(t.store.rev, 1);
    assert.equal(t.store.compactRev, -1);
    const r = t.store.range(rangeReq({ key: b('a') }));
    assert.equal(r.count, 0);
    assert.deepEqual(r.kvs, []);
    assert.equal(r.header?.revision, 1);
  });

  it('tracks create/mod revision, version and generations', () => {
    assert.equal(put(t.store, 'foo', 'v1'), 2);
    assert.equal(put(t.store, 'foo', 'v2'), 3);
    assert.deepEqual(plain(t.store.get(b('foo'))!), { key: 'foo', value: 'v2', create: 2, mod: 3, ver: 2 });
    assert.equal(del(t.store, 'foo'), 1);
    assert.equal(t.store.rev, 4);
    assert.equal(t.store.get(b('foo')), undefined);
    // deleting a missing key changes nothing and does not bump the revision
    assert.equal(del(t.store, 'foo'), 0);
    assert.equal(t.store.rev, 4);
    assert.equal(put(t.store, 'foo', 'v3'), 5);
    assert.deepEqual(plain(t.store.get(b('foo'))!), { key: 'foo', value: 'v3', create: 5, mod: 5, ver: 1 });
  });

  it('reads history at every revision', () => {
    put(t.store, 'a', '1'); // 2
    put(t.store, 'b', '1'); // 3
    put(t.store, 'a', '2'); // 4
    del(t.store, 'b'); // 5
    put(t.store, 'b', '2'); // 6
    const at = (rev: number) => t.store.range(rangeReq({ key: b('a'), range_end: b('c'), revision: rev })).kvs!.map(plain);
    assert.deepEqual(at(1), []);
    assert.deepEqual(at(2), [{ key: 'a', value: '1', create: 2, mod: 2, ver: 1 }]);
    assert.deepEqual(at(3), [
      { key: 'a', value: '1', create: 2, mod: 2, ver: 1 },
      { key: 'b', value: '1', create: 3, mod: 3, ver: 1 },
    ]);
    assert.deepEqual(at(4).map((k) => k.value), ['2', '1']);
    assert.deepEqual(at(5), [{ key: 'a', value: '2', create: 2, mod: 4, ver: 2 }]);
    assert.deepEqual(at(6)[1], { key: 'b', value: '2', create: 6, mod: 6, ver: 1 });
    assert.throws(() => at(7), (e) => e === Errors.FutureRev);
    // header revision is the current one, not the one read at
    assert.equal(t.store.range(rangeReq({ key: b('a'), revision: 2 })).header?.revision, 6);
  });

  it('put returns prev_kv and honours ignore_value / ignore_lease', () => {
    put(t.store, 'k', 'v1');
    const r = t.store.put(putReq({ key: b('k'), value: b('v2'), prev_kv: true }));
    assert.deepEqual(plain(r.prev_kv!), { key: 'k', value: 'v1', create: 2, mod: 2, ver: 1 });
    assert.equal(r.header?.revision, 3);
    const none = t.store.put(putReq({ key: b('new'), value: b('x'), prev_kv: true }));
    assert.equal(none.prev_kv, undefined);
    t.store.put(putReq({ key: b('k'), ignore_value: true }));
    assert.deepEqual(plain(t.store.get(b('k'))!), { key: 'k', value: 'v2', create: 2, mod: 5, ver: 3 });
    const rev = t.store.rev;
    assert.throws(() => t.store.put(putReq({ key: b('missing'), ignore_value: true })), (e) => e === Errors.KeyNotFound);
    assert.throws(() => t.store.put(putReq({ key: b('missing'), ignore_lease: true })), (e) => e === Errors.KeyNotFound);
    assert.equal(t.store.rev, rev);
  });

  it('copies request bytes before keeping them', () => {
    const key = Buffer.from('key');
    const value = Buffer.from('value');
    t.store.put({ key, value, lease: 0n, prev_kv: false, ignore_value: false, ignore_lease: false });
    key.fill(0x78);
    value.fill(0x78);
    assert.deepEqual(plain(t.store.get(b('key'))!), { key: 'key', value: 'value', create: 2, mod: 2, ver: 1 });
  });

  it('delete range deletes a range, returns prev_kvs and the count', () => {
    for (const k of ['a', 'b', 'c', 'd']) put(t.store, k, k);
    const r = t.store.deleteRange(delReq({ key: b('b'), range_end: b('d'), prev_kv: true }));
    assert.equal(r.deleted, 2);
    assert.deepEqual(keysOf(r.prev_kvs), ['b', 'c']);
    assert.equal(t.store.rev, 6);
    assert.equal(r.header?.revision, 6);
    const all = t.store.range(rangeReq({ key: b('\0'), range_end: b('\0') }));
    assert.deepEqual(keysOf(all.kvs), ['a', 'd']);
    // from-key delete
    assert.equal(t.store.deleteRange(delReq({ key: b('a'), range_end: b('\0') })).deleted, 2);
    assert.equal(t.store.range(rangeReq({ key: b('\0'), range_end: b('\0') })).count, 0);
    assert.equal(t.store.rev, 7);
  });
});

describe('mvcc store: range options', () => {
  let t: TestStore;
  // keys k0..k9; values make sort orders differ from key order
  const values = ['5', '3', '9', '1', '7', '2', '8', '0', '6', '4'];
  beforeEach(async () => {
    t = await openTestStore();
    for (let i = 0; i < 10; i++) put(t.store, `k${i}`, values[i]); // k_i at rev i+2
    // versions: k3 updated twice more, k7 once more
    put(t.store, 'k3', '1'); // 12
    put(t.store, 'k3', '1'); // 13
    put(t.store, 'k7', '0'); // 14
    put(t.store, 'other', 'x'); // 15
  });
  afterEach(async () => {
    await t.close();
  });

  const q = (m: Parameters<typeof rangeReq>[0]) => t.store.range(rangeReq({ key: b('k'), range_end: b('l'), ...m }));

  it('prefix, from-key, single key and empty ranges', () => {
    assert.equal(q({}).count, 10);
    assert.deepEqual(keysOf(t.store.range(rangeReq({ key: b('k8'), range_end: b('\0') })).kvs), ['k8', 'k9', 'other']);
    assert.deepEqual(keysOf(t.store.range(rangeReq({ key: b('k5') })).kvs), ['k5']);
    assert.equal(t.store.range(rangeReq({ key: b('k') })).count, 0);
    assert.equal(t.store.range(rangeReq({ key: b('k5'), range_end: b('k5') })).count, 0);
    assert.equal(t.store.range(rangeReq({ key: b('k5'), range_end: b('k1') })).count, 0);
  });

  it('limit sets more and keeps count the total', () => {
    const r = q({ limit: 3 });
    assert.deepEqual(keysOf(r.kvs), ['k0', 'k1', 'k2']);
    assert.equal(r.more, true);
    assert.equal(r.count, 10);
    const all = q({ limit: 10 });
    assert.equal(all.more, false);
    assert.equal(all.kvs!.length, 10);
    assert.equal(q({ limit: 11 }).more, false);
  });

  it('count_only and keys_only', () => {
    const c = q({ count_only: true, limit: 2 });
    assert.equal(c.count, 10);
    assert.deepEqual(c.kvs, []);
    assert.equal(c.more, false);
    const k = q({ keys_only: true, limit: 2 });
    assert.deepEqual(
      k.kvs!.map((kv) => kv.value!.length),
      [0, 0],
    );
    assert.equal(k.kvs![0].mod_revision, 2);
  });

  it('sorts by every target in both orders, before the limit', () => {
    const sorted = (target: Target, order: Order, limit = 0) => keysOf(q({ sort_target: target, sort_order: order, limit }).kvs);
    assert.deepEqual(sorted(Target.KEY, Order.DESCEND, 3), ['k9', 'k8', 'k7']);
    assert.deepEqual(sorted(Target.KEY, Order.ASCEND, 2), ['k0', 'k1']);
    assert.deepEqual(sorted(Target.VALUE, Order.ASCEND, 3), ['k7', 'k3', 'k5']);
    assert.deepEqual(sorted(Target.VALUE, Order.DESCEND, 2), ['k2', 'k6']);
    assert.deepEqual(sorted(Target.MOD, Order.DESCEND, 3), ['k7', 'k3', 'k9']);
    assert.deepEqual(sorted(Target.MOD, Order.ASCEND, 2), ['k0', 'k1']);
    assert.deepEqual(sorted(Target.CREATE, Order.DESCEND, 2), ['k9', 'k8']);
    // version ties keep key order, in both directions
    assert.deepEqual(sorted(Target.VERSION, Order.DESCEND, 4), ['k3', 'k7', 'k0', 'k1']);
    assert.deepEqual(sorted(Target.VERSION, Order.ASCEND, 3), ['k0', 'k1', 'k2']);
    // a non-key target with order NONE sorts ascending (etcd's default), but
    // etcd applies the limit before that sort: only k0..k2 are sorted
    assert.deepEqual(sorted(Target.VALUE, Order.NONE, 2), ['k1', 'k0']);
    assert.deepEqual(sorted(Target.VALUE, Order.NONE), ['k7', 'k3', 'k5', 'k1', 'k9', 'k0', 'k8', 'k4', 'k6', 'k2']);
    const r = q({ sort_target: Target.VALUE, sort_order: Order.ASCEND, limit: 3 });
    assert.equal(r.more, true);
    assert.equal(r.count, 10);
  });

  it('filters by mod and create revision before the limit; count stays the range total', () => {
    const r = q({ min_mod_revision: 8, limit: 2 });
    assert.deepEqual(keysOf(r.kvs), ['k3', 'k6']);
    assert.equal(r.more, true);
    assert.equal(r.count, 10);
    assert.deepEqual(keysOf(q({ max_mod_revision: 4 }).kvs), ['k0', 'k1', 'k2']);
    assert.deepEqual(keysOf(q({ min_create_revision: 10, max_create_revision: 10 }).kvs), ['k8']);
    assert.deepEqual(keysOf(q({ max_create_revision: 3, sort_order: Order.DESCEND }).kvs), ['k1', 'k0']);
    const f = q({ min_mod_revision: 12, max_mod_revision: 13 });
    assert.deepEqual(keysOf(f.kvs), ['k3']);
    assert.equal(f.more, false);
    assert.equal(f.count, 10);
    // exact limit after filtering leaves more false
    assert.equal(q({ min_mod_revision: 12, limit: 2 }).more, false);
  });

  it('historical range with limit, sort and count', () => {
    const r = q({ revision: 6, limit: 2, sort_order: Order.DESCEND });
    assert.deepEqual(keysOf(r.kvs), ['k4', 'k3']);
    assert.equal(r.count, 5);
    assert.equal(r.more, true);
    assert.deepEqual(
      q({ revision: 6, sort_target: Target.VALUE }).kvs!.map((kv) => Buffer.from(kv.value!).toString()),
      ['1', '3', '5', '7', '9'],
    );
  });
});

describe('mvcc store: events and leases', () => {
  let t: TestStore;
  const attached = new Map<string, bigint>();
  const calls: string[] = [];
  const hooks: LeaseHooks = {
    exists: (id) => id === 7n || id === 8n,
    attach: (id, key) => {
      calls.push(`attach ${id} ${key}`);
      attached.set(key.toString(), id);
    },
    detach: (id, key) => {
      calls.push(`detach ${id} ${key}`);
      attached.delete(key.toString());
    },
  };
  beforeEach(async () => {
    attached.clear();
    calls.length = 0;
    t = await openTestStore({ leases: hooks });
  });
  afterEach(async () => {
    await t.close();
  });

  it('emits one event batch per write txn with the new revision', () => {
    const seen: [Event[], number][] = [];
    const off = t.store.subscribe((evs, rev) => seen.push([evs, rev]));
    put(t.store, 'a', '1');
    del(t.store, 'a');
    del(t.store, 'a'); // no change, no event
    t.store.write((tx) => {
      tx.put(putReq({ key: b('x'), value: b('1') }));
      tx.put(putReq({ key: b('y'), value: b('2') }));
      // reads in the txn see its own writes
      assert.equal(tx.range(rangeReq({ key: b('x'), range_end: b('z') })).count, 2);
      tx.deleteRange(delReq({ key: b('x') }));
    });
    off();
    put(t.store, 'z', '1');
    assert.deepEqual(
      seen.map(([evs, rev]) => [rev, evs.map((e) => [e.type, plain(e.kv!)])]),
      [
        [2, [[Event_EventType.PUT, { key: 'a', value: '1', create: 2, mod: 2, ver: 1 }]]],
        [3, [[Event_EventType.DELETE, { key: 'a', value: '', create: 0, mod: 3, ver: 0 }]]],
        [
          4,
          [
            [Event_EventType.PUT, { key: 'x', value: '1', create: 4, mod: 4, ver: 1 }],
            [Event_EventType.PUT, { key: 'y', value: '2', create: 4, mod: 4, ver: 1 }],
            [Event_EventType.DELETE, { key: 'x', value: '', create: 0, mod: 4, ver: 0 }],
          ],
        ],
      ],
    );
  });

  it('attaches, moves and detaches leases', () => {
    assert.throws(() => put(t.store, 'a', '1', { lease: 9n }), (e) => e === Errors.LeaseNotFound);
    assert.equal(t.store.rev, 1);
    put(t.store, 'a', '1', { lease: 7n });
    assert.equal(t.store.get(b('a'))!.lease, 7n);
    put(t.store, 'a', '2', { lease: 8n });
    put(t.store, 'a', '3', { ignore_lease: true });
    assert.equal(t.store.get(b('a'))!.lease, 8n);
    put(t.store, 'a', '4'); // lease 0 detaches
    assert.equal(t.store.get(b('a'))!.lease, 0n);
    put(t.store, 'b', '1', { lease: 7n });
    del(t.store, 'b');
    assert.deepEqual(calls, ['attach 7 a', 'detach 7 a', 'attach 8 a', 'detach 8 a', 'attach 8 a', 'detach 8 a', 'attach 7 b', 'detach 7 b']);
    assert.equal(attached.size, 0);
  });

  it('re-attaches leases of live keys when reopened', async () => {
    put(t.store, 'a', '1', { lease: 7n });
    put(t.store, 'b', '1', { lease: 8n });
    put(t.store, 'c', '1', { lease: 8n });
    del(t.store, 'c');
    put(t.store, 'b', '2');
    attached.clear();
    await t.reopen();
    assert.deepEqual([...attached], [['a', 7n]]);
  });
});

describe('mvcc store: write txns and encoding', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
  });
  afterEach(async () => {
    await t.close();
  });

  it('a write txn may change one key twice; history and reopen keep both changes', async () => {
    const seen: Event[][] = [];
    t.store.subscribe((evs) => seen.push(evs));
    t.store.write((tx) => {
      tx.put(putReq({ key: b('k'), value: b('1') }));
      tx.put(putReq({ key: b('k'), value: b('2') }));
      tx.deleteRange(delReq({ key: b('k') }));
      tx.put(putReq({ key: b('k'), value: b('3') }));
    });
    assert.equal(t.store.rev, 2);
    const want = [
      [Event_EventType.PUT, '1', 1],
      [Event_EventType.PUT, '2', 2],
      [Event_EventType.DELETE, '', 0],
      [Event_EventType.PUT, '3', 1],
    ];
    const shape = (evs: Event[]) => evs.map((e) => [e.type, Buffer.from(e.kv!.value).toString(), e.kv!.version]);
    assert.deepEqual(shape(seen[0]), want);
    assert.deepEqual(shape(t.store.eventsBetween(b('k'), undefined, 2, 2, false)), want);
    const hash = await t.store.hashKV(0);
    await t.reopen();
    assert.deepEqual(shape(t.store.eventsBetween(b('k'), undefined, 2, 2, false)), want);
    assert.deepEqual(plain(t.store.get(b('k'))!), { key: 'k', value: '3', create: 2, mod: 2, ver: 1 });
    assert.deepEqual(await t.store.hashKV(0), hash);
  });

  it('a write txn that throws keeps the changes made before the throw', () => {
    const seen: number[] = [];
    t.store.subscribe((_evs, rev) => seen.push(rev));
    assert.throws(
      () =>
        t.store.write((tx) => {
          tx.put(putReq({ key: b('a'), value: b('1') }));
          tx.put(putReq({ key: b('b'), value: b('1'), lease: 5n }));
        }),
      (e) => e === Errors.LeaseNotFound,
    );
    assert.equal(t.store.rev, 2);
    assert.deepEqual(seen, [2]);
    assert.equal(t.store.get(b('a'))!.mod_revision, 2);
    assert.equal(t.store.get(b('b')), undefined);
    // the store is usable afterwards
    assert.equal(put(t.store, 'c', '1'), 3);
  });

  it('stores values byte-identical to the generated codec, large ones included', async () => {
    const { encodeKeyValue } = await import('../proto/gen/mvccpb');
    const { encodeKv } = await import('./kv-codec');
    for (const [key, value, c, m, v, l] of [
      [b('k'), b('v'), 1, 2, 3, 4n],
      [b(''), b(''), 0, 0, 0, 0n],
      [b('k'), Buffer.alloc(100000, 7), 2 ** 40, 2 ** 52, 127, -1n],
      [Buffer.alloc(300, 1), b('x'), 128, 16384, 2 ** 31, 2n ** 62n],
    ] as const) {
      const mine = encodeKv(key, value, c, m, v, l);
      const ref = encodeKeyValue({ key, value, create_revision: c, mod_revision: m, version: v, lease: l });
      assert.deepEqual(Buffer.from(mine.encoded), Buffer.from(ref));
      assert.deepEqual(Buffer.from(mine.key), Buffer.from(key));
      assert.deepEqual(Buffer.from(mine.value), Buffer.from(value));
    }
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    t.store.put(putReq({ key: b('big'), value: big }));
    assert.deepEqual(Buffer.from(t.store.get(b('big'))!.value), big);
    await t.reopen();
    assert.deepEqual(Buffer.from(t.store.get(b('big'))!.value), big);
  });
});
