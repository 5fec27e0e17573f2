import { defineStore } from 'pinia';
import type { ChaosFault, ChaosState } from '../../../electron/contract/index';
import { useApi } from '../api';

/** The chaos lab's state as main pushes it (chaos:changed) and as each action answers it. */
export const useChaosStore = defineStore('chaos', {
  state: () => ({
    state: null as ChaosState | null,
    busy: false,
  }),
  getters: {
    running: (s): boolean => !!s.state?.running,
  },
  actions: {
    /** Follows main's pushes; returns the unsubscribe. */
    follow(): () => void {
      return useApi().on('chaos:changed', (s) => {
        this.state = s;
      });
    },
    async load(): Promise<void> {
      this.state = await useApi().invoke('chaos:state', {});
    },
    async start(): Promise<void> {
      this.state = await useApi().invoke('chaos:start', {});
    },
    async stop(): Promise<void> {
      this.busy = true;
      try {
        this.state = await useApi().invoke('chaos:stop', {});
      } finally {
        this.busy = false;
      }
    },
    async fault(member: number, fault: ChaosFault, opts: { seconds?: number; delayMs?: number } = {}): Promise<void> {
      this.state = await useApi().invoke('chaos:fault', { member, fault, ...opts });
    },
  },
});
