// The doctor's judgement without a cluster: p99 from histogram buckets over
// an interval, counter deltas, HashKV divergence named, findings as
// sentences, and the projection to NOSPACE.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoctorMember } from '../contract/index';
import { findings, growth, hashDivergence, histogram, histogramDelta, memberMetrics, parsePrometheus, quantile, ScrapeHistory, type Histogram } from './doctor';

const BOUNDS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

/** etcd's /metrics text for the WAL fsync histogram with these observations (seconds), plus counters. */
function scrapeText(obs: number[], counters: Record<string, number> = {}): string {
  const lines = ['# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.', '# TYPE etcd_disk_wal_fsync_duration_seconds histogram'];
  for (const b of BOUNDS) lines.push(`etcd_disk_wal_fsync_duration_seconds_bucket{le="${b}"} ${obs.filter((o) => o <= b).length}`);
  lines.push(`etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} ${obs.length}`, `etcd_disk_wal_fsync_duration_seconds_sum ${obs.reduce((a, b) => a + b, 0)}`, `etcd_disk_wal_fsync_duration_seconds_count ${obs.length}`);
  for (const [k, v] of Object.entries(counters)) lines.push(`# TYPE ${k} counter`, `${k} ${v}`);
  return lines.join('\n') + '\n';
}

const hist = (pairs: [number, number][]): Histogram => ({ buckets: pairs.map(([le, count]) => ({ le, count })) });

describe('p99 from histogram buckets', () => {
  it('interpolates inside the bucket holding the 99th percentile, as Prometheus histogram_quantile', () => {
    // 100 observations: 90 in (0, 1 ms], 10 in (8 ms, 16 ms]. Rank 99 is the 9th of 10 in the last bucket.
    const h = hist([[0.001, 90], [0.002, 90], [0.004, 90], [0.008, 90], [0.016, 100], [Infinity, 100]]);
    assert.equal(quantile(h, 0.99), 0.008 + 0.008 * (9 / 10));
    assert.equal(quantile(h, 0.5), 0.001 * (50 / 90));
  });
  it('reads the +Inf bucket as the highest finite bound, and an empty histogram as no value', () => {
    assert.equal(quantile(hist([[0.001, 0], [0.002, 0], [Infinity, 5]]), 0.99), 0.002);
    assert.equal(quantile(hist([[0.001, 0], [Infinity, 0]]), 0.99), null);
  });
  it('over the last interval: the difference of two scrapes, not the totals since start', () => {
    const before = parsePrometheus(scrapeText(Array(1000).fill(0.0005)));
    // 100 more fsyncs, all slow (~48 ms): since start p99 is still under 10 ms, over the interval it is not.
    const now = parsePrometheus(scrapeText([...Array(1000).fill(0.0005), ...Array(100).fill(0.048)]));
    const cumulative = quantile(histogram(now, 'etcd_disk_wal_fsync_duration_seconds')!, 0.99)!;
    assert.ok(cumulative < 0.064 && cumulative > 0.032, `cumulative p99 ${cumulative}`);
    const total = quantile(histogram(now, 'etcd_disk_wal_fsync_duration_seconds')!, 0.9)!;
    assert.ok(total <= 0.001, 'most fsyncs since start were fast');
    const d = histogramDelta(histogram(now, 'etcd_disk_wal_fsync_duration_seconds')!, histogram(before, 'etcd_disk_wal_fsync_duration_seconds'));
    assert.equal(d.buckets[d.buckets.length - 1].count, 100);
    const m = memberMetrics(now, before, 10);
    assert.ok(m.walFsyncP99Ms! > 32 && m.walFsyncP99Ms! <= 64, `interval p99 ${m.walFsyncP99Ms}`);
    assert.equal(quantile(d, 0.5)! > 0.032, true, 'over the interval even the median is slow');
  });
  it('a counter that went down (the member restarted) starts the interval afresh', () => {
    const before = parsePrometheus(scrapeText(Array(500).fill(0.05), { etcd_server_leader_changes_seen_total: 7 }));
    const now = parsePrometheus(scrapeText(Array(10).fill(0.0005), { etcd_server_leader_changes_seen_total: 1 }));
    const m = memberMetrics(now, before, 10);
    assert.ok(m.walFsyncP99Ms! <= 1, `after a restart only the new fsyncs count: ${m.walFsyncP99Ms}`);
    assert.equal(m.leaderChanges, 1);
  });
});

