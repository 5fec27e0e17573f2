// The lean HTTP/2 server against abusive peers (the defences nghttp2 and Go's x/net/http2
// have): control-frame floods while not reading (CVE-2019-9512/9514/9515), rapid reset
// (CVE-2023-44487), empty-frame and CONTINUATION floods (CVE-2019-9518, CVE-2024-27316),
// HPACK bombs past MAX_HEADER_LIST_SIZE, and sockets that never send the preface. Each
// abuse must end in GOAWAY ENHANCE_YOUR_CALM (or the stream's reset) with bounded output,
// while a heavy but honest client is never cut off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { createLeanH2Server, type LeanH2Stream } from './server';
import type { LeanH2Options } from './connection';
import { encodeHeaders } from './hpack';
import { Flag, FrameType, H2Error, PREFACE, Setting } from './frames';
import { frame, MemSocket, parseFrames, REQUEST, u32, type Frame } from './test-frames';

const HELLO = Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0)]);
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const goawayCode = (f: Frame[]): number | undefined => f.find((x) => x.type === FrameType.GOAWAY)?.payload.readUInt32BE(4);
const count = (f: Frame[], type: number, flags = -1): number => f.filter((x) => x.type === type && (flags < 0 || x.flags === flags)).length;

/** A server whose streams are kept open (never answered) unless `answer` says otherwise. */
function setup(opts?: LeanH2Options, stalled = false, answer?: (s: LeanH2Stream) => void) {
  const opened: LeanH2Stream[] = [];
  const server = createLeanH2Server((s) => {
    opened.push(s);
    s.onend = () => answer?.(s);
  }, opts);
  const sock = new MemSocket(stalled);
  const conn = server.handleSocket(sock);
  sock.push(HELLO);
  return { sock, conn, opened };
}

/** Pushes `unit` `times` times, `perTurn` at a time with a turn between (so output is flushed as it would be), until the connection ends. */
async function flood(t: ReturnType<typeof setup>, unit: (i: number) => Buffer, times: number, perTurn = 100): Promise<number> {
  let sent = 0;
  while (sent < times && !t.conn.isClosed) {
    const batch: Buffer[] = [];
    for (let i = 0; i < perTurn && sent < times; i++) batch.push(unit(sent++));
    t.sock.push(Buffer.concat(batch));
    await turn();
  }
  return sent;
}

const malformed = encodeHeaders([':method', 'POST', ':path', '/svc/M', ':authority', 'x']); // no :scheme
const floods: [string, (i: number) => Buffer, number][] = [
  ['PING (CVE-2019-9512)', (i) => frame(FrameType.PING, 0, 0, Buffer.alloc(8, i & 0xff)), FrameType.PING],
  ['SETTINGS (CVE-2019-9515)', () => frame(FrameType.SETTINGS, 0, 0, Buffer.concat([Buffer.from([0, Setting.ENABLE_PUSH]), u32(0)])), FrameType.SETTINGS],
  ['malformed requests, each reset (CVE-2019-9514)', (i) => frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 2 * i + 1, malformed), FrameType.RST_STREAM],
];

for (const [name, unit, answerType] of floods) {
  test(`${name} flood from a peer that does not read: GOAWAY ENHANCE_YOUR_CALM after 1000 queued answers; a reading peer gets every answer`, async () => {
    const stalled = setup({}, true);
    const sent = await flood(stalled, unit, 5000);
    assert.equal(stalled.conn.isClosed, true, `still open after ${sent} frames`);
    assert.ok(stalled.sock.writableLength > 0, 'the answers were waiting in the socket');
    stalled.sock.release();
    const frames = await stalled.sock.until((f) => goawayCode(f) !== undefined);
    assert.equal(goawayCode(frames), H2Error.ENHANCE_YOUR_CALM);
    // bounded: at most the limit of answers (+ our own initial SETTINGS) was ever queued
    assert.ok(count(frames, answerType) <= 1001, `${count(frames, answerType)} answers queued`);

    const reading = setup({});
    assert.equal(await flood(reading, unit, 5000), 5000);
    const got = await reading.sock.until((f) => count(f, answerType, answerType === FrameType.RST_STREAM ? 0 : Flag.ACK) >= 5000);
    assert.equal(goawayCode(got), undefined);
    assert.equal(reading.conn.isClosed, false);
  });
}

test('rapid reset (CVE-2023-44487): opening streams and resetting them at once ends in GOAWAY ENHANCE_YOUR_CALM; handlers started stay bounded', async () => {
  const t = setup({});
  const unit = (i: number): Buffer => Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 2 * i + 1, REQUEST), frame(FrameType.RST_STREAM, 0, 2 * i + 1, u32(H2Error.CANCEL))]);
  const sent = await flood(t, unit, 100_000, 500);
  assert.equal(t.conn.isClosed, true, `still open after ${sent} resets`);
  const frames = await t.sock.until((f) => goawayCode(f) !== undefined);
  assert.equal(goawayCode(frames), H2Error.ENHANCE_YOUR_CALM);
  // the burst (1000) plus what 33/s refilled while the test ran
  assert.ok(t.opened.length < 1200, `${t.opened.length} handlers started`);
});

