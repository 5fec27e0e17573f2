// The applier's extension points: each domain (kv, lease, auth, ...) exports a
// table of appliers keyed by the InternalRaftRequest field it handles. The
// applier runs them in log order on every member, so they must be
// deterministic: no clocks, no randomness, no I/O other than backend writes.
//
// The boundary is typed end to end: ApplyResults says what applying each
// request kind produces, the tables must return exactly that, and
// EtcdNode.propose(req) resolves with ResultOf<typeof req>, so no caller casts.
import type { Backend } from '../backend/backend';
import type { AuthStore } from '../auth/store';
import type { Lessor } from '../lease/lessor';
import type {
  AlarmMember,
  AlarmResponseInit,
  DeleteRangeResponseInit,
  InternalRaftRequest,
  InternalRaftRequestInit,
  LeaseCheckpointResponseInit,
  LeaseRevokeResponseInit,
  PutResponseInit,
  RangeResponseInit,
  TxnResponseInit,
} from '../proto/gen/etcdserverpb';
import type { KVStore } from '../mvcc/types';
import type { MemberStore } from './members';

/** Checks a request's permissions at apply time (etcd's authApplierV3); installed by the auth store. */
export interface ApplyAuthGuard {
  authorize(req: InternalRaftRequest): void;
}

/** Refuses requests while an alarm forbids them (etcd's corrupt/capped appliers). */
export interface ApplyGate {
  check(req: InternalRaftRequest): void;
}

/** The domain stores the appliers work on, registered by the node at start. */
export interface ApplyServices {
  members: MemberStore;
  lessor: Lessor;
  auth: AuthStore;
  authGuard?: ApplyAuthGuard;
  alarmGate?: ApplyGate;
}

export interface ApplyContext {
  backend: Backend;
  mvcc: KVStore;
  /** Raft index and term of the entry being applied. */
  index: number;
  term: number;
  services: ApplyServices;
}

export interface CompactionApplied {
  /** Resolves when the superseded revisions are physically removed. */
  done: Promise<void>;
}

export interface AlarmApplied extends AlarmResponseInit {
  alarms: AlarmMember[];
}

/** An auth change that answers nothing but its header. */
type Done = Record<string, never>;
type Auth<K extends keyof AuthStore> = AuthStore[K] extends (...a: never[]) => infer R ? R : never;

/** What applying each request kind produces (its response without header). */
export interface ApplyResults {
  range: RangeResponseInit;
  put: PutResponseInit;
  delete_range: DeleteRangeResponseInit;
  txn: TxnResponseInit;
  compaction: CompactionApplied;
  lease_grant: { ID: bigint; TTL: number };
  lease_revoke: LeaseRevokeResponseInit;
  lease_checkpoint: LeaseCheckpointResponseInit;
  alarm: AlarmApplied;
  auth_enable: Done;
  auth_disable: Done;
  authenticate: Auth<'authenticate'>;
  auth_user_add: Done;
  auth_user_delete: Done;
  auth_user_get: Auth<'userGet'>;
  auth_user_change_password: Done;
  auth_user_grant_role: Done;
  auth_user_revoke_role: Done;
  auth_user_list: Auth<'userList'>;
  auth_role_list: Auth<'roleList'>;
  auth_role_add: Done;
  auth_role_delete: Done;
  auth_role_get: Auth<'roleGet'>;
  auth_role_grant_permission: Done;
  auth_role_revoke_permission: Done;
  member_attr: Done;
}

export type ApplyField = keyof ApplyResults;

/** The result a request implies: its kind's entry in ApplyResults (a union if the kind is not known statically). */
export type ResultOf<R extends InternalRaftRequestInit> = ApplyResults[Extract<keyof R, ApplyField>];

/** What the proposer gets back: the apply result and the store revision right after it. */
export interface Applied<T = unknown> {
  result: T;
  rev: number;
}

/** Returns the response (an `XResponseInit` without header) or throws an EtcdError. */
export type ApplyFn<K extends ApplyField = ApplyField> = (ctx: ApplyContext, req: InternalRaftRequest) => ApplyResults[K];

export type ApplierTable = { [K in ApplyField]?: ApplyFn<K> };
