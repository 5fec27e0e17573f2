// Backups a user can trust: scheduled snapshots per connection with retention,
// each one verified three ways before it counts — the sha256 etcd appends to the
// stream matches the db; the file restores into a scratch node (the same engine
// that restores for the user); and that node's HashKV at the snapshot's revision
// equals the source cluster's HashKV at that revision. A history records every
// run (verified, failed and why, skipped and why), kept in the app's data folder.
import fs from 'node:fs';
import path from 'node:path';
import { EtcdClient } from '../../node-core/index';
import { ContractError, type BackupRun, type BackupSchedule, type ConnectionProfile } from '../contract/index';
import { readTls, type ConnectionManager } from './connection-manager';
import { isEtcdError } from './errors';
import type { ProfileStore } from './profile-store';
import { writeSnapshot } from './snapshot-file';

/** Runs kept in the history file (newest first). */
const HISTORY_MAX = 500;

export interface SchedulerOptions {
  /** The app's data folder: schedules and history live here. */
  dataDir: string;
  /** Where backups are written, one folder per connection. */
  backupsDir: string;
  manager: ConnectionManager;
  profiles: ProfileStore;
  now?: () => number;
}

type Progress = (step: string, done: number, total: number) => void;

export class BackupScheduler {
  private schedules: BackupSchedule[];
  private runs: BackupRun[];
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly o: SchedulerOptions) {
    this.now = o.now ?? Date.now;
    this.schedules = readJson<BackupSchedule[]>(this.file('backup-schedules.json'), []);
    this.runs = readJson<BackupRun[]>(this.file('backup-history.json'), []).map((r) =>
      // A run that was in progress when the app stopped did not finish.
      r.status === 'running' ? { ...r, status: 'failed', error: 'the app stopped during this backup' } : r,
    );
  }

  private file(name: string): string {
    return path.join(this.o.dataDir, name);
  }

  list(): BackupSchedule[] {
    return this.schedules.map((s) => ({ ...s }));
  }

  history(profileId?: string): BackupRun[] {
    return this.runs.filter((r) => !profileId || r.profileId === profileId).map((r) => ({ ...r }));
  }

  /** Adds or replaces a connection's schedule (one per connection). */
  setSchedule(s: BackupSchedule): BackupSchedule {
    if (!this.o.profiles.get(s.profileId)) throw new ContractError(-1, `unknown connection ${s.profileId}`);
    const clean: BackupSchedule = { profileId: s.profileId, everyMinutes: s.everyMinutes, keep: s.keep, enabled: s.enabled, lastRunAt: this.schedules.find((x) => x.profileId === s.profileId)?.lastRunAt };
    this.schedules = [...this.schedules.filter((x) => x.profileId !== s.profileId), clean];
    this.flush();
    return { ...clean };
  }

  removeSchedule(profileId: string): void {
    this.schedules = this.schedules.filter((x) => x.profileId !== profileId);
    this.flush();
  }

  /** Checks for due schedules every `everyMs` (the app's lifetime); tests call runDue directly. */
  start(everyMs = 30_000): void {
    this.stop();
    this.timer = setInterval(() => void this.runDue(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Runs every enabled schedule whose interval has passed; returns the runs made. */
  async runDue(): Promise<BackupRun[]> {
    const due = this.schedules.filter((s) => s.enabled && (!s.lastRunAt || this.now() - s.lastRunAt >= s.everyMinutes * 60_000));
    const out: BackupRun[] = [];
    for (const s of due) out.push(await this.runNow(s.profileId, undefined, 'schedule'));
    return out;
  }

  /** One backup of a connection, verified; recorded in the history whatever happens. */
  async runNow(profileId: string, progress?: Progress, trigger: BackupRun['trigger'] = 'manual'): Promise<BackupRun> {
    const profile = this.o.profiles.get(profileId);
    if (!profile) throw new ContractError(-1, `unknown connection ${profileId}`);
    if (this.running.has(profileId)) throw new ContractError(-1, `a backup of ${profile.name} is already running`);
    this.running.add(profileId);
    const at = this.now();
    const run: BackupRun = { id: `${profileId}-${at}`, profileId, profileName: profile.name, at, trigger, status: 'running', checks: {} };
    this.record(run);
    const sched = this.schedules.find((s) => s.profileId === profileId);
    if (sched) sched.lastRunAt = at;
    let temp: EtcdClient | null = null;
    try {
      const source = this.clientFor(profile);
      if ('skip' in source) {
        Object.assign(run, { status: 'skipped', error: source.skip });
        return { ...run };
      }
      const client = source.client;
      temp = source.temporary ? client : null;
      const dir = path.join(this.o.backupsDir, slug(profile.name));
      const stamp = new Date(at).toISOString().replace(/[:.]/g, '-');
      const file = path.join(dir, `etcd-backup-${stamp}.db`);
      const snap = await writeSnapshot(client, file, (d, t) => progress?.('Streaming snapshot', d, t));
      Object.assign(run, { file, bytes: snap.bytes, sha256: snap.sha256 });
      run.checks.sha256 = true;
      this.record(run);

      progress?.('Restoring into a scratch node', 0, 1);
      const scratch = await this.o.manager.scratchRestore(file);
      try {
        run.revision = scratch.revision;
        run.checks.restored = true;
        const sc = new EtcdClient({ endpoints: scratch.clientUrls, timeoutMs: 15_000 });
        try {
          progress?.('Comparing HashKV', 0, 1);
          const [mine, theirs] = await Promise.all([sc.hashKV(scratch.revision), client.hashKV(scratch.revision)]);
          run.hashKV = mine.hash;
          run.checks.hashKV = mine.hash === theirs.hash;
          if (!run.checks.hashKV) throw new ContractError(-1, `the restored copy's HashKV at revision ${scratch.revision} is ${mine.hash}, the cluster's is ${theirs.hash}: the backup does not hold the cluster's data`);
        } catch (e) {
          if (isEtcdError(e, 'Compacted')) throw new ContractError(-1, `the cluster compacted past revision ${scratch.revision} before the copy could be compared: run the backup again`);
          throw e;
        } finally {
          sc.close();
        }
      } finally {
        await scratch.stop();
      }
      run.status = 'verified';
      this.record(run);
      this.applyRetention(profileId, sched?.keep);
      return { ...run };
    } catch (e) {
      run.status = 'failed';
      run.error = e instanceof Error ? e.message : String(e);
      return { ...run };
    } finally {
      temp?.close();
      this.running.delete(profileId);
      this.record(run);
      this.flush();
    }
  }

  /**
   * The source for a backup: the live connection when it is this profile; a
   * remote profile without an SSH tunnel gets a client of its own (so a
   * schedule runs while the user works elsewhere); otherwise skipped, saying why.
   */
  private clientFor(p: ConnectionProfile): { client: EtcdClient; temporary: boolean } | { skip: string } {
    const m = this.o.manager;
    if (m.currentProfile?.id === p.id && m.status().state === 'connected') return { client: m.requireClient(), temporary: false };
    if (p.kind === 'remote' && !p.ssh) {
      return {
        client: new EtcdClient({
          endpoints: p.endpoints,
          username: p.username,
          password: p.username ? this.o.profiles.password(p.id) : undefined,
          tls: p.tls ? readTls(p.tls) : undefined,
          timeoutMs: 30_000,
        }),
        temporary: true,
      };
    }
    return { skip: `${p.name} is not the active connection${p.ssh ? ' (its SSH tunnel opens only while connected)' : ''}: connect to it for its scheduled backups to run` };
  }

  /** Keeps the newest `keep` verified backups of a connection; older files go (their history rows stay, marked). */
  private applyRetention(profileId: string, keep: number | undefined): void {
    if (!keep) return;
    const verified = this.runs.filter((r) => r.profileId === profileId && r.status === 'verified' && r.file && !r.removed);
    for (const r of verified.slice(keep)) {
      fs.rmSync(r.file!, { force: true });
      r.removed = true;
    }
  }

  private record(run: BackupRun): void {
    const i = this.runs.findIndex((r) => r.id === run.id);
    if (i >= 0) this.runs[i] = { ...run, checks: { ...run.checks } };
    else this.runs.unshift({ ...run, checks: { ...run.checks } });
    if (this.runs.length > HISTORY_MAX) this.runs.length = HISTORY_MAX;
  }

  private flush(): void {
    writeJson(this.file('backup-schedules.json'), this.schedules);
    writeJson(this.file('backup-history.json'), this.runs);
  }
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'connection';
}

function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

function writeJson(file: string, data: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2));
  fs.renameSync(tmp, file);
}
