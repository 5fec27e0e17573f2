// SSH tunnels for remote connections: etcd clusters usually listen on a private
// network reachable only through a bastion. One SSH session per connection
// (the `ssh2` package: a maintained, pure-JS SSH2 client); for every etcd
// endpoint a loopback listener whose connections are forwarded through the
// session (direct-tcpip, as `ssh -L` does). The etcd client then dials the
// loopback URLs; TLS still verifies the remote name (the caller sets the
// server name to the endpoint's host), so the tunnel adds no trust. A member
// the cluster names by an address that is not one of the profile's endpoints
// (the doctor, the space plan and the cluster view dial every member) gets a
// listener of its own on demand, through the same session.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import ssh2, { type ConnectConfig } from 'ssh2';
import { ContractError, type SshTunnelConfig } from '../contract/index';

export interface TunnelSecrets {
  /** The SSH password, or the private key's passphrase when a key file is used. */
  secret?: string;
}

export interface OpenTunnel {
  /** The endpoints rewritten to this machine's loopback listeners, in the same order. */
  endpoints: string[];
  /** The host names of the original endpoints (for TLS verification). */
  hosts: string[];
  /** SHA256 fingerprint of the SSH server's host key, as OpenSSH prints it (`SHA256:…`). */
  hostKey: string;
  /**
   * The loopback URL that reaches `url` (a member's advertised client URL) from the SSH server's
   * side: the endpoint's own listener when it names the same host and port, else a new one, kept
   * until the tunnel closes.
   */
  forward(url: string): Promise<string>;
  /** The loopback URL already forwarding to `url`, if any (no listener is opened). */
  forwardedUrl(url: string): string | undefined;
  close(): void;
  /** Called once if the SSH session drops after it was opened. */
  onClose(cb: (reason: string) => void): void;
}

interface Target {
  scheme: string;
  host: string;
  port: number;
}

