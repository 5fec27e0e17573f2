// `npm run shell`: the app in a browser. Hosts the embedded node, serves the
// renderer and the handlers on 127.0.0.1, prints the tokenized URL.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { backupsDir, createAppCore, type AppCore } from '../main/app-core';
import { FileSecrets } from '../main/secrets';
import { startShellServer } from './server';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

export async function runShell(): Promise<void> {
  const dataDir = arg('data-dir') ?? process.env.ETCDESK_DATA_DIR ?? path.join(os.homedir(), '.etcdesk');
  fs.mkdirSync(dataDir, { recursive: true });
  const rendererDir = arg('renderer-dir') ?? path.join(root, 'out', 'renderer');
  let core: AppCore | null = null;
  const server = await startShellServer({
    rendererDir,
    port: arg('port') ? Number(arg('port')) : undefined,
    token: process.env.ETCDESK_SHELL_TOKEN,
    handlers: () => core!.handlers,
    onClientGone: (sid) => core?.manager.closeStreamsOf(sid),
  });
  core = createAppCore({
    dataDir,
    mode: 'shell',
    version: process.env.npm_package_version ?? '0.1.0',
    // No OS keychain outside Electron: saved passwords go to a file only this user can read (0600).
    secrets: new FileSecrets(path.join(dataDir, 'credentials.json')),
    broadcast: server.broadcast,
    // ETCDESK_CLUSTER_BASE_PORT=0 gives the local cluster free ports (tests running beside a real one).
    clusterBasePort: process.env.ETCDESK_CLUSTER_BASE_PORT !== undefined ? Number(process.env.ETCDESK_CLUSTER_BASE_PORT) : undefined,
    // No native dialogs in a browser: exports go to the backups folder; restores pick from it in the page.
    chooseSnapshotPath: async () => {
      const dir = backupsDir(dataDir);
      fs.mkdirSync(dir, { recursive: true });
      return path.join(dir, `etcd-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.db`);
    },
  });
  if (process.env.ETCDESK_NO_AUTOCONNECT !== '1') void core.manager.connect('embedded');
  console.log(`Etcdesk shell: ${server.url}`);
  console.log(`(engine: ${core.info.features.embeddedEngine}; data: ${dataDir})`);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await core?.shutdown();
    await server.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

void runShell();
