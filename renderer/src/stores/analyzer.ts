// The keyspace analyzer: main scans a prefix at one revision (values read and
// dropped page by page) and sends one report at the end; this store keeps it
// and the user's drill-down path through its prefix tree.
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import type { DecodedValue, KeyspaceReport, PrefixNode, ScanProgressEvent, SerializedError } from '../../../electron/contract/index';
import { useApi } from '../api';
import { cancelScan, followScans, startScan } from './scan-run';

export const useAnalyzerStore = defineStore('analyzer', {
  state: () => ({
    prefix: '',
    delimiter: '/',
    kubernetes: false,
    scanId: null as string | null,
    running: false,
    starting: false,
    revision: 0,
    total: 0,
    scanned: 0,
    report: null as KeyspaceReport | null,
    error: null as SerializedError | null,
    cancelled: false,
    /** drill-down: paths of the nodes opened below the root */
    path: [] as string[],
    metric: 'bytes' as 'bytes' | 'count',
    decoded: null as DecodedValue | null,
    inspectKey: '',
    subscribed: false,
    /** Cancel pressed before scan:* answered with the id: cancel as soon as it does. */
    cancelPending: false,
    early: markRaw([]) as ScanProgressEvent[],
  }),
  getters: {
    /** The node shown: the root, or the last one drilled into that still exists. */
    node(s): PrefixNode | null {
      let n = s.report?.tree ?? null;
      for (const p of s.path) {
        const next: PrefixNode | undefined = n?.children.find((c) => c.path === p);
        if (!next) break;
        n = next;
      }
      return n;
    },
    crumbs(s): { label: string; path: string; depth: number }[] {
      const root = s.report?.tree;
      if (!root) return [];
      const out = [{ label: root.path || '(all keys)', path: root.path, depth: 0 }];
      let n: PrefixNode | undefined = root;
      s.path.forEach((p, i) => {
        n = n?.children.find((c) => c.path === p);
        if (n) out.push({ label: n.name, path: n.path, depth: i + 1 });
      });
      return out;
    },
  },
  actions: {
    subscribe(): void {
      followScans(this, 'analyze', (e) => this.apply(e));
    },
    apply(e: ScanProgressEvent): void {
      this.scanned = e.scanned;
      this.total = e.total;
      if (e.done) {
        this.running = false;
        this.cancelled = !!e.cancelled;
        this.error = e.error ?? null;
        if (e.report) {
          // A big tree is read-only data: no deep reactivity for thousands of nodes.
          this.report = markRaw(e.report);
          this.path = [];
        }
      }
    },
    async run(): Promise<void> {
      this.subscribe();
      this.early = markRaw([]);
      Object.assign(this, { scanned: 0, total: 0, error: null, cancelled: false });
      await startScan(this, () => useApi().invoke('scan:analyze', { prefix: this.prefix, delimiter: this.delimiter || '/', kubernetes: this.kubernetes }), (e) => this.apply(e));
    },
    async cancel(): Promise<void> {
      await cancelScan(this);
    },
    drill(n: PrefixNode): void {
      // Also a folder of plain keys: it shows them as "(keys here)", and opens in the Keys view from there.
      if (n.count) this.path.push(n.path);
    },
    up(depth: number): void {
      this.path = this.path.slice(0, depth);
    },
    async decode(key: string): Promise<void> {
      this.decoded = await useApi().invoke('scan:decode', { key });
    },
  },
});
