import { defineStore } from 'pinia';
import type { DoctorReport } from '../../../electron/contract/index';
import { useApi } from '../api';

/** One poll's p99s per member, for the charts against etcd's guidance. */
export interface LatencySample {
  t: number;
  wal: Record<string, number | null>;
  commit: Record<string, number | null>;
}

/** How long the charts look back. */
export const CHART_WINDOW_MS = 5 * 60_000;

export function addLatencySample(samples: LatencySample[], r: DoctorReport, windowMs = CHART_WINDOW_MS): LatencySample[] {
  const s: LatencySample = { t: r.at, wal: {}, commit: {} };
  for (const m of r.members) {
    // The first scrape counts since the member started: not an interval, so not charted.
    if (!m.metrics || !m.metrics.intervalSec) continue;
    s.wal[m.name || m.id] = m.metrics.walFsyncP99Ms;
    s.commit[m.name || m.id] = m.metrics.backendCommitP99Ms;
  }
  return [...samples, s].filter((x) => x.t >= r.at - windowMs);
}

export const useDoctorStore = defineStore('doctor', {
  state: () => ({
    report: null as DoctorReport | null,
    /** The last report that carried HashKV (polls leave the hashes alone: HashKV reads the whole store). */
    hashReport: null as DoctorReport | null,
    samples: [] as LatencySample[],
    loading: false,
  }),
  actions: {
    async load(hash = false): Promise<void> {
      this.loading = true;
      try {
        const r = await useApi().invoke('doctor:report', { hash });
        // Another cluster (the connection changed while this view was away): its charts start afresh.
        if (this.report && this.report.clusterId !== r.clusterId) this.reset();
        this.report = r;
        if (hash) this.hashReport = r;
        this.samples = addLatencySample(this.samples, r);
      } finally {
        this.loading = false;
      }
    },
    reset(): void {
      this.report = null;
      this.hashReport = null;
      this.samples = [];
    },
  },
});
