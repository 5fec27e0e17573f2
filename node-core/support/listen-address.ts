// Where a URL listens, and free loopback ports for members started on
// 127.0.0.1 (the desktop app's local cluster and the test harnesses). One
// copy here, below server and testing, so both use the same code.
import net from 'node:net';

export interface ListenTarget {
  host?: string;
  port?: number;
  path?: string;
}

/** Where a client/peer URL listens. Go resolves `localhost` to IPv4 first; so do we. */
export function listenTarget(url: string): ListenTarget {
  const u = new URL(url);
  if (u.protocol === 'unix:' || u.protocol === 'unixs:') return { path: u.host + u.pathname };
  const host = u.hostname === 'localhost' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { host, port };
}

/** Whether a listen failed because the address is taken (Node's error, or etcd's log line). */
export function isAddrInUse(e: unknown): boolean {
  if (e && typeof e === 'object' && (e as { code?: unknown }).code === 'EADDRINUSE') return true;
  const text = e instanceof Error ? e.message : String(e);
  return /EADDRINUSE|address already in use/.test(text);
}

// Ports this process handed out: never hand one out twice (two members given the same port).
const handedOut = new Set<number>();
// Below Linux's ephemeral range (32768–60999), where every outgoing connection on the machine
// takes its local port: a port found free there is much less likely to be taken before its
// owner binds it than one the kernel picked with listen(0).
const LOW = 20_000;
const HIGH = 32_767;

function tryBind(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once('error', () => resolve(undefined));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const a = s.address();
      const got = typeof a === 'object' && a ? a.port : undefined;
      s.close(() => resolve(got));
    });
  });
}

/**
 * A loopback port nobody listened on a moment ago. Between this check and the caller's bind
 * another process may take it: callers that pick ports this way retry on EADDRINUSE
 * (isAddrInUse) with a fresh one.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port)) continue;
    if ((await tryBind(port)) === port) {
      handedOut.add(port);
      return port;
    }
  }
  for (;;) {
    const port = await tryBind(0);
    if (port === undefined) throw new Error('no free loopback port');
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}