describe('counters over the interval', () => {
  it('deltas of leader changes, failed proposals and slow applies; pending is a gauge; missing names are listed', () => {
    const before = parsePrometheus(scrapeText([], { etcd_server_leader_changes_seen_total: 2, etcd_server_proposals_failed_total: 1, etcd_server_slow_apply_total: 4 }));
    const now = parsePrometheus(scrapeText([], { etcd_server_leader_changes_seen_total: 5, etcd_server_proposals_failed_total: 1, etcd_server_slow_apply_total: 6, etcd_server_proposals_pending: 3 }));
    const m = memberMetrics(now, before, 30);
    assert.deepEqual([m.leaderChanges, m.proposalsFailed, m.slowApplies, m.proposalsPending, m.intervalSec], [3, 0, 2, 3, 30]);
    assert.equal(m.walFsyncP99Ms, null, 'no fsync in the interval: no p99');
    assert.deepEqual(m.missing, ['etcd_disk_backend_commit_duration_seconds']);
    const first = memberMetrics(now, null, 0);
    assert.deepEqual([first.leaderChanges, first.intervalSec], [5, 0]);
  });
  it('parses labels, escapes and +Inf', () => {
    const s = parsePrometheus('grpc_server_handled_total{grpc_code="OK",grpc_method="Range",x="a\\"b"} 12\nfoo_bucket{le="+Inf"} 3\nbad line here\n');
    assert.deepEqual(s.get('grpc_server_handled_total')?.[0].labels, { grpc_code: 'OK', grpc_method: 'Range', x: 'a"b' });
    assert.equal(s.get('foo_bucket')?.[0].labels.le, '+Inf');
    assert.equal(s.size, 2);
  });
  it('compares each report with a scrape at least the minimum gap old', () => {
    const h = new ScrapeHistory(4000, 60_000);
    const s = parsePrometheus('');
    assert.equal(h.add('m1', 0, s), null);
    assert.equal(h.add('m1', 1000, s)?.at, 0, 'nothing old enough: the oldest');
    assert.equal(h.add('m1', 5000, s)?.at, 1000, 'the newest at least 4 s old');
    assert.equal(h.add('m1', 5500, s)?.at, 1000);
    assert.equal(h.add('m1', 200_000, s)?.at, undefined, 'too old to keep');
  });
});

describe('HashKV divergence', () => {
  it('names the member that differs from the majority, with the revision', () => {
    const f = hashDivergence([{ name: 'm1', hash: 11, compactRevision: 5 }, { name: 'm2', hash: 99, compactRevision: 5 }, { name: 'm3', hash: 11, compactRevision: 5 }], 42);
    assert.equal(f.length, 1);
    assert.equal(f[0].member, 'm2');
    assert.match(f[0].text, /^m2 diverges at revision 42/);
  });
  it('agreeing hashes, and hashes over different compactions, are no finding', () => {
    assert.deepEqual(hashDivergence([{ name: 'a', hash: 1, compactRevision: 3 }, { name: 'b', hash: 1, compactRevision: 3 }], 9), []);
    assert.deepEqual(hashDivergence([{ name: 'a', hash: 1, compactRevision: 3 }, { name: 'b', hash: 2, compactRevision: 4 }], 9), []);
  });
  it('two members that disagree: no majority, both named', () => {
    const f = hashDivergence([{ name: 'a', hash: 1, compactRevision: 0 }, { name: 'b', hash: 2, compactRevision: 0 }], 9);
    assert.deepEqual(f.map((x) => x.member), ['a', 'b']);
  });
});

const member = (name: string, over: Partial<DoctorMember> = {}): DoctorMember => ({
  id: name,
  name,
  clientUrl: `http://127.0.0.1/${name}`,
  isLeader: name === 'm1',
  isLearner: false,
  status: { version: '3.4.23', dbSize: 1 << 20, dbSizeInUse: 1 << 20, leader: '1', raftTerm: 2, raftIndex: 100, raftAppliedIndex: 100, errors: [] },
  health: { ok: true, httpStatus: 200 },
  metrics: { intervalSec: 10, walFsyncP99Ms: 2, backendCommitP99Ms: 5, leaderChanges: 0, proposalsFailed: 0, slowApplies: 0, proposalsPending: 0, quotaBytes: null, missing: [] },
  ...over,
});
const base = { alarms: [], quotaBytes: 2 * 1024 ** 3, hashRevision: 0 };

