// HashKV scans in slices with a turn of the event loop between them (so a
// member keeps ticking and answering its peers through a scan of millions of
// records), and still returns the hash of the store as it was when it was
// asked: writes, commits, a compaction and a defrag during the scan change
// nothing of it.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { b, delReq, openTestStore, putReq, type TestStore } from './test-helpers';
import type { MvccStore } from './store';

/** The same history on any store: `n` revisions over 40 keys, some deleted, committed or not as asked. */
function history(s: MvccStore, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    if (i % 11 === 10) s.deleteRange(delReq({ key: b(`k${(i * 7) % 40}`) }));
    else s.put(putReq({ key: b(`k${i % 40}`), value: b(`v${i}`) }));
  }
}

const open: TestStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function store(hashSliceRecords?: number): Promise<TestStore> {
  const t = await openTestStore({ hashSliceRecords });
  open.push(t);
  return t;
}

describe('hashKV in slices', () => {
  it('hashes the same whatever the slice size, compacted or not, at every revision asked', async () => {
    const stores = [await store(), await store(1), await store(7)];
    for (const t of stores) {
      history(t.store, 0, 300);
      await t.backend.commit();
    }
    const [whole, ...sliced] = stores;
    const last = whole.store.rev;
    for (const rev of [0, 150, last]) {
      const want = await whole.store.hashKV(rev);
      for (const t of sliced) assert.deepEqual(await t.store.hashKV(rev), want, `hashKV(${rev})`);
    }
    for (const t of stores) await t.store.compact({ revision: 120, physical: true }).done;
    for (const rev of [0, 121, last - 10]) {
      const want = await whole.store.hashKV(rev);
      assert.equal(want.compactRev, 120);
      for (const t of sliced) assert.deepEqual(await t.store.hashKV(rev), want, `hashKV(${rev}) after compaction`);
    }
  });

  it('does not depend on how far a physical compaction got, with every key deleted', async () => {
    // every key deleted at the revision hashed: etcd's keep-set is empty and filters nothing
    const t = await openTestStore({ compactionBatchLimit: 10 });
    open.push(t);
    for (let round = 0; round < 5; round++) for (let i = 0; i < 40; i++) t.store.put(putReq({ key: b(`k${i}`), value: b(`v${round}`) }));
    const live = t.store.rev;
    for (let i = 0; i < 40; i++) t.store.deleteRange(delReq({ key: b(`k${i}`) }));
    await t.backend.commit();
    const { done } = t.store.compact({ revision: live, physical: true });
    const during = await t.store.hashKV(0);
    await done;
    await t.backend.commit();
    assert.deepEqual(during, await t.store.hashKV(0));
  });

  it("hashes as etcd 3.4.23 when every key is deleted, before and after a compaction", async () => {
    // the hashes etcd 3.4.23 answered (etcdctl endpoint hashkv) after the same commands on a new member
    const t = await store(2);
    for (let r = 0; r < 3; r++) for (let i = 0; i < 5; i++) t.store.put(putReq({ key: b(`k${i}`), value: b(`v${r}`) }));
    t.store.put(putReq({ key: b('x'), value: b('1') }));
    t.store.deleteRange(delReq({ key: b('x') }));
    for (let i = 0; i < 5; i++) t.store.deleteRange(delReq({ key: b(`k${i}`) }));
    assert.deepEqual(await t.store.hashKV(0), { hash: 4242314726, compactRev: -1, rev: 23 });
    await t.store.compact({ revision: 16, physical: true }).done;
    assert.deepEqual(await t.store.hashKV(0), { hash: 1794405766, compactRev: 16, rev: 23 });
    assert.deepEqual(await t.store.hashKV(20), { hash: 2581698379, compactRev: 16, rev: 23 });
  });

  it('lets callbacks scheduled after it run before it resolves', async () => {
    const t = await store(50);
    history(t.store, 0, 1000);
    await t.backend.commit();
    const order: string[] = [];
    const hashed = t.store.hashKV(0).then(() => order.push('hash'));
    setImmediate(() => order.push('immediate'));
    await hashed;
    assert.deepEqual(order, ['immediate', 'hash']);
  });

  it('returns the hash at its revision while writes, commits, a compaction and a defrag happen during the scan', async () => {
    // t is busy during its hash; quiet has the same history and is left alone
    const t = await store(1);
    const quiet = await store();
    // 'stable' is written below the first compaction, and again between the
    // past revision asked and the compaction during the scan: the keep-set
    // must be the one at the call, not after that compaction
    let again = 0;
    for (const s of [t, quiet]) {
      // (after other keys' last revisions below that compaction: not in the scan's first slice)
      history(s.store, 0, 590);
      s.store.put(putReq({ key: b('stable'), value: b('1') }));
      history(s.store, 590, 1410);
      await s.store.compact({ revision: 600, physical: true }).done;
    }
    // the last writes still in flight (not committed) when the hash is asked
    for (const s of [t, quiet]) {
      history(s.store, 2000, 200);
      s.store.put(putReq({ key: b('stable'), value: b('2') }));
      again = s.store.rev;
      history(s.store, 2200, 100);
    }
    assert.ok(t.backend.hasPending());
    const rev = t.store.rev;
    const past = again - 10;

    let resolved = false;
    // at the current revision and at a past one, which the compaction below passes
    const hashing = Promise.all([t.store.hashKV(rev), t.store.hashKV(past)]).then((h) => {
      resolved = true;
      return h;
    });
    // a compaction above the first one (and above the past revision asked)
    // physically deletes revisions the hashes still have to read; writes
    // overwrite and delete keys and are committed
    let busy = 0;
    const compacted = t.store.compact({ revision: again + 10, physical: true }).done.then(() => !resolved);
    const defragged = (async () => {
      await compacted;
      await t.backend.defrag();
      return resolved;
    })();
    for (let i = 0; !resolved; i++) {
      history(t.store, 3000 + i * 5, 5);
      busy++;
      if (i % 10 === 0) await t.backend.commit();
      await new Promise<void>((r) => setImmediate(r));
    }
    const got = await hashing;
    assert.deepEqual(got, [await quiet.store.hashKV(rev), await quiet.store.hashKV(past)]);
    assert.ok(busy > 1, 'writes ran during the scan');
    assert.equal(await compacted, true, 'the compaction finished during the scan (make the store larger if not)');
    // the defrag waited for the scan's snapshot
    assert.equal(await defragged, true);
    // the revisions the hash read are gone from disk
    await t.backend.commit();
    const upTo = (s: TestStore): number => [...s.backend.range('key')].filter(([k]) => Number(k.readBigInt64BE(0)) <= again + 10).length;
    assert.ok(upTo(t) < upTo(quiet), 'the compaction deleted records from disk');
  });
});
