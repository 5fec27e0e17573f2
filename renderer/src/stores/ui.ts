import { defineStore } from 'pinia';
import type { ProgressEvent } from '../../../electron/contract/index';
import { errorMessage, useApi } from '../api';

export type View = 'keys' | 'txn' | 'leases' | 'auth' | 'cluster' | 'maintenance' | 'connections';
export interface Toast {
  id: number;
  kind: 'ok' | 'error' | 'info';
  text: string;
}

let toastSeq = 0;

export const useUiStore = defineStore('ui', {
  state: () => ({
    view: 'keys' as View,
    theme: 'light' as 'light' | 'dark',
    toasts: [] as Toast[],
    progress: {} as Record<string, ProgressEvent>,
  }),
  getters: {
    activeProgress: (s): ProgressEvent[] => Object.values(s.progress),
  },
  actions: {
    init(prefersDark: boolean, saved: string | null): void {
      this.theme = saved === 'dark' || saved === 'light' ? saved : prefersDark ? 'dark' : 'light';
      useApi().on('progress', (p) => {
        if (p.finished) delete this.progress[p.opId];
        else this.progress[p.opId] = p;
      });
    },
    toggleTheme(): void {
      this.theme = this.theme === 'dark' ? 'light' : 'dark';
    },
    toast(kind: Toast['kind'], text: string, ms = kind === 'error' ? 8000 : 2500): void {
      const id = ++toastSeq;
      // Also to the console: support logs and e2e see what the user saw.
      if (kind === 'error') console.warn(`[etcdesk] ${text}`);
      this.toasts.push({ id, kind, text });
      // A burst of actions must not bury the page: only the newest few stay.
      if (this.toasts.length > 3) this.toasts.splice(0, this.toasts.length - 3);
      const t: unknown = setTimeout(() => this.dismiss(id), ms);
      // Under node (store tests) a pending toast must not keep the process alive.
      (t as { unref?: () => void }).unref?.();
    },
    dismiss(id: number): void {
      this.toasts = this.toasts.filter((t) => t.id !== id);
    },
    /** Runs an action, turning a failure into an error toast carrying etcd's message. */
    async attempt<T>(fn: () => Promise<T>, ok?: string): Promise<T | undefined> {
      try {
        const v = await fn();
        if (ok) this.toast('ok', ok);
        return v;
      } catch (e) {
        this.toast('error', errorMessage(e));
        return undefined;
      }
    },
  },
});
