import { defineStore } from 'pinia';
import type { AuthOverview, PermCheckOp, PermCheckResult, PermScope, PermType } from '../../../electron/contract/index';
import { useApi } from '../api';

export const useAuthStore = defineStore('auth', {
  state: () => ({
    overview: null as AuthOverview | null,
    check: null as PermCheckResult | null,
    loading: false,
  }),
  getters: {
    enabled: (s): boolean => !!s.overview?.enabled,
    /** etcd refuses to enable auth without root holding the root role. */
    rootReady: (s): boolean => !!s.overview?.users.find((u) => u.name === 'root')?.roles.includes('root'),
    rootExists: (s): boolean => !!s.overview?.users.some((u) => u.name === 'root'),
  },
  actions: {
    async load(): Promise<void> {
      this.loading = true;
      try {
        this.overview = await useApi().invoke('auth:overview', {});
      } finally {
        this.loading = false;
      }
    },
    async enable(rootPassword: string): Promise<void> {
      this.overview = await useApi().invoke('auth:enable', { rootPassword });
    },
    async disable(): Promise<void> {
      this.overview = await useApi().invoke('auth:disable', {});
    },
    async addUser(name: string, password: string): Promise<void> {
      await useApi().invoke('auth:user-add', { name, password });
      await this.load();
    },
    async deleteUser(name: string): Promise<void> {
      await useApi().invoke('auth:user-delete', { name });
      await this.load();
    },
    async changePassword(name: string, password: string): Promise<void> {
      await useApi().invoke('auth:user-passwd', { name, password });
    },
    async grantRole(name: string, role: string): Promise<void> {
      await useApi().invoke('auth:user-grant', { name, role });
      await this.load();
    },
    async revokeRole(name: string, role: string): Promise<void> {
      await useApi().invoke('auth:user-revoke', { name, role });
      await this.load();
    },
    async addRole(name: string): Promise<void> {
      await useApi().invoke('auth:role-add', { name });
      await this.load();
    },
    async deleteRole(name: string): Promise<void> {
      await useApi().invoke('auth:role-delete', { name });
      await this.load();
    },
    async grantPermission(name: string, type: PermType, scope: PermScope, key: string, rangeEnd?: string): Promise<void> {
      await useApi().invoke('auth:role-grant', { name, perm: { type, scope, key, rangeEnd } });
      await this.load();
    },
    async revokePermission(name: string, key: string, rangeEnd: string): Promise<void> {
      await useApi().invoke('auth:role-revoke', { name, key, rangeEnd });
      await this.load();
    },
    async runCheck(user: string, op: PermCheckOp, key: string): Promise<PermCheckResult> {
      this.check = await useApi().invoke('auth:check', { user, op, key });
      return this.check;
    },
  },
});
