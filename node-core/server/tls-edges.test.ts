// TLS edges side by side with etcd 3.4.23 (certificates made by openssl into a
// temp dir): the HTTP endpoints on an https client URL (HTTP/2 and HTTP/1.1),
// a revoked client certificate (--client-crl-file) refused on gRPC and https,
// --cipher-suites, --client-cert-allowed-hostname, and the peer certificate
// checks (--peer-cert-allowed-cn / --peer-cert-allowed-hostname).
import { credentials, Metadata, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../support/logger';
import { fetchMembers, PeerTransport } from '../transport/transport';
import { KVService } from '../proto/gen/etcdserverpb';
import { freePort, hasEtcd, startEtcd, startEtcdesk, tempDir, waitFor, type ServerProc } from '../testing/processes';
import { makeTestPki } from './auth-harness.test';
import { certificateCheck, cipherSuiteOptions, peerTransportTls, type TlsFlags } from './tls';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-tls-edges-'));
const f = (n: string) => path.join(dir, n);
const read = (n: string) => fs.readFileSync(f(n));

interface Answer {
  status: number;
  body: string;
  contentType?: string;
}

/** GET over HTTP/2 (ALPN h2), as curl does by default against an https URL. */
function getH2(port: number, p: string, who?: string): Promise<Answer | 'refused'> {
  return new Promise((resolve) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, { ca: read('ca.pem'), ...(who ? { cert: read(`${who}.pem`), key: read(`${who}.key`) } : {}) });
    s.on('error', () => resolve('refused'));
    const r = s.request({ ':path': p });
    let body = '';
    let status = 0;
    r.on('response', (h) => (status = Number(h[':status'])));
    r.on('data', (c: Buffer) => (body += c.toString()));
    r.on('end', () => {
      s.close();
      // a stream ended without response headers: the connection was refused after the handshake
      resolve(status === 0 ? 'refused' : { status, body });
    });
    r.on('error', () => resolve('refused'));
    r.end();
  });
}

/** GET (or another method) over HTTP/1.1 (ALPN http/1.1), as curl --http1.1. */
function getH1(port: number, p: string, who?: string, method = 'GET'): Promise<Answer | 'refused'> {
  return new Promise((resolve) => {
    const opts = { host: '127.0.0.1', port, path: p, method, ca: read('ca.pem'), ALPNProtocols: ['http/1.1'], agent: false, ...(who ? { cert: read(`${who}.pem`), key: read(`${who}.key`) } : {}) };
    const req = https.request(opts as https.RequestOptions, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'] }));
      res.on('error', () => resolve('refused'));
    });
    req.on('error', () => resolve('refused'));
    req.end();
  });
}

/** Plain HTTP to the TLS port: what comes back before the server closes. */
function plainToTls(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('close', () => resolve(got.startsWith('HTTP/') ? got.split('\r\n')[0] : 'closed'));
    s.on('error', () => undefined);
  });
}

type RangeOutcome = 'ok' | { code: number; details: string };
function grpcRange(port: number, who?: string): Promise<RangeOutcome> {
  const Ctor = makeGenericClientConstructor(KVService, 'KV');
  const creds = who ? credentials.createSsl(read('ca.pem'), read(`${who}.key`), read(`${who}.pem`)) : credentials.createSsl(read('ca.pem'));
  const c = new Ctor(`127.0.0.1:${port}`, creds) as unknown as Record<string, (req: object, md: Metadata, opts: object, cb: (e: ServiceError | null) => void) => void> & { close(): void };
  return new Promise((resolve) => {
    c.Range({ key: Buffer.from('k') }, new Metadata(), { deadline: Date.now() + 5000 }, (e) => {
      c.close();
      resolve(e ? { code: e.code, details: e.details.includes('No connection established') || e.code === 14 ? 'unavailable' : e.details } : 'ok');
    });
  });
}

const procs: ServerProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Starts etcd or etcdesk serving clients on https with the given TLS flags; resolves with its client port once ready. */
async function startTls(kind: 'etcd' | 'etcdesk', tlsArgs: string[], readyAs?: string): Promise<{ port: number; proc: ServerProc }> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const start = kind === 'etcd' ? startEtcd : startEtcdesk;
  const proc = await start({
    clientPort: port,
    waitReady: false,
    extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url, '--cert-file', f('server.pem'), '--key-file', f('server.key'), ...tlsArgs, ...(kind === 'etcdesk' ? ['--log-level', 'warn'] : [])],
  });
  procs.push(proc);
  await waitFor(`${kind} on ${url}`, async () => {
    const r = await getH1(port, '/health', readyAs);
    return r !== 'refused' && r.status === 200;
  }, 30_000, 100);
  return { port, proc };
}

