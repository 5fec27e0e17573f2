#!/usr/bin/env node
// `npm start`: the desktop app through electron-vite; where Electron's binary
// is missing, the browser shell on the embedded node instead.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronBinary } from './electron-binary.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

// The protobuf codecs are generated, not committed (node-core/proto/gen is
// gitignored): make them here too, so a clone whose install skipped the
// postinstall step still starts.
const gen = spawnSync(process.execPath, [path.join(root, 'scripts/gen-proto.mjs')], { cwd: root, stdio: 'inherit' });
if (gen.status !== 0) process.exit(gen.status ?? 1);

if (electronBinary()) {
  const r = spawnSync(npx, ['electron-vite', 'dev'], { cwd: root, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

console.log('Electron binary not installed (ELECTRON_SKIP_BINARY_DOWNLOAD?): opening the browser shell instead.');
const build = spawnSync(npx, ['electron-vite', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const shell = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'electron/shell/main.ts'), ...process.argv.slice(2)], { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] });
let opened = false;
shell.stdout.on('data', (d) => {
  process.stdout.write(d);
  const m = /Etcdesk shell: (\S+)/.exec(d.toString());
  if (m && !opened && !process.env.ETCDESK_NO_BROWSER) {
    opened = true;
    const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
    spawn(opener, [m[1]], { stdio: 'ignore', detached: true }).on('error', () => console.log('Open the URL above in a browser.')).unref();
  }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => shell.kill(sig));
shell.on('exit', (code) => process.exit(code ?? 0));
