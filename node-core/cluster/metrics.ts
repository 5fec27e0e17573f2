// A member's Prometheus registry with etcd's metric names where they apply.
// Counters and histograms are updated on the hot path with plain number
// arithmetic; gauges are read from the node when scraped.
import type { MethodDefinition, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';

/** The gauges' sources, read at scrape time (EtcdNode implements it). */
export interface MetricsSource {
  readonly leaderId: bigint;
  readonly memberId: bigint;
  readonly backend: { size(): { total: number; inUse: number } };
  readonly mvcc: { readonly rev: number; readonly compactRev: number };
  readonly quota: { readonly maxBytes: number };
}

/** gRPC status code names, as go-grpc-prometheus labels them. */
const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted',
  'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** Counters of one gRPC method (go-grpc-prometheus's started/handled), bumped by the wrapped handler. */
export class GrpcMethodStats {
  started = 0;
  readonly handled: number[] = CODE_NAMES.map(() => 0);
  constructor(
    readonly type: 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream',
    readonly service: string,
    readonly method: string,
  ) {}
}

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
  /** Proposals of this member waiting to be applied (etcd's proposals_pending gauge). */
  proposalsPending = 0;
  /** Entries whose apply took longer than etcd's warning-apply-duration (100 ms). */
  slowApplies = 0;
  private readonly grpcMethods: GrpcMethodStats[] = [];

  /** Registers a method's counters (every code starts at 0, as go-grpc-prometheus pre-registers them). */
  grpcMethod(type: GrpcMethodStats['type'], service: string, method: string): GrpcMethodStats {
    const s = new GrpcMethodStats(type, service, method);
    this.grpcMethods.push(s);
    return s;
  }

  render(node: MetricsSource): string {
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
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', this.proposalsPending);
    counter('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).', this.slowApplies);
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', size.total);
    gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', size.inUse);
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', node.mvcc.rev);
    gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', node.mvcc.compactRev);
    hist('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', this.fsync);
    hist('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', this.backendCommit);
    gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', node.quota.maxBytes);
    const labels = (s: GrpcMethodStats): string => `grpc_method="${s.method}",grpc_service="${s.service}",grpc_type="${s.type}"`;
    out.push('# HELP grpc_server_started_total Total number of RPCs started on the server.', '# TYPE grpc_server_started_total counter');
    for (const s of this.grpcMethods) out.push(`grpc_server_started_total{${labels(s)}} ${s.started}`);
    out.push('# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.', '# TYPE grpc_server_handled_total counter');
    for (const s of this.grpcMethods) s.handled.forEach((n, code) => out.push(`grpc_server_handled_total{grpc_code="${CODE_NAMES[code]}",${labels(s)}} ${n}`));
    return out.join('\n') + '\n';
  }
}


type AnyCall = { on(ev: string, fn: (...a: unknown[]) => void): unknown };

/**
 * Wraps a service's handlers so every call counts in grpc_server_started_total
 * and, when it completes, grpc_server_handled_total by status code. Per call
 * this costs one closure and two increments; labels are built only on scrape.
 */
export function instrumentService<T extends UntypedServiceImplementation>(def: ServiceDefinition, handlers: T, metrics: Metrics): T {
  const out: UntypedServiceImplementation = {};
  for (const [name, fn] of Object.entries(handlers)) {
    const m = (def as Record<string, MethodDefinition<unknown, unknown> | undefined>)[name];
    if (!m || typeof fn !== 'function') {
      out[name] = fn;
      continue;
    }
    const service = m.path.split('/')[1] ?? '';
    const type = m.requestStream ? (m.responseStream ? 'bidi_stream' : 'client_stream') : m.responseStream ? 'server_stream' : 'unary';
    const stats = metrics.grpcMethod(type, service, name);
    const h = fn as (...a: unknown[]) => void;
    if (type === 'unary' || type === 'client_stream') {
      out[name] = ((call: unknown, cb: (err: { code?: number } | null, ...rest: unknown[]) => void) => {
        stats.started++;
        h(call, (err: { code?: number } | null, ...rest: unknown[]) => {
          stats.handled[err ? (err.code ?? 2) : 0]++;
          cb(err, ...rest);
        });
      }) as never;
    } else {
      out[name] = ((call: AnyCall) => {
        stats.started++;
        let done = false;
        const finish = (code: number): void => {
          if (done) return;
          done = true;
          stats.handled[code] = (stats.handled[code] ?? 0) + 1;
        };
        call.on('finish', () => finish(0));
        call.on('error', (e) => finish((e as { code?: number } | undefined)?.code ?? 2));
        call.on('cancelled', () => finish(1));
        h(call);
      }) as never;
    }
  }
  return out as T;
}
