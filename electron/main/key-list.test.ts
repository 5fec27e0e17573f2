// main's key list against a fake client that counts range calls: watch events
// are applied in memory, so a burst of changes never re-reads loaded rows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MvccPb, type EtcdPb, type WatchListener, type WatchOptions } from '../../node-core/index';
import type { KeysChangedEvent } from '../contract/index';
import { KeyList, type KeyListClient } from './key-list';

const latin1 = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('latin1');

type Entry = { mod: number; create: number; version: number };

/** An in-memory MVCC keyspace with just what KeyList asks of etcd (reads at a revision included). */
class FakeClient implements KeyListClient {
  readonly data = new Map<string, Entry>();
  private readonly history = new Map<string, { rev: number; e: Entry | null }[]>();
  rev = 1;
  ranges: EtcdPb.RangeRequestInit[] = [];
  listener: WatchListener | null = null;
  watchedFrom = 0;

  put(k: string): MvccPb.Event {
    const prev = this.data.get(k);
    const rev = ++this.rev;
    const e = { mod: rev, create: prev?.create ?? rev, version: (prev?.version ?? 0) + 1 };
    this.data.set(k, e);
    this.record(k, rev, e);
    return { type: MvccPb.Event_EventType.PUT, kv: this.kv(k, e) };
  }

  del(k: string): MvccPb.Event {
    this.data.delete(k);
    const rev = ++this.rev;
    this.record(k, rev, null);
    return { type: MvccPb.Event_EventType.DELETE, kv: { key: Buffer.from(k, 'latin1'), value: Buffer.alloc(0), create_revision: 0, mod_revision: rev, version: 0, lease: 0n } };
  }

  private record(k: string, rev: number, e: Entry | null): void {
    const h = this.history.get(k) ?? [];
    h.push({ rev, e });
    this.history.set(k, h);
  }

  private at(k: string, rev: number): Entry | null {
    const h = this.history.get(k) ?? [];
    let out: Entry | null = null;
    for (const x of h) if (x.rev <= rev) out = x.e;
    return out;
  }

  private kv(k: string, e: Entry): MvccPb.KeyValue {
    return { key: Buffer.from(k, 'latin1'), value: Buffer.alloc(0), create_revision: e.create, mod_revision: e.mod, version: e.version, lease: 0n };
  }

  async range(req: EtcdPb.RangeRequestInit): Promise<EtcdPb.RangeResponse> {
    this.ranges.push(req);
    const from = latin1(req.key);
    const end = latin1(req.range_end);
    const rev = req.revision || this.rev;
    const keys = [...this.history.keys()].filter((k) => k >= from && (end === '\0' || k < end) && this.at(k, rev)).sort();
    const header = { cluster_id: 0n, member_id: 0n, revision: this.rev, raft_term: 1 };
    if (req.count_only) return { header, kvs: [], more: false, count: keys.length };
    const limit = req.limit || keys.length;
    const page = keys.slice(0, limit);
    return { header, kvs: page.map((k) => this.kv(k, this.at(k, rev)!)), more: keys.length > limit, count: keys.length };
  }

  watch(opts: WatchOptions, listener: WatchListener): { ready: Promise<number>; close(): void } {
    this.listener = listener;
    this.watchedFrom = opts.startRevision ?? 0;
    return { ready: Promise.resolve(this.rev), close: () => (this.listener = null) };
  }

  send(events: MvccPb.Event[]): void {
    this.listener?.onEvents({ events, revision: this.rev });
  }
}

const key = (i: number): string => `/k/${String(i).padStart(6, '0')}`;

function setup(n: number): { client: FakeClient; list: KeyList; next(): Promise<KeysChangedEvent> } {
  const client = new FakeClient();
  for (let i = 0; i < n; i++) client.put(key(i * 2)); // even keys: room for inserts between them
  let waiting: ((e: KeysChangedEvent) => void) | null = null;
  const queue: KeysChangedEvent[] = [];
  const list = new KeyList(client, '/k/', (e) => (waiting ? waiting(e) : queue.push(e)));
  const next = (): Promise<KeysChangedEvent> =>
    queue.length
      ? Promise.resolve(queue.shift()!)
      : new Promise((resolve) => {
          waiting = (e) => {
            waiting = null;
            resolve(e);
          };
        });
  return { client, list, next };
}

