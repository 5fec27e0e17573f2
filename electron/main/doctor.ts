// The cluster doctor's and the space guardian's judgement, as pure functions:
// Prometheus text in, p99s from histogram buckets differenced between two
// scrapes, findings as plain sentences with their fix, HashKV divergence
// named, growth and time to NOSPACE projected. The handler
// (handlers/doctor.ts) does the I/O; everything here is unit-tested
// (doctor.test.ts) without a cluster.
import type { DoctorFinding, DoctorMember, MemberMetrics } from '../contract/index';

/** etcd's hardware guidance: WAL fsync p99 under 10 ms, backend commit p99 under 25 ms. */
export const GUIDANCE = { walFsyncMs: 10, backendCommitMs: 25 } as const;
/** etcd's default --quota-backend-bytes (2 GiB). */
export const DEFAULT_QUOTA = 2 * 1024 ** 3;

export const METRIC = {
  walFsync: 'etcd_disk_wal_fsync_duration_seconds',
  backendCommit: 'etcd_disk_backend_commit_duration_seconds',
  leaderChanges: 'etcd_server_leader_changes_seen_total',
  proposalsFailed: 'etcd_server_proposals_failed_total',
  proposalsPending: 'etcd_server_proposals_pending',
  slowApplies: 'etcd_server_slow_apply_total',
  quota: 'etcd_server_quota_backend_bytes',
} as const;

// ---- Prometheus text format

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One scrape: samples by metric name. */
export type Scrape = Map<string, PromSample[]>;

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus' text exposition format (what etcd's /metrics serves); comments and malformed lines are skipped. */
export function parsePrometheus(text: string): Scrape {
  const out: Scrape = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(LABEL_RE)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    const list = out.get(m[1]) ?? [];
    list.push({ name: m[1], labels, value });
    out.set(m[1], list);
  }
  return out;
}

/** The sum over all label sets of a counter or gauge; null when the member does not export it. */
export function scalar(s: Scrape, name: string): number | null {
  const list = s.get(name);
  if (!list?.length) return null;
  return list.reduce((a, x) => a + x.value, 0);
}

export interface Histogram {
  /** Cumulative counts by upper bound, ascending; the last bound is Infinity. */
  buckets: { le: number; count: number }[];
}

/** A histogram's buckets (summed over other labels); null when absent. */
export function histogram(s: Scrape, name: string): Histogram | null {
  const list = s.get(`${name}_bucket`);
  if (!list?.length) return null;
  const byLe = new Map<number, number>();
  for (const x of list) {
    const le = x.labels.le === '+Inf' ? Infinity : Number(x.labels.le);
    if (Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + x.value);
  }
  return { buckets: [...byLe].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le) };
}

/**
 * What was observed between two scrapes: `now` minus `before`, bucket by
 * bucket. A counter that went down (the member restarted) means the
 * baseline is gone: `now` alone is the interval then.
 */
export function histogramDelta(now: Histogram, before: Histogram | null): Histogram {
  if (!before) return now;
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  const buckets = now.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) }));
  if (buckets.some((b) => b.count < 0)) return now;
  return { buckets };
}

/**
 * The q-quantile of a cumulative histogram, as Prometheus' histogram_quantile
 * computes it: find the bucket holding the q·total-th observation and
 * interpolate linearly inside it (from 0 for the first bucket). An
 * observation in the +Inf bucket reads as the highest finite bound. null when
 * the histogram holds nothing.
 */
export function quantile(h: Histogram, q: number): number | null {
  const b = h.buckets;
  if (!b.length) return null;
  const total = b[b.length - 1].count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let i = b.findIndex((x) => x.count >= rank);
  if (i < 0) i = b.length - 1;
  if (b[i].le === Infinity) return i > 0 ? b[i - 1].le : null;
  const lower = i > 0 ? b[i - 1].le : 0;
  const below = i > 0 ? b[i - 1].count : 0;
  const inBucket = b[i].count - below;
  if (inBucket <= 0) return b[i].le;
  return lower + (b[i].le - lower) * ((rank - below) / inBucket);
}

// ---- Interval metrics from two scrapes

const counterDelta = (now: number | null, before: number | null): number => {
  if (now === null) return 0;
  if (before === null || now < before) return now; // first scrape, or a restart reset the counter
  return now - before;
};