describe('TLS edges, side by side with etcd', { skip: !hasEtcd() && 'etcd not installed', concurrency: false }, () => {
  before(() => makeTestPki(dir));

  test('an https client URL serves /health, /version, /metrics over HTTP/2 and HTTP/1.1, as etcd; plain HTTP is closed', { timeout: 90_000 }, async () => {
    const run = async (kind: 'etcd' | 'etcdesk') => {
      const { port } = await startTls(kind, []);
      const out: Record<string, unknown> = {};
      for (const p of ['/health', '/version', '/metrics', '/nope']) {
        for (const [proto, get] of [['h2', getH2], ['h1', getH1]] as const) {
          const r = await get(port, p);
          // /metrics bodies differ (different processes); its status and a known family are compared
          out[`${proto} ${p}`] = r === 'refused' ? r : p === '/metrics' ? { status: r.status, leader: /^etcd_server_has_leader 1$/m.test(r.body) } : p === '/nope' ? r.status : r;
        }
      }
      out.plain = await plainToTls(port);
      out.postHealth = await getH1(port, '/health', undefined, 'POST');
      return out;
    };
    const [want, got] = await Promise.all([run('etcd'), run('etcdesk')]);
    assert.deepEqual(want['h1 /health'], { status: 200, body: '{"health":"true"}', contentType: 'text/plain; charset=utf-8' }, 'etcd answers /health over https');
    assert.deepEqual(got, want);
  });

  test('--client-crl-file: a revoked client certificate is refused on gRPC and on https; a good one is served, as etcd', { timeout: 90_000 }, async () => {
    const args = ['--trusted-ca-file', f('ca.pem'), '--client-cert-auth', '--client-crl-file', f('crl.pem')];
    const run = async (kind: 'etcd' | 'etcdesk') => {
      const { port } = await startTls(kind, args, 'alice');
      return {
        aliceGrpc: await grpcRange(port, 'alice'),
        malloryGrpc: await grpcRange(port, 'mallory'),
        anonymousGrpc: await grpcRange(port),
        aliceHttps: await getH1(port, '/health', 'alice'),
        malloryHttps: await getH1(port, '/health', 'mallory'),
        malloryH2: await getH2(port, '/health', 'mallory'),
      };
    };
    const [want, got] = await Promise.all([run('etcd'), run('etcdesk')]);
    assert.equal(want.aliceGrpc, 'ok');
    assert.notEqual(want.malloryGrpc, 'ok', 'etcd refuses the revoked certificate');
    assert.deepEqual(got, want);
  });
});

/** A TLS 1.2 handshake offering only `cipher` (OpenSSL name): the suite negotiated, or 'refused'. */
function tls12With(port: number, cipher: string, who = 'alice'): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: read('ca.pem'), cert: read(`${who}.pem`), key: read(`${who}.key`), maxVersion: 'TLSv1.2', ciphers: cipher, ALPNProtocols: ['h2'] });
    s.on('secureConnect', () => {
      const name = s.getCipher().standardName;
      s.destroy();
      resolve(name);
    });
    s.on('error', () => resolve('refused'));
  });
}

/** A TLS 1.3 handshake: its version, or 'refused'. */
function tls13(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: read('ca.pem'), minVersion: 'TLSv1.3', ALPNProtocols: ['h2'] });
    s.on('secureConnect', () => {
      const v = s.getProtocol() ?? '';
      s.destroy();
      resolve(v);
    });
    s.on('error', () => resolve('refused'));
  });
}

/** Starts a member expected to refuse to start: its exit code and output. */
async function failedStart(kind: 'etcd' | 'etcdesk', args: string[]): Promise<{ code: number | null; output: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = await (kind === 'etcd' ? startEtcd : startEtcdesk)({ clientPort: port, waitReady: false, extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url, ...args] });
  // stopped after the tests should it start after all
  procs.push(proc);
  const code = await new Promise<number | null>((resolve) => {
    if (proc.proc.exitCode !== null) resolve(proc.proc.exitCode);
    else proc.proc.once('exit', (c) => resolve(c));
  });
  return { code, output: proc.output() };
}

