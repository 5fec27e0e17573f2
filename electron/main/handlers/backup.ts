// Backups: export streams Maintenance.Snapshot to a file main chose (its save
// dialog, or the shell's backups folder); restore opens a file main chose (its
// open dialog, or a name from the backups folder). The renderer never names a path.
import fs from 'node:fs';
import path from 'node:path';
import { ContractError } from '../../contract/index';
import { BackupScheduler } from '../backup-scheduler';
import { writeSnapshot } from '../snapshot-file';
import type { HandlerDeps, HandlersFor } from './context';

type BackupChannels = 'maint:snapshot' | 'backup:restore' | 'backup:restore-cluster' | 'backup:list' | 'backup:schedules' | 'backup:schedule-set' | 'backup:schedule-remove' | 'backup:run-now';

export function backupHandlers(deps: HandlerDeps): HandlersFor<BackupChannels> {
  const m = deps.manager;
  const dir = (): string => deps.backupsDir ?? path.join(m.dataDir, 'snapshots');
  const scheduler = deps.backupScheduler ?? new BackupScheduler({ dataDir: m.dataDir, backupsDir: dir(), manager: m, profiles: deps.profiles });
  /** Backups in the folder and one level down (scheduled backups go in a folder per connection), newest first. */
  const listFiles = (): { name: string; path: string; bytes: number; mtime: number }[] => {
    const out: { name: string; path: string; bytes: number; mtime: number }[] = [];
    const scan = (sub: string): void => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(path.join(dir(), sub), { withFileTypes: true });
      } catch {
        return; // no backups yet
      }
      for (const e of entries) {
        const name = sub ? `${sub}/${e.name}` : e.name;
        if (e.isDirectory() && !sub) scan(e.name);
        else if (e.isFile() && e.name.endsWith('.db')) {
          const st = fs.statSync(path.join(dir(), name));
          out.push({ name, path: path.join(dir(), name), bytes: st.size, mtime: st.mtimeMs });
        }
      }
    };
    scan('');
    return out.sort((a, b) => b.mtime - a.mtime);
  };

  return {
    'maint:snapshot': async ({ opId }, ctx) => {
      const client = m.requireClient(); // not connected: say so before a save dialog asks where to write
      const file = await deps.chooseSnapshotPath();
      if (!file) return { path: null, bytes: 0, sha256: '', verified: false };
      let bytes = 0;
      try {
        const r = await writeSnapshot(client, file, (done, total) => {
          bytes = done;
          ctx.emit('progress', { opId, label: 'Exporting backup', done, total });
        });
        return { path: file, ...r };
      } finally {
        ctx.emit('progress', { opId, label: 'Exporting backup', done: bytes, total: bytes, finished: true });
      }
    },
    'backup:restore': async ({ opId, name }, ctx) => {
      let file: string | null;
      if (name !== undefined) {
        // Only a file backup:list shows: a name, looked up in main's own folder.
        file = listFiles().find((f) => f.name === name)?.path ?? null;
        if (!file) throw new ContractError(-1, `no backup named "${name}" in ${dir()}`);
      } else if (deps.chooseRestorePath) file = await deps.chooseRestorePath();
      else throw new ContractError(-1, 'choose a snapshot file to restore');
      if (!file) return { path: null, profileId: '', revision: 0, dataDir: '', status: m.status() };
      const label = 'Restoring backup';
      ctx.emit('progress', { opId, label, done: 0, total: 1 });
      try {
        const r = await m.openRestored(file);
        if (r.status.state !== 'connected') throw new ContractError(-1, `restored into ${r.dataDir}, but the node did not answer: ${r.status.error?.message ?? r.status.state}`);
        return { path: file, ...r };
      } finally {
        ctx.emit('progress', { opId, label, done: 1, total: 1, finished: true });
      }
    },
    'backup:list': async () => ({ dir: dir(), files: listFiles() }),
    'backup:restore-cluster': async ({ opId, name }, ctx) => {
      const file = listFiles().find((f) => f.name === name)?.path;
      if (!file) throw new ContractError(-1, `no backup named "${name}" in ${dir()}`);
      const label = 'Restoring into the local cluster';
      ctx.emit('progress', { opId, label, done: 0, total: 1 });
      try {
        const r = await m.restoreIntoLocalCluster(file);
        if (r.status.state !== 'connected') throw new ContractError(-1, `restored into the local cluster, but it did not answer: ${r.status.error?.message ?? r.status.state}`);
        return r;
      } finally {
        ctx.emit('progress', { opId, label, done: 1, total: 1, finished: true });
      }
    },
    'backup:schedules': async () => ({ schedules: scheduler.list(), history: scheduler.history() }),
    'backup:schedule-set': async (s) => scheduler.setSchedule(s),
    'backup:schedule-remove': async ({ profileId }) => {
      scheduler.removeSchedule(profileId);
      return { ok: true };
    },
    'backup:run-now': async ({ profileId, opId }, ctx) => {
      let label = 'Backing up';
      try {
        return await scheduler.runNow(profileId, (step, done, total) => {
          label = step;
          ctx.emit('progress', { opId, label: step, done, total });
        });
      } finally {
        ctx.emit('progress', { opId, label, done: 1, total: 1, finished: true });
      }
    },
  };
}
