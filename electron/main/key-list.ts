// Server-side paging for the key browser. main keeps the key list (keys only,
// no values) for the prefix a window is browsing, read in chunks as the
// renderer scrolls, so the renderer only ever holds the rows in view and
// 100,000 keys never cross IPC at once. main also keeps the list current: it
// watches the prefix from the revision the list was read at and applies each
// event to its rows, then tells the renderer {revision, total, changed rows}.
// A burst of changes therefore costs no re-read of anything already loaded
// (a user scrolled to row 90,000 used to re-read ~90,000 keys per burst).
import type { EtcdPb, MvccPb, WatchListener, WatchOptions } from '../../node-core/index';
import { MvccPb as Mvcc } from '../../node-core/index';
import type { KeyRow, KeysChangedEvent, KeysWindowResponse, TreeNode } from '../contract/index';
import { kvToRow, prefixEndOf, text } from './convert';

const FIRST_CHUNK = 300;
const CHUNK = 5000;
/** Changes are gathered this long before one keys:changed goes out (bulk writes arrive as bursts). */
export const KEYS_FLUSH_MS = 100;

/** What a key list needs of a client: ranges and a watch (EtcdClient, or a counting fake in tests). */
export interface KeyListClient {
  range(req: EtcdPb.RangeRequestInit): Promise<EtcdPb.RangeResponse>;
  watch(opts: WatchOptions, listener: WatchListener): { ready: Promise<number>; close(): void };
}

export function rangeOfPrefix(prefix: string): { key: Buffer; end: Buffer } {
  // The empty prefix means the whole keyspace: etcd's [\0, \0) convention.
  if (!prefix) return { key: Buffer.from([0]), end: Buffer.from([0]) };
  const key = text(prefix);
  return { key, end: prefixEndOf(key) };
}

/** Keys as latin1 strings compare in byte order, which is etcd's key order. */
const sortKey = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

