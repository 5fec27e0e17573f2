// One listener per client URL serving gRPC and HTTP/1.1 on the same port, as
// etcd's cmux does: the first bytes of a plain connection tell an HTTP/2
// preface (handed to the gRPC server's lean HTTP/2 server, `serveSocket`)
// from an HTTP/1.x request (/health, /version, /metrics). TLS listeners hand
// every connection to a node:http2 server, which performs the handshake
// itself (and serves HTTP/1.1 and non-gRPC HTTP/2 there).
import http from 'node:http';
import type http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import fs from 'node:fs';
import { listenTarget } from '../support/listen-address';
import { sniffAuthority } from './h2-authority';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0');
/** With a node:http2 server on a plain port (ETCDESK_NODE_HTTP2=1): ETCDESK_RAW_H2=1 skips the :authority rewrite (hands sockets to nghttp2 directly). */
const rewriteAuthority = process.env.ETCDESK_RAW_H2 !== '1';

/** How long an idle HTTP/1 keep-alive connection (/metrics, /health, the gateway) stays open: longer than Go's and Node's client idle timeouts (90 s, 5 s). */
export const IDLE_HTTP_MS = 120_000;
/** A plain connection that sends nothing is closed after this (then the lean server's preface timer or the HTTP server's own take over). */
const FIRST_BYTES_MS = 10_000;

export interface ClientListener {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves HTTP/2 on sockets handed to it (the gRPC server's lean HTTP/2 server). */
export interface H2SocketServer {
  serveSocket(socket: Duplex): void;
}

export async function listenClientUrl(
  url: string,
  h2: http2.Http2Server | http2.Http2SecureServer | H2SocketServer,
  secure: boolean,
  httpHandler: http.RequestListener,
): Promise<ClientListener> {
  const lean = 'serveSocket' in h2 ? h2 : undefined;
  const inject = (conn: Duplex): void => {
    if (lean) lean.serveSocket(conn);
    else (h2 as http2.Http2Server).emit('connection', conn);
  };
  const httpServer = http.createServer(httpHandler);
  // Node's 5 s idle close races a keep-alive client reusing the connection at
  // that moment (Node's own agent also idles out at 5 s): the request is lost
  // as "socket hang up". etcd's Go server keeps idle connections until the
  // client closes them; a long timeout lets every client close first.
  httpServer.keepAliveTimeout = IDLE_HTTP_MS;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (secure) {
      inject(socket);
      return;
    }
    const silent = setTimeout(() => socket.destroy(), FIRST_BYTES_MS);
    silent.unref();
    socket.once('close', () => clearTimeout(silent));
    socket.once('readable', () => {
      clearTimeout(silent);
      const head = socket.read() as Buffer | null;
      if (!head) {
        socket.once('readable', () => socket.destroy());
        return;
      }
      socket.unshift(head);
      const n = Math.min(head.length, H2_PREFACE.length);
      if (!head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) httpServer.emit('connection', socket);
      // the lean server accepts grpc-go's scheme-qualified :authority as it is; nghttp2 needs it rewritten
      else if (rewriteAuthority && !lean) sniffAuthority(socket, inject);
      else inject(socket);
    });
  });
  const target = listenTarget(url);
  if (target.path && fs.existsSync(target.path)) fs.unlinkSync(target.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (target.path) server.listen(target.path, () => resolve());
    else server.listen(target.port, target.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        httpServer.close();
        server.close(() => resolve());
      }),
  };
}
