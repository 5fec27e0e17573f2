// Applies committed log entries to the state machine in log order. Every
// member runs the same entries through the same tables, so the stores stay
// identical; the applied index is written in the same backend batch as the
// changes, which makes replay after a crash idempotent.
import type { Backend } from '../backend/backend';
import { Errors } from '../errors';
import type { KVStore } from '../mvcc/types';
import { decodeInternalRaftRequest, type InternalRaftRequest } from '../proto/gen/etcdserverpb';
import type { ApplierTable, ApplyContext, ApplyField, ApplyFn, ApplyServices } from './apply-types';

export type { ApplyAuthGuard } from './apply-types';

const CONSISTENT_INDEX = Buffer.from('consistent_index');

/** What applying one entry produced: the domain result or error, and the store revision right after it. */
export interface ApplyOutcome {
  result?: unknown;
  error?: Error;
  rev: number;
  /** The request id from the entry's header: whoever proposed it waits on this. */
  id?: bigint;
}

export class Applier {
  private readonly fns = new Map<ApplyField, ApplyFn>();
  private readonly ctx: ApplyContext;
  private applied: number;

  constructor(backend: Backend, mvcc: KVStore, services: ApplyServices, tables: ApplierTable[]) {
    for (const t of tables) for (const [k, fn] of Object.entries(t)) if (fn) this.fns.set(k as ApplyField, fn);
    this.ctx = { backend, mvcc, services, index: 0, term: 0 };
    this.applied = readConsistentIndex(backend);
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * Applies one entry's payload. Returns the domain's result, or throws the
   * EtcdError the request failed with (the entry still counts as applied).
   */
  apply(index: number, term: number, data: Uint8Array, decoded?: InternalRaftRequest): ApplyOutcome {
    if (index <= this.applied) return { rev: this.ctx.mvcc.rev };
    this.ctx.index = index;
    this.ctx.term = term;
    this.applied = index;
    let req: InternalRaftRequest | undefined;
    try {
      if (data.length === 0) return { rev: this.ctx.mvcc.rev };
      req = decoded ?? decodeInternalRaftRequest(data);
      // alarms first (etcd's capped/corrupt appliers wrap the auth applier)
      this.ctx.services.alarmGate?.check(req);
      this.ctx.services.authGuard?.authorize(req);
      for (const [field, fn] of this.fns) {
        if (req[field] !== undefined) {
          const result = fn(this.ctx, req);
          return { result, rev: this.ctx.mvcc.rev, id: req.header?.ID };
        }
      }
      return { error: Errors.NotCapable, rev: this.ctx.mvcc.rev, id: req.header?.ID };
    } catch (e) {
      return { error: e as Error, rev: this.ctx.mvcc.rev, id: req?.header?.ID };
    }
  }

  /** After a snapshot replaced the state: its applied index is the stored one. */
  reloadApplied(): void {
    this.applied = readConsistentIndex(this.ctx.backend);
  }

  /** Counts an entry that carries no request (a conf change) as applied. */
  skip(index: number): void {
    if (index > this.applied) this.applied = index;
  }

  /** Records the applied index in the current backend batch. */
  persistAppliedIndex(): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(this.applied));
    this.ctx.backend.put('meta', CONSISTENT_INDEX, b);
  }
}

export function readConsistentIndex(backend: Backend): number {
  const v = backend.get('meta', CONSISTENT_INDEX);
  return v && v.length === 8 ? Number(v.readBigUInt64BE(0)) : 0;
}
