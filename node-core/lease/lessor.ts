// The lessor: etcd 3.4's lease/lessor.go over the backend's `lease` bucket
// (key: 8-byte big-endian id, value: leasepb.Lease, as etcd, so snapshots
// convert both ways).
//
// Grant, revoke and checkpoint are applied from the log on every member and
// are deterministic. Expiry is the primary's business only: a member that is
// not primary holds every lease "forever" and never reports one expired;
// promote() (becoming leader) restarts every lease's clock from its TTL, or
// from the remaining TTL last checkpointed through the log, so a chain of
// leader changes cannot keep a lease alive without bound.
//
// Nothing here owns a timer: the cluster's lease driver asks for expired
// leases and due checkpoints and proposes them. Time comes from an injected
// clock (milliseconds).
import type { Backend } from '../backend/backend';
import { Errors } from '../errors/index';
import type { KVStore, LeaseHooks } from '../mvcc/types';
import type { LeaseCheckpointInit } from '../proto/gen/etcdserverpb';
import { decodeLease, encodeLease } from '../proto/gen/leasepb';

/** etcd's MaxLeaseTTL (seconds). */
export const MAX_LEASE_TTL = 9_000_000_000;
/** etcd's leaseRevokeRate: revokes per second the primary may start. */
export const LEASE_REVOKE_RATE = 1000;
const EXPIRED_RETRY_MS = 3000; // etcd's defaultExpiredleaseRetryInterval
const DEFAULT_CHECKPOINT_INTERVAL_MS = 5 * 60 * 1000; // etcd's defaultLeaseCheckpointInterval
const MAX_CHECKPOINT_BATCH = 1000; // etcd's maxLeaseCheckpointBatchSize
const EMPTY = Buffer.alloc(0);

export interface LessorOptions {
  /** Minimum TTL in seconds (etcd: ceil(1.5 × election timeout)). */
  minTTL: number;
  /** Milliseconds since an arbitrary origin; Date.now by default. */
  now?: () => number;
  /** Remaining-TTL checkpoints through the log (etcd's --experimental-enable-lease-checkpoint). */
  checkpoint?: boolean;
  checkpointIntervalMs?: number;
}

/** etcd's minimum lease TTL for an election timeout and heartbeat (ms): ceil((3 × electionTicks / 2) × heartbeat). */
export function minLeaseTTL(electionTimeoutMs: number, heartbeatMs: number): number {
  const ticks = Math.floor(electionTimeoutMs / heartbeatMs);
  return Math.ceil((Math.floor((3 * ticks) / 2) * heartbeatMs) / 1000);
}

class Lease {
  /** ms; Infinity = forever (not primary). */
  expiry = Infinity;
  /** The expiry registered in the heap (stale heap items are skipped). */
  queued = -1;
  readonly keys = new Map<string, Buffer>();
  revoked = false;
  private onRevoke: (() => void)[] = [];
  constructor(
    readonly id: bigint,
    public ttl: number,
    public remainingTTL: number,
  ) {}

  /** etcd's RemainingTTL: the checkpointed remainder if any, else the TTL. */
  remaining(): number {
    return this.remainingTTL > 0 ? this.remainingTTL : this.ttl;
  }

  whenRevoked(): Promise<void> {
    if (this.revoked) return Promise.resolve();
    return new Promise((resolve) => this.onRevoke.push(resolve));
  }

  markRevoked(): void {
    this.revoked = true;
    for (const f of this.onRevoke) f();
    this.onRevoke = [];
  }
}

interface HeapItem {
  id: bigint;
  time: number;
}

/** A binary min-heap on time. */
class TimeHeap {
  private a: HeapItem[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): HeapItem | undefined {
    return this.a[0];
  }
  clear(): void {
    this.a = [];
  }
  push(x: HeapItem): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p].time <= a[i].time) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): HeapItem | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l].time < a[m].time) m = l;
        if (r < a.length && a[r].time < a[m].time) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

const idKey = (id: bigint): Buffer => {
  const k = Buffer.allocUnsafe(8);
  k.writeBigInt64BE(id);
  return k;
};

