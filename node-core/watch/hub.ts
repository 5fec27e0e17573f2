// The watch hub: etcd 3.4's watchable store (mvcc/watchable_store.go) over
// our MVCC store. Watchers live in two groups:
//  - synced: caught up with the store; every applied write is matched
//    against them synchronously (store.subscribe) and handed to their stream's
//    sink at once, so delivery never waits for a timer.
//  - unsynced: behind the store (started in the past, or their sink was full);
//    a background pass catches them up from history in bounded batches, a few
//    hundred watchers per event-loop turn, so writes and other watchers are
//    never blocked behind a slow one.
// Where etcd keeps a full sink's batch aside as a "victim", we drop it and
// move the watcher back to unsynced at that revision: history re-reads the
// same events, which keeps delivery exactly once and in revision order with
// one code path fewer.
import { Event_EventType, type Event } from '../proto/gen/mvccpb';
import type { KVStore } from '../mvcc/types';

/** etcd's WatchCreateRequest filter types. */
export const WatchFilter = { NoPut: 0, NoDelete: 1 } as const;

/** A response from the hub to a stream (etcd's mvcc.WatchResponse). */
export interface HubResponse {
  watchId: number;
  events: Event[];
  /** The store revision the response reflects (header revision). 0 on a compaction cancel. */
  revision: number;
  /** Non-zero: the watcher's start revision was compacted and the watcher is gone. */
  compactRevision: number;
}

/** Where a stream's responses go. false = full: the watcher falls back to history. */
export interface WatchSink {
  send(r: HubResponse): boolean;
}

export interface WatchOptions {
  /** 0 (etcd's AutoWatchID) picks the next free id. */
  id?: number;
  key: Buffer;
  /** undefined: the single key; empty: every key >= key; else [key, end). */
  end?: Buffer;
  /** 0: from the next revision. */
  startRev?: number;
  filters?: readonly number[];
}

export interface HubOptions {
  /** Unsynced watchers handled per pass (etcd's maxWatchersPerSync). */
  maxWatchersPerSync?: number;
  /** Revisions per catch-up response (etcd's watchBatchMaxRevs). */
  batchMaxRevs?: number;
  /** Delay between catch-up passes while watchers are behind (etcd: 100 ms). */
  syncIntervalMs?: number;
  /** false: no timers; tests drive catch-up with syncOnce(). */
  autoSync?: boolean;
}

export class WatchError extends Error {}
export const ErrEmptyWatcherRange = new WatchError('mvcc: watcher range is empty');
export const ErrWatcherDuplicateID = new WatchError('mvcc: duplicate watch ID provided on the WatchStream');

class Watcher {
  /** Next revision this watcher needs. */
  minRev: number;
  synced = false;
  /** Removed from the hub (canceled or compacted); the stream may still reserve its id. */
  gone = false;
  readonly keyStr: string;
  /** null: open-ended; undefined: single key. */
  readonly endStr: string | null | undefined;
  constructor(
    readonly id: number,
    readonly key: Buffer,
    readonly end: Buffer | undefined,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly stream: WatchStream,
    startRev: number,
  ) {
    this.minRev = startRev;
    this.keyStr = key.toString('latin1');
    this.endStr = end === undefined ? undefined : end.length === 0 ? null : end.toString('latin1');
  }

  matches(k: string): boolean {
    if (this.endStr === undefined) return k === this.keyStr;
    return k >= this.keyStr && (this.endStr === null || k < this.endStr);
  }

  /** Filters the events; false when the sink was full. Fully filtered batches count as sent, as etcd. */
  deliver(events: Event[], revision: number): boolean {
    let evs = events;
    if (this.noPut || this.noDelete) {
      evs = events.filter((e) => !((this.noPut && e.type === Event_EventType.PUT) || (this.noDelete && e.type === Event_EventType.DELETE)));
      if (evs.length === 0) return true;
    }
    return this.stream.sink.send({ watchId: this.id, events: evs, revision, compactRevision: 0 });
  }
}

