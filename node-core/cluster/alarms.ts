// Alarms (etcd's v3alarm) and the backend quota (etcdserver/quota.go).
//
// Alarms travel through the log, so every member holds the same set; they are
// persisted in the `alarm` bucket exactly as etcd (key: AlarmMember bytes,
// value: empty), which keeps them in snapshots and across restarts. While
// NOSPACE is raised the apply path refuses Put, Txn-with-puts and LeaseGrant
// (etcd's applierV3Capped); while CORRUPT is raised it refuses every write
// (applierV3Corrupt). The gate runs at apply time on every member, as etcd's
// wrapped appliers do, so a member's view never depends on when it learned
// of the alarm.
import type { Backend } from '../backend/backend';
import { Errors } from '../errors';
import {
  AlarmRequest_AlarmAction,
  AlarmType,
  decodeAlarmMember,
  encodeAlarmMember,
  type AlarmMember,
  type AlarmRequest,
  type AlarmResponseInit,
  type InternalRaftRequest,
  type InternalRaftRequestInit,
  type PutRequestInit,
  type TxnRequestInit,
} from '../proto/gen/etcdserverpb';
import type { AlarmApplied, ApplierTable, ApplyGate } from './apply-types';

export type { AlarmApplied, ApplyGate } from './apply-types';

export { AlarmType };

/** etcd's DefaultQuotaBytes (used when --quota-backend-bytes is 0). */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** etcd's MaxQuotaBytes: larger quotas are allowed but warned about. */
export const MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024;
/** etcd's cost estimates for a lease and for a key's metadata. */
const LEASE_OVERHEAD = 64;
const KV_OVERHEAD = 256;

export const ALARM_NAMES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;

export function alarmName(a: number): string {
  return ALARM_NAMES[a] ?? String(a);
}

/** etcd's AlarmMember.String() (gogo's compact text: zero fields left out), as Status errors and `etcdctl alarm list` print it. */
export function alarmString(m: { memberID: bigint; alarm: number }): string {
  return (m.memberID ? `memberID:${m.memberID} ` : '') + (m.alarm ? `alarm:${alarmName(m.alarm)} ` : '');
}

export class AlarmStore {
  private readonly byType = new Map<number, Map<bigint, AlarmMember>>();
  /** Bumped on every change, so hot paths can cache "no alarm" cheaply. */
  version = 0;

  constructor(private readonly backend: Backend) {
    for (const [k] of backend.range('alarm')) {
      const m = decodeAlarmMember(k);
      this.add(m);
    }
  }

  private add(m: AlarmMember): AlarmMember {
    let t = this.byType.get(m.alarm);
    if (!t) this.byType.set(m.alarm, (t = new Map()));
    const cur = t.get(m.memberID);
    if (cur) return cur;
    t.set(m.memberID, m);
    this.version++;
    return m;
  }

  /** Raises an alarm; returns the (possibly already present) member alarm. */
  activate(memberID: bigint, alarm: AlarmType): AlarmMember {
    const fresh: AlarmMember = { memberID, alarm };
    const m = this.add(fresh);
    if (m === fresh) this.backend.put('alarm', encodeAlarmMember(m), Buffer.alloc(0));
    return m;
  }

  deactivate(memberID: bigint, alarm: AlarmType): AlarmMember | undefined {
    const t = this.byType.get(alarm);
    const m = t?.get(memberID);
    if (!t || !m) return undefined;
    t.delete(memberID);
    this.version++;
    this.backend.del('alarm', encodeAlarmMember(m));
    return m;
  }

  /** Alarms of one type, or all of them for NONE (etcd's AlarmStore.Get). */
  get(alarm: AlarmType = AlarmType.NONE): AlarmMember[] {
    if (alarm !== AlarmType.NONE) return [...(this.byType.get(alarm)?.values() ?? [])];
    const out: AlarmMember[] = [];
    for (const t of this.byType.values()) out.push(...t.values());
    return out;
  }

  has(alarm: AlarmType): boolean {
    return (this.byType.get(alarm)?.size ?? 0) > 0;
  }
}

/** etcd's backendQuota: how many bytes a request may add, against the backend's size. */
export class Quota {
  readonly maxBytes: number;
  private cached = 0;
  private cachedAt = -Infinity;