/**
 * The doctor's numbers for one member: p99s of the WAL fsync and backend
 * commit histograms over the interval, and counter deltas. `before` is the
 * previous scrape (null on the first: then everything counts since start).
 */
export function memberMetrics(now: Scrape, before: Scrape | null, intervalSec: number): MemberMetrics {
  const p99ms = (name: string): number | null => {
    const h = histogram(now, name);
    if (!h) return null;
    const q = quantile(histogramDelta(h, before ? histogram(before, name) : null), 0.99);
    return q === null ? null : q * 1000;
  };
  const delta = (name: string): number => counterDelta(scalar(now, name), before ? scalar(before, name) : null);
  const missing: string[] = [METRIC.walFsync, METRIC.backendCommit].filter((n) => !now.has(`${n}_bucket`));
  for (const n of [METRIC.leaderChanges, METRIC.proposalsFailed, METRIC.proposalsPending, METRIC.slowApplies]) if (!now.has(n)) missing.push(n);
  return {
    intervalSec: before ? intervalSec : 0,
    walFsyncP99Ms: p99ms(METRIC.walFsync),
    backendCommitP99Ms: p99ms(METRIC.backendCommit),
    leaderChanges: delta(METRIC.leaderChanges),
    proposalsFailed: delta(METRIC.proposalsFailed),
    slowApplies: delta(METRIC.slowApplies),
    proposalsPending: scalar(now, METRIC.proposalsPending) ?? 0,
    quotaBytes: scalar(now, METRIC.quota),
    missing,
  };
}

/**
 * Scrapes kept per member so that each report compares against one at least
 * `minGapMs` old (several windows polling at once must not shrink the
 * interval to nothing), and never older than `keepMs`.
 */
export class ScrapeHistory {
  private readonly byMember = new Map<string, { at: number; scrape: Scrape }[]>();
  constructor(
    private readonly minGapMs = 4_000,
    private readonly keepMs = 120_000,
  ) {}

  /** Records `scrape` taken at `at`; returns the baseline to compare it with (null: none yet). */
  add(member: string, at: number, scrape: Scrape): { at: number; scrape: Scrape } | null {
    const list = (this.byMember.get(member) ?? []).filter((x) => x.at >= at - this.keepMs);
    let base: { at: number; scrape: Scrape } | null = null;
    for (const x of list) if (x.at <= at - this.minGapMs) base = x; // the newest old enough
    if (!base && list.length) base = list[0];
    list.push({ at, scrape });
    this.byMember.set(member, list);
    return base;
  }
}

// ---- HashKV

export interface HashOf {
  name: string;
  hash: number;
  compactRevision: number;
}

/**
 * How long to wait for one member's HashKV: it reads the member's whole
 * database, so the bound grows with it (30 s, plus 1 s per 8 MiB: about four
 * times what a loaded 2-core machine took at 1,000,000 keys, 195 MB in 4–7 s).
 */
export function hashTimeoutMs(dbSize: number): number {
  return 30_000 + Math.ceil(dbSize / (8 * 1024 ** 2)) * 1000;
}

/**
 * Names the members whose HashKV at `revision` differs from the majority's.
 * Only hashes over the same compaction compare (etcd's corruption check does
 * the same). With two members and two hashes there is no majority: both are named.
 */
export function hashDivergence(hashes: HashOf[], revision: number): DoctorFinding[] {
  if (hashes.length < 2) return [];
  const byCompact = new Map<number, HashOf[]>();
  for (const h of hashes) byCompact.set(h.compactRevision, [...(byCompact.get(h.compactRevision) ?? []), h]);
  const out: DoctorFinding[] = [];
  for (const group of byCompact.values()) {
    if (group.length < 2) continue;
    const counts = new Map<number, number>();
    for (const h of group) counts.set(h.hash, (counts.get(h.hash) ?? 0) + 1);
    if (counts.size === 1) continue;
    const [majority, n] = [...counts].sort((a, b) => b[1] - a[1])[0];
    const tie = [...counts.values()].filter((c) => c === n).length > 1;
    for (const h of group) {
      if (!tie && h.hash === majority) continue;
      out.push({
        severity: 'critical',
        member: h.name,
        text: `${h.name} diverges at revision ${revision}: its HashKV ${h.hash} differs from ${tie ? 'another member’s' : `the other members’ ${majority}`}, so its keyspace is not the same`,
        fix: 'take the member out of service: remove it, wipe its data directory, and add it back so it copies a healthy member’s data; etcd raises CORRUPT for this with --experimental-corrupt-check-time',
      });
    }
  }
  return out;
}

