// Everything the app's back end is, minus Electron: saved connections, the
// connection manager and the handlers. Electron's main and the browser shell
// each wrap this with their own transport.
import path from 'node:path';
import type { AppInfo, ConnectionStatus, EventChannel, EventMap } from '../contract/index';
import { BackupScheduler } from './backup-scheduler';
import { ConnectionManager } from './connection-manager';
import { createHandlers, type Handlers } from './handlers';
import { pickEngine } from './node-host';
import { ProfileStore } from './profile-store';
import type { SecretStore } from './secrets';

export interface AppCoreOptions {
  dataDir: string;
  mode: AppInfo['mode'];
  version: string;
  /** Where saved passwords go: the OS keychain (Electron), a 0600 file (the shell). */
  secrets: SecretStore;
  broadcast<E extends EventChannel>(event: E, payload: EventMap[E]): void;
  chooseSnapshotPath(): Promise<string | null>;
  chooseRestorePath?(): Promise<string | null>;
  clusterBasePort?: number;
}

export interface AppCore {
  handlers: Handlers;
  manager: ConnectionManager;
  info: AppInfo;
  shutdown(): Promise<void>;
}

/** Where backups go by default (the shell's export target, the restore picker's folder). */
export function backupsDir(dataDir: string): string {
  return path.join(dataDir, 'snapshots');
}

export function createAppCore(o: AppCoreOptions): AppCore {
  const engine = pickEngine();
  const withCluster = !!engine?.startCluster;
  const profiles = new ProfileStore(path.join(o.dataDir, 'connections.json'), o.secrets, withCluster);
  const manager = new ConnectionManager({
    dataDir: o.dataDir,
    engine,
    profiles,
    clusterBasePort: o.clusterBasePort,
    onStatus: (s: ConnectionStatus) => o.broadcast('conn:changed', s),
  });
  const info: AppInfo = { mode: o.mode, version: o.version, platform: process.platform, features: { localCluster: withCluster, embeddedEngine: engine?.name ?? 'none' } };
  const backupScheduler = new BackupScheduler({ dataDir: o.dataDir, backupsDir: backupsDir(o.dataDir), manager, profiles });
  backupScheduler.start();
  const handlers = createHandlers({ manager, profiles, info, broadcast: o.broadcast, chooseSnapshotPath: o.chooseSnapshotPath, chooseRestorePath: o.chooseRestorePath, backupsDir: backupsDir(o.dataDir), backupScheduler });
  return {
    handlers,
    manager,
    info,
    shutdown: () => {
      backupScheduler.stop();
      return manager.shutdown();
    },
  };
}
