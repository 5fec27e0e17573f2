import { defineStore } from 'pinia';
import type { ClusterInfo, HashCheck } from '../../../electron/contract/index';
import { useApi } from '../api';
import { addSample, type Sample } from '../lib/cluster-metrics';

export const useClusterStore = defineStore('cluster', {
  state: () => ({
    info: null as ClusterInfo | null,
    hashCheck: null as HashCheck | null,
    loading: false,
    /** Last minute of polls: write rate and raft index for the live chart. */
    samples: [] as Sample[],
    /** Local member index being stopped/restarted (buttons show it). */
    pendingLocal: null as number | null,
  }),
  getters: {
    leader: (s) => s.info?.members.find((m) => m.isLeader) ?? null,
  },
  actions: {
    set(info: ClusterInfo): void {
      this.info = info;
      this.samples = addSample(this.samples, info, Date.now());
    },
    async load(): Promise<void> {
      this.loading = true;
      try {
        this.set(await useApi().invoke('cluster:info', {}));
      } finally {
        this.loading = false;
      }
    },
    resetSamples(): void {
      this.samples = [];
    },
    async addMember(peerUrls: string[], learner: boolean): Promise<void> {
      this.set(await useApi().invoke('cluster:member-add', { peerUrls, learner }));
    },
    async removeMember(id: string): Promise<void> {
      this.set(await useApi().invoke('cluster:member-remove', { id }));
    },
    async promote(id: string): Promise<void> {
      this.set(await useApi().invoke('cluster:member-promote', { id }));
    },
    async moveLeader(id: string): Promise<void> {
      this.set(await useApi().invoke('cluster:move-leader', { id }));
    },
    async stopLocal(index: number): Promise<void> {
      this.pendingLocal = index;
      try {
        this.set(await useApi().invoke('cluster:local-stop', { index }));
      } finally {
        this.pendingLocal = null;
      }
    },
    async restartLocal(index: number): Promise<void> {
      this.pendingLocal = index;
      try {
        this.set(await useApi().invoke('cluster:local-restart', { index }));
      } finally {
        this.pendingLocal = null;
      }
    },
    async defragment(endpoint?: string): Promise<void> {
      await useApi().invoke('maint:defragment', { endpoint });
    },
    async hashKV(revision?: number): Promise<HashCheck> {
      this.hashCheck = await useApi().invoke('maint:hashkv', { revision });
      return this.hashCheck;
    },
    async disarm(): Promise<void> {
      this.set(await useApi().invoke('maint:alarm-disarm', {}));
    },
    async compact(revision: number, physical = false): Promise<void> {
      await useApi().invoke('kv:compact', { revision, physical });
    },
  },
});
