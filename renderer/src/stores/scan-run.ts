// What the search and analyzer stores share about one keyspace scan in main:
// its id arrives with scan:*'s answer, but progress events may come first
// (kept in `early` while `starting`), and Cancel may be pressed before the id
// is known (remembered in `cancelPending`, sent as soon as it is).
import type { ScanProgressEvent, ScanStarted } from '../../../electron/contract/index';
import { useApi } from '../api';

export interface ScanRunState {
  scanId: string | null;
  running: boolean;
  starting: boolean;
  cancelPending: boolean;
  revision: number;
  total: number;
  early: ScanProgressEvent[];
  subscribed: boolean;
}

/** Listens (once per store) to scan:progress of `kind`: this scan's events are applied, those beating its id kept in `early`. */
export function followScans(s: ScanRunState, kind: ScanProgressEvent['kind'], apply: (e: ScanProgressEvent) => void): void {
  if (s.subscribed) return;
  s.subscribed = true;
  useApi().on('scan:progress', (e) => {
    if (e.kind !== kind) return;
    if (e.scanId === s.scanId) apply(e);
    else if (s.starting) s.early.push(e);
  });
}

/** Starts a scan (the caller has reset its own fields), then applies the events that beat the answer. */
export async function startScan(s: ScanRunState, start: () => Promise<ScanStarted>, apply: (e: ScanProgressEvent) => void): Promise<void> {
  Object.assign(s, { running: true, starting: true, cancelPending: false, scanId: null });
  try {
    const r = await start();
    s.scanId = r.scanId;
    s.revision = r.revision;
    s.total = r.total;
    for (const e of s.early.splice(0)) if (e.scanId === r.scanId) apply(e);
    if (s.cancelPending && s.running) await useApi().invoke('scan:cancel', { scanId: r.scanId });
  } catch (e) {
    s.running = false;
    throw e;
  } finally {
    s.starting = false;
  }
}

export async function cancelScan(s: ScanRunState): Promise<void> {
  if (!s.running) return;
  if (!s.scanId) {
    s.cancelPending = true;
    return;
  }
  await useApi().invoke('scan:cancel', { scanId: s.scanId });
}
