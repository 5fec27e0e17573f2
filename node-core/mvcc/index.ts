export { MvccStore, type MvccStoreOptions } from './store';
export type { EventListener, HashKVResult, KVStore, LeaseHooks, WriteTxn } from './types';