// ---- Findings

const ms = (v: number): string => (v >= 100 ? Math.round(v).toString() : v >= 10 ? v.toFixed(0) : v.toFixed(1));
export const formatBytes = (n: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
};
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A follower this many entries behind the leader's raft index is lagging. */
export const LAG_ENTRIES = 1000;
/** Pending proposals above this mean the member is not keeping up. */
export const PENDING_LIMIT = 100;

export interface FindingInput {
  members: DoctorMember[];
  alarms: { member: string; alarm: string }[];
  quotaBytes: number;
  hashRevision: number;
}

/** Every finding about the cluster, most severe first, each a sentence with its fix. */
export function findings(input: FindingInput): DoctorFinding[] {
  const out: DoctorFinding[] = [];
  const { members } = input;
  const label = (m: DoctorMember): string => m.name || m.id;
  const leaders = new Set<string>();
  const versions = new Set<string>();
  let leaderIndex = 0;
  for (const m of members) {
    if (m.status) {
      if (m.status.leader !== '0') leaders.add(m.status.leader);
      versions.add(m.status.version);
      if (m.isLeader) leaderIndex = m.status.raftIndex;
    }
  }
  const reachable = members.filter((m) => m.status);
  if (reachable.length && !leaders.size)
    out.push({ severity: 'critical', text: 'No member reports a leader: the cluster has no quorum and refuses every write', fix: 'start the stopped members (or fix the network between them) until a majority runs; with a majority lost for good, restore from a snapshot' });
  else if (leaders.size > 1)
    out.push({ severity: 'warning', text: `Members name ${leaders.size} different leaders: an election is under way or the network is partitioned`, fix: 'check again in a few seconds; if it persists, check the network between the members' });
  if (versions.size > 1)
    out.push({ severity: 'warning', text: `Members run different etcd versions (${[...versions].sort().join(', ')})`, fix: 'finish the rolling upgrade: every member on the same version' });

  for (const m of members) {
    const n = label(m);
    if (!m.clientUrl) {
      out.push({ severity: 'info', member: n, text: `${n} has not started yet (no client URL published)`, fix: 'start the member with the --initial-cluster it was added with' });
      continue;
    }
    if (m.statusError) {
      out.push({ severity: 'critical', member: n, text: `${n} did not answer Status: ${m.statusError}`, fix: `check that it runs and that ${m.clientUrl} is reachable from here` });
    }
    if (m.health && !m.health.ok)
      out.push({ severity: 'critical', member: n, text: `${n}: /health says unhealthy${m.health.reason ? ` (${m.health.reason})` : ''}`, fix: 'a member is unhealthy when it has an alarm, no leader, or cannot complete a read: see the other findings' });
    else if (m.healthError && !m.statusError) out.push({ severity: 'warning', member: n, text: `${n}: /health did not answer: ${m.healthError}`, fix: 'the client URL serves gRPC but not HTTP: check a proxy or TLS setting in between' });
    const s = m.status;
    if (s) {
      for (const e of s.errors) out.push({ severity: 'critical', member: n, text: `${n} reports: ${e}`, fix: 'see the alarm findings; the member log names the cause' });
      if (s.raftAppliedIndex && s.raftIndex - s.raftAppliedIndex > LAG_ENTRIES)
        out.push({ severity: 'warning', member: n, text: `${n}: applied index ${s.raftAppliedIndex} is ${s.raftIndex - s.raftAppliedIndex} entries behind its commit index: applying is falling behind`, fix: 'look for expensive requests (large ranges, big txns) and a slow disk on this member' });
      if (!m.isLeader && leaderIndex && leaderIndex - s.raftIndex > LAG_ENTRIES)
        out.push({ severity: 'warning', member: n, text: `${n} is ${leaderIndex - s.raftIndex} raft entries behind the leader`, fix: 'check its disk and its network to the leader; a member far behind gets a snapshot' });
      if (s.dbSize >= input.quotaBytes * 0.8)
        out.push({ severity: s.dbSize >= input.quotaBytes * 0.95 ? 'critical' : 'warning', member: n, text: `${n}: database ${formatBytes(s.dbSize)} is ${Math.round((100 * s.dbSize) / input.quotaBytes)}% of the ${formatBytes(input.quotaBytes)} quota: at the quota etcd raises NOSPACE and refuses writes`, fix: 'compact and defragment (the Space tab’s plan), or raise --quota-backend-bytes' });
      const free = s.dbSize - s.dbSizeInUse;
      if (s.dbSizeInUse > 0 && free > 64 * 1024 ** 2 && free / s.dbSize > 0.5)
        out.push({ severity: 'info', member: n, text: `${n}: ${Math.round((100 * free) / s.dbSize)}% of its ${formatBytes(s.dbSize)} database file is free space`, fix: 'defragment the member to give it back to the file system (the Space tab’s plan does it one member at a time)' });
      if (m.isLearner) out.push({ severity: 'info', member: n, text: `${n} is a learner: it receives the log but does not vote`, fix: 'promote it once it has caught up with the leader' });
    }
    const x = m.metrics;
    if (x) {
      const over = x.intervalSec ? `in the last ${Math.round(x.intervalSec)} s` : 'since it started';
      if (x.walFsyncP99Ms !== null && x.walFsyncP99Ms > GUIDANCE.walFsyncMs)
        out.push({ severity: 'warning', member: n, text: `${n}: WAL fsync p99 ${ms(x.walFsyncP99Ms)} ms, above ${GUIDANCE.walFsyncMs} ms: the disk is too slow for etcd`, fix: 'put the WAL (--wal-dir) on a dedicated SSD; a shared or network disk stalls every write and can cost leader elections' });
      if (x.backendCommitP99Ms !== null && x.backendCommitP99Ms > GUIDANCE.backendCommitMs)
        out.push({ severity: 'warning', member: n, text: `${n}: backend commit p99 ${ms(x.backendCommitP99Ms)} ms, above ${GUIDANCE.backendCommitMs} ms: the disk is too slow for etcd’s database`, fix: 'move the data directory to a faster disk (SSD); defragmenting a large, fragmented database also helps' });
      if (x.leaderChanges > 0 && x.intervalSec)
        out.push({ severity: 'warning', member: n, text: `${n} saw ${plural(x.leaderChanges, 'leader change')} ${over}`, fix: 'frequent elections come from a slow disk (see fsync) or network; raise --heartbeat-interval and --election-timeout to match the round-trip time' });
      if (x.proposalsFailed > 0)
        out.push({ severity: 'warning', member: n, text: `${n}: ${plural(x.proposalsFailed, 'proposal')} failed ${over}`, fix: 'proposals fail during leader elections or without quorum: check the leader changes and member health' });
      if (x.proposalsPending > PENDING_LIMIT)
        out.push({ severity: 'warning', member: n, text: `${n}: ${x.proposalsPending} proposals pending: the member is not keeping up with its writes`, fix: 'check its disk latency and lower the write load' });
      if (x.slowApplies > 0)
        out.push({ severity: 'warning', member: n, text: `${n}: ${plural(x.slowApplies, 'slow apply', 'slow applies')} (over 100 ms) ${over}`, fix: 'an apply that slow means a slow disk or an expensive request (a large range or txn): check the member log for “apply request took too long”' });
      if (x.missing.length) out.push({ severity: 'info', member: n, text: `${n} does not export ${x.missing.join(', ')}`, fix: 'those checks are skipped for this member' });
    } else if (m.metricsError && !m.statusError) out.push({ severity: 'info', member: n, text: `${n}: /metrics did not answer: ${m.metricsError}`, fix: 'disk and proposal checks are skipped for this member; etcd serves /metrics on its client URL (or --listen-metrics-urls)' });
    if (m.hashError && input.hashRevision) out.push({ severity: 'info', member: n, text: `${n}: HashKV at revision ${input.hashRevision} failed: ${m.hashError}`, fix: 'its hash could not be compared; check again' });
  }
  for (const a of input.alarms) {
    if (a.alarm === 'NOSPACE')
      out.push({ severity: 'critical', member: a.member, text: `${a.member}: NOSPACE alarm: the database reached its quota and the cluster refuses writes`, fix: 'compact, defragment every member, then disarm the alarm (the Space tab’s plan does all three)' });
    else if (a.alarm === 'CORRUPT')
      out.push({ severity: 'critical', member: a.member, text: `${a.member}: CORRUPT alarm: its data differs from the other members’`, fix: 'replace the member: remove it, wipe its data directory, add it back, then disarm' });
    else out.push({ severity: 'warning', member: a.member, text: `${a.member}: ${a.alarm} alarm`, fix: 'resolve its cause, then disarm it' });
  }
  const hashes = members.filter((m) => m.hash).map((m) => ({ name: label(m), hash: m.hash!.hash, compactRevision: m.hash!.compactRevision }));
  out.push(...hashDivergence(hashes, input.hashRevision));
  const rank = { critical: 0, warning: 1, info: 2 } as const;
  return out.sort((a, b) => rank[a.severity] - rank[b.severity]);
}

