// Key search beyond prefixes (contains, glob, value): main scans the keyspace
// at one revision and streams hits as scan:progress; this store keeps at most
// the cap main sends (10,000), so a 1,000,000-key keyspace never floods the page.
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import type { ScanProgressEvent, SearchHit, SearchMode, SerializedError } from '../../../electron/contract/index';
import { useApi } from '../api';
import { cancelScan, followScans, startScan } from './scan-run';

export const useSearchStore = defineStore('search', {
  state: () => ({
    open: false,
    mode: 'contains' as SearchMode,
    pattern: '',
    caseSensitive: true,
    /** the prefix the last search ran within */
    prefix: '',
    scanId: null as string | null,
    running: false,
    starting: false,
    revision: 0,
    total: 0,
    scanned: 0,
    matched: 0,
    cap: 10_000,
    /** not reactive item by item (10,000 rows); hitCount is what views watch */
    hits: markRaw([]) as SearchHit[],
    hitCount: 0,
    cancelled: false,
    done: false,
    error: null as SerializedError | null,
    subscribed: false,
    /** Cancel pressed before scan:* answered with the id: cancel as soon as it does. */
    cancelPending: false,
    /** events that arrived before scan:search answered with its id */
    early: markRaw([]) as ScanProgressEvent[],
  }),
  getters: {
    capped: (s): boolean => s.matched > s.hitCount,
  },
  actions: {
    subscribe(): void {
      followScans(this, 'search', (e) => this.apply(e));
    },
    apply(e: ScanProgressEvent): void {
      this.scanned = e.scanned;
      this.total = e.total;
      this.matched = e.matched ?? this.matched;
      this.cap = e.cap ?? this.cap;
      if (e.hits?.length) {
        const room = this.cap - this.hits.length;
        for (const h of e.hits.slice(0, Math.max(0, room))) this.hits.push(h);
        this.hitCount = this.hits.length;
      }
      if (e.done) {
        this.running = false;
        this.done = true;
        this.cancelled = !!e.cancelled;
        this.error = e.error ?? null;
      }
    },
    async run(prefix: string): Promise<void> {
      if (!this.pattern) return;
      this.subscribe();
      this.prefix = prefix;
      this.hits = markRaw([]);
      this.early = markRaw([]);
      Object.assign(this, { hitCount: 0, matched: 0, scanned: 0, total: 0, done: false, cancelled: false, error: null });
      await startScan(this, () => useApi().invoke('scan:search', { mode: this.mode, pattern: this.pattern, prefix, caseSensitive: this.caseSensitive }), (e) => this.apply(e));
    },
    async cancel(): Promise<void> {
      await cancelScan(this);
    },
    hitAt(i: number): SearchHit | undefined {
      return this.hits[i];
    },
  },
});
