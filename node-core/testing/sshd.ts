// A private OpenSSH server for tests (Debian's openssh-server): its own config,
// host key and authorized_keys in a temp dir, loopback on a free port, in the
// foreground so the test owns it. Used by the app's SSH tunnel tests.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './processes';

export const SSHD_BIN = '/usr/sbin/sshd';
export const hasSshd = (): boolean => fs.existsSync(SSHD_BIN);

export interface Sshd {
  port: number;
  dir: string;
  /** A private key authorized for the current user. */
  userKey: string;
  /** The host key's fingerprint as OpenSSH prints it (`SHA256:…`). */
  hostKeySha256: string;
  proc: ChildProcess;
  /** Kills the connection processes (children of the listener) and the listener: every tunnel drops. */
  crash(): void;
  stop(): void;
}

interface SshdFiles {
  dir: string;
  conf: string;
  port: number;
  userKey: string;
  hostKeySha256: string;
}

/** Keys, authorized_keys and sshd_config in a temp dir. */
async function sshdFiles(): Promise<SshdFiles> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-sshd-'));
  const hostKey = path.join(dir, 'host_key');
  const userKey = path.join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey]);
  fs.copyFileSync(`${userKey}.pub`, path.join(dir, 'authorized_keys'));
  const hostKeySha256 = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]).toString().split(' ')[1];
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  const port = await freePort();
  const conf = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin yes',
      'AllowTcpForwarding yes',
      '',
    ].join('\n'),
  );
  return { dir, conf, port, userKey, hostKeySha256 };
}

export async function startSshd(): Promise<Sshd> {
  const { dir, conf, port, userKey, hostKeySha256 } = await sshdFiles();
  // -D: stay in the foreground; -e: log to stderr.
  const proc = spawn(SSHD_BIN, ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor('sshd listening', () => log.includes('Server listening') || proc.exitCode !== null, 10_000);
  if (proc.exitCode !== null) throw new Error(`sshd did not start: ${log}`);
  const crash = (): void => {
    // Only our own connection processes: children of this listener, by parent pid.
    try {
      execFileSync('pkill', ['-KILL', '-P', String(proc.pid)], { stdio: 'ignore' });
    } catch {
      // no session open
    }
    proc.kill('SIGKILL');
  };
  return {
    port,
    dir,
    userKey,
    hostKeySha256,
    proc,
    crash,
    stop() {
      crash();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SshdInside {
  /** Where to connect from here (127.0.0.1). */
  port: number;
  userKey: string;
  hostKeySha256: string;
  /** sshd's log lines of every session so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * An SSH server whose sessions run inside a private network (private-network.ts),
 * as a bastion's do: a listener on this machine's loopback hands each connection
 * to `sshd -i` (inetd mode: one session on stdin/stdout) started in the namespace,
 * so its forwards (direct-tcpip) dial the namespace's addresses.
 */
export async function startSshdIn(spawnInside: (cmd: string, args: string[]) => ChildProcess): Promise<SshdInside> {
  const { dir, conf, userKey, hostKeySha256 } = await sshdFiles();
  let log = '';
  const sessions = new Set<ChildProcess>();
  const server = net.createServer((sock) => {
    const p = spawnInside(SSHD_BIN, ['-i', '-e', '-f', conf]);
    sessions.add(p);
    p.on('exit', () => {
      sessions.delete(p);
      sock.destroy();
    });
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    p.stdin!.on('error', () => sock.destroy()); // the session ended while the client still wrote
    sock.on('error', () => p.kill('SIGKILL'));
    sock.on('close', () => p.kill('SIGTERM'));
    sock.pipe(p.stdin!);
    p.stdout!.pipe(sock);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  return {
    port,
    userKey,
    hostKeySha256,
    log: () => log,
    async stop() {
      for (const p of sessions) p.kill('SIGKILL');
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
