import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Errors } from '../errors/index';
import { Compare_CompareResult as R, Compare_CompareTarget as T, type CompareInit, type RequestOpInit } from '../proto/gen/etcdserverpb';
import { b, keysOf, openTestStore, plain, put, rangeReq, txnReq, type TestStore } from './test-helpers';

describe('mvcc store: txn compares', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore({ leases: { exists: (id) => id === 7n, attach: () => undefined, detach: () => undefined } });
    put(t.store, 'a', '1'); // 2
    put(t.store, 'b', '2'); // 3
    put(t.store, 'a', '11'); // 4: a create 2, mod 4, version 2
    put(t.store, 'c', '3', { lease: 7n }); // 5
  });
  afterEach(async () => {
    await t.close();
  });

  const ok = (c: CompareInit): boolean => {
    const rev = t.store.rev;
    const r = t.store.txn(txnReq({ compare: [c] }));
    assert.equal(t.store.rev, rev);
    assert.equal(r.header?.revision, rev);
    return r.succeeded === true;
  };
  const on = (key: string, rangeEnd?: string) => ({ key: b(key), range_end: rangeEnd === undefined ? undefined : b(rangeEnd) });

  it('VERSION on a key and on a missing key', () => {
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.EQUAL, version: 2 }), true);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.EQUAL, version: 1 }), false);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.GREATER, version: 1 }), true);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.GREATER, version: 2 }), false);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.LESS, version: 3 }), true);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.LESS, version: 2 }), false);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.NOT_EQUAL, version: 2 }), false);
    assert.equal(ok({ ...on('a'), target: T.VERSION, result: R.NOT_EQUAL, version: 3 }), true);
    // a missing key compares as a zero KeyValue
    assert.equal(ok({ ...on('zz'), target: T.VERSION, result: R.EQUAL, version: 0 }), true);
    assert.equal(ok({ ...on('zz'), target: T.VERSION, result: R.LESS, version: 1 }), true);
    assert.equal(ok({ ...on('zz'), target: T.VERSION, result: R.GREATER, version: 0 }), false);
    assert.equal(ok({ ...on('zz'), target: T.VERSION, result: R.NOT_EQUAL, version: 0 }), false);
    // an unset operand is 0
    assert.equal(ok({ ...on('zz'), target: T.VERSION, result: R.EQUAL }), true);
  });

  it('CREATE and MOD', () => {
    for (const [target, field, v] of [
      [T.CREATE, 'create_revision', 2],
      [T.MOD, 'mod_revision', 4],
    ] as const) {
      assert.equal(ok({ ...on('a'), target, result: R.EQUAL, [field]: v }), true);
      assert.equal(ok({ ...on('a'), target, result: R.EQUAL, [field]: v + 1 }), false);
      assert.equal(ok({ ...on('a'), target, result: R.GREATER, [field]: v - 1 }), true);
      assert.equal(ok({ ...on('a'), target, result: R.GREATER, [field]: v }), false);
      assert.equal(ok({ ...on('a'), target, result: R.LESS, [field]: v + 1 }), true);
      assert.equal(ok({ ...on('a'), target, result: R.LESS, [field]: v }), false);
      assert.equal(ok({ ...on('a'), target, result: R.NOT_EQUAL, [field]: v }), false);
      assert.equal(ok({ ...on('a'), target, result: R.NOT_EQUAL, [field]: 0 }), true);
      assert.equal(ok({ ...on('zz'), target, result: R.EQUAL, [field]: 0 }), true);
      assert.equal(ok({ ...on('zz'), target, result: R.LESS, [field]: 1 }), true);
      assert.equal(ok({ ...on('zz'), target, result: R.GREATER, [field]: 0 }), false);
    }
  });

  it('VALUE compares bytes; a missing key never matches', () => {
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.EQUAL, value: b('11') }), true);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.EQUAL, value: b('1') }), false);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.GREATER, value: b('1') }), true);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.GREATER, value: b('2') }), false);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.LESS, value: b('2') }), true);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.LESS, value: b('11') }), false);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.NOT_EQUAL, value: b('11') }), false);
    assert.equal(ok({ ...on('a'), target: T.VALUE, result: R.NOT_EQUAL, value: b('x') }), true);
    for (const result of [R.EQUAL, R.NOT_EQUAL, R.GREATER, R.LESS]) {
      assert.equal(ok({ ...on('zz'), target: T.VALUE, result, value: b('') }), false);
    }
  });

  it('LEASE', () => {
    assert.equal(ok({ ...on('c'), target: T.LEASE, result: R.EQUAL, lease: 7n }), true);
    assert.equal(ok({ ...on('c'), target: T.LEASE, result: R.GREATER, lease: 6n }), true);
    assert.equal(ok({ ...on('c'), target: T.LEASE, result: R.LESS, lease: 7n }), false);
    assert.equal(ok({ ...on('c'), target: T.LEASE, result: R.NOT_EQUAL, lease: 0n }), true);
    assert.equal(ok({ ...on('a'), target: T.LEASE, result: R.EQUAL, lease: 0n }), true);
    assert.equal(ok({ ...on('zz'), target: T.LEASE, result: R.EQUAL, lease: 0n }), true);
    assert.equal(ok({ ...on('zz'), target: T.LEASE, result: R.LESS, lease: 1n }), true);
  });

  it('ranges: every key must satisfy; an empty range compares as a missing key', () => {
    assert.equal(ok({ ...on('a', 'c'), target: T.VERSION, result: R.GREATER, version: 0 }), true);
    assert.equal(ok({ ...on('a', 'c'), target: T.VERSION, result: R.EQUAL, version: 1 }), false);
    assert.equal(ok({ ...on('b', 'd'), target: T.VERSION, result: R.EQUAL, version: 1 }), true);
    assert.equal(ok({ ...on('a', 'd'), target: T.MOD, result: R.LESS, mod_revision: 5 }), false);
    assert.equal(ok({ ...on('a', 'd'), target: T.MOD, result: R.LESS, mod_revision: 6 }), true);
    assert.equal(ok({ ...on('a', 'd'), target: T.CREATE, result: R.NOT_EQUAL, create_revision: 3 }), false);
    assert.equal(ok({ ...on('a', 'd'), target: T.VALUE, result: R.GREATER, value: b('0') }), true);
    assert.equal(ok({ ...on('a', 'd'), target: T.LEASE, result: R.EQUAL, lease: 0n }), false);
    // from-key
    assert.equal(ok({ ...on('b', '\0'), target: T.VERSION, result: R.EQUAL, version: 1 }), true);
    assert.equal(ok({ ...on('a', '\0'), target: T.VERSION, result: R.EQUAL, version: 1 }), false);
    // empty range
    assert.equal(ok({ ...on('x', 'y'), target: T.VERSION, result: R.EQUAL, version: 0 }), true);
    assert.equal(ok({ ...on('x', 'y'), target: T.CREATE, result: R.GREATER, create_revision: 0 }), false);
    assert.equal(ok({ ...on('x', 'y'), target: T.VALUE, result: R.EQUAL, value: b('') }), false);
  });

  it('all compares must hold', () => {
    const cs: CompareInit[] = [
      { ...on('a'), target: T.VERSION, result: R.EQUAL, version: 2 },
      { ...on('b'), target: T.VALUE, result: R.EQUAL, value: b('2') },
    ];
    assert.equal(t.store.txn(txnReq({ compare: cs })).succeeded, true);
    cs.push({ ...on('c'), target: T.MOD, result: R.EQUAL, mod_revision: 1 });
    assert.equal(t.store.txn(txnReq({ compare: cs })).succeeded, false);
  });
});

