import { defineStore } from 'pinia';
import type { AppInfo, ConnectionProfile, ConnectionStatus } from '../../../electron/contract/index';
import { useApi } from '../api';

const idle: ConnectionStatus = { state: 'disconnected', profileId: null, profileName: '', kind: null, endpoints: [], activeEndpoint: null, user: null };

export const useConnectionStore = defineStore('connection', {
  state: () => ({
    status: idle as ConnectionStatus,
    profiles: [] as ConnectionProfile[],
    info: null as AppInfo | null,
    /** Bumps on every (re)connect so views reload their data. */
    epoch: 0,
  }),
  getters: {
    connected: (s): boolean => s.status.state === 'connected',
  },
  actions: {
    async init(): Promise<void> {
      const api = useApi();
      api.on('conn:changed', (s) => this.apply(s));
      const [info, status, profiles] = await Promise.all([api.invoke('app:info', {}), api.invoke('conn:status', {}), api.invoke('conn:list', {})]);
      this.info = info;
      this.profiles = profiles;
      this.apply(status);
    },
    apply(s: ConnectionStatus): void {
      const was = this.status.state === 'connected' ? `${this.status.profileId}|${this.status.user}` : null;
      this.status = s;
      const now = s.state === 'connected' ? `${s.profileId}|${s.user}` : null;
      if (now && now !== was) this.epoch++;
    },
    async refreshProfiles(): Promise<void> {
      this.profiles = await useApi().invoke('conn:list', {});
    },
    async connect(id: string): Promise<ConnectionStatus> {
      const s = await useApi().invoke('conn:connect', { id });
      this.apply(s);
      return s;
    },
    async disconnect(): Promise<void> {
      this.apply(await useApi().invoke('conn:disconnect', {}));
    },
    async save(p: ConnectionProfile): Promise<ConnectionProfile> {
      const saved = await useApi().invoke('conn:save', p);
      await this.refreshProfiles();
      return saved;
    },
    async remove(id: string): Promise<void> {
      await useApi().invoke('conn:delete', { id });
      await this.refreshProfiles();
    },
  },
});
