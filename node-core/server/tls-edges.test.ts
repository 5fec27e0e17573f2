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
import { KVService } from '../proto/gen/etcdserverpb';
import { freePort, hasEtcd, startEtcd, startEtcdesk, waitFor, type ServerProc } from '../testing/processes';
import { makeTestPki } from './auth-harness.test';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-tls-edges-'));
const f = (n: string) => path.join(dir, n);
const read = (n: string) => fs.readFileSync(f(n));

interface Answer {
  status: number;
  body: string;
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

/** GET over HTTP/1.1 (ALPN http/1.1), as curl --http1.1. */
function getH1(port: number, p: string, who?: string): Promise<Answer | 'refused'> {
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: p, ca: read('ca.pem'), ALPNProtocols: ['http/1.1'], agent: false, ...(who ? { cert: read(`${who}.pem`), key: read(`${who}.key`) } : {}) },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve('refused'));
      },
    );
    req.on('error', () => resolve('refused'));
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
      return out;
    };
    const [want, got] = await Promise.all([run('etcd'), run('etcdesk')]);
    assert.deepEqual(want['h2 /health'], { status: 200, body: '{"health":"true"}' }, 'etcd answers /health over https');
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
