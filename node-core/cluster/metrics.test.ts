// /metrics through prom-client keeps the exposition etcd's Go client writes:
// families in etcd's order with no empty line between them, Go's sorted label
// order, cumulative histogram buckets; and each member has its own registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { Metrics } from './metrics';

const stubNode = (leader: bigint) =>
  ({ backend: { size: () => ({ total: 8192, inUse: 4096 }) }, leaderId: leader, memberId: 5n, mvcc: { rev: 42, compactRev: 3 }, quota: { maxBytes: 2147483648 } }) as never;

test('the exposition is the text etcd writes', async () => {
  const m = new Metrics();
  m.fsync.observe(0.003);
  m.fsync.observe(100);
  m.proposalsCommitted = 7;
  m.leaderChanges = 1;
  const s = m.grpcMethod('unary', 'etcdserverpb.KV', 'Range');
  s.started = 3;
  s.handled[0] = 2;
  s.handled[3] = 1;
  const text = await m.render(stubNode(5n));
  assert.ok(!text.includes('\n\n'), 'no empty line between families');
  assert.ok(text.endsWith('\n'));
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 9), [
    '# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.',
    '# TYPE etcd_server_has_leader gauge',
    'etcd_server_has_leader 1',
    '# HELP etcd_server_is_leader Whether or not this member is a leader. 1 if is, 0 otherwise.',
    '# TYPE etcd_server_is_leader gauge',
    'etcd_server_is_leader 1',
    '# HELP etcd_server_leader_changes_seen_total The number of leader changes seen.',
    '# TYPE etcd_server_leader_changes_seen_total counter',
    'etcd_server_leader_changes_seen_total 1',
  ]);
  for (const l of [
    'etcd_server_proposals_committed_total 7',
    'etcd_mvcc_db_total_size_in_bytes 8192',
    'etcd_mvcc_db_total_size_in_use_in_bytes 4096',
    'etcd_debugging_mvcc_current_revision 42',
    'etcd_server_quota_backend_bytes 2147483648',
    '# TYPE etcd_disk_wal_fsync_duration_seconds histogram',
    'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 0',
    'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 1',
    'etcd_disk_wal_fsync_duration_seconds_bucket{le="8.192"} 1',
    'etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 2',
    'etcd_disk_wal_fsync_duration_seconds_sum 100.003',
    'etcd_disk_wal_fsync_duration_seconds_count 2',
    'grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3',
    'grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 2',
    'grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 1',
    'grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 0',
  ])
    assert.ok(lines.includes(l), l);
  // counters read at scrape time: a later scrape shows later values, not doubled ones
  s.started = 4;
  m.proposalsCommitted = 8;
  const again = (await m.render(stubNode(0n))).split('\n');
  assert.ok(again.includes('etcd_server_proposals_committed_total 8'));
  assert.ok(again.includes('grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 4'));
  assert.ok(again.includes('etcd_server_has_leader 0'));
});

test('each member has its own registry; the process-wide default one stays empty', async () => {
  const a = new Metrics();
  const b = new Metrics();
  a.proposalsApplied = 3;
  b.proposalsApplied = 9;
  assert.ok((await a.render(stubNode(5n))).includes('etcd_server_proposals_applied_total 3\n'));
  assert.ok((await b.render(stubNode(5n))).includes('etcd_server_proposals_applied_total 9\n'));
  assert.deepEqual(globalRegistry.getMetricsAsArray(), []);
});