export class KeyList {
  rows: KeyRow[] = [];
  /** latin1 of each row's key, parallel to rows (binary search without decoding base64). */
  private keys: string[] = [];
  revision = 0;
  total = 0;
  done = false;
  /** The highest key read from the server so far: events above it only move `total`. */
  private boundary: string | null = null;
  private loading: Promise<void> = Promise.resolve();
  private watch: { close(): void } | null = null;
  private closed = false;
  // Pending notification for the renderer.
  private changedKeys = new Set<string>();
  private shiftedFrom: number | null = null;
  private dirty = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly client: KeyListClient,
    readonly prefix: string,
    private readonly emit?: (e: KeysChangedEvent) => void,
  ) {}

  /** Counts the prefix (the list's revision) and starts following it; queued, so windows asked meanwhile wait for it. */
  init(): Promise<void> {
    return this.queue(async () => {
      const { key, end } = rangeOfPrefix(this.prefix);
      const r = await this.client.range({ key, range_end: end, count_only: true });
      this.revision = r.header?.revision ?? 0;
      this.total = r.count;
      this.done = r.count === 0;
      if (this.emit && !this.closed) this.follow();
    });
  }

  /** Watches the prefix from just after the list's revision: no change between the count and the watch is lost. */
  private follow(): void {
    const { key, end } = rangeOfPrefix(this.prefix);
    const w = this.client.watch(
      { key, rangeEnd: end, startRevision: this.revision + 1 },
      {
        onEvents: (u) => {
          const events = u.events;
          // Through the loading chain: a chunk read in flight finishes first, so an event never races it.
          this.queue(async () => this.apply(events));
        },
        // A watch that died (compaction, permission): the list is stale from here; the renderer's refresh reads it again.
        onError: () => undefined,
      },
    );
    w.ready.catch(() => undefined);
    this.watch = w;
  }

  private queue(fn: () => Promise<void>): Promise<void> {
    const next = this.loading.catch(() => undefined).then(fn);
    this.loading = next;
    return next;
  }

  /**
   * Applies watch events to the rows in memory. A batch is first reduced to
   * each key's final state; a few additions and removals are spliced in, many
   * (a bulk import) are merged in one pass, so a burst costs O(rows + k log k).
   */
  apply(events: MvccPb.Event[]): void {
    if (this.closed) return;
    const final = new Map<string, KeyRow | null>();
    for (const e of events) {
      const kv = e.kv;
      if (!kv) continue;
      this.revision = Math.max(this.revision, kv.mod_revision);
      const k = sortKey(kv.key);
      const isDelete = e.type === Mvcc.Event_EventType.DELETE;
      if (!this.done && (this.boundary === null || k > this.boundary)) {
        // Not loaded yet: the next chunk reads it (at the new revision); only the count moves.
        if (isDelete) this.total = Math.max(0, this.total - 1);
        else if (kv.version === 1) this.total++;
        else continue;
        this.markShift(this.rows.length);
        continue;
      }
      final.set(k, isDelete ? null : kvToRow(kv));
    }
    const inserts: [string, KeyRow][] = [];
    const deletes = new Set<string>();
    for (const [k, row] of final) {
      const i = this.search(k);
      const found = i < this.keys.length && this.keys[i] === k;
      if (row && found) {
        this.rows[i] = row;
        this.changedKeys.add(k);
        this.dirty = true;
      } else if (row) inserts.push([k, row]);
      else if (found) {
        deletes.add(k);
        this.changedKeys.delete(k);
      }
    }
    if (inserts.length + deletes.size > 16) this.merge(inserts, deletes);
    else {
      for (const k of deletes) {
        const i = this.search(k);
        this.rows.splice(i, 1);
        this.keys.splice(i, 1);
        this.markShift(i);
      }
      for (const [k, row] of inserts) {
        const i = this.search(k);
        this.rows.splice(i, 0, row);
        this.keys.splice(i, 0, k);
        this.markShift(i);
      }
    }
    this.total = this.done ? this.rows.length : Math.max(0, this.total + inserts.length - deletes.size);
    this.schedule();
  }

  /** Many additions and removals at once: one merge pass instead of a splice each. */
  private merge(inserts: [string, KeyRow][], deletes: Set<string>): void {
    inserts.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const keys: string[] = [];
    const rows: KeyRow[] = [];
    let first: number | null = null;
    let j = 0;
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i];
      while (j < inserts.length && inserts[j][0] < k) {
        first ??= keys.length;
        keys.push(inserts[j][0]);
        rows.push(inserts[j][1]);
        j++;
      }
      if (deletes.has(k)) {
        first ??= keys.length;
        continue;
      }
      keys.push(k);
      rows.push(this.rows[i]);
    }
    for (; j < inserts.length; j++) {
      first ??= keys.length;
      keys.push(inserts[j][0]);
      rows.push(inserts[j][1]);
    }
    this.keys = keys;
    this.rows = rows;
    if (first !== null) this.markShift(first);
  }

  private markShift(i: number): void {
    this.shiftedFrom = this.shiftedFrom === null ? i : Math.min(this.shiftedFrom, i);
    this.dirty = true;
  }

  private schedule(): void {
    if (!this.dirty || this.timer || !this.emit) return;
    this.timer = setTimeout(() => this.flush(), KEYS_FLUSH_MS);
  }

  /** Sends what changed since the last flush (positions as they are now). */
  flush(): void {
    this.timer = null;
    if (!this.dirty || this.closed) return;
    const changed: KeysChangedEvent['changed'] = [];
    for (const k of this.changedKeys) {
      const i = this.search(k);
      if (this.keys[i] === k) changed.push({ index: i, row: this.rows[i] });
    }
    const event: KeysChangedEvent = { prefix: this.prefix, revision: this.revision, total: this.total, changed, shiftedFrom: this.shiftedFrom };
    this.changedKeys = new Set();
    this.shiftedFrom = null;
    this.dirty = false;
    this.emit?.(event);
  }

  private search(k: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] < k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Loads rows until `want` are present (or the range is exhausted). */
  ensure(want: number, onProgress?: (done: number, total: number) => void): Promise<void> {
    return this.queue(async () => {
      const { key: first, end } = rangeOfPrefix(this.prefix);
      while (!this.done && this.rows.length < want && !this.closed) {
        const start = this.boundary !== null ? Buffer.concat([Buffer.from(this.boundary, 'latin1'), Buffer.from([0])]) : first;
        const limit = this.rows.length === 0 ? Math.max(FIRST_CHUNK, Math.min(want, CHUNK)) : CHUNK;
        // At the revision of the last applied event: rows read now agree with the events already applied.
        const r = await this.client.range({ key: start, range_end: end, keys_only: true, limit, revision: this.revision });
        for (const kv of r.kvs) {
          this.rows.push(kvToRow(kv));
          this.keys.push(sortKey(kv.key));
        }
        if (r.kvs.length) this.boundary = sortKey(r.kvs[r.kvs.length - 1].key);
        if (!r.more || !r.kvs.length) {
          this.done = true;
          this.total = this.rows.length;
        }
        onProgress?.(this.rows.length, this.total);
      }
    });
  }

  async window(offset: number, limit: number): Promise<KeysWindowResponse> {
    await this.ensure(offset + limit);
    return { total: this.total, offset, rows: this.rows.slice(offset, offset + limit), revision: this.revision, partial: !this.done };
  }

  /** Children of the prefix, grouped by the delimiter (a directory view over flat keys). */
  async tree(delimiter: string): Promise<TreeNode[]> {
    await this.ensure(Number.MAX_SAFE_INTEGER);
    const byName = new Map<string, TreeNode>();
    for (const row of this.rows) {
      const rest = row.keyText.slice(this.prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut === -1) {
        const n = byName.get(rest);
        if (n) n.isKey = true;
        else byName.set(rest, { path: row.keyText, name: rest, isDir: false, count: 0, isKey: true });
        continue;
      }
      // A dir node's path keeps the trailing delimiter so it is also the child prefix.
      const name = rest.slice(0, cut + delimiter.length);
      const n = byName.get(name);
      if (n && n.isDir) n.count++;
      else byName.set(name, { path: this.prefix + name, name, isDir: true, count: 1, isKey: n?.isKey ?? false });
    }
    return [...byName.values()].sort((a, b) => (a.isDir === b.isDir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.isDir ? -1 : 1));
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
    this.watch = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** One key list per window (client): the browser shows one prefix at a time. */
export class KeyListRegistry {
  private readonly lists = new Map<string, KeyList>();

  /** The client's list for `prefix`; a new one (the old closed) on another prefix or a refresh. */
  get(clientId: string, prefix: string, refresh: boolean, create: () => KeyList): { list: KeyList; fresh: boolean } {
    const cur = this.lists.get(clientId);
    if (cur && cur.prefix === prefix && !refresh) return { list: cur, fresh: false };
    cur?.close();
    const list = create();
    this.lists.set(clientId, list);
    return { list, fresh: true };
  }

  closeClient(clientId: string): void {
    this.lists.get(clientId)?.close();
    this.lists.delete(clientId);
  }

  closeAll(): void {
    for (const l of this.lists.values()) l.close();
    this.lists.clear();
  }
}