describe('mvcc store: txn ops', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore({ leases: { exists: (id) => id === 7n, attach: () => undefined, detach: () => undefined } });
    put(t.store, 'a', '1'); // 2
    put(t.store, 'b', '2'); // 3
  });
  afterEach(async () => {
    await t.close();
  });

  const rangeOp = (key: string, end?: string, revision?: number): RequestOpInit => ({
    request_range: { key: b(key), range_end: end === undefined ? undefined : b(end), revision },
  });
  const putOp = (key: string, value: string, extra = {}): RequestOpInit => ({ request_put: { key: b(key), value: b(value), ...extra } });
  const delOp = (key: string, end?: string, prev_kv = false): RequestOpInit => ({
    request_delete_range: { key: b(key), range_end: end === undefined ? undefined : b(end), prev_kv },
  });

  it('runs the success branch at one revision, reads seeing earlier writes', () => {
    const r = t.store.txn(
      txnReq({
        compare: [{ key: b('a'), target: T.VALUE, result: R.EQUAL, value: b('1') }],
        success: [putOp('a', 'x', { prev_kv: true }), putOp('c', 'y'), rangeOp('a', 'z'), delOp('b', undefined, true), rangeOp('a', 'z')],
        failure: [putOp('never', '1')],
      }),
    );
    assert.equal(r.succeeded, true);
    assert.equal(t.store.rev, 4);
    assert.equal(r.header?.revision, 4);
    const [p1, p2, r1, d1, r2] = r.responses!;
    assert.equal(p1.response_put?.header?.revision, 4);
    assert.deepEqual(plain(p1.response_put!.prev_kv!), { key: 'a', value: '1', create: 2, mod: 2, ver: 1 });
    assert.equal(p2.response_put?.prev_kv, undefined);
    assert.deepEqual(r1.response_range!.kvs!.map(plain), [
      { key: 'a', value: 'x', create: 2, mod: 4, ver: 2 },
      { key: 'b', value: '2', create: 3, mod: 3, ver: 1 },
      { key: 'c', value: 'y', create: 4, mod: 4, ver: 1 },
    ]);
    assert.equal(r1.response_range!.header?.revision, 4);
    assert.equal(d1.response_delete_range!.deleted, 1);
    assert.deepEqual(keysOf(d1.response_delete_range!.prev_kvs), ['b']);
    assert.deepEqual(keysOf(r2.response_range!.kvs), ['a', 'c']);
    // the changes carry sub revisions 0, 1, 2 of revision 4
    const evs = t.store.eventsBetween(b('a'), b('z'), 4, 4, false);
    assert.deepEqual(
      evs.map((e) => [e.type, plain(e.kv!).key]),
      [
        [0, 'a'],
        [0, 'c'],
        [1, 'b'],
      ],
    );
  });

  it('runs the failure branch; a read-only txn does not bump the revision', () => {
    const r = t.store.txn(
      txnReq({
        compare: [{ key: b('a'), target: T.VALUE, result: R.EQUAL, value: b('nope') }],
        success: [putOp('s', '1')],
        failure: [rangeOp('a'), rangeOp('b', undefined, 2)],
      }),
    );
    assert.equal(r.succeeded, false);
    assert.equal(t.store.rev, 3);
    assert.equal(r.header?.revision, 3);
    assert.deepEqual(keysOf(r.responses![0].response_range!.kvs), ['a']);
    assert.equal(r.responses![1].response_range!.count, 0);
    assert.equal(r.responses![1].response_range!.header?.revision, 3);
    // a write txn whose writes change nothing stays at the revision too
    const d = t.store.txn(txnReq({ success: [delOp('zz')] }));
    assert.equal(d.succeeded, true);
    assert.equal(d.header?.revision, 3);
    assert.equal(d.responses![0].response_delete_range!.header?.revision, 3);
    assert.equal(t.store.rev, 3);
  });

  it('nested txns: compares see the state before the txn, writes share its revision', () => {
    const r = t.store.txn(
      txnReq({
        success: [
          putOp('x', '1'),
          {
            request_txn: {
              // evaluated before the outer put: x does not exist yet
              compare: [{ key: b('x'), target: T.VERSION, result: R.EQUAL, version: 0 }],
              success: [rangeOp('x'), putOp('y', '2')],
              failure: [putOp('wrong', '1')],
            },
          },
          {
            request_txn: {
              compare: [{ key: b('a'), target: T.VALUE, result: R.EQUAL, value: b('0') }],
              success: [putOp('wrong', '2')],
              failure: [{ request_txn: { success: [putOp('z', '3')] } }],
            },
          },
        ],
      }),
    );
    assert.equal(r.succeeded, true);
    assert.equal(t.store.rev, 4);
    const n1 = r.responses![1].response_txn!;
    assert.equal(n1.succeeded, true);
    assert.deepEqual(n1.header, {});
    assert.deepEqual(n1.responses![0].response_range!.kvs!.map(plain), [{ key: 'x', value: '1', create: 4, mod: 4, ver: 1 }]);
    const n2 = r.responses![2].response_txn!;
    assert.equal(n2.succeeded, false);
    assert.equal(n2.responses![0].response_txn!.succeeded, true);
    assert.deepEqual(keysOf(t.store.range(rangeReq({ key: b('\0'), range_end: b('\0') })).kvs), ['a', 'b', 'x', 'y', 'z']);
    assert.equal(t.store.get(b('wrong')), undefined);
    assert.equal(t.store.get(b('z'))!.mod_revision, 4);
  });

  it('rejects the whole txn before any write when a taken op is invalid', () => {
    const before = t.store.rev;
    const bad = (op: RequestOpInit, err: unknown) => {
      assert.throws(
        () => t.store.txn(txnReq({ success: [putOp('first', '1'), { request_txn: { success: [op] } }] })),
        (e) => e === err,
      );
      assert.equal(t.store.rev, before);
      assert.equal(t.store.get(b('first')), undefined);
    };
    bad(putOp('k', 'v', { lease: 9n }), Errors.LeaseNotFound);
    bad(putOp('nokey', '', { ignore_value: true }), Errors.KeyNotFound);
    bad(putOp('nokey', '', { ignore_lease: true }), Errors.KeyNotFound);
    bad(rangeOp('a', undefined, 99), Errors.FutureRev);
    // the branch not taken is not checked
    const r = t.store.txn(txnReq({ success: [putOp('ok', '1')], failure: [putOp('k', 'v', { lease: 9n })] }));
    assert.equal(r.succeeded, true);
    assert.equal(t.store.rev, before + 1);
  });

  it('refuses reads below the compact revision inside a txn', async () => {
    put(t.store, 'a', '2'); // 4
    put(t.store, 'a', '3'); // 5
    await t.store.compact({ revision: 4, physical: false }).done;
    assert.throws(() => t.store.txn(txnReq({ success: [rangeOp('a', undefined, 3)] })), (e) => e === Errors.Compacted);
    const r = t.store.txn(txnReq({ success: [rangeOp('a', undefined, 4)] }));
    assert.equal(Buffer.from(r.responses![0].response_range!.kvs![0].value!).toString(), '2');
  });
});
