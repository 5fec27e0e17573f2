// TLS from etcd's flags, with certificates made here by openssl: server-only
// TLS, mutual TLS with the certificate CN as user (--client-cert-auth), a CRL,
// plain text against a TLS port, auto-TLS fixtures, and the peer options.
import { credentials, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { AuthStore } from '../auth/store';
import { plainHasher, tempBackend } from '../auth/test-helpers';
import { authClient, call, makeTestPki, serveAuth, TestAuthNode } from './auth-harness.test';
import { createAuthHandlers } from './auth-service';
import { GrpcServer } from './grpc-server';
import { AuthService } from '../proto/gen/etcdserverpb';
import { clientListenerTls, clientTlsInfo, grpcServerTls, peerTransportTls, serverTlsOptions, type TlsInfo } from './tls';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-tls-'));
const f = (n: string) => path.join(dir, n);

const makePki = () => makeTestPki(dir);

const read = (n: string) => fs.readFileSync(f(n));
const clientCreds = (who?: string) =>
  who ? credentials.createSsl(read('ca.pem'), read(`${who}.key`), read(`${who}.pem`)) : credentials.createSsl(read('ca.pem'));
const info = (o: Partial<TlsInfo>): TlsInfo => ({ certFile: f('server.pem'), keyFile: f('server.key'), trustedCaFile: '', clientCertAuth: false, crlFile: '', selfCert: false, ...o });

const fails = (p: Promise<unknown>, code = 14) =>
  assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, e.details);
    return true;
  });

function setupNode() {
  const tb = tempBackend('tls');
  const store = new AuthStore(tb.backend, { hasher: plainHasher });
  const node = new TestAuthNode(tb.backend, store);
  return { tb, store, node };
}