/** `https://10.0.0.5:2379` or `10.0.0.5:2379` → scheme, host, port (etcd's default 2379). */
export function parseTarget(endpoint: string): Target {
  const m = /^(?:(https?):\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(endpoint.trim());
  if (!m) throw new ContractError(-1, `cannot tunnel ${endpoint}: an SSH tunnel needs host:port endpoints (unix sockets are local)`);
  return { scheme: m[1] ?? 'http', host: m[2].replace(/^\[|\]$/g, ''), port: m[3] ? Number(m[3]) : 2379 };
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Opens the SSH session and one loopback listener per endpoint. The host key
 * is pinned: with `hostKeySha256` set, any other key is refused (a changed
 * host key is what a man in the middle looks like); without it the key is
 * accepted and returned, for the caller to pin (trust on first use, as
 * OpenSSH's accept-new).
 */
export async function openTunnel(cfg: SshTunnelConfig, endpoints: string[], secrets: TunnelSecrets, timeoutMs = 15_000): Promise<OpenTunnel> {
  const targets = endpoints.map(parseTarget);
  const client = new ssh2.Client();
  let seenKey = '';
  let keyMismatch = false;
  const conf: ConnectConfig = {
    host: cfg.host,
    port: cfg.port ?? 22,
    username: cfg.username,
    readyTimeout: timeoutMs,
    keepaliveInterval: 15_000,
    hostVerifier: (key: Buffer) => {
      seenKey = fingerprint(key);
      keyMismatch = !!cfg.hostKeySha256 && cfg.hostKeySha256 !== seenKey;
      return !keyMismatch;
    },
  };
  if (cfg.keyFile) {
    try {
      conf.privateKey = fs.readFileSync(cfg.keyFile);
    } catch (e) {
      throw new ContractError(-1, `cannot read SSH key ${cfg.keyFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (secrets.secret) conf.passphrase = secrets.secret;
    // Checked before dialling: an encrypted key without (or with a wrong) passphrase is the user's to fix, not the server's.
    const parsed = ssh2.utils.parseKey(conf.privateKey, secrets.secret);
    if (parsed instanceof Error) throw new ContractError(-1, `cannot use SSH key ${cfg.keyFile}: ${parsed.message}`);
  } else if (secrets.secret !== undefined) conf.password = secrets.secret;
  else throw new ContractError(-1, `SSH to ${cfg.host}: give a private key file or a password`);

  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => {
      client.removeListener('ready', ok);
      reject(sshError(cfg, err, keyMismatch ? seenKey : undefined));
    };
    const ok = (): void => {
      client.removeListener('error', fail);
      resolve();
    };
    client.once('ready', ok);
    client.once('error', fail);
    try {
      client.connect(conf);
    } catch (e) {
      fail(e as Error);
    }
  });

  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const closeCbs: ((reason: string) => void)[] = [];
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
    client.end();
  };
  client.on('error', () => undefined);
  client.on('close', () => {
    const wasOpen = !closed;
    close();
    if (wasOpen) for (const cb of closeCbs) cb(`the SSH tunnel through ${cfg.host} closed`);
  });

  /** Listening ports by `host:port` on the SSH server's side (promises: two callers may ask at once). */
  const listeners = new Map<string, Promise<number>>();
  const ports = new Map<string, number>();
  const keyOf = (t: Target): string => `${t.host.toLowerCase()}:${t.port}`;
  const listen = (t: Target): Promise<number> => {
    const key = keyOf(t);
    let p = listeners.get(key);
    if (!p) {
      if (closed) return Promise.reject(new ContractError(-1, `the SSH tunnel through ${cfg.host} is closed`));
      const server = net.createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => sock.destroy());
        client.forwardOut('127.0.0.1', sock.remotePort ?? 0, t.host, t.port, (err, stream) => {
          if (err) {
            sock.destroy();
            return;
          }
          stream.on('error', () => sock.destroy());
          sock.pipe(stream).pipe(sock);
          sock.on('close', () => stream.close());
        });
      });
      servers.push(server);
      p = new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as net.AddressInfo).port;
          ports.set(key, port);
          resolve(port);
        });
      });
      listeners.set(key, p);
      p.catch(() => listeners.delete(key));
    }
    return p;
  };
  const local = (t: Target, port: number): string => `${t.scheme}://127.0.0.1:${port}`;

  try {
    const rewritten: string[] = [];
    for (const t of targets) rewritten.push(local(t, await listen(t)));
    return {
      endpoints: rewritten,
      hosts: targets.map((t) => t.host),
      hostKey: seenKey,
      forward: async (url) => {
        const t = parseTarget(url);
        return local(t, await listen(t));
      },
      forwardedUrl: (url) => {
        let t: Target;
        try {
          t = parseTarget(url);
        } catch {
          return undefined;
        }
        const port = ports.get(keyOf(t));
        return port === undefined ? undefined : local(t, port);
      },
      close,
      onClose: (cb) => closeCbs.push(cb),
    };
  } catch (e) {
    close();
    throw e;
  }
}

function sshError(cfg: SshTunnelConfig, err: Error & { level?: string }, mismatchKey: string | undefined): ContractError {
  const at = `${cfg.username}@${cfg.host}:${cfg.port ?? 22}`;
  if (mismatchKey)
    return new ContractError(-1, `SSH host key of ${cfg.host} changed: expected ${cfg.hostKeySha256}, got ${mismatchKey}. If the server was rebuilt, clear the pinned key in the connection's SSH settings`);
  if (err.level === 'client-authentication') return new ContractError(-1, `SSH ${at}: authentication failed (${cfg.keyFile ? 'key not accepted' : 'wrong password'})`);
  if (err.level === 'client-timeout') return new ContractError(-1, `SSH ${at}: timed out`);
  const code = (err as NodeJS.ErrnoException).code;
  return new ContractError(-1, `SSH ${at}: ${code ?? err.message}`);
}
