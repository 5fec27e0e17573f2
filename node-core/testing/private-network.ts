// A private network for tests: a Linux network namespace of its own, as the
// network behind a bastion is. Its 127.0.0.1 is not this process's: an address
// advertised in there is unreachable from here (nothing listens at the same
// port on our loopback), yet an SSH server started inside it (sshd.ts
// `startSshdIn`) reaches it. Host names may be given that resolve only inside
// (its own /etc/hosts, in a mount namespace of its own too). Needs root (CI
// runs as root), `unshare`, `nsenter`, `ip` and, for TLS, `openssl`.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ETCD_BIN, freePort, tempDir, waitFor } from './processes';

const TOOLS = ['/usr/bin/unshare', '/usr/bin/nsenter', '/usr/sbin/ip', '/usr/bin/openssl'];

/** Why a private network cannot be made here (a reason for `skip`), or false when it can. */
export function privateNetworkUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'a network namespace needs root (CI runs as root)';
  const missing = TOOLS.filter((t) => !fs.existsSync(t));
  if (missing.length) return `missing ${missing.join(', ')}`;
  // root is not enough inside a container without CAP_SYS_ADMIN: try it once
  const probe = spawnSync('/usr/bin/unshare', ['--net', '--mount', '--', '/bin/true'], { stdio: 'ignore', timeout: 10_000 });
  if (probe.status !== 0) return 'unshare --net --mount is not permitted here (no CAP_SYS_ADMIN)';
  return false;
}

export interface PrivateNetwork {
  /** The process holding the namespace (a `sleep`). */
  pid: number;
  /** Runs a program inside the namespace. */
  spawn(cmd: string, args: string[], stdio?: 'pipe' | 'ignore'): ChildProcess;
  stop(): void;
}

/** `names`: host names that resolve to the network's 127.0.0.1 inside it, and nowhere else. */
export async function startPrivateNetwork(names: string[] = []): Promise<PrivateNetwork> {
  const hosts = path.join(tempDir('private-net'), 'hosts');
  fs.writeFileSync(hosts, `127.0.0.1 localhost\n::1 localhost\n${names.map((n) => `127.0.0.1 ${n}\n`).join('')}`);
  // `unshare` execs the shell (no fork), so the pid is the namespaces' holder; the loopback starts down.
  // The mount namespace (private propagation, unshare's default) gives it its own /etc/hosts.
  const holder = spawn('/usr/bin/unshare', ['--net', '--mount', '--', '/bin/sh', '-c', `mount --bind ${hosts} /etc/hosts && ip link set lo up && echo up && exec sleep 100000`], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      const p = spawn('/usr/bin/nsenter', [`--net=/proc/${pid}/ns/net`, `--mount=/proc/${pid}/ns/mnt`, '--', cmd, ...args], { stdio: ['pipe', stdio, stdio] });
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
  /** Client URLs as the members advertise them: 127.0.0.1 (or `names`) inside the private network. */
  clientUrls: string[];
  /** With TLS: the CA that signed every member's certificate. */
  caFile?: string;
  procs: ChildProcess[];
  output(i: number): string;
  stop(): void;
}

/**
 * A real etcd cluster of `n` members inside the private network. Its ports are
 * ones free on this machine's loopback too, so nothing here answers at the
 * advertised addresses: a direct dial is refused.
 */
export async function startEtcdIn(net: PrivateNetwork, n = 3, tls?: { names: string[] }): Promise<PrivateEtcd> {
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), peer: await freePort() })));
  const certs = tls ? memberCerts(tls.names.slice(0, n)) : null;
  const advertised = ports.map((p, i) => (tls ? `https://${tls.names[i]}:${p.client}` : `http://127.0.0.1:${p.client}`));
  const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const token = `private-${ports[0].client}`;
  const outs = ports.map(() => '');
  const procs = ports.map((p, i) => {
    const dir = path.join(tempDir(`private-etcd-m${i + 1}`), 'data');
    const proc = net.spawn(ETCD_BIN, [
      '--name', `m${i + 1}`,
      '--data-dir', dir,
      '--listen-client-urls', `${tls ? 'https' : 'http'}://127.0.0.1:${p.client}`,
      '--advertise-client-urls', advertised[i],
      ...(certs ? ['--cert-file', certs.members[i].cert, '--key-file', certs.members[i].key] : []),
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
  return { clientUrls: advertised, caFile: certs?.ca, procs, output: (i) => outs[i], stop };
}

/** A CA and one certificate per member naming only that member (DNS SAN), as a cluster's often are. */
function memberCerts(names: string[]): { ca: string; members: { cert: string; key: string }[] } {
  const dir = tempDir('private-certs');
  const f = (x: string): string => path.join(dir, x);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=private-ca'], { stdio: 'ignore' });
  const members = names.map((name, i) => {
    const base = f(`m${i + 1}`);
    fs.writeFileSync(`${base}.ext`, `subjectAltName=DNS:${name}\n`);
    execFileSync('openssl', ['req', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${name}`], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', `${base}.csr`, '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', `${base}.crt`, '-days', '2', '-extfile', `${base}.ext`], { stdio: 'ignore' });
    return { cert: `${base}.crt`, key: `${base}.key` };
  });
  return { ca: f('ca.crt'), members };
}

/** Whether something on this machine's own loopback answers at `url`'s port (the test's premise is that nothing does). */
export function reachableHere(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url); // a name known only inside does not even resolve here
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
