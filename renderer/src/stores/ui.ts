import { defineStore } from 'pinia';
import { ContractError, cleanErrorMessage, explainError, type ErrorHelp, type ProgressEvent } from '../../../electron/contract/index';
import { errorMessage, useApi } from '../api';

export type View = 'keys' | 'txn' | 'leases' | 'auth' | 'cluster' | 'maintenance' | 'backups' | 'data' | 'connections' | 'doctor' | 'space' | 'analyzer' | 'chaos';
export interface Toast {
  id: number;
  kind: 'ok' | 'error' | 'info';
  text: string;
  /** For errors the table explains: why it happened and what to do (error-help.ts). */
  help?: ErrorHelp;
}

/** The error as the user should read it: the table's explanation (when it has one) and etcd's own message. */
export function describeError(e: unknown): { text: string; help?: ErrorHelp } {
  const text = cleanErrorMessage(errorMessage(e));
  const code = e instanceof ContractError ? e.code : -1;
  return { text, help: explainError({ code, message: errorMessage(e) }) ?? undefined };
}

let toastSeq = 0;

export interface Confirmation {
  title: string;
  /** What will happen, in the user's terms. */
  message: string;
  detail?: string;
  /** The button: the action itself ("Delete user alice"), never "OK". */
  action: string;
}
let confirmResolve: ((yes: boolean) => void) | null = null;

export const useUiStore = defineStore('ui', {
  state: () => ({
    view: 'keys' as View,
    theme: 'light' as 'light' | 'dark',
    toasts: [] as Toast[],
    progress: {} as Record<string, ProgressEvent>,
    confirmation: null as Confirmation | null,
    /** The command palette (Ctrl/Cmd+K) and the shortcut sheet (?). */
    palette: false,
    shortcuts: false,
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
    toast(kind: Toast['kind'], text: string, ms = kind === 'error' ? 8000 : 2500, help?: ErrorHelp): void {
      const id = ++toastSeq;
      // Also to the console: support logs and e2e see what the user saw.
      if (kind === 'error') console.warn(`[etcdesk] ${help ? `${help.sentence} ` : ''}${text}`);
      this.toasts.push({ id, kind, text, help });
      // A burst of actions must not bury the page: only the newest few stay.
      if (this.toasts.length > 3) this.toasts.splice(0, this.toasts.length - 3);
      const t: unknown = setTimeout(() => this.dismiss(id), ms);
      // Under node (store tests) a pending toast must not keep the process alive.
      (t as { unref?: () => void }).unref?.();
    },
    /** An error toast explained from the one table; explained errors stay a little longer (there is more to read). */
    fail(e: unknown): void {
      const d = describeError(e);
      this.toast('error', d.text, d.help ? 12000 : 8000, d.help);
    },
    /** Asks before a destructive action; resolves false on Cancel or Esc. */
    confirm(c: Confirmation): Promise<boolean> {
      confirmResolve?.(false);
      this.confirmation = c;
      return new Promise((resolve) => (confirmResolve = resolve));
    },
    answerConfirm(yes: boolean): void {
      const r = confirmResolve;
      confirmResolve = null;
      this.confirmation = null;
      r?.(yes);
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
        this.fail(e);
        return undefined;
      }
    },
  },
});
