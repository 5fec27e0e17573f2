// What the server layer may use of a member: reads and writes through the
// log, membership, leadership, alarms, and the few stores the maintenance
// and auth services work on directly. EtcdNode implements it; server/ is
// written against this interface, never against the node's insides (its
// raft loop, member store, applier), so those can change shape freely.
import type { Backend } from '../backend/backend';
import type { StorageError } from '../backend/storage-error';
import type { AuthStore } from '../auth/store';
import type { Lessor } from '../lease/lessor';
import type { KVStore } from '../mvcc/types';
import type { AlarmMember, InternalRaftRequestInit, ResponseHeaderInit } from '../proto/gen/etcdserverpb';
import type { ConfChangeType } from '../raft';
import type { Logger } from '../support/logger';
import type { Applied, ResultOf } from './apply-types';
import type { NodeConfig } from './config';
import type { Member } from './membership';
import type { Metrics } from './metrics';

export interface ClusterNode {
  readonly config: NodeConfig;
  readonly log: Logger;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** 0n while there is no leader. */
  readonly leaderId: bigint;
  readonly raftTerm: number;
  readonly raftIndex: number;
  readonly appliedIndex: number;
  readonly members: Member[];
  readonly mvcc: KVStore;
  /** The state machine's file (maintenance: status, hash, defragment, snapshot). */
  readonly backend: Backend;
  readonly lessor: Lessor;
  readonly auth: AuthStore;
  readonly metrics: Metrics;
  /** Resolves when the member stopped (stop, removal, storage failure). */
  readonly closed: Promise<void>;
  /** Resolves once this member's attributes went through the log (etcd's ReadyNotify). */
  readonly published: Promise<void>;
  /** The storage failure that stopped the member, if one did. */
  readonly fatalError: StorageError | undefined;

  header(rev?: number): ResponseHeaderInit;
  /** Proposes a request through raft; resolves with what applying it produced, typed by the request's kind. */
  propose<R extends InternalRaftRequestInit>(req: R): Promise<Applied<ResultOf<R>>>;
  readBarrier(): Promise<void>;
  waitApplied(index: number): Promise<void>;
  isLeader(): boolean;
  isLearner(): boolean;
  onLeaderChange(cb: (isLeader: boolean) => void): () => void;
  /** Called after a raft snapshot replaced the state machine (watchers resync from history). */
  onStateRestored(cb: () => void): () => void;

  /** A member by id (undefined when unknown or removed). */
  member(id: bigint): Member | undefined;
  /** Throws etcd's MemberAdd refusals (peer URL in use, id exists). */
  validateMemberAdd(m: Member): void;
  /** Throws etcd's MemberUpdate refusals (unknown member, peer URL in use). */
  validateMemberUpdate(id: bigint, peerURLs: string[]): void;
  isRemovedMember(id: bigint): boolean;
  changeMembership(type: ConfChangeType, id: bigint, member?: Member): Promise<Applied<unknown>>;
  /** On the leader: how far a member's log matches (raft progress); undefined elsewhere or when unknown. */
  matchIndex(id: bigint): number | undefined;
  /** Asks raft to hand leadership to `target` (MoveLeader). */
  transferLeader(target: bigint): void;
  /** Epoch ms since which the peer has been reachable; undefined when it is not. */
  peerActiveSince(id: bigint): number | undefined;

  alarmList(): { memberId: bigint; alarm: number }[];
  /** The active alarms as stored (etcd's AlarmMember). */
  activeAlarms(): AlarmMember[];
  hasAlarm(exclude?: string[]): boolean;
  /** The Prometheus text for /metrics. */
  renderMetrics(): Promise<string>;
}
