// (Named .test.ts to stay within the auth test files; it holds no tests itself.)
// A stand-in node for the auth service tests: proposals go through the real
// log encoding and the real auth appliers, in order, without raft.
import { credentials, Metadata, makeGenericClientConstructor, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import net from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../backend/backend';
import type { AuthStore } from '../auth/store';
import { authAppliers } from '../cluster/apply-auth';
import type { ApplyContext, ApplyField } from '../cluster/apply-types';
import {
  AuthService,
  decodeInternalRaftRequest,
  encodeInternalRaftRequest,
  type InternalRaftRequestInit,
  type ResponseHeaderInit,
} from '../proto/gen/etcdserverpb';
import { createAuthHandlers, type AuthServiceNode } from './auth-service';
import { GrpcServer } from './grpc-server';

export class TestAuthNode implements AuthServiceNode {
  readonly log: Buffer[] = [];
  index = 0;
  clientCertAuth = false;
  services: { auth: AuthStore };

  constructor(
    private readonly backend: Backend,
    auth: AuthStore,
  ) {
    this.services = { auth };
  }

  async propose(init: InternalRaftRequestInit): Promise<unknown> {
    const data = encodeInternalRaftRequest(init);
    this.log.push(data);
    const r = decodeInternalRaftRequest(data);
    const field = (Object.keys(authAppliers) as ApplyField[]).find((k) => r[k] !== undefined);
    if (!field) throw new Error('no auth applier for the request');
    const ctx: ApplyContext = { backend: this.backend, mvcc: undefined as never, index: ++this.index, term: 1, services: { ...this.services, members: undefined as never, lessor: undefined as never } };
    // a tick later, like a real apply
    await new Promise((res) => setImmediate(res));
    return { result: authAppliers[field]!(ctx, r), rev: 1 };
  }

  header(): ResponseHeaderInit {
    return { cluster_id: 1n, member_id: 2n, revision: 1, raft_term: 1 };
  }
}

type Callback = (err: ServiceError | null, res: Record<string, unknown>) => void;
export type AuthClient = Client & Record<string, (req: object, md: Metadata, cb: Callback) => void>;

/** The auth service on the node's gRPC server, listening on a free loopback port (TLS when given). */
export async function serveAuth(node: AuthServiceNode, tls?: TlsOptions & SecureContextOptions): Promise<{ server: { forceShutdown(): void }; port: number }> {
  const grpc = new GrpcServer({ maxReceiveMessageBytes: 4 << 20 });
  grpc.addService(AuthService, createAuthHandlers(node));
  // as the node's client listener: TLS on node:http2, plain connections on the lean HTTP/2 server
  const h2 = tls ? grpc.http2Server(tls) : undefined;
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    if (h2) h2.emit('connection', sock);
    else grpc.serveSocket(sock);
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as net.AddressInfo).port;
  const forceShutdown = (): void => {
    grpc.forceShutdown();
    for (const s of sockets) s.destroy();
    listener.close();
  };
  return { server: { forceShutdown }, port };
}

export function authClient(port: number, creds: ChannelCredentials = credentials.createInsecure(), host = '127.0.0.1'): AuthClient {
  const Ctor = makeGenericClientConstructor(AuthService, 'Auth');
  return new Ctor(`${host}:${port}`, creds) as unknown as AuthClient;
}

/** Calls a unary method; resolves with the response or rejects with the gRPC error. */
export function call(c: AuthClient, method: string, req: object, token?: string): Promise<Record<string, unknown>> {
  const md = new Metadata();
  if (token) md.set('token', token);
  return new Promise((res, rej) => c[method](req, md, (e, r) => (e ? rej(e) : res(r))));
}

/**
 * A throwaway PKI made with openssl: ca.pem; server.pem (SAN 127.0.0.1,
 * localhost); client certificates CN=alice, CN=root, CN=mallory (revoked in
 * crl.pem). Keys are <name>.key.
 */
export function makeTestPki(dir: string): void {
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  fs.writeFileSync(f('ext-server.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  fs.writeFileSync(f('ext-client.cnf'), 'extendedKeyUsage=clientAuth\n');
  fs.writeFileSync(f('index.txt'), '');
  fs.writeFileSync(f('crlnumber'), '01\n');
  fs.writeFileSync(f('ca.cnf'), `[ca]\ndefault_ca=CA_default\n[CA_default]\ndatabase=${f('index.txt')}\ncrlnumber=${f('crlnumber')}\ndefault_md=sha256\ndefault_crl_days=30\n`);
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test-ca');
  const issue = (name: string, cn: string, ext: string) => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', ext);
  };
  issue('server', 'localhost', 'ext-server.cnf');
  issue('alice', 'alice', 'ext-client.cnf');
  issue('root', 'root', 'ext-client.cnf');
  issue('mallory', 'mallory', 'ext-client.cnf');
  ssl('ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', 'mallory.pem');
  ssl('ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', 'crl.pem');
}