describe('main keeps the key list current from the watch', () => {
  it('a burst of 1,000 changes while scrolled to row 90,000 re-reads nothing and reports only what changed', async () => {
    const { client, list, next } = setup(100_000);
    await list.init();
    assert.equal(client.watchedFrom, client.rev + 1, 'watches from just after the revision the list was counted at');
    const deep = await list.window(90_000, 200);
    assert.equal(deep.rows[0].keyText, key(180_000));
    const readsBefore = client.ranges.length;

    // 1,000 changes: 990 rewrites of loaded keys (some on screen), 5 new keys, 5 deletes.
    const events: MvccPb.Event[] = [];
    for (let i = 0; i < 990; i++) events.push(client.put(key((89_500 + i) * 2)));
    for (let i = 0; i < 5; i++) events.push(client.put(key(10 + i * 2 + 1))); // odd: new, near the top
    for (let i = 0; i < 5; i++) events.push(client.del(key(20 + i * 2)));
    client.send(events);
    const changed = await next();

    assert.equal(client.ranges.length, readsBefore, 'no range call after the burst');
    assert.equal(changed.total, 100_000);
    assert.equal(changed.revision, client.rev);
    // New keys and deletes near the top moved rows from position 6 on; rewrites are in-place rows with their new versions.
    assert.equal(changed.shiftedFrom, 6);
    assert.equal(changed.changed.length, 990);
    const onScreen = changed.changed.find((c) => c.row.keyText === key(180_000));
    assert.equal(onScreen?.index, 90_000);
    assert.equal(onScreen?.row.version, 2);
    // The window main serves next comes from memory and shows the change.
    const again = await list.window(90_000, 200);
    assert.equal(client.ranges.length, readsBefore);
    assert.equal(again.rows[0].version, 2);
    assert.equal(again.revision, client.rev);
    list.close();
  });

  it('inserts and deletes keep the rows sorted and the count right; keys past the loaded part only move the count', async () => {
    const { client, list, next } = setup(20_000);
    await list.init();
    await list.window(0, 100); // the first chunk only
    assert.equal(list.done, false);
    const loaded = list.rows.length;
    client.send([client.put(key(1)), client.del(key(0)), client.put(key(39_999)), client.del(key(39_998))]);
    const e = await next();
    assert.equal(e.total, 20_000);
    assert.equal(e.shiftedFrom, 0);
    assert.deepEqual(list.rows.slice(0, 2).map((r) => r.keyText), [key(1), key(2)]);
    assert.equal(list.rows.length, loaded);
    // Reading on to the end picks the new last key up (the next chunk reads at the applied revision).
    const end = await list.window(19_990, 100);
    assert.deepEqual(end.rows.slice(-2).map((r) => r.keyText), [key(39_996), key(39_999)]);
    assert.equal(end.total, 20_000);
    assert.equal(end.partial, false);
    assert.equal(client.ranges.at(-1)?.revision, client.rev);
    list.close();
  });

  it('an event that arrives while a chunk is being read waits for it (never lost between chunk and event)', async () => {
    const { client, list, next } = setup(10_000);
    await list.init();
    const reading = list.window(0, 6_000);
    client.send([client.put(key(9_001))]); // lands in the second chunk's range while it is in flight
    await reading;
    const e = await next();
    const i = list.rows.findIndex((r) => r.keyText === key(9_001));
    assert.ok(i > 0 && list.rows[i - 1].keyText === key(9_000), 'inserted in order');
    assert.equal(e.total, 10_001);
    assert.equal(list.rows.filter((r) => r.keyText === key(9_001)).length, 1);
    list.close();
  });

  it('a bulk import in random order into a loaded list is merged in order, with the count and first moved position right', async () => {
    const { client, list, next } = setup(5_000);
    await list.init();
    await list.window(0, 10_000);
    assert.equal(list.done, true);
    const odd = Array.from({ length: 2_000 }, (_, i) => 2 * (i * 2 + 100) + 1); // new keys between existing ones
    for (let i = odd.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1); // a fixed shuffle
      [odd[i], odd[j]] = [odd[j], odd[i]];
    }
    const events = odd.map((n) => client.put(key(n)));
    for (let i = 0; i < 100; i++) events.push(client.del(key(2 * (4_000 + i))));
    events.push(client.put(key(2 * 50))); // a rewrite before the first moved position
    client.send(events);
    const e = await next();
    const expected = [...client.data.keys()].sort();
    assert.deepEqual(list.rows.map((r) => r.keyText), expected);
    assert.equal(e.total, 5_000 + 2_000 - 100);
    assert.equal(e.shiftedFrom, expected.indexOf(key(201)));
    assert.deepEqual(e.changed.map((c) => [c.index, c.row.keyText, c.row.version]), [[50, key(100), 2]]);
    list.close();
  });
});
