import { defineStore } from 'pinia';
import type { BackupResult, BackupRun, BackupSchedule, RestoreResult } from '../../../electron/contract/index';
import { useApi } from '../api';
import { useConnectionStore } from './connection';

let opSeq = 0;

/** File → Export Backup… / Restore Backup…: one flow each, whichever started it (menu, sidebar, shortcut). */
export const useBackupStore = defineStore('backup', {
  state: () => ({
    dialog: null as 'export' | 'restore' | null,
    opId: '',
    busy: false,
    exported: null as BackupResult | null,
    restored: null as RestoreResult | null,
    error: '',
    files: [] as { name: string; path: string; bytes: number; mtime: number }[],
    dir: '',
    schedules: [] as BackupSchedule[],
    history: [] as BackupRun[],
    runningFor: '',
  }),
  actions: {
    /** Opens the export dialog and starts the stream at once (main asks where, or uses the backups folder). */
    async exportBackup(): Promise<BackupResult | null> {
      this.dialog = 'export';
      this.exported = null;
      this.error = '';
      this.busy = true;
      this.opId = `backup-${Date.now()}-${++opSeq}`;
      try {
        const r = await useApi().invoke('maint:snapshot', { opId: this.opId });
        if (!r.path) {
          this.dialog = null; // save dialog cancelled
          return null;
        }
        this.exported = r;
        return r;
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e);
        return null;
      } finally {
        this.busy = false;
      }
    },
    async openRestore(): Promise<void> {
      this.dialog = 'restore';
      this.restored = null;
      this.error = '';
      await this.listFiles();
    },
    async listFiles(): Promise<void> {
      const r = await useApi().invoke('backup:list', {});
      this.files = r.files;
      this.dir = r.dir;
    },
    /** name: a file from the backups folder list; none: main's open dialog picks the file (Electron). Never a path. */
    async restore(name?: string): Promise<RestoreResult | null> {
      this.dialog = 'restore';
      this.error = '';
      this.busy = true;
      this.opId = `restore-${Date.now()}-${++opSeq}`;
      try {
        const r = await useApi().invoke('backup:restore', { opId: this.opId, name });
        if (!r.path) return null;
        this.restored = r;
        const conn = useConnectionStore();
        conn.apply(r.status);
        await conn.refreshProfiles();
        return r;
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e);
        return null;
      } finally {
        this.busy = false;
      }
    },
    /** Disaster recovery: the backup into every member of the local three-member cluster, then connected to it. */
    async restoreIntoLocalCluster(name: string): Promise<number> {
      this.busy = true;
      try {
        const r = await useApi().invoke('backup:restore-cluster', { opId: `restore-cluster-${Date.now()}-${++opSeq}`, name });
        const conn = useConnectionStore();
        conn.apply(r.status);
        await conn.refreshProfiles();
        return r.revision;
      } finally {
        this.busy = false;
      }
    },
    async loadSchedules(): Promise<void> {
      const r = await useApi().invoke('backup:schedules', {});
      this.schedules = r.schedules;
      this.history = r.history;
    },
    async setSchedule(s: BackupSchedule): Promise<void> {
      await useApi().invoke('backup:schedule-set', s);
      await this.loadSchedules();
    },
    async removeSchedule(profileId: string): Promise<void> {
      await useApi().invoke('backup:schedule-remove', { profileId });
      await this.loadSchedules();
    },
    /** A verified backup now: snapshot, sha256, scratch restore, HashKV compared. */
    async runNow(profileId: string): Promise<BackupRun> {
      this.runningFor = profileId;
      try {
        return await useApi().invoke('backup:run-now', { profileId, opId: `backup-run-${Date.now()}-${++opSeq}` });
      } finally {
        this.runningFor = '';
        await this.loadSchedules();
      }
    },
    close(): void {
      if (!this.busy) this.dialog = null;
    },
  },
});
