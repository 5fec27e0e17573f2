import { defineStore } from 'pinia';
import type { ClusterInfo, HashCheck } from '../../../electron/contract/index';
import { useApi } from '../api';
import { addToSeries, emptySeries, isStale, type Sample, type Series } from '../lib/cluster-metrics';
import { useConnectionStore } from './connection';

/** The live cluster:changed subscription (one per window). */
let offChanged: (() => void) | null = null;

export const useClusterStore = defineStore('cluster', {
  state: () => ({
    info: null as ClusterInfo | null,
    hashCheck: null as HashCheck | null,
    loading: false,
    /** Last minute of reads of the live connection: write rate and raft index for the chart. */
    series: emptySeries() as Series,
    /** Local member index being stopped/restarted (buttons show it). */
    pendingLocal: null as number | null,
    /** What is pending on it: a stopped member's button says "Stopping…" until the stop completes. */
    pendingAction: null as 'stop' | 'restart' | null,
  }),
  getters: {
    leader: (s) => s.info?.members.find((m) => m.isLeader) ?? null,
    samples: (s): Sample[] => s.series.samples,
  },
  actions: {
    /** A read (answer or push) of the live connection; one of a previous connection is dropped. */
    set(info: ClusterInfo): void {
      const current = useConnectionStore().status.connectionId;
      if (isStale(info, current)) return;
      this.info = info;
      this.series = addToSeries(this.series, info, current, Date.now());
    },
    /** on: main pushes every read of the cluster (member stopped, leader changes) until off or the connection changes. */
    async monitor(on: boolean): Promise<void> {
      const api = useApi();
      if (on && !offChanged) offChanged = api.on('cluster:changed', (info) => this.set(info));
      if (!on) {
        offChanged?.();
        offChanged = null;
      }
      await api.invoke('cluster:monitor', { on });
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
      this.series = emptySeries();
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
      this.pendingAction = 'stop';
      try {
        this.set(await useApi().invoke('cluster:local-stop', { index }));
      } finally {
        this.pendingLocal = null;
        this.pendingAction = null;
      }
    },
    async restartLocal(index: number): Promise<void> {
      this.pendingLocal = index;
      this.pendingAction = 'restart';
      try {
        this.set(await useApi().invoke('cluster:local-restart', { index }));
      } finally {
        this.pendingLocal = null;
        this.pendingAction = null;
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
