// What every domain's handlers share: the contract-typed handler shape, the
// caller's context, and the app's services they work through.
import type { AppInfo, Channel, EventChannel, EventMap, Req, Res } from '../../contract/index';
import type { ConnectionManager } from '../connection-manager';
import type { ProfileStore } from '../profile-store';
import type { BackupScheduler } from '../backup-scheduler';

export interface HandlerContext {
  /** Which renderer asked (a webContents id, or a shell session): owns its watches and key list. */
  clientId: string;
  emit<E extends EventChannel>(event: E, payload: EventMap[E]): void;
}

export type Handler<C extends Channel> = (req: Req<C>, ctx: HandlerContext) => Promise<Res<C>>;
export type Handlers = { [C in Channel]: Handler<C> };
/** A domain's part of the contract. */
export type HandlersFor<C extends Channel> = Pick<Handlers, C>;

export interface HandlerDeps {
  manager: ConnectionManager;
  profiles: ProfileStore;
  info: AppInfo;
  broadcast<E extends EventChannel>(event: E, payload: EventMap[E]): void;
  /** Where to write a snapshot (Electron's save dialog; the shell's backups folder); null = cancelled. */
  chooseSnapshotPath(): Promise<string | null>;
  /** Which snapshot file to restore (Electron's open dialog); null = cancelled. Absent: the shell, which picks from backup:list. */
  chooseRestorePath?(): Promise<string | null>;
  /** The app's default backups folder (the shell writes there; backup:list reads it). */
  backupsDir?: string;
  /** Scheduled, verified backups (the app's; absent in tests that do not need them: one is made on demand, without a timer). */
  backupScheduler?: BackupScheduler;
}
