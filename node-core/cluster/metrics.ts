// A member's Prometheus registry (prom-client) with etcd's metric names where
// they apply. Each member has its own Registry, never prom-client's global
// default one: several members run in one process (tests, the desktop app's
// local cluster). Counters bumped on the hot path stay plain numbers that the
// registry reads when scraped (prom-client's labelled inc() hashes the labels
// on every call); gauges are read from the node when scraped.
import type { MethodDefinition, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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

const expBuckets = (start: number, factor: number, n: number): number[] => Array.from({ length: n }, (_, i) => start * factor ** i);

/** The node's state the scrape-time gauges read. */
type Scraped = MetricsSource;

export class Metrics {
  /** This member's registry (never prom-client's global one). */
  readonly registry = new Registry();
  readonly fsync: Histogram;
  readonly backendCommit: Histogram;
  proposalsCommitted = 0;
  proposalsApplied = 0;
  proposalsFailed = 0;
  /** Proposals waiting to be committed (a gauge: up when proposed, down when applied or failed). */
  proposalsPending = 0;
  /** Applies slower than etcd's 100 ms warning threshold. */
  slowApplies = 0;
  leaderChanges = 0;
  private readonly grpcMethods: GrpcMethodStats[] = [];
  /** The node being scraped; set by render() for the collect callbacks. */
  private node?: Scraped;

  constructor() {
    const registers = [this.registry];
    const scraped = (): Scraped | undefined => this.node;
    // registration order is exposition order: etcd's families, in the order we always wrote them
    const gauge = (name: string, help: string, read: (n: Scraped) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const n = scraped();
          if (n) this.set(read(n));
        },
      });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', (n) => (n.leaderId !== 0n ? 1 : 0));
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', (n) => (n.leaderId === n.memberId ? 1 : 0));
    counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => this.leaderChanges);
    counter('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => this.proposalsCommitted);
    counter('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => this.proposalsApplied);
    counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', () => this.proposalsFailed);
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', () => this.proposalsPending);
    counter('etcd_server_slow_apply_total', 'The total number of slow apply requests (likely overloaded from slow disk).', () => this.slowApplies);
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', (n) => n.backend.size().total);
    gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', (n) => n.backend.size().inUse);
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', (n) => n.mvcc.rev);
    gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', (n) => n.mvcc.compactRev);
    this.fsync = new Histogram({ name: 'etcd_disk_wal_fsync_duration_seconds', help: 'The latency distributions of fsync called by WAL.', buckets: expBuckets(0.001, 2, 14), registers });
    this.backendCommit = new Histogram({ name: 'etcd_disk_backend_commit_duration_seconds', help: 'The latency distributions of commit called by backend.', buckets: expBuckets(0.001, 2, 14), registers });
    gauge('etcd_server_quota_backend_bytes', 'Current backend storage quota size in bytes.', (n) => n.quota.maxBytes);
    const methods = this.grpcMethods;
    // label names in Go's (sorted) order, so samples read as etcd's
    const labels = (s: GrpcMethodStats) => ({ grpc_method: s.method, grpc_service: s.service, grpc_type: s.type });
    new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: ['grpc_method', 'grpc_service', 'grpc_type'],
      registers,
      collect() {
        this.reset();
        for (const s of methods) this.inc(labels(s), s.started);
      },
    });
    new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_code', 'grpc_method', 'grpc_service', 'grpc_type'],
      registers,
      collect() {
        this.reset();
        for (const s of methods) s.handled.forEach((n, code) => this.inc({ grpc_code: CODE_NAMES[code], ...labels(s) }, n));
      },
    });
  }

  /** Registers a method's counters (every code starts at 0, as go-grpc-prometheus pre-registers them). */
  grpcMethod(type: GrpcMethodStats['type'], service: string, method: string): GrpcMethodStats {
    const s = new GrpcMethodStats(type, service, method);
    this.grpcMethods.push(s);
    return s;
  }

  /** The Prometheus text exposition of this member's registry. */
  async render(node: Scraped): Promise<string> {
    this.node = node;
    // prom-client separates families with an empty line; Go's client (etcd) does not
    return (await this.registry.metrics()).replace(/\n\n/g, '\n');
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
      // a unary callback is (err, value, trailer): named, not rest/spread (an array per call)
      out[name] = ((call: unknown, cb: (err: { code?: number } | null, value?: unknown, trailer?: unknown) => void) => {
        stats.started++;
        h(call, (err: { code?: number } | null, value?: unknown, trailer?: unknown) => {
          stats.handled[err ? (err.code ?? 2) : 0]++;
          cb(err, value, trailer);
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
