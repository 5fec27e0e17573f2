// node-core's public entry: the one module the desktop app and other
// embedders import. Everything else in node-core is internal.
export * from './client/index';
export { startNode, type NodeFaults, type RunningNode, type StartOptions } from './server/start';
// why a member stopped itself (RunningNode.node.fatalError): disk full, I/O error, a damaged log; by class and kind
export { StorageError, type StorageFailure } from './backend/storage-error';
export { restoreSnapshot, type RestoreOptions, type RestoreResult } from './server/snapshot-restore';
export { restoreLocalCluster, startLocalCluster, type LocalCluster, type LocalClusterOptions, type LocalMemberHandle, type LocalMemberInfo } from './server/local-cluster';
export { defaultConfig, mergeConfig, parseArgs, type NodeConfig } from './cluster/index';
export { createLogger, silentLogger, type Logger, type LogLevel } from './support/logger';
export type { Member } from './cluster/index';
// etcd's error table: the app recognises errors by these identities (code and exact message), never by text search.
export { Code, EtcdError, Errors, type EtcdErrorName } from './errors/index';
// etcd's permission rule (merged intervals, Contains/Intersects): the app's "can user X read key Y" asks this, not a copy.
export { checkRange, mergePermissions, type PermKind, type UnifiedPermissions } from './auth/range-perm';
// A free loopback port (bind 0, then release): the app's own nodes and tests pick ports with it.
export { freePort } from './support/listen-address';
// The linearizability checker and a KV history recorder (Porcupine-style): the app's chaos lab checks its workload with them.
export { checkKvHistory, describeReport, kvModel, type CheckReport, type CheckResult, type KvInput, type KvOperation, type KvOutput } from './verify/linearizability';
export { HistoryRecorder, kvCas, kvGet, kvPut, seededRandom } from './verify/history-recorder';
