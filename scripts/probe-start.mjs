#!/usr/bin/env node
// CI's proof of the README's first command: runs `npm start` exactly as a new
// user does (on a machine without Electron's binary it opens the browser
// shell on the embedded node), then checks that the app is really up: the
// page is served, the embedded node connects, and a key written through the
// app's own IPC reads back. Stops the app and exits 0 only if all of that held.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TIMEOUT_MS = Number(process.env.PROBE_TIMEOUT_MS ?? 240_000);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-start-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const app = spawn(npm, ['start'], {
  env: { ...process.env, ETCDESK_NO_BROWSER: '1', ETCDESK_DATA_DIR: dataDir },
  stdio: ['ignore', 'pipe', 'inherit'],
  detached: true,
});

let log = '';
const url = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`npm start printed no shell URL in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  app.stdout.on('data', (d) => {
    log += d.toString();
    process.stdout.write(d);
    const m = /Etcdesk shell: (\S+)/.exec(log);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  app.on('exit', (code) => reject(new Error(`npm start exited with ${code} before serving`)));
});

function stop() {
  try {
    process.kill(-app.pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
}

try {
  const u = new URL(url);
  const token = u.searchParams.get('token') ?? u.hash.replace(/^#.*token=/, '');
  const page = await fetch(url);
  const html = await page.text();
  if (page.status !== 200 || !/<div id="app"/.test(html)) throw new Error(`the page did not load: HTTP ${page.status}`);

  const invoke = async (channel, body) => {
    const r = await fetch(`${u.origin}/api/invoke/${channel}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-etcdesk-token': token },
      body: JSON.stringify(body),
    });
    if (r.status !== 200) throw new Error(`${channel}: HTTP ${r.status} ${await r.text()}`);
    const env = await r.json();
    if (!env.ok) throw new Error(`${channel}: ${JSON.stringify(env.error)}`);
    return env.value;
  };
  const deadline = Date.now() + 60_000;
  let status;
  for (;;) {
    status = await invoke('conn:status', {});
    if (status.state === 'connected' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (status.state !== 'connected') throw new Error(`the embedded node did not connect: ${JSON.stringify(status)}`);
  const b64 = (s) => Buffer.from(s).toString('base64');
  await invoke('kv:put', { key: b64('probe/start'), value: b64('ok') });
  const got = await invoke('kv:get', { key: b64('probe/start') });
  if (Buffer.from(got.kv?.value ?? '', 'base64').toString() !== 'ok') throw new Error('the key written through the app did not read back');
  console.log(`probe-start: npm start serves the app at ${u.origin}, the embedded node is connected and answers: OK`);
  stop();
  process.exit(0);
} catch (e) {
  console.error(`probe-start: FAILED: ${e.message}`);
  stop();
  process.exit(1);
}
