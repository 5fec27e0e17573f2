import { defineStore } from 'pinia';
import type { ClusterInfo } from '../../../electron/contract/index';
import { useApi } from '../api';

export const useClusterStore = defineStore('cluster', {
  state: () => ({
    info: null as ClusterInfo | null,
    hashes: null as { endpoint: string; hash: number; revision: number }[] | null,
    loading: false,
  }),
  actions: {
    async load(): Promise<void> {
      this.loading = true;
      try {
        this.info = await useApi().invoke('cluster:info', {});
      } finally {
        this.loading = false;
      }
    },
    async addMember(peerUrls: string[], learner: boolean): Promise<void> {
      this.info = await useApi().invoke('cluster:member-add', { peerUrls, learner });
    },
    async removeMember(id: string): Promise<void> {
      this.info = await useApi().invoke('cluster:member-remove', { id });
    },
    async promote(id: string): Promise<void> {
      this.info = await useApi().invoke('cluster:member-promote', { id });
    },
    async moveLeader(id: string): Promise<void> {
      this.info = await useApi().invoke('cluster:move-leader', { id });
    },
    async defragment(endpoint?: string): Promise<void> {
      await useApi().invoke('maint:defragment', { endpoint });
    },
    async hashKV(): Promise<void> {
      this.hashes = (await useApi().invoke('maint:hashkv', {})).hashes;
    },
    async disarm(): Promise<void> {
      this.info = await useApi().invoke('maint:alarm-disarm', {});
    },
    async compact(revision: number): Promise<void> {
      await useApi().invoke('kv:compact', { revision });
    },
    async snapshot(): Promise<{ path: string | null; bytes: number }> {
      return useApi().invoke('maint:snapshot', { opId: `snap-${Date.now()}` });
    },
  },
});
