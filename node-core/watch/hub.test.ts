import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { delReq, openTestStore, putReq, type TestStore } from '../mvcc/test-helpers';
import { Event_EventType, type Event } from '../proto/gen/mvccpb';
import { ErrEmptyWatcherRange, ErrWatcherDuplicateID, WatchFilter, WatchHub, type HubResponse, type WatchSink } from './hub';

const b = (s: string): Buffer => Buffer.from(s);

/** A sink that records, with an adjustable capacity (responses it accepts before reporting full). */
class TestSink implements WatchSink {
  got: HubResponse[] = [];
  room = Infinity;
  send(r: HubResponse): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.got.push(r);
    return true;
  }
  events(id: number): Event[] {
    return this.got.filter((r) => r.watchId === id).flatMap((r) => r.events);
  }
}

const sig = (e: Event): string => `${e.type === Event_EventType.PUT ? 'P' : 'D'}:${e.kv!.key.toString('latin1')}@${e.kv!.mod_revision}`;

let t: TestStore | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('watch hub', () => {
  it('delivers synced events at once, with the write revision, for key, prefix and open ranges', async () => {
    t = await openTestStore();
    const hub = new WatchHub(t.store, { autoSync: false });
    const sink = new TestSink();
    const s = hub.newStream(sink);
    const k = s.watch({ key: b('a') });
    const p = s.watch({ key: b('a'), end: b('b') });
    const open = s.watch({ key: b('b'), end: Buffer.alloc(0) });
    assert.deepEqual([k, p, open], [0, 1, 2]);
    t.store.put(putReq({ key: b('a'), value: b('1') }));
    t.store.put(putReq({ key: b('ab'), value: b('2') }));
    t.store.put(putReq({ key: b('zz'), value: b('3') }));
    t.store.deleteRange(delReq({ key: b('a') }));
    assert.deepEqual(sink.events(k).map(sig), ['P:a@2', 'D:a@5']);
    assert.deepEqual(sink.events(p).map(sig), ['P:a@2', 'P:ab@3', 'D:a@5']);
    assert.deepEqual(sink.events(open).map(sig), ['P:zz@4']);
    assert.deepEqual(
      sink.got.filter((r) => r.watchId === p).map((r) => r.revision),
      [2, 3, 5],
    );
    hub.close();
  });

  it('one response per revision for a multi-key txn, filters NOPUT and NODELETE', async () => {
    t = await openTestStore();
    const hub = new WatchHub(t.store, { autoSync: false });
    const sink = new TestSink();
    const s = hub.newStream(sink);
    const all = s.watch({ key: b('k'), end: b('l') });
    const noPut = s.watch({ key: b('k'), end: b('l'), filters: [WatchFilter.NoPut] });
    const noDel = s.watch({ key: b('k'), end: b('l'), filters: [WatchFilter.NoDelete] });
    t.store.write((tx) => {
      tx.put(putReq({ key: b('k1'), value: b('x') }));
      tx.put(putReq({ key: b('k2'), value: b('y') }));
    });
    t.store.deleteRange(delReq({ key: b('k'), range_end: b('l') }));
    assert.equal(sink.got.filter((r) => r.watchId === all).length, 2);
    assert.deepEqual(sink.events(all).map(sig), ['P:k1@2', 'P:k2@2', 'D:k1@3', 'D:k2@3']);
    assert.deepEqual(sink.events(noPut).map(sig), ['D:k1@3', 'D:k2@3']);
    assert.deepEqual(sink.events(noDel).map(sig), ['P:k1@2', 'P:k2@2']);
    // a fully filtered batch sends nothing
    assert.equal(sink.got.filter((r) => r.watchId === noPut).length, 1);
    hub.close();
  });

  it('ids: auto from 0 skipping chosen ones, duplicates and empty ranges refused as etcd', async () => {
    t = await openTestStore();
    const hub = new WatchHub(t.store, { autoSync: false });
    const s = hub.newStream(new TestSink());
    assert.equal(s.watch({ id: 1, key: b('x') }), 1);
    assert.equal(s.watch({ key: b('x') }), 0);
    assert.equal(s.watch({ key: b('x') }), 2);
    assert.throws(() => s.watch({ id: 2, key: b('x') }), ErrWatcherDuplicateID);
    assert.throws(() => s.watch({ key: b('b'), end: b('a') }), ErrEmptyWatcherRange);
    assert.throws(() => s.watch({ key: b('b'), end: b('b') }), ErrEmptyWatcherRange);
    assert.equal(s.cancel(2), true);
    assert.equal(s.cancel(2), false);
    assert.equal(ErrWatcherDuplicateID.message, 'mvcc: duplicate watch ID provided on the WatchStream');
    hub.close();
  });

  it('a watcher starting in the past catches up from history in bounded batches, then goes synced', async () => {
    t = await openTestStore();
    for (let i = 0; i < 25; i++) t.store.put(putReq({ key: b(`h${i % 3}`), value: b(String(i)) }));
    const hub = new WatchHub(t.store, { autoSync: false, batchMaxRevs: 10 });
    const sink = new TestSink();
    const s = hub.newStream(sink);
    const id = s.watch({ key: b('h'), end: b('i'), startRev: 2 });
    assert.equal(hub.unsyncedCount, 1);
    assert.equal(sink.got.length, 0);
    hub.syncOnce();
    assert.equal(sink.got.length, 1);
    assert.equal(sink.got[0].events.length, 10);
    assert.equal(sink.got[0].revision, 26);
    hub.syncOnce();
    hub.syncOnce();
    assert.equal(hub.unsyncedCount, 0);
    assert.equal(hub.syncedCount, 1);
    t.store.put(putReq({ key: b('h9'), value: b('live') }));
    const revs = sink.events(id).map((e) => e.kv!.mod_revision);
    assert.deepEqual(revs, Array.from({ length: 26 }, (_, i) => i + 2));
    hub.close();
  });

  it('a slow stream falls back to history and still gets every event exactly once in order', async () => {
    t = await openTestStore();
    const hub = new WatchHub(t.store, { autoSync: false, batchMaxRevs: 4 });
    const slow = new TestSink();
    const fast = new TestSink();
    const ws = hub.newStream(slow).watch({ key: b('s'), end: b('t') });
    const wf = hub.newStream(fast).watch({ key: b('s'), end: b('t') });
    slow.room = 3;
    for (let i = 0; i < 20; i++) t.store.put(putReq({ key: b(`s${i % 4}`), value: b(String(i)) }));
    // the fast stream is unaffected by the slow one
    assert.equal(fast.events(wf).length, 20);
    assert.equal(slow.events(ws).length, 3);
    assert.equal(hub.unsyncedCount, 1);
    hub.syncOnce(); // still full: nothing moves
    assert.equal(slow.events(ws).length, 3);
    slow.room = Infinity;
    while (hub.unsyncedCount) hub.syncOnce();
    t.store.put(putReq({ key: b('s9'), value: b('after') }));
    assert.deepEqual(slow.events(ws).map(sig), fast.events(wf).map(sig));
    hub.close();
  });

  it('a compacted start revision cancels the watcher with compact_revision, as etcd', async () => {
    t = await openTestStore();
    for (let i = 0; i < 10; i++) t.store.put(putReq({ key: b('c'), value: b(String(i)) }));
    t.store.compact({ revision: 6, physical: false });
    const hub = new WatchHub(t.store, { autoSync: false });
    const sink = new TestSink();
    const s = hub.newStream(sink);
    const old = s.watch({ id: 5, key: b('c'), startRev: 3 });
    const atCompact = s.watch({ key: b('c'), startRev: 6 });
    hub.syncOnce();
    const r = sink.got.find((x) => x.watchId === old)!;
    assert.deepEqual(r, { watchId: old, events: [], revision: 0, compactRevision: 6 });
    assert.deepEqual(sink.events(atCompact).map((e) => e.kv!.mod_revision), [6, 7, 8, 9, 10, 11]);
    // the compacted id stays reserved until the client cancels it, as etcd's watchStream
    assert.throws(() => s.watch({ id: old, key: b('c') }), ErrWatcherDuplicateID);
    assert.equal(s.cancel(old), true);
    hub.close();
  });

  it('progress: only synced watchers get a notification, at the current revision', async () => {
    t = await openTestStore();
    t.store.put(putReq({ key: b('p'), value: b('1') }));
    const hub = new WatchHub(t.store, { autoSync: false });
    const sink = new TestSink();
    const s = hub.newStream(sink);
    const synced = s.watch({ key: b('p') });
    const behind = s.watch({ key: b('p'), startRev: 1 });
    s.requestProgress(synced);
    s.requestProgress(behind);
    assert.deepEqual(sink.got, [{ watchId: synced, events: [], revision: 2, compactRevision: 0 }]);
    hub.close();
  });

  it('catch-up runs on its own with timers and never holds up writes', async () => {
    t = await openTestStore();
    for (let i = 0; i < 3000; i++) t.store.put(putReq({ key: b(`w${i % 50}`), value: b(String(i)) }));
    const hub = new WatchHub(t.store, { batchMaxRevs: 100, maxWatchersPerSync: 8 });
    const sinks = Array.from({ length: 40 }, () => new TestSink());
    const ids = sinks.map((sk, i) => hub.newStream(sk).watch({ key: b('w'), end: b('x'), startRev: 1 + i * 50 }));
    // writes keep landing while the watchers catch up
    for (let i = 0; i < 200; i++) {
      t.store.put(putReq({ key: b(`w${i % 7}`), value: b('live') }));
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 10000;
    while (hub.unsyncedCount && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(hub.unsyncedCount, 0);
    for (let i = 0; i < sinks.length; i++) {
      const revs = sinks[i].events(ids[i]).map((e) => e.kv!.mod_revision);
      const from = Math.max(2, 1 + i * 50);
      assert.deepEqual(revs, Array.from({ length: 3201 - from + 1 }, (_, j) => from + j));
    }
    hub.close();
  });
});