describe('--cipher-suites and --client-cert-allowed-hostname, side by side with etcd', { skip: !hasEtcd() && 'etcd not installed', concurrency: false }, () => {
  test('an unknown suite name is refused at start with etcd\'s error', { timeout: 60_000 }, async () => {
    const args = ['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_BOGUS'];
    const [want, got] = await Promise.all([failedStart('etcd', args), failedStart('etcdesk', args)]);
    assert.notEqual(want.code, 0);
    assert.match(want.output, /unexpected TLS cipher suite \\"TLS_BOGUS\\"/);
    assert.notEqual(got.code, 0);
    assert.match(got.output, /unexpected TLS cipher suite \\"TLS_BOGUS\\"/);
  });

  test('TLS 1.2 clients get only the listed suites; TLS 1.3 is unaffected, as etcd', { timeout: 90_000 }, async () => {
    // the server key is ECDSA P-256: only ECDHE-ECDSA suites can be negotiated
    const args = ['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305'];
    const run = async (kind: 'etcd' | 'etcdesk') => {
      const { port } = await startTls(kind, args);
      return {
        listed: await tls12With(port, 'ECDHE-ECDSA-AES128-GCM-SHA256'),
        alias: await tls12With(port, 'ECDHE-ECDSA-CHACHA20-POLY1305'),
        unlisted: await tls12With(port, 'ECDHE-ECDSA-AES256-GCM-SHA384'),
        cbc: await tls12With(port, 'ECDHE-ECDSA-AES128-SHA'),
        tls13: await tls13(port),
      };
    };
    const [want, got] = await Promise.all([run('etcd'), run('etcdesk')]);
    assert.equal(want.unlisted, 'refused', 'etcd refuses a suite it was not given');
    assert.equal(want.listed, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
    assert.deepEqual(got, want);
  });

  test('--client-cert-allowed-hostname: only a client certificate valid for that host is served, as etcd', { timeout: 90_000 }, async () => {
    // server.pem (SAN localhost, 127.0.0.1; clientAuth too) stands for a client certificate issued to a host
    const args = ['--trusted-ca-file', f('ca.pem'), '--client-cert-auth', '--client-cert-allowed-hostname', 'localhost'];
    const run = async (kind: 'etcd' | 'etcdesk') => {
      const { port } = await startTls(kind, args, 'server');
      return {
        hostCert: await grpcRange(port, 'server'),
        alice: await grpcRange(port, 'alice'),
        aliceHttps: await getH1(port, '/health', 'alice'),
      };
    };
    const [want, got] = await Promise.all([run('etcd'), run('etcdesk')]);
    assert.equal(want.hostCert, 'ok');
    assert.notEqual(want.alice, 'ok', 'etcd refuses a certificate not issued for the host');
    assert.deepEqual(got, want);
  });
});

describe('peer certificates: --peer-cert-allowed-cn / --peer-cert-allowed-hostname', { concurrency: false }, () => {
  before(() => {
    if (!fs.existsSync(f('ca.pem'))) makeTestPki(dir);
  });

  const peerFlags = (who: string, extra: Partial<TlsFlags> = {}): TlsFlags => ({
    dataDir: dir,
    peerCertFile: f(`${who}.pem`),
    peerKeyFile: f(`${who}.key`),
    peerTrustedCaFile: f('ca.pem'),
    peerClientCertAuth: true,
    ...extra,
  });

  /** A member's peer transport listening on https with the given allowance; probes dial it as members do. */
  async function peerServer(extra: Partial<TlsFlags>): Promise<{ url: string; stop(): Promise<void> }> {
    const t = new PeerTransport({
      memberId: 2n,
      clusterId: 0xc1n,
      listenPeerUrls: ['https://127.0.0.1:0'],
      tls: peerTransportTls(peerFlags('server', extra)),
      log: silentLogger,
      clusterToken: 'tok',
      handler: {
        receive: () => undefined,
        receiveSnapshot: () => undefined,
        openSnapshotData: () => Promise.reject(new Error('none')),
        reportUnreachable: () => undefined,
        reportSnapshot: () => undefined,
        members: () => [],
      },
    });
    await t.start();
    return { url: t.listenUrls()[0], stop: () => t.stop() };
  }

  const probe = (url: string, who: string, extra: Partial<TlsFlags> = {}): Promise<string> =>
    fetchMembers([url], 'tok', peerTransportTls(peerFlags(who, extra)), 3000).then(
      () => 'ok',
      () => 'refused',
    );

  test('a member refuses a peer whose certificate CN is not the allowed one', async () => {
    const srv = await peerServer({ peerCertAllowedCn: 'localhost' });
    try {
      assert.equal(await probe(srv.url, 'server'), 'ok', 'CN=localhost is allowed');
      assert.equal(await probe(srv.url, 'alice'), 'refused', 'CN=alice is not');
      assert.equal(await probe(srv.url, 'root'), 'refused');
      // and the dialing member checks the answering member's certificate the same way
      assert.equal(await probe(srv.url, 'server', { peerCertAllowedCn: 'alice' }), 'refused');
      assert.equal(await probe(srv.url, 'server', { peerCertAllowedCn: 'localhost' }), 'ok');
    } finally {
      await srv.stop();
    }
    // a member that asks for no client certificate checks none (Go skips VerifyPeerCertificate then)
    const open = await peerServer({ peerCertAllowedCn: 'localhost', peerTrustedCaFile: '', peerClientCertAuth: false });
    try {
      assert.equal(await probe(open.url, 'alice'), 'ok');
    } finally {
      await open.stop();
    }
  });

  test('a member refuses a peer whose certificate is not valid for the allowed hostname (SANs, never the CN)', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const srv = await peerServer({ peerCertAllowedHostname: host });
      try {
        assert.equal(await probe(srv.url, 'server'), 'ok', `server.pem has ${host} in its SANs`);
        assert.equal(await probe(srv.url, 'alice'), 'refused', 'alice.pem has no SAN');
      } finally {
        await srv.stop();
      }
    }
    // the CN alone never makes a hostname match (Go's VerifyHostname)
    const cnOnly = await peerServer({ peerCertAllowedHostname: 'alice' });
    try {
      assert.equal(await probe(cnOnly.url, 'alice'), 'refused');
    } finally {
      await cnOnly.stop();
    }
  });

  test("etcd's option rules: CN and hostname exclusive; unknown cipher names refused even without TLS", () => {
    assert.throws(() => certificateCheck({ allowedCn: 'a', allowedHostname: 'b' }), /^Error: AllowedCN and AllowedHostname are mutually exclusive \(cn="a", hostname="b"\)$/);
    assert.throws(() => peerTransportTls({ dataDir: dir, cipherSuites: ['NOPE'] }), /^Error: unexpected TLS cipher suite "NOPE"$/);
    assert.deepEqual(cipherSuiteOptions([]), {});
    assert.deepEqual(cipherSuiteOptions(['TLS_AES_128_GCM_SHA256']), { minVersion: 'TLSv1.3' }, 'TLS 1.3 names are valid but only TLS 1.3 is left');
    assert.equal(cipherSuiteOptions(['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']).ciphers?.endsWith(':ECDHE-RSA-AES128-GCM-SHA256'), true);
  });
});