export interface LeaseView {
  id: bigint;
  /** Granted TTL (seconds). */
  ttl: number;
  /** Milliseconds until expiry (Infinity when not primary). */
  remainingMs: number;
  keys: Buffer[];
}

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  private readonly expiryHeap = new TimeHeap();
  private readonly checkpointHeap = new TimeHeap();
  private readonly now: () => number;
  private readonly cpInterval: number;
  readonly minTTL: number;
  readonly checkpointEnabled: boolean;
  private primary = false;
  private demoteWaiters: (() => void)[] = [];
  /** Proposes a checkpoint through the log (set by the cluster's lease driver). */
  checkpointer: ((cps: LeaseCheckpointInit[]) => Promise<unknown>) | undefined;
  readonly hooks: LeaseHooks;

  private constructor(
    private readonly backend: Backend,
    opts: LessorOptions,
  ) {
    this.minTTL = opts.minTTL;
    this.now = opts.now ?? Date.now;
    this.checkpointEnabled = opts.checkpoint ?? true;
    this.cpInterval = opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
    this.hooks = {
      exists: (id) => this.leases.has(id),
      attach: (id, key) => {
        this.leases.get(id)?.keys.set(key.toString('latin1'), Buffer.from(key));
      },
      detach: (id, key) => {
        this.leases.get(id)?.keys.delete(key.toString('latin1'));
      },
    };
  }

  /** Loads the leases in the `lease` bucket (etcd's initAndRecover); open it before the MVCC store, which re-attaches keys. */
  static open(backend: Backend, opts: LessorOptions): Lessor {
    const l = new Lessor(backend, opts);
    l.load();
    return l;
  }

  private load(): void {
    for (const [, v] of this.backend.range('lease')) {
      const lpb = decodeLease(v);
      const ttl = lpb.TTL < this.minTTL ? this.minTTL : lpb.TTL;
      this.leases.set(lpb.ID, new Lease(lpb.ID, ttl, lpb.RemainingTTL));
    }
  }

  /**
   * etcd's lessor.Recover, for a state snapshot installed under a running
   * member: reloads the bucket (committed data); the MVCC store's restore
   * re-attaches the keys afterwards. Pending renews of dropped leases fail.
   */
  recover(): void {
    for (const l of this.leases.values()) l.markRevoked();
    this.leases.clear();
    this.expiryHeap.clear();
    this.checkpointHeap.clear();
    this.load();
    if (this.primary) for (const l of this.leases.values()) this.refresh(l, 0);
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get size(): number {
    return this.leases.size;
  }

  private persist(l: Lease): void {
    this.backend.put('lease', idKey(l.id), encodeLease({ ID: l.id, TTL: l.ttl, RemainingTTL: l.remainingTTL }));
  }

  private refresh(l: Lease, extendMs: number): void {
    l.expiry = this.now() + extendMs + l.remaining() * 1000;
    l.queued = l.expiry;
    this.expiryHeap.push({ id: l.id, time: l.expiry });
  }

  private scheduleCheckpoint(l: Lease): void {
    if (!this.checkpointEnabled) return;
    if (l.remaining() * 1000 > this.cpInterval) this.checkpointHeap.push({ id: l.id, time: this.now() + this.cpInterval });
  }

  // ------------------------------------------------------------ applied

  /** etcd's lessor.Grant (applied from the log). Returns the TTL actually granted. */
  grant(id: bigint, ttl: number): { ID: bigint; TTL: number } {
    if (id === 0n) throw Errors.LeaseNotFound;
    if (ttl > MAX_LEASE_TTL) throw Errors.LeaseTTLTooLarge;
    if (this.leases.has(id)) throw Errors.LeaseExist;
    const l = new Lease(id, ttl < this.minTTL ? this.minTTL : ttl, 0);
    this.leases.set(id, l);
    if (this.primary) this.refresh(l, 0);
    this.persist(l);
    if (this.primary) this.scheduleCheckpoint(l);
    return { ID: id, TTL: l.ttl };
  }

  /**
   * etcd's lessor.Revoke (applied from the log): the attached keys are
   * deleted in sorted order (the same on every member) in one write txn, so
   * they vanish at one revision, and the lease record goes with them.
   */
  revoke(id: bigint, kv: KVStore): void {
    const l = this.leases.get(id);
    if (!l) throw Errors.LeaseNotFound;
    const keys = [...l.keys.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
    try {
      kv.write((tx) => {
        for (const key of keys) tx.deleteRange({ key, range_end: EMPTY, prev_kv: false });
      });
    } finally {
      this.leases.delete(id);
      this.backend.del('lease', idKey(id));
      l.markRevoked();
    }
  }

  /** etcd's lessor.Checkpoint (applied): records the remaining TTL (persisted, as etcd's checkpoint-persist). */
  checkpoint(id: bigint, remainingTTL: number): void {
    const l = this.leases.get(id);
    if (!l) return;
    l.remainingTTL = remainingTTL;
    this.persist(l);
    if (this.primary) this.scheduleCheckpoint(l);
  }

  // ------------------------------------------------------ primary only

  /** etcd's Promote: this member leads; every lease's clock restarts from its (remaining) TTL plus extendMs. */
  promote(extendMs: number): void {
    this.primary = true;
    this.expiryHeap.clear();
    this.checkpointHeap.clear();
    for (const l of this.leases.values()) this.refresh(l, extendMs);
    if (this.leases.size >= LEASE_REVOKE_RATE) {
      // spread expiries so piled-up leases do not take the whole revoke rate (etcd's Promote)
      const ls = [...this.leases.values()].sort((a, b) => a.expiry - b.expiry);
      let baseWindow = ls[0].remaining();
      let nextWindow = baseWindow + 1;
      let expires = 0;
      const target = Math.floor((3 * LEASE_REVOKE_RATE) / 4);
      for (const l of ls) {
        const rem = l.remaining();
        if (rem > nextWindow) {
          baseWindow = rem;
          nextWindow = baseWindow + 1;
          expires = 1;
          continue;
        }
        expires++;
        if (expires <= target) continue;
        let delayMs = 1000 * (expires / target);
        delayMs -= (rem - baseWindow) * 1000;
        nextWindow = baseWindow + Math.trunc(delayMs / 1000);
        this.refresh(l, Math.trunc(delayMs) + extendMs);
      }
    }
    for (const l of this.leases.values()) this.scheduleCheckpoint(l);
  }

  /** etcd's Demote: leases live forever here until this member leads again; pending renews fail over. */
  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiry = Infinity;
    this.expiryHeap.clear();
    this.checkpointHeap.clear();
    for (const f of this.demoteWaiters) f();
    this.demoteWaiters = [];
  }

  /**
   * etcd's Renew: the TTL granted, or Errors.LeaseNotFound. An expired lease
   * waiting for its revoke answers once the revoke is applied (not found),
   * so a renew never revives a lease that is being revoked.
   */
  async renew(id: bigint): Promise<number> {
    if (!this.primary) throw Errors.NotLeader;
    const l = this.leases.get(id);
    if (!l) throw Errors.LeaseNotFound;
    const clearRemaining = this.checkpointEnabled && this.checkpointer !== undefined && l.remainingTTL > 0;
    if (l.expiry <= this.now()) {
      const demoted = new Promise<'demoted'>((resolve) => this.demoteWaiters.push(() => resolve('demoted')));
      const r = await Promise.race([l.whenRevoked().then(() => 'revoked' as const), demoted]);
      throw r === 'revoked' ? Errors.LeaseNotFound : Errors.NotLeader;
    }
    if (clearRemaining) {
      // one log entry per lease per checkpoint interval at most, as etcd
      await this.checkpointer!([{ ID: id, remaining_TTL: 0 }]).catch(() => undefined);
    }
    if (!this.primary) throw Errors.NotLeader;
    if (l.revoked) throw Errors.LeaseNotFound;
    this.refresh(l, 0);
    return l.ttl;
  }

  /** Leases past their expiry, at most `limit` (etcd's findExpiredLeases); each is retried after 3 s if still there. */
  expired(limit: number): bigint[] {
    const out: bigint[] = [];
    if (!this.primary) return out;
    const now = this.now();
    while (out.length < limit) {
      const top = this.expiryHeap.peek();
      if (!top) break;
      const l = this.leases.get(top.id);
      if (!l || top.time !== l.queued) {
        this.expiryHeap.pop(); // revoked or renewed since
        continue;
      }
      if (now < top.time) break;
      this.expiryHeap.pop();
      // retried later if the revoke does not make it (etcd's expiredLeaseRetryInterval)
      l.queued = now + EXPIRED_RETRY_MS;
      this.expiryHeap.push({ id: l.id, time: l.queued });
      if (l.expiry <= now) out.push(l.id);
    }
    return out;
  }

  /** Remaining TTLs due for a checkpoint (etcd's findDueScheduledCheckpoints). */
  dueCheckpoints(): LeaseCheckpointInit[] {
    const out: LeaseCheckpointInit[] = [];
    if (!this.primary || !this.checkpointEnabled) return out;
    const now = this.now();
    while (out.length < MAX_CHECKPOINT_BATCH) {
      const top = this.checkpointHeap.peek();
      if (!top || now < top.time) break;
      this.checkpointHeap.pop();
      const l = this.leases.get(top.id);
      if (!l || l.expiry === Infinity) continue;
      const remainingTTL = Math.ceil((l.expiry - now) / 1000);
      if (remainingTTL >= l.ttl) continue;
      out.push({ ID: l.id, remaining_TTL: remainingTTL });
    }
    return out;
  }

  // ------------------------------------------------------------- reads

  lookup(id: bigint): LeaseView | undefined {
    const l = this.leases.get(id);
    if (!l) return undefined;
    const keys = [...l.keys.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
    return { id, ttl: l.ttl, remainingMs: l.expiry === Infinity ? Infinity : l.expiry - this.now(), keys };
  }

  /** Every lease, soonest expiry first (etcd's Leases). */
  list(): bigint[] {
    return [...this.leases.values()].sort((a, b) => a.expiry - b.expiry).map((l) => l.id);
  }
}
