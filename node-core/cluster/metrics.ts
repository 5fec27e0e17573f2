// A member's Prometheus registry with etcd's metric names where they apply.
// Counters and histograms are updated on the hot path with plain number
// arithmetic; gauges are read from the node when scraped.
import type { EtcdNode } from './node';

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
  }
}

const expBuckets = (start: number, factor: number, n: number): number[] => Array.from({ length: n }, (_, i) => start * factor ** i);

export class Metrics {
  readonly fsync = new Histogram(expBuckets(0.001, 2, 14));
  readonly backendCommit = new Histogram(expBuckets(0.001, 2, 14));
  proposalsCommitted = 0;
  proposalsApplied = 0;
  proposalsFailed = 0;
  leaderChanges = 0;
  private readonly grpcHandled = new Map<string, number>();
  private readonly grpcStarted = new Map<string, number>();

  grpcStart(type: string, service: string, method: string): void {
    const k = `grpc_type="${type}",grpc_service="${service}",grpc_method="${method}"`;
    this.grpcStarted.set(k, (this.grpcStarted.get(k) ?? 0) + 1);
  }

  grpcDone(type: string, service: string, method: string, code: string): void {
    const k = `grpc_code="${code}",grpc_method="${method}",grpc_service="${service}",grpc_type="${type}"`;
    this.grpcHandled.set(k, (this.grpcHandled.get(k) ?? 0) + 1);
  }

  render(node: EtcdNode): string {
    const out: string[] = [];
    const gauge = (name: string, help: string, v: number): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`);
    };
    const counter = (name: string, help: string, v: number): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
    };
    const hist = (name: string, help: string, h: Histogram): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      h.buckets.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i]}`));
      out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
    };
    const size = node.backend.size();
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', node.leaderId !== 0n ? 1 : 0);
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', node.leaderId === node.memberId ? 1 : 0);
    counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', this.leaderChanges);
    counter('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', this.proposalsCommitted);
    counter('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', this.proposalsApplied);
    counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', this.proposalsFailed);
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', size.total);
    gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', size.inUse);
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', node.mvcc.rev);
    gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', node.mvcc.compactRev);
    hist('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', this.fsync);
    hist('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', this.backendCommit);
    out.push('# HELP grpc_server_started_total Total number of RPCs started on the server.', '# TYPE grpc_server_started_total counter');
    for (const [k, v] of this.grpcStarted) out.push(`grpc_server_started_total{${k}} ${v}`);
    out.push('# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.', '# TYPE grpc_server_handled_total counter');
    for (const [k, v] of this.grpcHandled) out.push(`grpc_server_handled_total{${k}} ${v}`);
    return out.join('\n') + '\n';
  }
}

