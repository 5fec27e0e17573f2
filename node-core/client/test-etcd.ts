// Test harness: a real etcd 3.4 on loopback with free ports and a temp data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

export interface TestEtcd {
  endpoint: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startEtcd(extraArgs: string[] = []): Promise<TestEtcd> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-client-'));
  const cport = await freePort();
  const pport = await freePort();
  const client = `http://127.0.0.1:${cport}`;
  const peer = `http://127.0.0.1:${pport}`;
  const proc: ChildProcess = spawn(
    'etcd',
    [
      '--name', 'test',
      '--data-dir', dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`,
      '--log-level', 'error',
      '--logger', 'zap',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
    try {
      const r = await fetch(`${client}/health`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`etcd did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint: client,
    dataDir,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
