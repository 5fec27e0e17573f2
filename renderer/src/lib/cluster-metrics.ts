// Pure helpers behind the cluster and maintenance views (unit-tested without a DOM).
import type { ClusterInfo, HashCheck } from '../../../electron/contract/index';

export interface Sample {
  /** ms epoch */
  t: number;
  revision: number;
  /** the leader's raft index (or the highest any member reported) */
  raftIndex: number;
}

export const WINDOW_MS = 60_000;

/** Adds a sample from a cluster:info poll and keeps the last minute. */
export function addSample(samples: Sample[], info: ClusterInfo, t: number, windowMs = WINDOW_MS): Sample[] {
  let raftIndex = 0;
  for (const m of info.members) {
    if (m.status && 'raftIndex' in m.status) {
      if (m.isLeader) {
        raftIndex = m.status.raftIndex;
        break;
      }
      raftIndex = Math.max(raftIndex, m.status.raftIndex);
    }
  }
  const next = [...samples, { t, revision: info.revision, raftIndex }];
  return next.filter((s) => s.t >= t - windowMs);
}

/** The chart's resolution: pushes come faster (a few a second), the chart keeps one sample a second. */
export const SAMPLE_MS = 1000;

/** The chart's samples and the connection (ConnectionStatus.connectionId) they belong to. */
export interface Series {
  connectionId: number | null;
  samples: Sample[];
}

export const emptySeries = (): Series => ({ connectionId: null, samples: [] });

/** A cluster read belongs to another connection than the live one (a late answer from before a switch). */
export function isStale(info: ClusterInfo, current: number | null | undefined): boolean {
  return info.connectionId != null && current != null && info.connectionId !== current;
}

/**
 * Adds a read to the chart of its own connection: a read of another
 * connection than `current` changes nothing, and the first read of a new
 * connection starts a new series (never a line joining two clusters).
 */
export function addToSeries(series: Series, info: ClusterInfo, current: number | null | undefined, t: number, minGapMs = SAMPLE_MS): Series {
  if (isStale(info, current)) return series;
  const id = info.connectionId ?? current ?? null;
  const base = series.connectionId === id ? series.samples : [];
  const last = base[base.length - 1];
  if (last && t - last.t < minGapMs) return base === series.samples ? series : { connectionId: id, samples: base };
  return { connectionId: id, samples: addSample(base, info, t) };
}

/** Writes per second between consecutive samples (revision deltas; a compaction never lowers the revision). */
export function writeRates(samples: Sample[]): { t: number; v: number }[] {
  const out: { t: number; v: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    if (dt <= 0) continue;
    out.push({ t: samples[i].t, v: Math.max(0, samples[i].revision - samples[i - 1].revision) / dt });
  }
  return out;
}

/** An SVG polyline path for points in a w×h box (x over the window ending at `now`, y from 0 to the max). */
export function sparkPath(points: { t: number; v: number }[], now: number, w: number, h: number, windowMs = WINDOW_MS): { d: string; max: number } {
  if (!points.length) return { d: '', max: 0 };
  const min = Math.min(...points.map((p) => p.v));
  const maxV = Math.max(...points.map((p) => p.v));
  // Raft index climbs from a large base: plot its range, not from zero, so growth is visible.
  const lo = min > 0 && maxV - min < min ? min : 0;
  const span = maxV - lo;
  const x = (t: number): number => Math.max(0, Math.min(w, w - ((now - t) / windowMs) * w));
  // A flat series sits mid-height: at the bottom it would read as zero.
  const y = (v: number): number => (span ? h - 2 - ((v - lo) / span) * (h - 4) : h / 2);
  let d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  // The last value holds until the next poll: drawn to the right edge, so even one sample shows.
  const last = points[points.length - 1];
  if (x(last.t) < w - 0.05) d += ` L${w.toFixed(1)},${y(last.v).toFixed(1)}`;
  else if (points.length === 1) d = `M${(w - 6).toFixed(1)},${y(last.v).toFixed(1)} L${w.toFixed(1)},${y(last.v).toFixed(1)}`;
  return { d, max: maxV };
}

export interface HashVerdict {
  /** every member that answered has the same hash */
  agree: boolean;
  /** the hash most members have */
  majority: number | null;
  /** names (or endpoints) of members whose hash differs from the majority */
  differing: string[];
  /** members that could not answer */
  failed: string[];
}

export function hashVerdict(check: HashCheck): HashVerdict {
  const answered = check.hashes.filter((h) => !h.error);
  const failed = check.hashes.filter((h) => h.error).map((h) => h.name || h.endpoint);
  const counts = new Map<number, number>();
  for (const h of answered) counts.set(h.hash, (counts.get(h.hash) ?? 0) + 1);
  let majority: number | null = null;
  let best = 0;
  for (const [hash, n] of counts) if (n > best) [majority, best] = [hash, n];
  const differing = answered.filter((h) => h.hash !== majority).map((h) => h.name || h.endpoint);
  return { agree: answered.length > 0 && differing.length === 0, majority, differing, failed };
}

/** Hex sha256 grouped for reading aloud / comparing by eye. */
export function groupHex(hex: string): string {
  return hex.replace(/(.{8})(?=.)/g, '$1 ');
}
