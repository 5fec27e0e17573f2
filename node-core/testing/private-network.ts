// A private network for tests: a Linux network namespace of its own, as the
// network behind a bastion is. Its 127.0.0.1 is not this process's: an address
// advertised in there is unreachable from here (nothing listens at the same
// port on our loopback), yet an SSH server started inside it (sshd.ts
// `startSshdIn`) reaches it. Needs root (CI runs as root), `unshare`, `nsenter`
// and `ip`.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ETCD_BIN, freePort, tempDir, waitFor } from './processes';

const TOOLS = ['/usr/bin/unshare', '/usr/bin/nsenter', '/usr/sbin/ip'];

/** Why a private network cannot be made here (a reason for `skip`), or false when it can. */
export function privateNetworkUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'a network namespace needs root (CI runs as root)';
  const missing = TOOLS.filter((t) => !fs.existsSync(t));
  if (missing.length) return `missing ${missing.join(', ')}`;
  return false;
}

export interface PrivateNetwork {
  /** The process holding the namespace (a `sleep`). */
  pid: number;
  /** Runs a program inside the namespace. */
  spawn(cmd: string, args: string[], stdio?: 'pipe' | 'ignore'): ChildProcess;
  stop(): void;
}

export async function startPrivateNetwork(): Promise<PrivateNetwork> {
  // `unshare` execs the shell (no fork), so the pid is the namespace's holder; its loopback starts down.
  const holder = spawn('/usr/bin/unshare', ['--net', '--', '/bin/sh', '-c', 'ip link set lo up && echo up && exec sleep 100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  holder.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the private network', () => out.includes('up') || holder.exitCode !== null, 10_000);
  if (holder.exitCode !== null || !holder.pid) throw new Error(`could not make a network namespace: ${out}`);
  const pid = holder.pid;
  const children = new Set<ChildProcess>();
  return {
    pid,
    spawn(cmd, args, stdio = 'pipe') {
      // nsenter execs the program (no fork for a network namespace only): the child is the program.
      const p = spawn('/usr/bin/nsenter', [`--net=/proc/${pid}/ns/net`, '--', cmd, ...args], { stdio: ['pipe', stdio, stdio] });
      children.add(p);
      p.on('exit', () => children.delete(p));
      return p;
    },
    stop() {
      for (const p of children) p.kill('SIGKILL');
      holder.kill('SIGKILL');
    },
  };
}

export interface PrivateEtcd {
  /** Client URLs as the members advertise them: 127.0.0.1 inside the private network. */
  clientUrls: string[];
  procs: ChildProcess[];
  output(i: number): string;
  stop(): void;
}

/**
 * A real etcd cluster of `n` members inside the private network. Its ports are
 * ones free on this machine's loopback too, so nothing here answers at the
 * advertised addresses: a direct dial is refused.
 */
export async function startEtcdIn(net: PrivateNetwork, n = 3): Promise<PrivateEtcd> {
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), peer: await freePort() })));
  const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const token = `private-${ports[0].client}`;
  const outs = ports.map(() => '');
  const procs = ports.map((p, i) => {
    const dir = path.join(tempDir(`private-etcd-m${i + 1}`), 'data');
    const proc = net.spawn(ETCD_BIN, [
      '--name', `m${i + 1}`,
      '--data-dir', dir,
      '--listen-client-urls', `http://127.0.0.1:${p.client}`,
      '--advertise-client-urls', `http://127.0.0.1:${p.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-cluster', initial,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
    ]);
    const add = (d: Buffer): void => void (outs[i] += d.toString());
    proc.stdout!.on('data', add);
    proc.stderr!.on('data', add);
    return proc;
  });
  const stop = (): void => {
    for (const p of procs) p.kill('SIGKILL');
  };
  try {
    await waitFor('the private etcd cluster serving', () => {
      if (procs.some((p) => p.exitCode !== null)) throw new Error('a member exited');
      return outs.every((o) => o.includes('ready to serve client requests'));
    }, 30_000);
  } catch (e) {
    stop();
    throw new Error(`etcd in the private network did not start: ${(e as Error).message}\n${outs.map((o, i) => `--- m${i + 1}\n${o.slice(-1500)}`).join('\n')}`);
  }
  return { clientUrls: ports.map((p) => `http://127.0.0.1:${p.client}`), procs, output: (i) => outs[i], stop };
}

/** Whether something on this machine's own loopback answers at `url`'s port (the test's premise is that nothing does). */
export function reachableHere(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
