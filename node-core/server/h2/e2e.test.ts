// The lean HTTP/2 server against real clients over TCP: Node's own http2 client (its
// nghttp2 checks every frame we send) and @grpc/grpc-js calling a tiny gRPC echo built
// on the stream API (unary, metadata, an error status, concurrent calls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { createLeanH2Server, EncodedHeaders, type LeanH2Server, type LeanH2Stream } from './server';

async function listen(h2: LeanH2Server): Promise<{ port: number; close(): Promise<void> }> {
  const srv = net.createServer((s) => h2.handleSocket(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        h2.destroy();
        srv.close(() => r());
      }),
  };
}

test('node:http2 client: large bodies both ways, response headers and trailers, ten concurrent streams', async (t) => {
  const h2 = createLeanH2Server((s) => {
    const parts: Buffer[] = [];
    s.ondata = (c) => parts.push(c);
    s.onend = () => {
      s.respond({ ':status': '200', 'x-echo': s.headers['x-in'] ?? '' });
      s.write(Buffer.concat(parts));
      s.end({ 'x-trailer': 'done' });
    };
  });
  const l = await listen(h2);
  t.after(() => l.close());
  const client = http2.connect(`http://127.0.0.1:${l.port}`);
  t.after(() => client.close());
  const call = (i: number, body: Buffer) =>
    new Promise<{ status: number; echo: unknown; body: Buffer; trailer: unknown }>((resolve, reject) => {
      const req = client.request({ ':method': 'POST', ':path': '/echo', 'x-in': `n${i}` });
      const chunks: Buffer[] = [];
      let status = 0;
      let echo: unknown;
      let trailer: unknown;
      req.on('response', (h) => {
        status = Number(h[':status']);
        echo = h['x-echo'];
      });
      req.on('trailers', (h) => (trailer = h['x-trailer']));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, echo, body: Buffer.concat(chunks), trailer }));
      req.on('error', reject);
      req.end(body);
    });
  // 300 kB exceeds both default 64 kB windows in each direction: WINDOW_UPDATEs must flow both ways
  const big = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
  const r = await call(0, big);
  assert.equal(r.status, 200);
  assert.equal(r.echo, 'n0');
  assert.equal(r.trailer, 'done');
  assert.ok(r.body.equals(big), 'the body comes back intact');
  const many = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i, Buffer.from(`body ${i}`))));
  many.forEach((m, i) => {
    assert.equal(m.echo, `n${i}`);
    assert.equal(m.body.toString(), `body ${i}`);
  });
});

test('a TLS socket negotiated with ALPN h2 is served the same way', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jsh2-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const h2 = createLeanH2Server((s) => {
    s.onend = () => {
      s.respond({ ':status': '200' });
      s.end({ 'x-alpn': 'ok' });
    };
  });
  const srv = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert), ALPNProtocols: ['h2'] }, (sock) => h2.handleSocket(sock));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    h2.destroy();
    srv.close();
  });
  const client = http2.connect(`https://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, { ca: fs.readFileSync(cert) });
  t.after(() => client.close());
  const trailer = await new Promise<unknown>((resolve, reject) => {
    const req = client.request({ ':path': '/' });
    let got: unknown;
    req.on('trailers', (h) => (got = h['x-alpn']));
    req.on('end', () => resolve(got));
    req.on('error', reject);
    req.resume();
    req.end();
  });
  assert.equal(trailer, 'ok');
});

// ---- a tiny gRPC echo on the stream API ----------------------------------------------

const RESPONSE = new EncodedHeaders({ ':status': '200', 'content-type': 'application/grpc' });
const OK = new EncodedHeaders({ 'grpc-status': '0' });

function grpcFrame(msg: Buffer): Buffer {
  const f = Buffer.alloc(5 + msg.length);
  f.writeUInt32BE(msg.length, 1);
  msg.copy(f, 5);
  return f;
}

/** Echo.Say answers with its request message; a request "fail" gets NOT_FOUND; metadata x-md comes back as a header. */
function echoStream(s: LeanH2Stream): void {
  const parts: Buffer[] = [];
  s.ondata = (c) => parts.push(c);
  s.onend = () => {
    if (s.headers[':path'] !== '/echo.Echo/Say') {
      s.respond({ ':status': '200', 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, true);
      return;
    }
    const body = Buffer.concat(parts);
    const msg = body.subarray(5, 5 + body.readUInt32BE(1));
    if (msg.toString() === 'fail') {
      s.respond({ ':status': '200', 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no%20such%20thing' }, true);
      return;
    }
    const md = s.headers['x-md'];
    s.respond(md ? { ':status': '200', 'content-type': 'application/grpc', 'x-md': md } : RESPONSE);
    s.write(grpcFrame(msg));
    s.end(OK);
  };
}

test('@grpc/grpc-js client: unary calls, metadata, an error status and concurrent calls', async (t) => {
  const l = await listen(createLeanH2Server(echoStream));
  t.after(() => l.close());
  const raw = (b: Buffer): Buffer => b;
  const Client = grpc.makeGenericClientConstructor(
    { Say: { path: '/echo.Echo/Say', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    'Echo',
  );
  const client = new Client(`127.0.0.1:${l.port}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  type Say = (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => grpc.ClientUnaryCall;
  const say = (client as unknown as { Say: Say }).Say.bind(client);
  const call = (msg: string, md = new grpc.Metadata()) =>
    new Promise<{ res?: Buffer; err: grpc.ServiceError | null; headers?: grpc.Metadata }>((resolve) => {
      let headers: grpc.Metadata | undefined;
      const c = say(Buffer.from(msg), md, { deadline: Date.now() + 10_000 }, (err, res) => resolve({ err, res, headers }));
      c.on('metadata', (m: grpc.Metadata) => (headers = m));
    });
  const r = await call('hello');
  assert.equal(r.err, null);
  assert.equal(r.res!.toString(), 'hello');
  const md = new grpc.Metadata();
  md.set('x-md', 'value-1');
  const withMd = await call('again', md);
  assert.equal(withMd.headers?.get('x-md')[0], 'value-1');
  const failed = await call('fail');
  assert.equal(failed.err?.code, grpc.status.NOT_FOUND);
  assert.equal(failed.err?.details, 'no such thing');
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => call(`m${i}`)));
  many.forEach((m, i) => assert.equal(m.res?.toString(), `m${i}`));
});
