// The browser shell: the built renderer and the same IPC handlers over HTTP on
// 127.0.0.1 only. Invoke = POST /api/invoke/<channel> (JSON envelope back);
// events = server-sent events on GET /api/events. Every API request must carry
// the per-launch token, come to our Host, and (when a browser says where it
// comes from) from our Origin, so no other page or site can drive it.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isChannel, SHELL_TOKEN_HEADER, type EventChannel, type EventMap } from '../contract/index';
import { dispatch, type HandlerContext, type Handlers } from '../main/handlers';

export interface ShellServer {
  url: string;
  token: string;
  port: number;
  /** For Electron-less app cores: events for every connected page. */
  broadcast<E extends EventChannel>(event: E, payload: EventMap[E]): void;
  close(): Promise<void>;
}

export interface ShellOptions {
  rendererDir: string;
  port?: number;
  token?: string;
  /** Handlers are created after the server exists (they need its broadcast). */
  handlers: () => Handlers;
  onClientGone?(clientId: string): void;
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export async function startShellServer(o: ShellOptions): Promise<ShellServer> {
  const token = o.token ?? randomBytes(24).toString('base64url');
  const tokenBuf = Buffer.from(token);
  const sessions = new Map<string, Set<http.ServerResponse>>();
  let port = 0;

  const tokenOk = (t: string | null | undefined): boolean => {
    if (!t) return false;
    const b = Buffer.from(t);
    return b.length === tokenBuf.length && timingSafeEqual(b, tokenBuf);
  };
  const hostOk = (req: http.IncomingMessage): boolean => {
    // DNS rebinding defence: only our own loopback name reaches the API.
    const host = req.headers.host ?? '';
    return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  };
  const originOk = (req: http.IncomingMessage): boolean => {
    const origin = req.headers.origin;
    return origin === undefined || origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
  };

  const send = (sid: string, event: string, payload: unknown): void => {
    const data = `event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`;
    for (const res of sessions.get(sid) ?? []) res.write(data);
  };
  const broadcast = <E extends EventChannel>(event: E, payload: EventMap[E]): void => {
    for (const sid of sessions.keys()) send(sid, event, payload);
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (!hostOk(req)) {
      res.writeHead(421).end('misdirected request');
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      if (!originOk(req)) {
        res.writeHead(403).end('forbidden origin');
        return;
      }
      const headerToken = req.headers[SHELL_TOKEN_HEADER];
      // EventSource cannot set headers: the events stream takes the token in the query.
      const t = typeof headerToken === 'string' ? headerToken : url.pathname === '/api/events' ? url.searchParams.get('token') : null;
      if (!tokenOk(t)) {
        res.writeHead(401).end('missing or wrong token');
        return;
      }
      const sid = (url.searchParams.get('session') ?? req.headers['x-etcdesk-session'] ?? 'default').toString().slice(0, 64);
      if (url.pathname === '/api/events' && req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
        res.write(': hello\n\n');
        let set = sessions.get(sid);
        if (!set) sessions.set(sid, (set = new Set()));
        set.add(res);
        const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
        req.on('close', () => {
          clearInterval(ping);
          set.delete(res);
          if (!set.size) {
            sessions.delete(sid);
            o.onClientGone?.(sid);
          }
        });
        return;
      }
      const m = /^\/api\/invoke\/([a-z:-]+)$/.exec(url.pathname);
      if (m && req.method === 'POST') {
        const channel = m[1];
        if (!isChannel(channel)) {
          res.writeHead(404).end('unknown channel');
          return;
        }
        if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
          res.writeHead(415).end('json only');
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (d: Buffer) => {
          size += d.length;
          if (size > 64 * 1024 * 1024) req.destroy();
          else chunks.push(d);
        });
        req.on('end', () => {
          let body: unknown;
          try {
            body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
          } catch {
            res.writeHead(400).end('bad json');
            return;
          }
          const ctx: HandlerContext = { clientId: sid, emit: (event, payload) => send(sid, event, payload) };
          void dispatch(o.handlers(), channel, body, ctx).then((env) => {
            res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
            res.end(JSON.stringify(env));
          });
        });
        return;
      }
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    // Static renderer files; anything unknown is the app (single page).
    let decoded: string;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const rel = path.normalize(decoded).replace(/^([/\\])+/, '');
    const base = path.resolve(o.rendererDir);
    let file = path.join(base, rel);
    if (!file.startsWith(base + path.sep) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(base, 'index.html');
    if (!fs.existsSync(file)) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('renderer not built: run `npm run build` first');
      return;
    }
    res.writeHead(200, {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': CSP,
      'Cache-Control': file.endsWith('index.html') ? 'no-store' : 'max-age=3600',
    });
    fs.createReadStream(file).pipe(res);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/#token=${token}`,
    token,
    port,
    broadcast,
    close: () =>
      new Promise<void>((resolve) => {
        for (const set of sessions.values()) for (const r of set) r.end();
        sessions.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
