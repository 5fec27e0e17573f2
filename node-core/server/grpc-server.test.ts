// The node's gRPC server on both its transports (the lean HTTP/2 server of
// plain ports, node:http2 of TLS ones), seen from grpc-js clients and a raw
// HTTP/2 session: what clients rely on (deadlines, metadata, status codes
// and messages, size limit, unknown methods, decode errors, cancellation,
// flow control, compression, keepalive pings, GOAWAY on shutdown).
import { credentials, Metadata, makeGenericClientConstructor, type Client, type ServiceError, type ServerDuplexStream, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GrpcServer, encodeGrpcMessage, parseGrpcTimeout } from './grpc-server';

const id = (b: Buffer): Buffer => b;
const method = (path: string, requestStream: boolean, responseStream: boolean, requestDeserialize: (b: Buffer) => Buffer = id) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: id,
  requestDeserialize,
  responseSerialize: id,
  responseDeserialize: id,
});
const TestService = {
  Echo: method('/test.T/Echo', false, false, (b) => {
    if (b.toString() === 'garbage') throw new Error('grpc: error unmarshalling request: bad wire type');
    return b;
  }),
  Hang: method('/test.T/Hang', false, false),
  Fail: method('/test.T/Fail', false, false),
  Flood: method('/test.T/Flood', false, true),
  Chat: method('/test.T/Chat', true, true),
};

type Cb = (err: ServiceError | null, res?: Buffer) => void;
type TestClient = Client & {
  Echo(req: Buffer, md: Metadata, opts: object, cb: Cb): void;
  Hang(req: Buffer, md: Metadata, opts: object, cb: Cb): { cancel(): void };
  Fail(req: Buffer, md: Metadata, opts: object, cb: Cb): void;
  Flood(req: Buffer): NodeJS.ReadableStream & { cancel(): void };
  Chat(): NodeJS.ReadWriteStream & { cancel(): void };
};

const events: string[] = [];
let floodWrites = 0;
let floodBlocked: () => void = () => undefined;

const handlers = {
  Echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
    const tok = call.metadata.get('token')[0];
    const bin = call.metadata.get('trace-bin')[0];
    const tail = tok ? `|token=${String(tok)}` : bin ? `|bin=${(bin as Buffer).toString('hex')}` : '';
    cb(null, Buffer.concat([call.request, Buffer.from(tail)]));
  },
  Hang: (call: ServerUnaryCall<Buffer, Buffer>) => {
    events.push('hang started');
    call.on('cancelled', () => events.push('hang cancelled'));
  },
  Fail: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
    cb({ code: 9, details: call.request.toString() });
  },
  Flood: (call: ServerWritableStream<Buffer, Buffer>) => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    call.on('cancelled', () => events.push('flood cancelled'));
    const pump = (): void => {
      while (!call.cancelled && floodWrites < 10_000) {
        floodWrites++;
        if (!call.write(chunk)) {
          floodBlocked();
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  },
  Chat: (call: ServerDuplexStream<Buffer, Buffer>) => {
    call.on('data', (m: Buffer) => {
      if (m.toString() === 'bye') call.emit('error', { code: 5, details: 'gone: 100% ünïcode' });
      else call.write(Buffer.concat([Buffer.from('re:'), m]));
    });
    call.on('end', () => call.end());
  },
};

type Transport = 'lean' | 'node:http2';

async function serve(s: GrpcServer, transport: Transport): Promise<{ port: number; close(): void }> {
  const h2 = transport === 'node:http2' ? s.http2Server() : undefined;
  const l = net.createServer((sock) => (h2 ? h2.emit('connection', sock) : s.serveSocket(sock)));
  await new Promise<void>((r) => l.listen(0, '127.0.0.1', r));
  return { port: (l.address() as net.AddressInfo).port, close: () => l.close() };
}

function client(port: number, opts: object = {}): TestClient {
  const Ctor = makeGenericClientConstructor(TestService, 'T');
  return new Ctor(`127.0.0.1:${port}`, credentials.createInsecure(), opts) as unknown as TestClient;
}

function unary(c: TestClient, m: 'Echo' | 'Fail', req: Buffer, md = new Metadata(), opts: object = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => c[m](req, md, opts, (e, r) => (e ? reject(e) : resolve(r!))));
}

const rejectsWith = (p: Promise<unknown>, code: number, details?: string | RegExp) =>
  assert.rejects(p, (e: ServiceError) => {
    assert.equal(e.code, code, e.details);
    if (typeof details === 'string') assert.equal(e.details, details);
    else if (details) assert.match(e.details, details);
    return true;
  });

