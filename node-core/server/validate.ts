// Request checks done before a request reaches the log, as etcd's v3rpc
// (key.go): empty keys, ignore_value/ignore_lease misuse, too many txn ops,
// and puts/deletes that overlap inside one txn.
import { Errors } from '../errors';
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../proto/gen/etcdserverpb';

export function checkRangeRequest(r: RangeRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey;
}

export function checkPutRequest(r: PutRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey;
  if (r.ignore_value && r.value.length !== 0) throw Errors.ValueProvided;
  if (r.ignore_lease && r.lease !== 0n) throw Errors.LeaseProvided;
}

export function checkDeleteRequest(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw Errors.EmptyKey;
}

export function checkTxnRequest(r: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) throw Errors.TooManyOps;
  for (const c of r.compare) if (c.key.length === 0) throw Errors.EmptyKey;
  for (const u of r.success) checkRequestOp(u, maxTxnOps - opc);
  for (const u of r.failure) checkRequestOp(u, maxTxnOps - opc);
}

function checkRequestOp(u: RequestOp, maxTxnOps: number): void {
  if (u.request_range) return checkRangeRequest(u.request_range);
  if (u.request_put) return checkPutRequest(u.request_put);
  if (u.request_delete_range) return checkDeleteRequest(u.request_delete_range);
  if (u.request_txn) return checkTxnRequest(u.request_txn, maxTxnOps);
  throw Errors.KeyNotFound;
}

// Intervals over latin1 strings (byte order); '' as an end means unbounded,
// as etcd's affine string intervals.
interface Interval {
  begin: string;
  end: string;
}

const pointOf = (k: string): Interval => ({ begin: k, end: k + '\x00' });

function intersectsPoint(dels: Interval[], p: string): boolean {
  for (const d of dels) {
    if (d.begin <= p && (d.end === '' || p < d.end)) return true;
  }
  return false;
}

/** etcd's checkIntervals: a txn branch may not put a key twice or put a key it deletes. */
export function checkIntervals(reqs: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const r of reqs) {
    const d = r.request_delete_range;
    if (!d) continue;
    const k = d.key.toString('latin1');
    dels.push(d.range_end.length ? { begin: k, end: d.range_end.toString('latin1') } : pointOf(k));
  }
  const puts = new Set<string>();
  for (const r of reqs) {
    const t = r.request_txn;
    if (!t) continue;
    const thenSide = checkIntervals(t.success);
    const elseSide = checkIntervals(t.failure);
    for (const k of thenSide.puts) {
      if (puts.has(k) || intersectsPoint(dels, k)) throw Errors.DuplicateKey;
      puts.add(k);
    }
    for (const k of elseSide.puts) {
      // then and else exclude each other, so the same key in both is fine
      if (puts.has(k) && !thenSide.puts.has(k)) throw Errors.DuplicateKey;
      if (intersectsPoint(dels, k)) throw Errors.DuplicateKey;
      puts.add(k);
    }
    dels.push(...thenSide.dels, ...elseSide.dels);
  }
  for (const r of reqs) {
    const p = r.request_put;
    if (!p) continue;
    const k = p.key.toString('latin1');
    if (puts.has(k) || intersectsPoint(dels, k)) throw Errors.DuplicateKey;
    puts.add(k);
  }
  return { puts, dels };
}

// As etcd: only plain ranges make a txn read-only (served without the log)
// or serializable; a nested txn always goes through the log.
export function isTxnReadOnly(r: TxnRequest): boolean {
  return r.success.every((o) => o.request_range !== undefined) && r.failure.every((o) => o.request_range !== undefined);
}

export function isTxnSerializable(r: TxnRequest): boolean {
  return r.success.every((o) => o.request_range?.serializable === true) && r.failure.every((o) => o.request_range?.serializable === true);
}