/** One client stream's watchers (etcd's watchStream): ids are per stream. */
export class WatchStream {
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly hub: WatchHub,
    readonly sink: WatchSink,
  ) {}

  /** The store's current revision (etcd's watchStream.Rev). */
  get rev(): number {
    return this.hub.store.rev;
  }

  /** etcd's watchStream.Watch: returns the watch id or throws a WatchError. */
  watch(o: WatchOptions): number {
    if (o.end !== undefined && o.end.length !== 0 && Buffer.compare(o.key, o.end) >= 0) throw ErrEmptyWatcherRange;
    if (this.closed) throw ErrEmptyWatcherRange;
    let id = o.id ?? 0;
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      throw ErrWatcherDuplicateID;
    }
    const f = o.filters ?? [];
    const w = new Watcher(id, Buffer.from(o.key), o.end === undefined ? undefined : Buffer.from(o.end), f.includes(WatchFilter.NoPut), f.includes(WatchFilter.NoDelete), this, o.startRev ?? 0);
    this.watchers.set(id, w);
    this.hub.add(w);
    return id;
  }

  /** etcd's watchStream.Cancel: false when the id is unknown. */
  cancel(id: number): boolean {
    const w = this.watchers.get(id);
    if (!w) return false;
    this.watchers.delete(id);
    this.hub.remove(w);
    return true;
  }

  /** Sends a progress notification (no events, current revision) if the watcher is synced. */
  requestProgress(id: number): void {
    const w = this.watchers.get(id);
    if (w && w.synced && !w.gone) this.sink.send({ watchId: id, events: [], revision: this.hub.store.rev, compactRevision: 0 });
  }

  /** Ids of the stream's watchers (including compacted ones whose ids stay reserved, as etcd). */
  ids(): number[] {
    return [...this.watchers.keys()];
  }

  /** The sink has room again: let the hub retry the stream's waiting watchers soon. */
  kick(): void {
    this.hub.kick();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
  }
}

const DEFAULT_MAX_WATCHERS_PER_SYNC = 512;
const DEFAULT_BATCH_MAX_REVS = 1000;
const DEFAULT_SYNC_INTERVAL_MS = 100;