for (const transport of ['lean', 'node:http2'] as const) {
  describe(`gRPC server on ${transport}`, () => {
    const server = new GrpcServer({ maxReceiveMessageBytes: 1024 });
    server.addService(TestService, handlers);
    let srv: { port: number; close(): void };
    let c: TestClient;
    before(async () => {
      srv = await serve(server, transport);
      c = client(srv.port);
    });
    after(() => {
      c.close();
      server.forceShutdown();
      srv.close();
    });

    it('answers unary calls and passes metadata (token, -bin values) to handlers', async () => {
      assert.equal((await unary(c, 'Echo', Buffer.from('hi'))).toString(), 'hi');
      const md = new Metadata();
      md.set('token', 'abc.123');
      assert.equal((await unary(c, 'Echo', Buffer.from('x'), md)).toString(), 'x|token=abc.123');
      const bin = new Metadata();
      bin.set('trace-bin', Buffer.from([0, 1, 0xfe]));
      assert.equal((await unary(c, 'Echo', Buffer.from('y'), bin)).toString(), 'y|bin=0001fe');
    });

    it('sends status codes with their messages intact (percent-encoding on the wire)', async () => {
      await rejectsWith(unary(c, 'Fail', Buffer.from('etcdserver: requested lease not found')), 9, 'etcdserver: requested lease not found');
      await rejectsWith(unary(c, 'Fail', Buffer.from('100% ünïcode\nline')), 9, '100% ünïcode\nline');
      assert.equal(encodeGrpcMessage('a%b é'), 'a%25b %C3%A9');
    });

    it('unknown services and methods: UNIMPLEMENTED with grpc-go\'s text', async () => {
      const Other = makeGenericClientConstructor({ X: method('/test.T/X', false, false), Y: method('/nope.S/Y', false, false) }, 'O');
      const o = new Other(`127.0.0.1:${srv.port}`, credentials.createInsecure()) as unknown as Record<string, (r: Buffer, cb: Cb) => void> & Client;
      const call = (m: string) => new Promise((res, rej) => o[m](Buffer.from('q'), (e, r) => (e ? rej(e) : res(r))));
      await rejectsWith(call('X'), 12, 'unknown method X for service test.T');
      await rejectsWith(call('Y'), 12, 'unknown service nope.S');
      o.close();
    });

    it('a request over the size limit: RESOURCE_EXHAUSTED with grpc-go\'s text; a decode error: INTERNAL', async () => {
      await rejectsWith(unary(c, 'Echo', Buffer.alloc(1025)), 8, 'grpc: received message larger than max (1025 vs. 1024)');
      assert.equal((await unary(c, 'Echo', Buffer.alloc(1024))).length, 1024);
      await rejectsWith(unary(c, 'Echo', Buffer.from('garbage')), 13, 'grpc: error unmarshalling request: bad wire type');
    });

    it('grpc-timeout: DEADLINE_EXCEEDED, and the handler sees the call cancelled', async () => {
      assert.equal(parseGrpcTimeout('100m'), 100);
      assert.equal(parseGrpcTimeout('2S'), 2000);
      assert.equal(parseGrpcTimeout('1x'), undefined);
      events.length = 0;
      // a deadline the client would also enforce itself: send the header raw, so only the server can answer
      const s = http2.connect(`http://127.0.0.1:${srv.port}`);
      const req = s.request({ ':method': 'POST', ':path': '/test.T/Hang', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '50m' });
      req.end(Buffer.from([0, 0, 0, 0, 1, 0x61]));
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers['grpc-status'], '4');
      assert.equal(headers['grpc-message'], 'Deadline exceeded');
      s.close();
      assert.deepEqual(events, ['hang started', 'hang cancelled']);
    });

    it('grpc-timeout: each call expires at its own deadline, a later call with an earlier one first; a deadline past a timer\'s range never fires early', async () => {
      events.length = 0;
      const s = http2.connect(`http://127.0.0.1:${srv.port}`);
      const hang = (timeout: string): http2.ClientHttp2Stream => {
        const req = s.request({ ':method': 'POST', ':path': '/test.T/Hang', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': timeout });
        req.end(Buffer.from([0, 0, 0, 0, 1, 0x61]));
        return req;
      };
      const answered: string[] = [];
      const watch = (name: string, req: http2.ClientHttp2Stream): Promise<void> =>
        once(req, 'response').then(([h]) => void answered.push(`${name} ${String((h as http2.IncomingHttpHeaders)['grpc-status'])}`));
      // ~11,400 years: beyond setTimeout's 2^31-1 ms, which would fire it at once
      const forever = hang('99999999H');
      const slow = hang('400m');
      const fast = hang('60m');
      const done = Promise.all([watch('slow', slow), watch('fast', fast)]);
      void watch('forever', forever);
      await done;
      assert.deepEqual(answered, ['fast 4', 'slow 4']);
      forever.close(http2.constants.NGHTTP2_CANCEL);
      while (events.filter((e) => e === 'hang cancelled').length < 3) await new Promise((r) => setTimeout(r, 5));
      s.close();
    });

    it('a client cancel reaches the handler as "cancelled"', async () => {
      events.length = 0;
      const call = c.Hang(Buffer.from('h'), new Metadata(), {}, () => undefined);
      while (!events.includes('hang started')) await new Promise((r) => setTimeout(r, 5));
      call.cancel();
      while (!events.includes('hang cancelled')) await new Promise((r) => setTimeout(r, 5));
    });

    it('a slow reader holds the stream back: writes wait for HTTP/2 flow control instead of piling up', async () => {
      floodWrites = 0;
      const blocked = new Promise<void>((r) => (floodBlocked = r));
      // a raw HTTP/2 client that does not read: nothing it holds is acknowledged, so the windows stay shut
      const sess = http2.connect(`http://127.0.0.1:${srv.port}`);
      const req = sess.request({ ':method': 'POST', ':path': '/test.T/Flood', 'content-type': 'application/grpc', te: 'trailers' });
      req.pause();
      req.end(Buffer.from([0, 0, 0, 0, 2, 0x67, 0x6f]));
      await blocked;
      await new Promise((r) => setTimeout(r, 200));
      // 64 KiB messages: held near the windows' size plus the stream's 16-message buffer, far below 10,000
      assert.ok(floodWrites < 100, `writes ran ahead of the reader: ${floodWrites}`);
      const before = floodWrites;
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.resume();
      while (bytes < (before + 20) * 65536) await new Promise((r) => setTimeout(r, 10));
      assert.ok(floodWrites > before, 'reading again lets the writer continue');
      events.length = 0;
      req.close(http2.constants.NGHTTP2_CANCEL);
      while (!events.includes('flood cancelled')) await new Promise((r) => setTimeout(r, 5));
      sess.close();
    });

    it('bidi streams: messages both ways; emit("error", status) ends the call with that status', async () => {
      const chat = c.Chat();
      const got: string[] = [];
      chat.on('data', (m: Buffer) => got.push(m.toString()));
      const ended = new Promise<ServiceError>((resolve) => chat.on('error', resolve));
      chat.write(Buffer.from('a'));
      chat.write(Buffer.from('b'));
      chat.write(Buffer.from('bye'));
      const e = await ended;
      assert.deepEqual(got, ['re:a', 're:b']);
      assert.equal(e.code, 5);
      assert.equal(e.details, 'gone: 100% ünïcode');
    });

    it('gzip-compressed requests are accepted', async () => {
      const z = client(srv.port, { 'grpc.default_compression_algorithm': 2 });
      assert.equal((await unary(z, 'Echo', Buffer.alloc(600, 'z'))).toString(), 'z'.repeat(600));
      // the limit applies to the decompressed message
      await rejectsWith(unary(z, 'Echo', Buffer.alloc(5000, 'z')), 8, /larger than max/);
      z.close();
    });
  });

  describe(`gRPC server lifecycle on ${transport}`, () => {
    it('pings idle connections (keepalive) and closes those that never answer', async () => {
      const s = new GrpcServer({ maxReceiveMessageBytes: 1024, keepaliveTimeMs: 50, keepaliveTimeoutMs: 100 });
      s.addService(TestService, handlers);
      const srv = await serve(s, transport);
      const sess = http2.connect(`http://127.0.0.1:${srv.port}`);
      const [payload] = (await once(sess, 'ping')) as [Buffer];
      assert.equal(payload.length, 8);
      sess.destroy();
      // a peer that swallows the ping: a raw socket that never speaks HTTP/2 back
      const raw = net.connect(srv.port, '127.0.0.1');
      raw.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      raw.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
      raw.resume();
      await once(raw, 'close');
      s.forceShutdown();
      srv.close();
    });

    it('shutdown: GOAWAY; calls in flight finish, new connections are refused', async () => {
      let release: (() => void) | undefined;
      const slow = {
        Echo: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
          release = () => cb(null, call.request);
        },
      };
      const s = new GrpcServer({ maxReceiveMessageBytes: 1024 });
      s.addService({ Echo: TestService.Echo }, slow);
      const srv = await serve(s, transport);
      const c = client(srv.port);
      const inFlight = unary(c, 'Echo', Buffer.from('late'));
      while (!release) await new Promise((r) => setTimeout(r, 5));
      const stopping = s.shutdown({ graceMs: 5000 });
      setTimeout(() => release!(), 50);
      assert.equal((await inFlight).toString(), 'late', 'the call in flight got its answer');
      await stopping;
      assert.equal(s.connectionCount, 0);
      c.close();
      const c2 = client(srv.port);
      await rejectsWith(unary(c2, 'Echo', Buffer.from('too late')), 14);
      c2.close();
      srv.close();
    });
  });
}