test('empty DATA frames without END_STREAM (CVE-2019-9518): GOAWAY ENHANCE_YOUR_CALM after 1000', async () => {
  const t = setup({});
  t.sock.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, REQUEST));
  const sent = await flood(t, () => frame(FrameType.DATA, 0, 1), 5000);
  assert.equal(t.conn.isClosed, true);
  assert.ok(sent <= 1100, `${sent} empty frames taken`);
  assert.equal(goawayCode(await t.sock.until((f) => goawayCode(f) !== undefined)), H2Error.ENHANCE_YOUR_CALM);
});

test('CONTINUATION floods (CVE-2024-27316): empty fragments and a header block over 64 KiB end the connection with ENHANCE_YOUR_CALM', async () => {
  const empty = setup({});
  empty.sock.push(frame(FrameType.HEADERS, 0, 1, REQUEST.subarray(0, 3)));
  await flood(empty, () => frame(FrameType.CONTINUATION, 0, 1), 5000);
  assert.equal(empty.conn.isClosed, true);
  assert.equal(goawayCode(await empty.sock.until((f) => goawayCode(f) !== undefined)), H2Error.ENHANCE_YOUR_CALM);

  const big = setup({});
  big.sock.push(frame(FrameType.HEADERS, 0, 1, REQUEST.subarray(0, 3)));
  const sent = await flood(big, () => frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_384, 0x41)), 100, 1);
  assert.equal(big.conn.isClosed, true);
  assert.ok(sent <= 5, `${sent} × 16 KiB taken`);
  assert.equal(goawayCode(await big.sock.until((f) => goawayCode(f) !== undefined)), H2Error.ENHANCE_YOUR_CALM);
});

test('HPACK bomb: a small block expanding past MAX_HEADER_LIST_SIZE (64 KiB, announced) resets that stream with FRAME_SIZE_ERROR; the connection goes on', async () => {
  const t = setup({}, false, (s) => s.end({ 'grpc-status': '0' }));
  const settingsFrame = (await t.sock.until((f) => f.length > 0))[0];
  assert.equal(settingsFrame.type, FrameType.SETTINGS);
  const announced = new Map<number, number>();
  for (let i = 0; i < settingsFrame.payload.length; i += 6) announced.set(settingsFrame.payload.readUInt16BE(i), settingsFrame.payload.readUInt32BE(i + 2));
  assert.equal(announced.get(Setting.MAX_HEADER_LIST_SIZE), 64 * 1024);
  // a 4 KB field added to the dynamic table (index 62), then referenced 15,000 times: ~15 KB on the wire, ~60 MB decoded
  const bomb = Buffer.concat([REQUEST, Buffer.from([0x40, 0x01, 0x78, 0x7f, 0xa1, 0x1e]), Buffer.alloc(4000, 0x61), Buffer.alloc(15_000, 0xbe)]);
  const frames: Buffer[] = [];
  for (let off = 0; off < bomb.length; off += 16_384) {
    const last = off + 16_384 >= bomb.length;
    frames.push(frame(off === 0 ? FrameType.HEADERS : FrameType.CONTINUATION, (last ? Flag.END_HEADERS : 0) | (off === 0 ? Flag.END_STREAM : 0), 1, bomb.subarray(off, off + 16_384)));
  }
  // a request just under the limit (a 60 KB metadata value) and one referencing the bomb's table entry once: both served
  const near = encodeHeaders([':method', 'POST', ':scheme', 'http', ':path', '/svc/M', ':authority', 'x', 'x-big', 'b'.repeat(60_000)]);
  const nearFrames = [frame(FrameType.HEADERS, Flag.END_STREAM, 3, near.subarray(0, 16_384))];
  for (let off = 16_384; off < near.length; off += 16_384) nearFrames.push(frame(FrameType.CONTINUATION, off + 16_384 >= near.length ? Flag.END_HEADERS : 0, 3, near.subarray(off, off + 16_384)));
  t.sock.push(Buffer.concat([...frames, ...nearFrames, frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 5, Buffer.concat([REQUEST, Buffer.from([0xbe])]))]));
  const out = await t.sock.until((f) => f.some((x) => x.type === FrameType.RST_STREAM) && f.filter((x) => x.type === FrameType.HEADERS && x.flags & Flag.END_STREAM).length >= 2);
  const rst = out.find((x) => x.type === FrameType.RST_STREAM)!;
  assert.deepEqual([rst.sid, rst.payload.readUInt32BE(0)], [1, H2Error.FRAME_SIZE_ERROR]);
  assert.deepEqual(
    t.opened.map((s) => s.id),
    [3, 5],
  );
  assert.equal(t.opened[0].headers['x-big'].length, 60_000);
  assert.ok(t.opened[1].headers.x === 'a'.repeat(4000), 'the dynamic table stayed in step with the peer');
  assert.equal(goawayCode(out), undefined);
});

