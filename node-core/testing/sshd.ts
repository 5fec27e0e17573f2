// A private OpenSSH server for tests (Debian's openssh-server): its own config,
// host key and authorized_keys in a temp dir, loopback on a free port, in the
// foreground so the test owns it. Used by the app's SSH tunnel tests.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
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

export async function startSshd(): Promise<Sshd> {
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
