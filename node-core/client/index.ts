// Public surface of the etcd v3 client.
export { EtcdClient, prefixEnd, type ClientOptions } from './client';
export type { TlsOptions } from './connection';
export type { Watch, WatchOptions, WatchUpdate, WatchListener, LeaseKeepAlive } from './streams';
// The wire types callers need to build requests and read responses, under
// names that cannot collide with other modules' exports from node-core/index.
export * as EtcdPb from '../proto/gen/etcdserverpb';
export * as MvccPb from '../proto/gen/mvccpb';
export * as AuthPb from '../proto/gen/authpb';