describe("etcd's peer port with the same allowances (the reference for the table above)", { skip: !hasEtcd() && 'etcd not installed', concurrency: false }, () => {
  /** GET /members on etcd's peer port with a client certificate: 'ok' or 'refused'. */
  const members = (port: number, who: string): Promise<string> =>
    new Promise((resolve) => {
      const opts = { host: '127.0.0.1', port, path: '/members', ca: read('ca.pem'), cert: read(`${who}.pem`), key: read(`${who}.key`), agent: false };
      const req = https.get(opts as https.RequestOptions, (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`);
      });
      req.on('error', () => resolve('refused'));
    });

  const cases = [
    ['--peer-cert-allowed-cn', 'localhost', true],
    ['--peer-cert-allowed-hostname', 'localhost', true],
    ['--peer-cert-allowed-hostname', '127.0.0.1', true],
    ['--peer-cert-allowed-cn', 'localhost', false],
  ] as const;
  for (const [flag, value, clientCerts] of cases) {
    test(`etcd ${flag} ${value}${clientCerts ? '' : ' without client certificates asked'}: server.pem accepted, alice.pem ${clientCerts ? 'refused' : 'accepted'}`, { timeout: 60_000 }, async () => {
      const [cport, pport] = [await freePort(), await freePort()];
      const purl = `https://127.0.0.1:${pport}`;
      const curl = `http://127.0.0.1:${cport}`;
      const proc = await startEtcd({
        clientPort: cport,
        peerPort: pport,
        dataDir: tempDir('etcd-peer-allowed'),
        extraArgs: [
          '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl, '--initial-cluster', `default=${purl}`,
          '--peer-cert-file', f('server.pem'), '--peer-key-file', f('server.key'), ...(clientCerts ? ['--peer-trusted-ca-file', f('ca.pem'), '--peer-client-cert-auth'] : []), flag, value,
          '--listen-client-urls', curl, '--advertise-client-urls', curl,
        ],
      });
      procs.push(proc);
      assert.equal(await members(pport, 'server'), 'ok');
      assert.equal(await members(pport, 'alice'), clientCerts ? 'refused' : 'ok');
    });
  }
});
