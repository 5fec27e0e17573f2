// Randomized check of the watch guarantee: for every watcher, from any start
// revision not compacted, the events of its range arrive exactly once, in
// revision order, with no gap — checked against the store's own history —
// while writes, deletes, compactions and slow streams interleave.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { delReq, openTestStore, putReq } from '../mvcc/test-helpers';
import { Event_EventType, type Event } from '../proto/gen/mvccpb';
import { WatchHub, type HubResponse, type WatchSink } from './hub';

/** Deterministic PRNG (mulberry32) so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

class FlakySink implements WatchSink {
  got: HubResponse[] = [];
  room = 0;
  send(r: HubResponse): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.got.push(r);
    return true;
  }
}

interface Spec {
  sink: FlakySink;
  id: number;
  key: string;
  end: string | undefined | null;
  start: number;
}

const sig = (e: Event): string => `${e.type}:${e.kv!.key.toString('latin1')}@${e.kv!.mod_revision}:${e.kv!.value.toString('latin1')}`;

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  describe(`watch history check (seed ${seed})`, () => {
    it('no gap, no duplicate, order kept, compaction reported', async () => {
      const t = await openTestStore();
      const r = rng(seed);
      const all: Event[] = [];
      t.store.subscribe((evs) => all.push(...evs));
      const hub = new WatchHub(t.store, { autoSync: false, batchMaxRevs: 7, maxWatchersPerSync: 5 });
      const specs: Spec[] = [];
      // A compaction at C keeps revision C readable but drops the history of
      // keys deleted at C (etcd's keyIndex.compact does the same), so a
      // watcher reading from exactly C may miss those: compare around them.
      const compactions = new Set<number>();
      const key = (): string => `k${Math.floor(r() * 12).toString(16)}`;
      for (let step = 0; step < 1500; step++) {
        const x = r();
        if (x < 0.45) t.store.put(putReq({ key: Buffer.from(key()), value: Buffer.from(String(step)) }));
        else if (x < 0.55) t.store.deleteRange(delReq({ key: Buffer.from(key()) }));
        else if (x < 0.6) t.store.deleteRange(delReq({ key: Buffer.from('k0'), range_end: Buffer.from('k4') }));
        else if (x < 0.65)
          t.store.write((tx) => {
            tx.put(putReq({ key: Buffer.from(key()), value: Buffer.from(`t${step}`) }));
            tx.deleteRange(delReq({ key: Buffer.from(key()) }));
            tx.put(putReq({ key: Buffer.from(key()), value: Buffer.from(`u${step}`) }));
          });
        else if (x < 0.67 && t.store.rev > 20) {
          const target = t.store.rev - Math.floor(r() * 60);
          if (target > t.store.compactRev && target > 1) {
            t.store.compact({ revision: target, physical: false });
            compactions.add(target);
          }
        } else if (x < 0.75 && specs.length < 40) {
          const sink = new FlakySink();
          const kind = r();
          const [k, end]: [string, string | undefined | null] = kind < 0.3 ? [key(), undefined] : kind < 0.8 ? ['k', 'l'] : ['k6', null];
          const start = r() < 0.3 ? 0 : Math.max(1, t.store.rev - Math.floor(r() * 200));
          const id = hub.newStream(sink).watch({
            key: Buffer.from(k),
            end: end === undefined ? undefined : end === null ? Buffer.alloc(0) : Buffer.from(end),
            startRev: start,
          });
          specs.push({ sink, id, key: k, end, start: start === 0 ? t.store.rev + 1 : start });
        } else if (x < 0.9) {
          for (const s of specs) if (r() < 0.3) s.sink.room += Math.floor(r() * 4);
        } else {
          hub.syncOnce();
        }
      }
      for (const s of specs) s.sink.room = Infinity;
      for (let i = 0; i < 10000 && hub.unsyncedCount; i++) hub.syncOnce();
      assert.equal(hub.unsyncedCount, 0);
      let compacted = 0;
      for (const s of specs) {
        const inRange = (k: string): boolean => (s.end === undefined ? k === s.key : k >= s.key && (s.end === null || k < s.end));
        const keep = (e: Event): boolean => !compactions.has(e.kv!.mod_revision);
        const expected = all.filter((e) => e.kv!.mod_revision >= s.start && inRange(e.kv!.key.toString('latin1')) && keep(e)).map(sig);
        const got = s.sink.got.flatMap((g) => g.events).filter(keep).map(sig);
        const cancel = s.sink.got.find((g) => g.compactRevision !== 0);
        if (cancel) {
          compacted++;
          assert.equal(s.sink.got[s.sink.got.length - 1], cancel, 'nothing after the compaction cancel');
          assert.deepEqual(got, expected.slice(0, got.length), 'a prefix of the history before the cancel');
          const next = got.length ? Number(got[got.length - 1].split('@')[1].split(':')[0]) + 1 : s.start;
          assert.ok(next < cancel.compactRevision, 'canceled only when its next revision was compacted');
        } else {
          assert.deepEqual(got, expected, `watcher on ${s.key}..${String(s.end)} from ${s.start}`);
        }
        for (const g of s.sink.got) {
          if (g.events.length === 0) continue;
          // a response never splits a revision and its revision is not below its events
          assert.ok(g.revision >= g.events[g.events.length - 1].kv!.mod_revision);
        }
        for (const e of s.sink.got.flatMap((g) => g.events)) assert.ok(e.type === Event_EventType.PUT || e.type === Event_EventType.DELETE);
      }
      assert.ok(specs.length > 10);
      void compacted;
      hub.close();
      await t.close();
    });
  });
}