  constructor(
    quotaBackendBytes: number,
    private readonly readSize: () => number,
    log?: { info(msg: string, f?: Record<string, unknown>): void; warn(msg: string, f?: Record<string, unknown>): void },
  ) {
    this.maxBytes = quotaBackendBytes > 0 ? quotaBackendBytes : DEFAULT_QUOTA_BYTES;
    if (quotaBackendBytes > MAX_QUOTA_BYTES) log?.warn('quota exceeds the maximum value', { 'quota-size-bytes': quotaBackendBytes, 'quota-maximum-size-bytes': MAX_QUOTA_BYTES });
    log?.info(quotaBackendBytes > 0 ? 'enabled backend quota' : 'enabled backend quota with default value', { 'quota-size-bytes': this.maxBytes });
  }

  // etcd reads an atomic the backend keeps current; our size is a stat call,
  // so writes share one reading per few milliseconds
  private size(): number {
    const now = performance.now();
    if (now - this.cachedAt > 20) {
      this.cached = this.readSize();
      this.cachedAt = now;
    }
    return this.cached;
  }

  /** Whether a request with this cost fits (cost 0 always does: it adds nothing). */
  available(cost: number): boolean {
    return cost === 0 || this.size() + cost < this.maxBytes;
  }

  remaining(): number {
    return this.maxBytes - this.size();
  }
}

export function costPut(r: PutRequestInit): number {
  return KV_OVERHEAD + (r.key?.length ?? 0) + (r.value?.length ?? 0);
}

export function costTxn(r: TxnRequestInit): number {
  const side = (ops: TxnRequestInit['success']): number => {
    let n = 0;
    for (const op of ops ?? []) if (op.request_put) n += costPut(op.request_put);
    return n;
  };
  return Math.max(side(r.success), side(r.failure));
}

/** The cost of a request against the quota (etcd's Cost over Put/Txn/LeaseGrant). */
export function costOf(req: InternalRaftRequestInit): number {
  if (req.put) return costPut(req.put);
  if (req.txn) return costTxn(req.txn);
  if (req.lease_grant) return LEASE_OVERHEAD;
  return 0;
}

/**
 * etcd's applierV3Corrupt and applierV3Capped: CORRUPT refuses every write,
 * NOSPACE refuses anything that adds data. Only the alarms (which every
 * member applies from the log) decide, never this member's own file size, so
 * members cannot diverge; the quota itself is checked when a request is
 * proposed (etcd's quotaKVServer / quotaLeaseServer), see EtcdNode.propose.
 */
export function createAlarmGate(store: AlarmStore): ApplyGate {
  return {
    check(req) {
      if (store.version === 0 || req.alarm) return;
      if (store.has(AlarmType.CORRUPT) && (req.put || req.delete_range || req.txn || req.compaction || req.lease_grant || req.lease_revoke)) {
        throw Errors.Corrupt;
      }
      if (store.has(AlarmType.NOSPACE) && costOf(req) > 0) throw Errors.NoSpace;
    },
  };
}

/** The `alarm` applier (etcd's applierV3backend.Alarm). */
export function alarmAppliers(store: AlarmStore, log?: { warn(msg: string, f?: Record<string, unknown>): void }): ApplierTable {
  return {
    alarm: (_ctx, req): AlarmApplied => {
      const ar = req.alarm as AlarmRequest;
      const out: AlarmApplied = { alarms: [] };
      switch (ar.action) {
        case AlarmRequest_AlarmAction.GET:
          out.alarms = store.get(ar.alarm);
          break;
        case AlarmRequest_AlarmAction.ACTIVATE: {
          if (ar.alarm === AlarmType.NONE) break;
          const before = store.get(ar.alarm).length;
          const m = store.activate(ar.memberID, ar.alarm);
          out.alarms.push(m);
          if (before === 0) log?.warn('alarm raised', { alarm: alarmName(m.alarm), from: m.memberID.toString(16) });
          break;
        }
        case AlarmRequest_AlarmAction.DEACTIVATE: {
          const m = store.deactivate(ar.memberID, ar.alarm);
          if (!m) break;
          out.alarms.push(m);
          if (store.get(ar.alarm).length === 0) log?.warn('alarm disarmed', { alarm: alarmName(m.alarm), from: m.memberID.toString(16) });
          break;
        }
      }
      return out;
    },
  };
}
