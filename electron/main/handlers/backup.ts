// Backups: export streams Maintenance.Snapshot to a file main chose (its save
// dialog, or the shell's backups folder); restore opens a file main chose (its
// open dialog, or a name from the backups folder). The renderer never names a path.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ContractError } from '../../contract/index';
import type { HandlerDeps, HandlersFor } from './context';

/**
 * sha256 over everything but the last 32 bytes, fed chunk by chunk: etcd
 * appends the sha256 of the db to a snapshot, so the tail is only known at the end.
 */
export class SnapshotDigest {
  private readonly hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    const all = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const cut = Math.max(0, all.length - 32);
    if (cut) this.hash.update(all.subarray(0, cut));
    this.tail = Buffer.from(all.subarray(cut));
  }

  /** sha256: the appended hash; verified: it equals the hash of the db bytes before it. */
  finish(): { sha256: string; verified: boolean } {
    const computed = this.hash.digest('hex');
    const appended = this.tail.length === 32 ? this.tail.toString('hex') : '';
    return { sha256: appended || computed, verified: appended === computed };
  }
}

export function backupHandlers(deps: HandlerDeps): HandlersFor<'maint:snapshot' | 'backup:restore' | 'backup:list'> {
  const m = deps.manager;
  const dir = (): string => deps.backupsDir ?? path.join(m.dataDir, 'snapshots');
  const listFiles = (): { name: string; path: string; bytes: number; mtime: number }[] => {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir()).filter((f) => f.endsWith('.db'));
    } catch {
      /* no backups yet */
    }
    return names
      .map((name) => {
        const st = fs.statSync(path.join(dir(), name));
        return { name, path: path.join(dir(), name), bytes: st.size, mtime: st.mtimeMs };
      })
      .sort((a, b) => b.mtime - a.mtime);
  };

  return {
    'maint:snapshot': async ({ opId }, ctx) => {
      const client = m.requireClient(); // not connected: say so before a save dialog asks where to write
      const file = await deps.chooseSnapshotPath();
      if (!file) return { path: null, bytes: 0, sha256: '', verified: false };
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // Written beside the target and renamed at the end: a failed export never leaves a file that looks whole.
      const part = `${file}.part`;
      const out = fs.createWriteStream(part);
      let failed: Error | null = null;
      out.on('error', (e) => (failed = e));
      const digest = new SnapshotDigest();
      const label = 'Exporting backup';
      try {
        // a stale token (auth turned off or on behind the app's back) is renewed by the client itself
        await client.snapshot((blob, remaining) => {
          out.write(blob);
          digest.update(blob);
          ctx.emit('progress', { opId, label, done: digest.bytes, total: digest.bytes + remaining });
        });
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        if (failed) throw failed;
        fs.renameSync(part, file);
      } catch (e) {
        out.destroy();
        fs.rmSync(part, { force: true });
        throw e;
      } finally {
        ctx.emit('progress', { opId, label, done: digest.bytes, total: digest.bytes, finished: true });
      }
      const { sha256, verified } = digest.finish();
      if (!verified) throw new ContractError(-1, `backup written to ${file} but its sha256 does not match the db (${sha256}): do not rely on it`);
      return { path: file, bytes: digest.bytes, sha256, verified };
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
  };
}