describe('client TLS', () => {
  before(makePki);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('server TLS: trusted clients connect; plain text to the TLS port fails cleanly', async () => {
    const { tb, node } = setupNode();
    const { server, port } = await serveAuth(node, grpcServerTls(info({})));
    try {
      const good = authClient(port, clientCreds());
      assert.deepEqual((await call(good, 'UserList', {})).users, []);
      const plain = authClient(port);
      await fails(call(plain, 'UserList', {}));
      plain.close();
      // the server is unharmed
      assert.deepEqual((await call(good, 'RoleList', {})).roles, []);
      good.close();
      // an untrusted server certificate is refused by the client
      const naive = authClient(port, credentials.createSsl());
      await fails(call(naive, 'UserList', {}));
      naive.close();
    } finally {
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test('a trusted CA requires a client certificate; with --client-cert-auth its CN is the user', async () => {
    const { tb, store, node } = setupNode();
    node.clientCertAuth = true;
    store.userAdd({ name: 'root', password: '', hashed_password: Buffer.from('plain:x') });
    store.userGrantRole({ user: 'root', role: 'root' });
    store.userAdd({ name: 'alice', password: '', hashed_password: Buffer.from('plain:y') });
    store.authEnable();
    const { server, port } = await serveAuth(node, grpcServerTls(info({ trustedCaFile: f('ca.pem'), clientCertAuth: true })));
    try {
      const anon = authClient(port, clientCreds());
      await fails(call(anon, 'UserList', {}));
      anon.close();
      const alice = authClient(port, clientCreds('alice'));
      assert.deepEqual((await call(alice, 'UserGet', { name: 'alice' })).roles, []);
      await fails(call(alice, 'UserList', {}), 7);
      alice.close();
      const root = authClient(port, clientCreds('root'));
      assert.deepEqual((await call(root, 'UserList', {})).users, ['alice', 'root']);
      root.close();
    } finally {
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test('without --client-cert-auth a CN names nobody', async () => {
    const { tb, store, node } = setupNode();
    store.userAdd({ name: 'root', password: '', hashed_password: Buffer.from('plain:x') });
    store.userGrantRole({ user: 'root', role: 'root' });
    store.authEnable();
    const { server, port } = await serveAuth(node, grpcServerTls(info({ trustedCaFile: f('ca.pem') })));
    try {
      const root = authClient(port, clientCreds('root'));
      await assert.rejects(call(root, 'UserList', {}), (e: ServiceError) => e.details === 'etcdserver: user name is empty');
      root.close();
    } finally {
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test('--client-crl-file refuses a revoked client certificate', async () => {
    const { tb, node } = setupNode();
    const { server, port } = await serveAuth(node, grpcServerTls(info({ trustedCaFile: f('ca.pem'), clientCertAuth: true, crlFile: f('crl.pem') })));
    try {
      const alice = authClient(port, clientCreds('alice'));
      await call(alice, 'UserList', {});
      alice.close();
      const mallory = authClient(port, clientCreds('mallory'));
      await fails(call(mallory, 'UserList', {}));
      mallory.close();
    } finally {
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test('TLS works on connections handed to the HTTP/2 server (a cmux-style listener), CN included', async () => {
    const { tb, store, node } = setupNode();
    node.clientCertAuth = true;
    store.userAdd({ name: 'root', password: '', hashed_password: Buffer.from('plain:x') });
    store.userGrantRole({ user: 'root', role: 'root' });
    store.authEnable();
    const grpc = new GrpcServer({ maxReceiveMessageBytes: 1 << 20 });
    grpc.addService(AuthService, createAuthHandlers(node));
    const h2 = grpc.http2Server(grpcServerTls(info({ trustedCaFile: f('ca.pem'), clientCertAuth: true })));
    const server = { forceShutdown: () => grpc.forceShutdown() };
    const raw = net.createServer((sock) => h2.emit('connection', sock));
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const port = (raw.address() as { port: number }).port;
    try {
      const root = authClient(port, clientCreds('root'));
      assert.deepEqual((await call(root, 'UserList', {})).users, ['root']);
      root.close();
      const alice = authClient(port, clientCreds('alice'));
      await fails(call(alice, 'UserList', {}), 9);
      alice.close();
    } finally {
      raw.close();
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test("etcd's URL scheme rules", () => {
    const flags = { dataDir: dir, certFile: f('server.pem'), keyFile: f('server.key'), clientCertAuth: true };
    const http = clientListenerTls('http://127.0.0.1:2379', flags);
    assert.equal(http.tls, undefined);
    assert.equal(http.clientCertAuth, false);
    assert.deepEqual(http.warnings, [
      'The scheme of client url http://127.0.0.1:2379 is HTTP while peer key/cert files are presented. Ignored key/cert files.',
      'The scheme of client url http://127.0.0.1:2379 is HTTP while client cert auth (--client-cert-auth) is enabled. Ignored client cert auth for this url.',
    ]);
    const https = clientListenerTls('https://127.0.0.1:2379', flags);
    assert.equal(https.tls?.requestCert, true, '--client-cert-auth asks for a client certificate');
    assert.ok(https.tls?.cert);
    assert.equal(https.clientCertAuth, true);
    assert.throws(
      () => clientListenerTls('https://127.0.0.1:2379', { dataDir: dir }),
      /^Error: TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127.0.0.1:2379 with HTTPS scheme$/,
    );
    assert.throws(() => serverTlsOptions(info({ keyFile: '' })), /KeyFile and CertFile must both be present/);
    const o = serverTlsOptions(info({}));
    assert.equal(o.requestCert, false, 'no CA, no client-cert-auth: no client certificate asked');
    assert.equal(o.minVersion, 'TLSv1.2');
  });

  test('--auto-tls writes a self-signed P-521 certificate into <data-dir>/fixtures/client, reused after', async () => {
    const dataDir = f('auto');
    const flags = { dataDir, autoTls: true, listenClientUrls: ['https://127.0.0.1:0', 'https://localhost:2379'] };
    const i1 = clientTlsInfo(flags);
    assert.equal(i1.certFile, path.join(dataDir, 'fixtures', 'client', 'cert.pem'));
    assert.equal(i1.selfCert, true);
    const pem = fs.readFileSync(i1.certFile);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', i1.certFile]).toString();
    assert.match(text, /Issuer: O = etcd/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA512/);
    assert.match(text, /NIST CURVE: P-521/);
    assert.match(text, /IP Address:127.0.0.1, DNS:localhost/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.equal((fs.statSync(i1.keyFile).mode & 0o777).toString(8), '600');
    clientTlsInfo(flags);
    assert.deepEqual(fs.readFileSync(i1.certFile), pem, 'existing fixtures are reused');
    // given certificate files win over --auto-tls
    assert.equal(clientTlsInfo({ ...flags, certFile: f('server.pem'), keyFile: f('server.key') }).selfCert, false);
    // and the generated certificate serves TLS, trusted as its own root
    const { tb, node } = setupNode();
    const { server, port } = await serveAuth(node, grpcServerTls(i1));
    try {
      const c = authClient(port, credentials.createSsl(pem));
      await call(c, 'UserList', {});
      c.close();
    } finally {
      server.forceShutdown();
      await tb.cleanup();
    }
  });

  test('peer TLS options: mutual TLS between members; --peer-auto-tls skips verification as etcd', async () => {
    assert.equal(peerTransportTls({ dataDir: dir }), undefined);
    const handshake = async (server: tls.TlsOptions, client: tls.ConnectionOptions): Promise<string | undefined> => {
      const srv = tls.createServer(server, (s) => s.end('hi'));
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as { port: number }).port;
      try {
        return await new Promise((resolve) => {
          // with TLS 1.3 the server judges the client certificate after the
          // client's handshake ends: only data from the server proves acceptance
          const s = tls.connect({ ...client, host: '127.0.0.1', port, servername: 'localhost' });
          s.on('data', () => {
            const cn = s.getPeerCertificate().subject?.CN;
            s.end();
            resolve(typeof cn === 'string' ? cn : 'connected');
          });
          s.on('error', () => resolve(undefined));
          s.on('close', () => resolve(undefined));
        });
      } finally {
        srv.close();
      }
    };
    const mtls = peerTransportTls({ dataDir: dir, peerCertFile: f('server.pem'), peerKeyFile: f('server.key'), peerTrustedCaFile: f('ca.pem'), peerClientCertAuth: true })!;
    assert.equal(mtls.server.requestCert, true);
    assert.equal(await handshake(mtls.server, mtls.client), 'localhost');
    // a peer without a client certificate is refused
    assert.equal(await handshake(mtls.server, { ca: read('ca.pem'), ALPNProtocols: ['h2'] }), undefined);
    const auto = peerTransportTls({ dataDir: f('peer-auto'), peerAutoTls: true, listenPeerUrls: ['https://127.0.0.1:2380'] })!;
    assert.ok(fs.existsSync(path.join(f('peer-auto'), 'fixtures', 'peer', 'cert.pem')));
    assert.equal(auto.client.rejectUnauthorized, false);
    assert.equal(await handshake(auto.server, auto.client), 'connected');
  });
});
