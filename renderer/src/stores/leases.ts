import { defineStore } from 'pinia';
import type { LeaseInfo } from '../../../electron/contract/index';
import { useApi } from '../api';

export const useLeasesStore = defineStore('leases', {
  state: () => ({
    leases: [] as LeaseInfo[],
    now: Date.now(),
    loading: false,
    subscribed: false,
    ticker: null as ReturnType<typeof setInterval> | null,
  }),
  getters: {
    /** Seconds left, counted down locally from the last TTL main reported. */
    remaining: (s) => (l: LeaseInfo): number => Math.max(0, Math.ceil(l.ttl - (s.now - l.at) / 1000)),
  },
  actions: {
    subscribe(): void {
      if (this.subscribed) return;
      this.subscribed = true;
      useApi().on('lease:tick', (t) => {
        const l = this.leases.find((x) => x.id === t.id);
        if (!l) return;
        if (t.gone) this.leases = this.leases.filter((x) => x.id !== t.id);
        else Object.assign(l, { ttl: t.ttl, at: t.at });
      });
    },
    startTicker(): void {
      if (this.ticker) return;
      this.ticker = setInterval(() => {
        this.now = Date.now();
        // An expired lease is gone from the server too: refresh once it hits zero.
        if (this.leases.some((l) => !l.keepingAlive && this.remaining(l) === 0)) void this.load();
      }, 500);
    },
    stopTicker(): void {
      if (this.ticker) clearInterval(this.ticker);
      this.ticker = null;
    },
    async load(): Promise<void> {
      this.loading = true;
      try {
        this.leases = await useApi().invoke('lease:list', {});
        this.now = Date.now();
      } finally {
        this.loading = false;
      }
    },
    upsert(l: LeaseInfo): void {
      const i = this.leases.findIndex((x) => x.id === l.id);
      if (i >= 0) this.leases[i] = l;
      else this.leases.push(l);
    },
    async grant(ttl: number): Promise<LeaseInfo> {
      const l = await useApi().invoke('lease:grant', { ttl });
      this.upsert(l);
      return l;
    },
    async revoke(id: string): Promise<void> {
      await useApi().invoke('lease:revoke', { id });
      this.leases = this.leases.filter((x) => x.id !== id);
    },
    async keepAliveOnce(id: string): Promise<void> {
      this.upsert(await useApi().invoke('lease:keepalive-once', { id }));
    },
    async setKeepAlive(id: string, on: boolean): Promise<void> {
      this.upsert(await useApi().invoke('lease:keepalive', { id, on }));
    },
    async attach(id: string, key: string): Promise<void> {
      this.upsert(await useApi().invoke('lease:attach', { id, key }));
    },
  },
});
