// node-core's public entry: the one module the desktop app and other
// embedders import. Everything else in node-core is internal.
export * from './client/index';
export { startNode, type RunningNode, type StartOptions } from './server/start';
export { restoreSnapshot, type RestoreOptions, type RestoreResult } from './server/snapshot-restore';
export { startLocalCluster, type LocalCluster, type LocalClusterOptions, type LocalMemberInfo } from './server/local-cluster';
export { defaultConfig, mergeConfig, parseArgs, type NodeConfig } from './cluster/config';
export { createLogger, silentLogger, type Logger, type LogLevel } from './cluster/logger';
export type { Member } from './cluster/membership';