test('a socket that does not send the preface and SETTINGS in time is closed; one that did is kept', { timeout: 10_000 }, async () => {
  const server = createLeanH2Server(() => {}, { prefaceTimeoutMs: 30 });
  // the server's timers are unref'd (they never hold a process open): keep this test's process up while it waits
  const alive = setInterval(() => {}, 1000);
  const good = new MemSocket();
  const goodConn = server.handleSocket(good);
  good.push(HELLO);
  await good.until((f) => f.some((x) => x.type === FrameType.SETTINGS && x.flags & Flag.ACK));
  for (const silence of [Buffer.alloc(0), PREFACE.subarray(0, 10), PREFACE]) {
    const idle = new MemSocket();
    const idleConn = server.handleSocket(idle);
    if (silence.length) idle.push(silence);
    await new Promise<void>((r) => idle.once('close', () => r()));
    assert.equal(idleConn.isClosed, true);
  }
  // the good connection's timer was older than the idle ones': it would have fired first
  assert.equal(goodConn.isClosed, false);
  assert.equal(good.destroyed, false);
  goodConn.destroy();
  clearInterval(alive);
});

test('an honest heavy client is not cut off: 1000 concurrent unary calls (400 of them cancelled at once), pings, a 4 MiB response stream', async (t) => {
  const h2 = createLeanH2Server((s) => {
    s.onend = () => {
      if (s.headers[':path'] === '/stream') {
        s.respond({ ':status': '200' });
        const chunk = Buffer.alloc(64 * 1024, 7);
        let left = 64;
        const pump = (): void => {
          while (left > 0) {
            left--;
            if (!s.write(chunk)) return;
          }
          s.end({ 'grpc-status': '0' });
        };
        s.ondrain = pump;
        pump();
        return;
      }
      // answered a little later, so cancels find the calls in flight
      setImmediate(() => {
        s.respond({ ':status': '200' });
        s.write(Buffer.from('ok'));
        s.end({ 'grpc-status': '0' });
      });
    };
  });
  const srv = net.createServer((sock) => h2.handleSocket(sock));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        h2.destroy();
        srv.close(() => r());
      }),
  );
  const client = http2.connect(`http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`);
  t.after(() => client.destroy());
  let goaway: number | undefined;
  client.on('goaway', (code) => (goaway = code));
  await new Promise<void>((r) => client.once('connect', () => r()));
  const call = (path: string): { req: http2.ClientHttp2Stream; done: Promise<number> } => {
    const req = client.request({ ':method': 'POST', ':path': path });
    const done = new Promise<number>((resolve) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => resolve(n));
      req.on('close', () => resolve(-1));
      req.on('error', () => resolve(-1));
    });
    req.end();
    return { req, done };
  };
  const stream = call('/stream');
  const calls = Array.from({ length: 1000 }, () => call('/unary'));
  for (const c of calls.slice(0, 400)) c.req.close(http2.constants.NGHTTP2_CANCEL);
  // keepalive-style pings while the calls run (node's client allows 10 outstanding)
  for (let i = 0; i < 20; i++) await new Promise<void>((r, j) => client.ping((e) => (e ? j(e) : r())));
  const results = await Promise.all(calls.map((c) => c.done));
  assert.equal(await stream.done, 64 * 64 * 1024);
  assert.deepEqual(
    results.slice(400).filter((n) => n !== 2),
    [],
  );
  // the connection is still usable
  assert.equal(await call('/unary').done, 2);
  assert.equal(goaway, undefined);
});

test('a peer that grants window but does not read: stream writes report backpressure at the socket backlog, input stops, both resume when it reads', { timeout: 10_000 }, async () => {
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  let drained = 0;
  const server = createLeanH2Server(
    (s) => {
      s.onend = () => {
        s.respond({ ':status': '200' });
        // a watch-style writer: goes on while write() says so, waits for ondrain otherwise
        const pump = (): void => {
          while (written < 64 << 20) {
            written += chunk.length;
            if (!s.write(chunk)) return;
          }
        };
        s.ondrain = () => {
          drained++;
          pump();
        };
        pump();
      };
    },
    { maxSocketBacklog: 1 << 20 },
  );
  const sock = new MemSocket(true);
  const conn = server.handleSocket(sock);
  // the largest windows there are, so only the socket can hold the writer back
  sock.push(
    Buffer.concat([
      PREFACE,
      frame(FrameType.SETTINGS, 0, 0, Buffer.concat([Buffer.from([0, Setting.INITIAL_WINDOW_SIZE]), u32(0x7fffffff)])),
      frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0x7fffffff - 16 * 1024 * 1024 - 65_535)),
      frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, REQUEST),
    ]),
  );
  while (!sock.isPaused()) await turn();
  const held = written;
  assert.ok(held <= 3 << 20, `${held} bytes written before backpressure`);
  assert.ok(sock.writableLength <= 3 << 20, `${sock.writableLength} bytes queued in the socket`);
  for (let i = 0; i < 5; i++) await turn();
  assert.equal(written, held, 'the writer waits');
  sock.release();
  while (drained === 0) await turn();
  assert.ok(written > held, 'the writer went on once the peer read');
  assert.equal(conn.isClosed, false);
  conn.destroy();
});
