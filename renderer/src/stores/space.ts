import { defineStore } from 'pinia';
import type { SpacePlan, SpaceReport } from '../../../electron/contract/index';
import { useApi } from '../api';
import { useConnectionStore } from './connection';

/** The user's quota for a connection whose node does not export etcd_server_quota_backend_bytes. */
const quotaKey = (profileId: string): string => `etcdesk-quota:${profileId}`;

export const useSpaceStore = defineStore('space', {
  state: () => ({
    report: null as SpaceReport | null,
    plan: null as SpacePlan | null,
    /** Revisions kept by the plan's compaction. */
    retention: 1000,
    probe: true,
    userQuota: null as number | null,
    /** The connection the plan was made for: another connection's plan is never shown as this one's. */
    planProfile: null as string | null,
    listening: false,
  }),
  getters: {
    running: (s) => s.plan?.state === 'running',
  },
  actions: {
    /** Follows the plan's progress (main sends every step's change). */
    listen(): void {
      if (this.listening) return;
      this.listening = true;
      useApi().on('space:plan', (p) => {
        if (this.plan?.planId === p.planId) this.plan = p;
      });
    },
    loadQuota(): void {
      const id = useConnectionStore().status.profileId;
      const v = id ? Number(localStorage.getItem(quotaKey(id))) : 0;
      this.userQuota = v > 0 ? v : null;
    },
    setQuota(bytes: number | null): void {
      const id = useConnectionStore().status.profileId;
      this.userQuota = bytes && bytes > 0 ? Math.round(bytes) : null;
      if (!id) return;
      if (this.userQuota) localStorage.setItem(quotaKey(id), String(this.userQuota));
      else localStorage.removeItem(quotaKey(id));
    },
    async load(): Promise<void> {
      this.report = await useApi().invoke('space:report', { quotaBytes: this.userQuota ?? undefined });
    },
    async makePlan(): Promise<void> {
      this.plan = await useApi().invoke('space:plan', { retention: this.retention, probe: this.probe });
      this.planProfile = useConnectionStore().status.profileId;
    },
    async run(): Promise<void> {
      if (!this.plan) return;
      this.listen();
      const p = await useApi().invoke('space:run', { planId: this.plan.planId });
      // An event may already have brought a later state.
      if (this.plan.state === 'review') this.plan = p;
    },
    async abort(): Promise<void> {
      if (!this.plan) return;
      const p = await useApi().invoke('space:abort', { planId: this.plan.planId });
      if (this.plan.state === 'running') this.plan = { ...this.plan, abortRequested: p.abortRequested };
    },
    discardPlan(): void {
      this.plan = null;
    },
  },
});