describe('findings', () => {
  it('a healthy cluster has none', () => {
    assert.deepEqual(findings({ ...base, members: [member('m1'), member('m2'), member('m3')] }), []);
  });
  it('slow disks against etcd guidance (10 ms fsync, 25 ms commit), in plain sentences with the fix', () => {
    const slow = member('m2', { metrics: { ...member('m2').metrics!, walFsyncP99Ms: 48, backendCommitP99Ms: 30 } });
    const f = findings({ ...base, members: [member('m1'), slow] });
    assert.deepEqual(f.map((x) => x.text), ['m2: WAL fsync p99 48 ms, above 10 ms: the disk is too slow for etcd', 'm2: backend commit p99 30 ms, above 25 ms: the disk is too slow for etcd’s database']);
    assert.ok(f.every((x) => x.fix.length > 0), 'every finding has a fix');
    // exactly at the guidance is fine
    assert.deepEqual(findings({ ...base, members: [member('m1', { metrics: { ...member('m1').metrics!, walFsyncP99Ms: 10, backendCommitP99Ms: 25 } })] }), []);
  });
  it('leader changes, failed proposals, pending proposals and slow applies over the interval', () => {
    const m = member('m3', { metrics: { ...member('m3').metrics!, leaderChanges: 2, proposalsFailed: 1, slowApplies: 3, proposalsPending: 150 } });
    const texts = findings({ ...base, members: [member('m1'), m] }).map((x) => x.text);
    assert.deepEqual(texts, [
      'm3 saw 2 leader changes in the last 10 s',
      'm3: 1 proposal failed in the last 10 s',
      'm3: 150 proposals pending: the member is not keeping up with its writes',
      'm3: 3 slow applies (over 100 ms) in the last 10 s',
    ]);
  });
  it('unreachable members, unhealthy /health, no leader, alarms, NOSPACE-near quota; critical first', () => {
    const down = member('m2', { status: undefined, statusError: 'connect ECONNREFUSED', health: undefined, healthError: 'ECONNREFUSED', metrics: undefined });
    const sick = member('m3', { health: { ok: false, httpStatus: 503 }, status: { ...member('m3').status!, dbSize: 1.9 * 1024 ** 3, leader: '0' } });
    const f = findings({ ...base, members: [member('m1', { status: { ...member('m1').status!, leader: '0' } }), down, sick], alarms: [{ member: 'm3', alarm: 'NOSPACE' }] });
    const texts = f.map((x) => x.text);
    assert.ok(texts.includes('No member reports a leader: the cluster has no quorum and refuses every write'), texts.join(' | '));
    assert.ok(texts.includes('m2 did not answer Status: connect ECONNREFUSED'), texts.join(' | '));
    assert.ok(texts.includes('m3: /health says unhealthy'), texts.join(' | '));
    assert.ok(texts.includes('m3: NOSPACE alarm: the database reached its quota and the cluster refuses writes'), texts.join(' | '));
    assert.ok(texts.some((t) => t.startsWith('m3: database 1.9 GiB is 95% of the 2.0 GiB quota')), texts.join(' | '));
    assert.ok(!texts.some((t) => t.startsWith('m2: /health')), 'an unreachable member is one finding, not three');
    const sev = f.map((x) => x.severity);
    assert.deepEqual(sev, [...sev].sort((a, b) => ['critical', 'warning', 'info'].indexOf(a) - ['critical', 'warning', 'info'].indexOf(b)));
  });
  it('a follower far behind the leader, and a diverging hash named through the findings', () => {
    const behind = member('m2', { status: { ...member('m2').status!, raftIndex: 100 }, hash: { hash: 5, compactRevision: 1 } });
    const lead = member('m1', { status: { ...member('m1').status!, raftIndex: 5000 }, hash: { hash: 7, compactRevision: 1 } });
    const m3 = member('m3', { status: { ...member('m3').status!, raftIndex: 5000 }, hash: { hash: 7, compactRevision: 1 } });
    const texts = findings({ ...base, hashRevision: 77, members: [lead, behind, m3] }).map((x) => x.text);
    assert.ok(texts[0].startsWith('m2 diverges at revision 77'), texts.join(' | '));
    assert.ok(texts.includes('m2 is 4900 raft entries behind the leader'), texts.join(' | '));
  });
});

describe('growth and time to NOSPACE', () => {
  const MiB = 1024 ** 2;
  it('needs two samples 5 s apart', () => {
    assert.equal(growth([{ at: 0, revision: 1, dbSize: MiB, dbSizeInUse: MiB }], 100 * MiB).noSpaceInMs, null);
  });
  it('projects from the size in use growing: 10 MiB/min with 90 MiB left is 9 min', () => {
    const g = growth([{ at: 0, revision: 100, dbSize: 10 * MiB, dbSizeInUse: 5 * MiB }, { at: 60_000, revision: 700, dbSize: 10 * MiB, dbSizeInUse: 15 * MiB }], 100 * MiB);
    assert.equal(g.revisionsPerMinute, 600);
    assert.equal(g.bytesPerMinute, 10 * MiB);
    assert.equal(g.noSpaceInMs, (85 / 10) * 60_000);
    assert.match(g.projection, /reaches the 100\.0 MiB quota \(NOSPACE\) in 9 min/);
  });
  it('not growing (or shrinking after a compaction): no projection; at the quota: now', () => {
    assert.equal(growth([{ at: 0, revision: 5, dbSize: 10 * MiB, dbSizeInUse: 9 * MiB }, { at: 10_000, revision: 5, dbSize: 10 * MiB, dbSizeInUse: 3 * MiB }], 100 * MiB).noSpaceInMs, null);
    assert.equal(growth([{ at: 0, revision: 5, dbSize: 100 * MiB, dbSizeInUse: 90 * MiB }, { at: 10_000, revision: 6, dbSize: 100 * MiB, dbSizeInUse: 90 * MiB }], 100 * MiB).noSpaceInMs, 0);
  });
});