export class WatchHub {
  // synced group: single-key watchers by key, range watchers in a set
  private readonly syncedKeys = new Map<string, Set<Watcher>>();
  private readonly syncedRanges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private readonly unsubscribe: () => void;
  private readonly maxPerSync: number;
  private readonly batchMaxRevs: number;
  private readonly intervalMs: number;
  private readonly autoSync: boolean;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    readonly store: KVStore,
    opts: HubOptions = {},
  ) {
    this.maxPerSync = opts.maxWatchersPerSync ?? DEFAULT_MAX_WATCHERS_PER_SYNC;
    this.batchMaxRevs = opts.batchMaxRevs ?? DEFAULT_BATCH_MAX_REVS;
    this.intervalMs = opts.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS;
    this.autoSync = opts.autoSync ?? true;
    this.unsubscribe = store.subscribe((evs, rev) => this.notify(evs, rev));
  }

  newStream(sink: WatchSink): WatchStream {
    return new WatchStream(this, sink);
  }

  get syncedCount(): number {
    let n = this.syncedRanges.size;
    for (const s of this.syncedKeys.values()) n += s.size;
    return n;
  }

  get unsyncedCount(): number {
    return this.unsynced.size;
  }

  /** etcd's watchableStore.watch: synced when starting at the next revision or later. */
  add(w: Watcher): void {
    const cur = this.store.rev;
    if (w.minRev === 0 || w.minRev > cur) {
      if (w.minRev < cur + 1) w.minRev = cur + 1;
      this.toSynced(w);
    } else {
      this.toUnsynced(w);
    }
  }

  remove(w: Watcher): void {
    if (w.gone) return;
    w.gone = true;
    if (w.synced) this.fromSynced(w);
    else this.unsynced.delete(w);
  }

  private toSynced(w: Watcher): void {
    w.synced = true;
    if (w.endStr === undefined) {
      let s = this.syncedKeys.get(w.keyStr);
      if (!s) this.syncedKeys.set(w.keyStr, (s = new Set()));
      s.add(w);
    } else {
      this.syncedRanges.add(w);
    }
  }

  private fromSynced(w: Watcher): void {
    w.synced = false;
    if (w.endStr === undefined) {
      const s = this.syncedKeys.get(w.keyStr);
      if (s) {
        s.delete(w);
        if (s.size === 0) this.syncedKeys.delete(w.keyStr);
      }
    } else {
      this.syncedRanges.delete(w);
    }
  }

  private toUnsynced(w: Watcher): void {
    w.synced = false;
    this.unsynced.add(w);
    this.schedule(true);
  }

  /** etcd's notify: runs inside the apply of revision `rev`; only queues, never waits. */
  private notify(events: Event[], rev: number): void {
    if (this.closed) return;
    if (this.syncedKeys.size === 0 && this.syncedRanges.size === 0) return;
    let batches: Map<Watcher, Event[]> | undefined;
    const add = (w: Watcher, ev: Event): void => {
      if (rev < w.minRev) return; // a watcher asked to start in the future
      batches ??= new Map();
      const b = batches.get(w);
      if (b) b.push(ev);
      else batches.set(w, [ev]);
    };
    for (const ev of events) {
      const k = ev.kv!.key.toString('latin1');
      const exact = this.syncedKeys.get(k);
      if (exact) for (const w of exact) add(w, ev);
      for (const w of this.syncedRanges) if (w.matches(k)) add(w, ev);
    }
    if (!batches) return;
    for (const [w, evs] of batches) {
      if (w.deliver(evs, rev)) {
        w.minRev = rev + 1;
      } else {
        // the stream is not keeping up: catch up from history from this revision
        this.fromSynced(w);
        w.minRev = rev;
        this.toUnsynced(w);
      }
    }
  }

  /**
   * After the store was replaced by a snapshot (etcd's watchableStore.Restore):
   * every synced watcher catches up from the new store's history from where it
   * was, or is cancelled as compacted if that history is gone.
   */
  resync(): void {
    const all = [...this.syncedRanges, ...[...this.syncedKeys.values()].flatMap((s) => [...s])];
    for (const w of all) {
      this.fromSynced(w);
      this.toUnsynced(w);
    }
  }

  /** Asks for a catch-up pass soon (a stream's sink drained). */
  kick(): void {
    if (this.unsynced.size > 0) this.schedule(true);
  }

  private schedule(soon: boolean): void {
    if (!this.autoSync || this.closed) return;
    if (soon) {
      if (this.immediate) return;
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.runPass();
      });
      return;
    }
    if (this.timer || this.immediate) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runPass();
    }, this.intervalMs);
    this.timer.unref();
  }

  private runPass(): void {
    const progressed = this.syncOnce();
    if (this.unsynced.size === 0) return;
    // more work that can proceed: next turn; only blocked sinks: wait the interval
    if (progressed) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.runPass();
      });
    } else this.schedule(false);
  }

  /**
   * One catch-up pass (etcd's syncWatchers) over at most maxWatchersPerSync
   * unsynced watchers. Returns whether any watcher advanced.
   */
  syncOnce(): boolean {
    if (this.unsynced.size === 0) return false;
    const cur = this.store.rev;
    const compactRev = this.store.compactRev;
    const chosen: Watcher[] = [];
    for (const w of this.unsynced) {
      chosen.push(w);
      if (chosen.length >= this.maxPerSync) break;
    }
    // watchers sharing a range and start revision share one history read
    const reads = new Map<string, { events: Event[]; next: number }>();
    let progressed = false;
    for (const w of chosen) {
      // rotate, so a pass over many watchers is fair to the ones past the limit
      this.unsynced.delete(w);
      this.unsynced.add(w);
      if (w.minRev < compactRev) {
        if (w.stream.sink.send({ watchId: w.id, events: [], revision: 0, compactRevision: compactRev })) {
          this.remove(w);
          progressed = true;
        }
        continue;
      }
      if (w.minRev > cur) {
        this.unsynced.delete(w);
        this.toSynced(w);
        progressed = true;
        continue;
      }
      const rk = `${w.minRev}\u0000${w.keyStr}\u0000${w.endStr === undefined ? 'u' : w.endStr === null ? 'n' : `r${w.endStr}`}`;
      let r = reads.get(rk);
      if (!r) {
        r = this.readHistory(w, cur);
        reads.set(rk, r);
      }
      const ok = r.events.length === 0 ? true : w.deliver(r.events, cur);
      if (!ok) continue;
      progressed = true;
      w.minRev = r.next;
      if (r.next > cur) {
        this.unsynced.delete(w);
        this.toSynced(w);
      }
    }
    return progressed;
  }

  /**
   * Events of w's range from w.minRev on, at most batchMaxRevs revisions
   * (whole revisions only). Windows grow while history is sparse, so a
   * watcher far behind on a quiet range needs few reads.
   */
  private readHistory(w: Watcher, cur: number): { events: Event[]; next: number } {
    const end = w.end === undefined ? undefined : w.end.length === 0 ? Buffer.from([0]) : w.end;
    const out: Event[] = [];
    let revs = 0;
    let lastRev = 0;
    let from = w.minRev;
    let span = Math.max(64, this.batchMaxRevs);
    while (from <= cur) {
      const to = Math.min(cur, from + span - 1);
      const evs = this.store.eventsBetween(w.key, end, from, to, false);
      for (const ev of evs) {
        const r = ev.kv!.mod_revision;
        if (r !== lastRev) {
          if (revs === this.batchMaxRevs) return { events: out, next: r };
          revs++;
          lastRev = r;
        }
        out.push(ev);
      }
      from = to + 1;
      if (evs.length < this.batchMaxRevs / 4) span *= 4;
    }
    return { events: out, next: cur + 1 };
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }
}
