// Key browser state. The list is a window over main's key list: pages of
// PAGE rows fetched on demand, at most MAX_PAGES kept, so a 100,000-key
// prefix scrolls without the renderer ever holding it all. main keeps its
// list current from a watch and sends keys:changed {revision, total, changed
// rows}: the store patches the rows it holds and re-asks main (from memory)
// only for pages whose positions moved.
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import { b64ToBytes, bytesToB64, ContractError, isBinary, utf8ToB64, type HistoryResponse, type KeyRow, type KeysChangedEvent, type KeyValue, type TreeNode, type WatchUpdateEvent } from '../../../electron/contract/index';
import { useApi } from '../api';
import { SIGN_IN_ERRORS, useConnectionStore } from './connection';
import { guessMode, parse, render, validate, type ValueMode } from '../lib/value-format';

export const PAGE = 200;
let reloadSeq = 0;
export const MAX_PAGES = 12;

export interface Conflict {
  mine: string;
  theirs: KeyValue | null;
}

export const useKeysStore = defineStore('keys', {
  state: () => ({
    /** The connection the state below belongs to. */
    profileId: null as string | null,
    prefix: '',
    /** The prefix the rows on screen belong to (lags `prefix` while a search is in flight). */
    listPrefix: null as string | null,
    mode: 'flat' as 'flat' | 'tree',
    delimiter: '/',
    treePath: '',
    treeNodes: [] as TreeNode[],
    total: 0,
    revision: 0,
    partial: false,
    pages: {} as Record<number, KeyRow[]>,
    pageOrder: [] as number[],
    pending: {} as Record<number, boolean>,
    listEpoch: 0,
    loading: false,
    firstPageMs: 0,
    selectedKey: null as string | null,
    selected: null as KeyValue | null,
    selectedDeleted: false,
    binary: false,
    valueMode: 'text' as ValueMode,
    draft: '',
    pristine: '',
    conflict: null as Conflict | null,
    remoteChanged: false,
    history: null as HistoryResponse | null,
    watchId: null as string | null,
    unsubscribe: null as (() => void) | null,
    /** Why the list could not be read (permission, sign-in): shown instead of "No keys yet". */
    listError: null as { kind: 'denied' | 'sign-in'; message: string } | null,
    /** keys:changed events applied (tests and the status line). */
    changesApplied: 0,
  }),
  getters: {
    dirty: (s): boolean => s.draft !== s.pristine,
    draftError: (s): string | null => (s.selectedKey ? validate(s.draft, s.valueMode) : null),
    loadedRows: (s): number => Object.values(s.pages).reduce((n, p) => n + p.length, 0),
  },
  actions: {
    rowAt(i: number): KeyRow | undefined {
      return this.pages[Math.floor(i / PAGE)]?.[i % PAGE];
    },

    async reload(refresh = true): Promise<void> {
      this.loading = true;
      const t0 = performance.now();
      // Only the latest reload may land: a slower earlier one (another prefix) must not overwrite it.
      const seq = ++reloadSeq;
      try {
        if (this.mode === 'tree') {
          const r = await useApi().invoke('kv:tree', { prefix: this.treePath, delimiter: this.delimiter });
          if (seq !== reloadSeq) return;
          this.treeNodes = markRaw(r.nodes);
          this.revision = r.revision;
          this.listEpoch++;
          return;
        }
        const prefix = this.prefix;
        let r;
        try {
          r = await useApi().invoke('kv:window', { prefix, offset: 0, limit: PAGE, refresh });
        } catch (e) {
          if (seq === reloadSeq && this.explainListError(e, prefix)) {
            this.listPrefix = prefix;
            this.pages = {};
            this.pageOrder = [];
            this.total = 0;
            this.listEpoch++;
            return;
          }
          throw e;
        }
        if (seq !== reloadSeq) return;
        this.listError = null;
        this.listPrefix = prefix;
        this.pages = { 0: markRaw(r.rows) };
        this.pageOrder = [0];
        this.pending = {};
        this.total = r.total;
        this.revision = r.revision;
        this.partial = r.partial;
        this.listEpoch++;
        this.firstPageMs = performance.now() - t0;
      } finally {
        if (seq === reloadSeq) this.loading = false;
      }
    },

    /** Make rows [start, end) available, fetching missing pages and evicting the oldest. */
    /** A list refused for permission or credentials: say who is signed in and what they may not read. */
    explainListError(e: unknown, prefix: string): boolean {
      if (!(e instanceof ContractError)) return false;
      const conn = useConnectionStore();
      const what = prefix ? `"${prefix}"` : 'the whole key space';
      if (e.etcdError === 'PermissionDenied') {
        this.listError = { kind: 'denied', message: `Signed in as ${conn.status.user ?? 'nobody (no user)'}: no read permission on ${what}` };
        return true;
      }
      if (e.etcdError && SIGN_IN_ERRORS.has(e.etcdError)) {
        this.listError = { kind: 'sign-in', message: `Sign in to read keys: ${e.message}` };
        conn.askSignIn(e.message);
        return true;
      }
      return false;
    },

    /** main's list changed (it applied watch events): patch held rows, re-ask only pages whose positions moved. */
    onKeysChanged(e: KeysChangedEvent): void {
      if (this.mode === 'tree') {
        if (e.prefix === this.treePath) this.reload(false).catch(() => undefined);
        return;
      }
      if (e.prefix !== this.listPrefix || e.prefix !== this.prefix) return;
      this.changesApplied++;
      this.total = e.total;
      this.revision = e.revision;
      const touched = new Map<number, KeyRow[]>();
      for (const { index, row } of e.changed) {
        const p = Math.floor(index / PAGE);
        const page = touched.get(p) ?? this.pages[p];
        if (!page || (e.shiftedFrom !== null && index >= e.shiftedFrom)) continue;
        const copy = touched.get(p) ?? [...page];
        copy[index % PAGE] = row;
        touched.set(p, copy);
      }
      for (const [p, rows] of touched) this.pages[p] = markRaw(rows);
      if (e.shiftedFrom === null) return;
      const from = Math.floor(e.shiftedFrom / PAGE);
      const moved = this.pageOrder.filter((p) => p >= from);
      for (const p of moved) delete this.pages[p];
      this.pageOrder = this.pageOrder.filter((p) => p < from);
      // Served from main's memory: no read of the store.
      for (const p of moved) if (p * PAGE < this.total) this.ensureRange(p * PAGE, (p + 1) * PAGE).catch(() => undefined);
    },

    async ensureRange(start: number, end: number): Promise<void> {
      const first = Math.floor(Math.max(0, start) / PAGE);
      const last = Math.floor(Math.max(0, Math.min(end, this.total) - 1) / PAGE);
      const epoch = this.listEpoch;
      const seq = reloadSeq;
      const jobs: Promise<void>[] = [];
      for (let p = first; p <= last; p++) {
        if (this.pages[p] || this.pending[p]) continue;
        this.pending[p] = true;
        jobs.push(
          useApi()
            .invoke('kv:window', { prefix: this.prefix, offset: p * PAGE, limit: PAGE })
            .then((r) => {
              if (epoch !== this.listEpoch || seq !== reloadSeq) return;
              this.pages[p] = markRaw(r.rows);
              this.pageOrder.push(p);
              this.total = r.total;
              this.partial = r.partial;
              for (let guard = this.pageOrder.length; this.pageOrder.length > MAX_PAGES && guard > 0; guard--) {
                const old = this.pageOrder.shift()!;
                if (old >= first && old <= last) {
                  this.pageOrder.push(old);
                  continue;
                }
                delete this.pages[old];
              }
            })
            .finally(() => {
              delete this.pending[p];
            }),
        );
      }
      await Promise.all(jobs);
    },

    async search(prefix: string): Promise<void> {
      this.prefix = prefix;
      await this.reload(true);
      await this.startWatch();
    },

    async setMode(mode: 'flat' | 'tree'): Promise<void> {
      this.mode = mode;
      await this.reload(true);
    },

    async openDir(path: string): Promise<void> {
      this.treePath = path;
      await this.reload(true);
    },

    async startWatch(): Promise<void> {
      const api = useApi();
      if (!this.unsubscribe) {
        const off1 = api.on('watch:update', (u) => this.onWatch(u));
        const off2 = api.on('watch:error', (e) => {
          if (e.watchId === this.watchId) this.watchId = null;
        });
        const off3 = api.on('keys:changed', (e) => this.onKeysChanged(e));
        this.unsubscribe = () => {
          off1();
          off2();
          off3();
        };
      }
      if (this.watchId) await api.invoke('watch:stop', { watchId: this.watchId }).catch(() => undefined);
      this.watchId = null;
      // The list follows itself (main); this watch is for the selected key, which may sit outside the listed prefix.
      // From just after the listed revision: a write between the list read and this watch is not lost.
      const r = await api.invoke('watch:start', { prefix: '', startRevision: this.revision ? this.revision + 1 : undefined });
      this.watchId = r.watchId;
    },

    async stopWatch(): Promise<void> {
      if (this.watchId) await useApi().invoke('watch:stop', { watchId: this.watchId }).catch(() => undefined);
      this.watchId = null;
    },

    onWatch(u: WatchUpdateEvent): void {
      if (u.watchId !== this.watchId) return;
      // Main capped the batch: the selected key may be among the dropped events, so ask.
      if (u.dropped && this.selectedKey) void this.recheckSelected();
      for (const e of u.events) {
        if (e.kv.key !== this.selectedKey) continue;
        // Our own save (or anything we have already seen) is not a remote change.
        if (e.type === 'put' && this.selected && e.kv.modRevision <= this.selected.modRevision) continue;
        if (e.type === 'delete') {
          this.selectedDeleted = true;
          this.remoteChanged = this.dirty;
        } else if (this.dirty) this.remoteChanged = true;
        else void this.select(e.kv.key, true);
      }
    },

    async recheckSelected(): Promise<void> {
      const key = this.selectedKey;
      if (!key) return;
      const r = await useApi().invoke('kv:get', { key });
      if (key !== this.selectedKey) return;
      const mod = r.kv?.modRevision ?? 0;
      if (mod === (this.selected?.modRevision ?? 0)) return;
      if (!r.kv) this.selectedDeleted = true;
      if (this.dirty) this.remoteChanged = true;
      else if (r.kv) await this.select(key, true);
    },

    async select(key: string, keepMode = false): Promise<void> {
      const r = await useApi().invoke('kv:get', { key });
      this.selectedKey = key;
      this.selected = r.kv;
      this.selectedDeleted = !r.kv;
      this.conflict = null;
      this.remoteChanged = false;
      this.history = null;
      const bytes = r.kv ? b64ToBytes(r.kv.value) : new Uint8Array();
      this.binary = isBinary(bytes);
      if (!keepMode || (this.binary && (this.valueMode === 'text' || this.valueMode === 'json' || this.valueMode === 'yaml'))) this.valueMode = guessMode(bytes);
      this.draft = this.pristine = render(bytes, this.valueMode);
    },

    setValueMode(mode: ValueMode): void {
      // Re-render from the current draft when it parses, so edits survive a view switch.
      let bytes: Uint8Array;
      try {
        bytes = parse(this.draft, this.valueMode);
      } catch {
        bytes = this.selected ? b64ToBytes(this.selected.value) : new Uint8Array();
      }
      const base = this.selected ? b64ToBytes(this.selected.value) : new Uint8Array();
      this.valueMode = mode;
      this.pristine = render(base, mode);
      this.draft = render(bytes, mode);
    },

    async loadHistory(): Promise<void> {
      if (!this.selectedKey) return;
      this.history = await useApi().invoke('kv:history', { key: this.selectedKey, limit: 50 });
    },

    /** Saves with a compare on mod_revision: a concurrent change becomes a conflict, never an overwrite. */
    async save(force = false): Promise<'saved' | 'conflict'> {
      if (!this.selectedKey) throw new Error('no key selected');
      const saved = this.draft;
      const bytes = parse(saved, this.valueMode);
      const expect = force && this.conflict ? (this.conflict.theirs?.modRevision ?? 0) : (this.selected?.modRevision ?? 0);
      const r = await useApi().invoke('kv:put', { key: this.selectedKey, value: bytesToB64(bytes), lease: this.selected?.lease, expectModRevision: expect });
      if (!r.ok) {
        this.conflict = { mine: this.draft, theirs: r.current };
        return 'conflict';
      }
      this.conflict = null;
      this.remoteChanged = false;
      this.selected = r.kv;
      this.selectedDeleted = false;
      // What was saved, not what the editor holds now: typing may have gone on while the save was in flight.
      this.pristine = saved;
      if (this.history) void this.loadHistory();
      return 'saved';
    },

    /** Drop my edit and show what is on the server now. */
    async takeTheirs(): Promise<void> {
      if (this.selectedKey) await this.select(this.selectedKey, true);
    },

    async create(keyText: string, value: string, lease?: string): Promise<'created' | 'exists'> {
      const key = utf8ToB64(keyText);
      const r = await useApi().invoke('kv:put', { key, value: utf8ToB64(value), lease, expectModRevision: 0 });
      if (!r.ok) return 'exists';
      await this.select(key);
      return 'created';
    },

    async remove(key: string): Promise<'deleted' | 'conflict'> {
      const expect = this.selectedKey === key ? this.selected?.modRevision : undefined;
      const r = await useApi().invoke('kv:delete', { key, expectModRevision: expect });
      if (!r.ok) {
        this.conflict = { mine: this.draft, theirs: r.current };
        return 'conflict';
      }
      if (this.selectedKey === key) this.clearSelection();
      await this.reload(true);
      return 'deleted';
    },

    async removePrefix(prefix: string): Promise<number> {
      const r = await useApi().invoke('kv:delete', { key: utf8ToB64(prefix), prefix: true });
      if (this.selected && this.selected.keyText.startsWith(prefix)) this.clearSelection();
      await this.reload(true);
      return r.ok ? r.deleted : 0;
    },

    clearSelection(): void {
      this.selectedKey = null;
      this.selected = null;
      this.draft = this.pristine = '';
      this.conflict = null;
      this.history = null;
      this.remoteChanged = false;
      this.selectedDeleted = false;
    },
  },
});
