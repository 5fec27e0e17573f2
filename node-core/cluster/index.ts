// cluster's public entry: what the server layer (and node-core's own public
// entry) may use. Everything else under cluster/ is internal to the member.
export type { ClusterNode } from './cluster-node';
export type { ApplyResults, ResultOf } from './apply-types';
export { EtcdNode, CLUSTER_ID, MEMBER_ID, ConfChangeType, type Applied, type NodeOpenOptions } from './node';
export { defaultConfig, FlagError, mergeConfig, parseArgs, parseInitialCluster, usage, type NodeConfig } from './config';
export { computeClusterId, computeMemberId, type Member } from './membership';
export { MemberStore } from './members';
export { alarmString } from './alarms';
export type { CompactionApplied } from './apply-kv';
export { instrumentService } from './metrics';
