import { defineStore } from 'pinia';
import type { AppInfo, ConnectionProfile, ConnectionStatus } from '../../../electron/contract/index';
import { useApi } from '../api';

const idle: ConnectionStatus = { state: 'disconnected', profileId: null, profileName: '', kind: null, endpoints: [], activeEndpoint: null, user: null };

/** etcd's errors that mean "these credentials do not get in" (by name, as main reports them). */
export const SIGN_IN_ERRORS = new Set(['UserEmpty', 'InvalidAuthToken', 'AuthFailed']);

export interface SignInRequest {
  profileId: string;
  profileName: string;
  /** Prefilled: the profile's user, or root for the app's own nodes. */
  username: string;
  /** Why we ask (etcd's message). */
  reason: string;
}

export const useConnectionStore = defineStore('connection', {
  state: () => ({
    status: idle as ConnectionStatus,
    profiles: [] as ConnectionProfile[],
    info: null as AppInfo | null,
    /** Bumps on every (re)connect so views reload their data. */
    epoch: 0,
    /** The sign-in dialog, open while set. */
    signIn: null as SignInRequest | null,
    signInError: '',
    signingIn: false,
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
      if (s.signInRequired && s.profileId && !this.signingIn) this.askSignIn(s.error?.message ?? 'the node asks for credentials', s.profileId);
    },
    /** Opens the sign-in dialog for the current (or given) connection. */
    askSignIn(reason: string, id?: string): void {
      const profileId = id ?? this.status.profileId;
      if (!profileId) return;
      const p = this.profiles.find((x) => x.id === profileId);
      const hosted = p ? p.kind !== 'remote' : this.status.kind !== 'remote';
      this.signIn = { profileId, profileName: p?.name ?? this.status.profileName, username: p?.username || (hosted ? 'root' : ''), reason };
      this.signInError = '';
    },
    /** Sends the credentials; the dialog stays open with etcd's answer when they are refused. */
    async submitSignIn(username: string, password: string, remember: boolean): Promise<boolean> {
      const req = this.signIn;
      if (!req) return false;
      this.signingIn = true;
      this.signInError = '';
      try {
        const s = await useApi().invoke('conn:sign-in', { id: req.profileId, username, password, remember });
        this.apply(s);
        await this.refreshProfiles();
        if (s.state === 'connected') {
          this.signIn = null;
          return true;
        }
        this.signInError = s.error?.message ?? s.state;
        return false;
      } catch (e) {
        this.signInError = e instanceof Error ? e.message : String(e);
        return false;
      } finally {
        this.signingIn = false;
      }
    },
    cancelSignIn(): void {
      this.signIn = null;
      this.signInError = '';
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
    /** Any profile: remote ones in full; built-in and restored ones their name and credentials. */
    async save(p: ConnectionProfile): Promise<ConnectionProfile> {
      const saved = await useApi().invoke('conn:save', p);
      await this.refreshProfiles();
      return saved;
    },
    /** The remote profiles as a shareable JSON text (no secrets). */
    async exportProfiles(): Promise<string> {
      return JSON.stringify(await useApi().invoke('conn:export', {}), null, 2);
    },
    async importProfiles(text: string): Promise<{ added: ConnectionProfile[]; skipped: string[] }> {
      const r = await useApi().invoke('conn:import', { text });
      await this.refreshProfiles();
      return r;
    },
    async remove(id: string): Promise<void> {
      await useApi().invoke('conn:delete', { id });
      await this.refreshProfiles();
      if (this.status.profileId === id) this.apply(await useApi().invoke('conn:status', {}));
    },
  },
});

/** What removing a profile does, for the confirm dialog. */
export function removalEffect(p: ConnectionProfile): string {
  switch (p.kind) {
    case 'remote':
      return `The saved connection "${p.name}" and its saved password are forgotten. The cluster itself is not touched.`;
    case 'restored':
      return `The node restored from this backup stops and its data folder${p.dataDir ? ` (${p.dataDir})` : ''} is deleted. The backup file itself is kept.`;
    default:
      return `"${p.name}" is built in and stays, with its data: only its custom name and saved credentials are forgotten.`;
  }
}