// ---- Space: growth and time to NOSPACE

export interface SpaceSample {
  at: number;
  revision: number;
  dbSize: number;
  dbSizeInUse: number;
}

export interface Growth {
  revisionsPerMinute: number | null;
  bytesPerMinute: number | null;
  noSpaceInMs: number | null;
  projection: string;
}

/** Samples younger than this feed the rates; two at least this far apart are needed. */
export const GROWTH_WINDOW_MS = 10 * 60_000;
export const GROWTH_MIN_SPAN_MS = 5_000;

/**
 * Revision and size growth over the samples, and when the database reaches
 * the quota at that rate. Space is used by what is in use (freed pages are
 * reused before the file grows), so the rate is that of the size in use
 * (the file's size when in-use is not reported), and the room left is the
 * quota minus the larger of the two.
 */
export function growth(samples: SpaceSample[], quota: number, now = samples[samples.length - 1]?.at ?? 0): Growth {
  const recent = samples.filter((s) => s.at >= now - GROWTH_WINDOW_MS);
  const last = recent[recent.length - 1];
  const first = recent[0];
  if (!last || last.at - first.at < GROWTH_MIN_SPAN_MS) return { revisionsPerMinute: null, bytesPerMinute: null, noSpaceInMs: null, projection: 'Measuring growth: two samples 5 s apart are needed.' };
  const minutes = (last.at - first.at) / 60_000;
  const revisionsPerMinute = Math.max(0, last.revision - first.revision) / minutes;
  const used = (s: SpaceSample): number => s.dbSizeInUse || s.dbSize;
  const bytesPerMinute = (used(last) - used(first)) / minutes;
  const room = quota - Math.max(last.dbSize, used(last));
  if (room <= 0) return { revisionsPerMinute, bytesPerMinute, noSpaceInMs: 0, projection: `The database (${formatBytes(last.dbSize)}) is at the ${formatBytes(quota)} quota: writes are refused with NOSPACE.` };
  if (bytesPerMinute <= 0) return { revisionsPerMinute, bytesPerMinute, noSpaceInMs: null, projection: `Not growing over the last ${Math.round(minutes * 60)} s: ${formatBytes(room)} left before the ${formatBytes(quota)} quota.` };
  const noSpaceInMs = (room / bytesPerMinute) * 60_000;
  return { revisionsPerMinute, bytesPerMinute, noSpaceInMs, projection: `At ${formatBytes(bytesPerMinute)}/min the database reaches the ${formatBytes(quota)} quota (NOSPACE) in ${formatDuration(noSpaceInMs)}.` };
}

export function formatDuration(msLeft: number): string {
  const m = msLeft / 60_000;
  if (m < 1) return `${Math.max(1, Math.round(msLeft / 1000))} s`;
  if (m < 120) return `${Math.round(m)} min`;
  const h = m / 60;
  if (h < 48) return `${Math.round(h)} h`;
  return `${Math.round(h / 24)} days`;
}

/** Keeps the space samples of one cluster (main polls, so the renderer may come and go). */
export class SpaceHistory {
  private samples: SpaceSample[] = [];
  private cluster = '';
  add(clusterId: string, s: SpaceSample): SpaceSample[] {
    if (clusterId !== this.cluster) {
      this.cluster = clusterId;
      this.samples = [];
    }
    this.samples = [...this.samples.filter((x) => x.at >= s.at - GROWTH_WINDOW_MS), s];
    return this.samples;
  }
}
