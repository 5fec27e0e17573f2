// The lean HTTP/2 server: no listener of its own. Sockets are handed in, so the node's
// client listener (which sniffs each connection's first bytes) and a TLS server after
// ALPN h2 can both feed it.
import type { Duplex } from 'node:stream';
import { H2Connection, type LeanH2Options, type StreamHandler } from './connection';

export interface LeanH2Server {
  /** Serves HTTP/2 on `socket`. `head`: bytes already read from it by a sniffer, parsed before anything else. */
  handleSocket(socket: Duplex, head?: Buffer): H2Connection;
  readonly connections: ReadonlySet<H2Connection>;
  /** GOAWAY(NO_ERROR) on every connection: open streams finish, new ones are refused. */
  close(): void;
  /** Ends every connection now. */
  destroy(): void;
}

export function createLeanH2Server(onStream: StreamHandler, opts: LeanH2Options = {}): LeanH2Server {
  const connections = new Set<H2Connection>();
  const gone = (c: H2Connection): void => {
    connections.delete(c);
  };
  return {
    connections,
    handleSocket(socket: Duplex, head?: Buffer): H2Connection {
      if (head?.length) socket.unshift(head);
      const c = new H2Connection(socket, onStream, opts, gone);
      connections.add(c);
      return c;
    },
    close() {
      for (const c of connections) c.goaway();
    },
    destroy() {
      for (const c of [...connections]) c.destroy();
    },
  };
}

export { H2Connection, LeanH2Stream } from './connection';
export type { LeanH2Options, StreamHandler } from './connection';
export { EncodedHeaders } from './hpack';
export { H2Error } from './frames';
