import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Errors } from '../errors/index';
import { b, del, keysOf, openTestStore, plain, put, rangeReq, type TestStore } from './test-helpers';
import { revKey, revMain, revSub } from './revision';

/** The key bucket as "main_sub[t]" strings, committed data only. */
async function bucket(t: TestStore): Promise<string[]> {
  await t.backend.commit();
  const out: string[] = [];
  for (const [k] of t.backend.range('key')) out.push(`${revMain(k)}_${revSub(k)}${k.length === 18 ? 't' : ''}`);
  return out;
}

function snapshot(t: TestStore, rev: number) {
  return t.store.range(rangeReq({ key: b('\0'), range_end: b('\0'), revision: rev })).kvs!.map(plain);
}

describe('mvcc store: compaction', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore();
    put(t.store, 'a', '1'); // 2
    put(t.store, 'b', '1'); // 3
    put(t.store, 'a', '2'); // 4
    del(t.store, 'b'); // 5
    put(t.store, 'c', '1'); // 6
    put(t.store, 'a', '3'); // 7
    del(t.store, 'c'); // 8
    put(t.store, 'c', '2'); // 9
    put(t.store, 'd', '1'); // 10
    del(t.store, 'd'); // 11
  });
  afterEach(async () => {
    await t.close();
  });

  it('refuses compacted and future revisions', async () => {
    assert.throws(() => t.store.compact({ revision: 12, physical: false }), (e) => e === Errors.FutureRev);
    await t.store.compact({ revision: 6, physical: false }).done;
    assert.equal(t.store.compactRev, 6);
    assert.throws(() => t.store.compact({ revision: 6, physical: false }), (e) => e === Errors.Compacted);
    assert.throws(() => t.store.compact({ revision: 5, physical: false }), (e) => e === Errors.Compacted);
    // reads: below the compact revision refused, at it allowed
    assert.throws(() => snapshot(t, 5), (e) => e === Errors.Compacted);
    assert.deepEqual(keysOf(snapshot(t, 6).map((p) => ({ key: b(p.key) }))), ['a', 'c']);
    assert.throws(() => t.store.eventsBetween(b('a'), undefined, 5, 11, false), (e) => e === Errors.Compacted);
    await assert.rejects(t.store.hashKV(6), (e) => e === Errors.Compacted);
    await assert.rejects(t.store.hashKV(12), (e) => e === Errors.FutureRev);
  });

  it('keeps history above the compact revision and deletes the rest from disk', async () => {
    const before = new Map<number, ReturnType<typeof snapshot>>();
    for (let rev = 1; rev <= 11; rev++) before.set(rev, snapshot(t, rev));
    const evBefore = t.store.eventsBetween(b('\0'), b('\0'), 8, 11, true);
    const ev7 = t.store.eventsBetween(b('\0'), b('\0'), 7, 7, true);
    assert.ok(ev7[0].prev_kv);
    assert.deepEqual(await bucket(t), ['2_0', '3_0', '4_0', '5_0t', '6_0', '7_0', '8_0t', '9_0', '10_0', '11_0t']);

    await t.store.compact({ revision: 7, physical: true }).done;
    // 'a'@7 and 'c'@6 were live at 7; b's generation ended at 5 and is gone
    assert.deepEqual(await bucket(t), ['6_0', '7_0', '8_0t', '9_0', '10_0', '11_0t']);
    for (let rev = 7; rev <= 11; rev++) assert.deepEqual(snapshot(t, rev), before.get(rev), `rev ${rev}`);
    assert.deepEqual(t.store.eventsBetween(b('\0'), b('\0'), 8, 11, true), evBefore);
    // the previous value of a change at the compact revision is compacted (as etcd's watch prev_kv)
    assert.deepEqual(t.store.eventsBetween(b('\0'), b('\0'), 7, 7, true), [{ ...ev7[0], prev_kv: undefined }].map(({ prev_kv: _p, ...e }) => e));
    assert.equal(t.backend.get('meta', b('finishedCompactRev'))!.equals(revKey(7, 0, false)), true);
    assert.equal(t.backend.get('meta', b('scheduledCompactRev'))!.equals(revKey(7, 0, false)), true);

    // compacting at the current revision drops the last tombstone too
    await t.store.compact({ revision: 11, physical: false }).done;
    assert.deepEqual(await bucket(t), ['7_0', '9_0']);
    assert.deepEqual(snapshot(t, 11), before.get(11));

    await t.reopen();
    assert.equal(t.store.rev, 11);
    assert.equal(t.store.compactRev, 11);
    assert.deepEqual(snapshot(t, 11), before.get(11));
    assert.throws(() => snapshot(t, 10), (e) => e === Errors.Compacted);
    // the next write continues the revisions
    assert.equal(put(t.store, 'e', '1'), 12);
  });

  it('a compaction that removes every revision keeps the revision on reopen', async () => {
    for (const k of ['a', 'c']) del(t.store, k); // 12, 13
    await t.store.compact({ revision: 13, physical: true }).done;
    assert.deepEqual(await bucket(t), []);
    await t.reopen();
    assert.equal(t.store.rev, 13);
    assert.equal(t.store.compactRev, 13);
    assert.equal(put(t.store, 'a', 'x'), 14);
    assert.equal(t.store.get(b('a'))!.version, 1);
  });

  it('finishes a compaction interrupted after it was scheduled', async () => {
    const before = snapshot(t, 9);
    // as if the process died right after persisting scheduledCompactRev
    t.backend.put('meta', b('scheduledCompactRev'), revKey(9, 0, false));
    await t.reopen();
    assert.equal(t.store.compactRev, 9);
    await t.store.compactionDone();
    assert.deepEqual(await bucket(t), ['7_0', '9_0', '10_0', '11_0t']);
    assert.deepEqual(snapshot(t, 9), before);
    assert.equal(t.backend.get('meta', b('finishedCompactRev'))!.equals(revKey(9, 0, false)), true);
  });

  it('finishes a compaction interrupted between batches', async () => {
    await t.reopen({ compactionBatchLimit: 2 });
    const before = snapshot(t, 10);
    const { done } = t.store.compact({ revision: 10, physical: true });
    // stop the store after its first batch (close waits for the running batch)
    while (t.backend.get('key', revKey(2, 0, false)) !== undefined) await new Promise((r) => setImmediate(r));
    await t.store.close();
    await done;
    const partial = await bucket(t);
    assert.ok(partial.length > 3, `expected a partial compaction, got ${partial.join(',')}`);
    assert.equal(t.backend.get('meta', b('finishedCompactRev')), undefined);
    await t.reopen({ compactionBatchLimit: 2 });
    assert.equal(t.store.compactRev, 10);
    await t.store.compactionDone();
    assert.deepEqual(await bucket(t), ['7_0', '9_0', '10_0', '11_0t']);
    assert.deepEqual(snapshot(t, 10), before);
  });

  it('compaction of a long history in many batches does not block reads', async () => {
    for (let i = 0; i < 3000; i++) put(t.store, `k${i % 50}`, `${i}`);
    const rev = t.store.rev;
    const before = snapshot(t, rev);
    await t.reopen({ compactionBatchLimit: 100 });
    const { done } = t.store.compact({ revision: rev - 10, physical: true });
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    await done;
    clearInterval(timer);
    assert.ok(turns > 2, `event loop turns during compaction: ${turns}`);
    assert.deepEqual(snapshot(t, rev), before);
    assert.equal((await bucket(t)).length, 50 + 2 + 10);
  });
});
