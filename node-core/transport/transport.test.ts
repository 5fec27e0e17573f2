import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MessageType, msg, type Entry, type Message } from '../raft/index';
import { decodeMessageBatch } from '../proto/gen/etcdeskpeerpb';
import { peerTransportTls } from '../server/tls';
import { silentLogger } from '../support/logger';
import { PeerTransport, fetchMembers, type PeerMember, type PeerTlsOptions, type TransportHandler } from './transport';
import { FrameParser, decodeBatch, encodeBatchFrame, encodeRaftMessage, decodeRaftMessage } from './transport-codec';

class Recorder implements TransportHandler {
  received: Message[] = [];
  snapshots: { msg: Message; file: string }[] = [];
  unreachable: bigint[] = [];
  snapshotReports: { id: bigint; failed: boolean }[] = [];
  snapshotData = new Map<number, Buffer>();
  doneCalls = 0;
  memberList: PeerMember[] | undefined;
  private waiters: (() => void)[] = [];

  receive(m: Message): void {
    this.received.push(m);
    this.wake();
  }
  receiveSnapshot(m: Message, dbFile: string): void {
    this.snapshots.push({ msg: m, file: dbFile });
    this.wake();
  }
  async openSnapshotData(m: Message): Promise<{ stream: AsyncIterable<Buffer>; done(): void }> {
    const data = this.snapshotData.get(m.snapshot?.metadata.index ?? 0) ?? Buffer.alloc(0);
    async function* chunks(): AsyncIterable<Buffer> {
      // uneven chunk sizes on purpose: framing must not depend on them
      for (let off = 0; off < data.length; ) {
        const n = Math.min(data.length - off, 100_000 + (off % 3) * 700_000);
        yield data.subarray(off, off + n);
        off += n;
      }
    }
    return { stream: chunks(), done: () => void this.doneCalls++ };
  }
  reportUnreachable(id: bigint): void {
    this.unreachable.push(id);
    this.wake();
  }
  reportSnapshot(id: bigint, failed: boolean): void {
    this.snapshotReports.push({ id, failed });
    this.wake();
  }
  members(): PeerMember[] {
    if (!this.memberList) throw new Error('no members');
    return this.memberList;
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  async until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

interface Node {
  id: bigint;
  t: PeerTransport;
  h: Recorder;
  url: string;
}

const open: PeerTransport[] = [];

interface NodeOpts {
  clusterId?: bigint;
  url?: string;
  tls?: PeerTlsOptions;
  maxQueueMessages?: number;
  snapshotDir?: string;
  writeStallMs?: number;
  connectTimeoutMs?: number;
}

async function node(id: bigint, opts: NodeOpts = {}): Promise<Node> {
  const h = new Recorder();
  const t = new PeerTransport({
    memberId: id,
    clusterId: opts.clusterId ?? 0xc1n,
    listenPeerUrls: [opts.url ?? 'http://127.0.0.1:0'],
    tls: opts.tls,
    handler: h,
    log: silentLogger,
    clusterToken: 'tok',
    maxQueueMessages: opts.maxQueueMessages,
    snapshotDir: opts.snapshotDir,
    writeStallMs: opts.writeStallMs,
    connectTimeoutMs: opts.connectTimeoutMs,
  });
  await t.start();
  open.push(t);
  return { id, t, h, url: t.listenUrls()[0] };
}

function connect(nodes: Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.t.setPeer(b.id, [b.url]);
}

async function stopAll(): Promise<void> {
  await Promise.all(open.splice(0).map((t) => t.stop()));
}

function app(from: bigint, to: bigint, index: number, entries: Entry[] = []): Message {
  return msg({ type: MessageType.MsgApp, from, to, term: 2, logTerm: 2, index, commit: index, entries });
}
function beat(from: bigint, to: bigint, commit: number): Message {
  return msg({ type: MessageType.MsgHeartbeat, from, to, term: 2, commit, context: Buffer.from('ctx') });
}
function ent(index: number, size: number): Entry {
  const data = Buffer.allocUnsafe(size);
  data.fill(index % 251);
  data.writeUInt32BE(index, 0);
  return { term: 2, index, type: 0, data };
}

// Member ids are full 64-bit values in etcd.
const ID1 = 0x8e9e05c52164694dn;
const ID2 = 0x91bc3c398fb3c146n;
const ID3 = 0xfd422379fda50e48n;

test('codec: a batch decodes identically with the generated decoder and ours', () => {
  const msgs: Message[] = [
    app(ID1, ID2, 7, [ent(8, 10), ent(9, 300), { term: 2 ** 40, index: 2 ** 52, type: 1, data: new Uint8Array(0) }]),
    beat(ID1, ID2, 9),
    msg({ type: MessageType.MsgAppResp, from: ID2, to: ID1, term: 3, index: 9, reject: true, rejectHint: 4 }),
    msg({
      type: MessageType.MsgSnap,
      from: ID1,
      to: ID2,
      term: 3,
      snapshot: { metadata: { index: 100, term: 3, confState: { voters: [ID1, ID2], learners: [ID3], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: Buffer.from('sm') },
    }),
  ];
  const frame = encodeBatchFrame(msgs);
  assert.equal(frame.readUInt32BE(1), frame.length - 5);
  const gen = decodeMessageBatch(frame.subarray(5));
  assert.equal(gen.messages.length, 4);
  assert.equal(gen.messages[0].to, ID2);
  assert.equal(gen.messages[0].entries[2].Index, 2 ** 52);
  assert.equal(gen.messages[0].entries[1].Data.length, 300);
  assert.deepEqual(gen.messages[3].snapshot?.metadata?.conf_state?.learners, [ID3]);
  const ours: Message[] = [];
  decodeBatch(frame.subarray(5), (m) => ours.push(m));
  assert.equal(ours.length, 4);
  for (let i = 0; i < 4; i++) {
    const a = msgs[i];
    const b = ours[i];
    assert.deepEqual({ ...b, entries: b.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })), context: b.context && Buffer.from(b.context) }, {
      ...a,
      entries: a.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })),
      context: a.context && Buffer.from(a.context),
      snapshot: a.snapshot && { ...a.snapshot, data: Buffer.from(a.snapshot.data) },
    });
  }
  assert.deepEqual(decodeRaftMessage(encodeRaftMessage(msgs[2])), msgs[2]);
});

test('codec: frame parser joins frames split at any byte', () => {
  const frames = [encodeBatchFrame([beat(ID1, ID2, 1)]), encodeBatchFrame([app(ID1, ID2, 1, [ent(2, 5000)])]), encodeBatchFrame([beat(ID1, ID2, 3)])];
  const all = Buffer.concat(frames);
  for (const step of [1, 3, 7, 100, 4096, all.length]) {
    const p = new FrameParser(1 << 20);
    const got: Buffer[] = [];
    for (let off = 0; off < all.length; off += step) p.push(all.subarray(off, off + step), (f) => got.push(Buffer.from(f)));
    assert.deepEqual(got, frames.map((f) => f.subarray(5)));
  }
  assert.throws(() => new FrameParser(10).push(frames[1], () => {}), /exceeds the limit/);
});

test('two transports exchange messages in order on both lanes', async (t) => {
  t.after(stopAll);
  const [a, b] = [await node(ID1), await node(ID2)];
  connect([a, b]);
  const N = 2000;
  for (let i = 1; i <= N; i++) {
    // many small sends, as the raft loop does, interleaving both lanes
    a.t.send([app(ID1, ID2, i, [ent(i + 1, 64)]), beat(ID1, ID2, i)]);
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
  }
  b.t.send([msg({ type: MessageType.MsgAppResp, from: ID2, to: ID1, term: 2, index: 5 })]);
  await b.h.until(() => b.h.received.length === 2 * N, 'all messages');
  await a.h.until(() => a.h.received.length === 1, 'the response');
  const apps = b.h.received.filter((m) => m.type === MessageType.MsgApp);
  const beats = b.h.received.filter((m) => m.type === MessageType.MsgHeartbeat);
  assert.deepEqual(apps.map((m) => m.index), Array.from({ length: N }, (_, i) => i + 1));
  assert.deepEqual(beats.map((m) => m.commit), Array.from({ length: N }, (_, i) => i + 1));
  for (const m of apps) {
    assert.equal(m.from, ID1);
    assert.equal(m.to, ID2);
    assert.equal(Buffer.from(m.entries[0].data).readUInt32BE(0), m.index + 1);
  }
  assert.deepEqual(Buffer.from(beats[0].context ?? []), Buffer.from('ctx'));
  assert.equal(a.h.received[0].type, MessageType.MsgAppResp);
  assert.equal(a.t.isActive(ID2), true);
  assert.deepEqual(a.h.unreachable, []);
});

test('three transports, large entries and large batches', async (t) => {
  t.after(stopAll);
  const nodes = [await node(ID1), await node(ID2), await node(ID3)];
  connect(nodes);
  const [a, b, c] = nodes;
  // 4 entries of 3 MiB (etcd allows --max-request-bytes well above the 1.5 MiB default)
  const big = [1, 2, 3, 4].map((i) => ent(i, 3 << 20));
  a.t.send([app(ID1, ID2, 0, big), app(ID1, ID3, 0, big)]);
  // then one Ready with 20k small entries split over many messages to both peers
  const small: Message[] = [];
  for (let i = 0; i < 200; i++) {
    const ents = Array.from({ length: 100 }, (_, k) => ent(5 + i * 100 + k, 200));
    small.push(app(ID1, ID2, 4 + i * 100, ents), app(ID1, ID3, 4 + i * 100, ents));
  }
  a.t.send(small);
  b.t.send([beat(ID2, ID3, 1)]);
  c.t.send([beat(ID3, ID2, 1)]);
  for (const n of [b, c]) {
    await n.h.until(() => n.h.received.filter((m) => m.from === ID1).length === 201, 'big and small batches', 10_000);
    const got = n.h.received.filter((m) => m.from === ID1);
    assert.equal(got[0].entries.length, 4);
    for (let i = 0; i < 4; i++) assert.ok(Buffer.from(got[0].entries[i].data).equals(big[i].data), `big entry ${i}`);
    const idx = got.slice(1).flatMap((m) => m.entries.map((e) => e.index));
    assert.deepEqual(idx, Array.from({ length: 20_000 }, (_, i) => i + 5));
  }
  await b.h.until(() => b.h.received.some((m) => m.from === ID3), 'c → b');
  await c.h.until(() => c.h.received.some((m) => m.from === ID2), 'b → c');
});

test('a stopped peer and one that never listens do not block the others; delivery resumes', async (t) => {
  t.after(stopAll);
  const a = await node(ID1);
  const b = await node(ID2);
  let c = await node(ID3);
  connect([a, b, c]);
  // a port nobody listens on
  const free = net.createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const deadPort = (free.address() as net.AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  const ID4 = 4n;
  a.t.setPeer(ID4, [`http://127.0.0.1:${deadPort}`]);

  await a.h.until(() => a.t.isActive(ID2) && a.t.isActive(ID3), 'peers active');
  const cUrl = c.url;
  await c.t.stop();
  open.splice(open.indexOf(c.t), 1);

  let i = 0;
  const pump = (): void => {
    i++;
    a.t.send([app(ID1, ID2, i), app(ID1, ID3, i), app(ID1, ID4, i), beat(ID1, ID3, i), beat(ID1, ID4, i)]);
  };
  // keep sending (as raft does) until both dead peers are reported unreachable
  const reported = (): boolean => a.h.unreachable.includes(ID3) && a.h.unreachable.includes(ID4);
  for (const deadline = Date.now() + 20_000; !reported(); await new Promise((r) => setTimeout(r, 5))) {
    assert.ok(Date.now() < deadline, `dead peers never reported unreachable: ${a.h.unreachable.join(',')}`);
    pump();
  }
  await b.h.until(() => b.h.received.filter((m) => m.type === MessageType.MsgApp).length >= i, 'b to get every message');
  const toB = b.h.received.filter((m) => m.type === MessageType.MsgApp).map((m) => m.index);
  assert.deepEqual(toB, Array.from({ length: i }, (_, k) => k + 1), 'b got every message, in order');
  assert.ok(a.h.unreachable.includes(ID3), 'stopped peer reported');
  assert.ok(a.h.unreachable.includes(ID4), 'never-listening peer reported');
  assert.ok(!a.h.unreachable.includes(ID2));
  assert.equal(a.t.isActive(ID3), false);
  assert.equal(a.t.isActive(ID4), false);

  // c comes back on the same address: a reconnects within the backoff cap
  c = await node(ID3, { url: cUrl });
  await a.h.until(() => a.t.isActive(ID3), 'reconnect', 5000);
  const retry = setInterval(pump, 50);
  try {
    await c.h.until(() => c.h.received.some((m) => m.type === MessageType.MsgApp) && c.h.received.some((m) => m.type === MessageType.MsgHeartbeat), 'delivery resumed', 6000);
  } finally {
    clearInterval(retry);
  }
});

test('a peer that accepts connections but never answers (paused) does not block or grow memory', async (t) => {
  t.after(stopAll);
  const sockets: net.Socket[] = [];
  const mute = net.createServer((s) => {
    sockets.push(s);
    s.pause();
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    mute.close();
  });
  const a = await node(ID1, { maxQueueMessages: 100 });
  const b = await node(ID2);
  connect([a, b]);
  a.t.setPeer(ID3, [`http://127.0.0.1:${(mute.address() as net.AddressInfo).port}`]);
  await a.h.until(() => a.t.isActive(ID2), 'b connected');
  for (let i = 1; i <= 3000; i++) {
    a.t.send([app(ID1, ID3, i, [ent(i, 1000)]), app(ID1, ID2, i)]);
    // b's queue is as small as c's: let its writes complete, as a raft loop's turns would
    if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await b.h.until(() => b.h.received.length === 3000, 'b unaffected');
  assert.deepEqual(b.h.received.map((m) => m.index), Array.from({ length: 3000 }, (_, i) => i + 1));
  await a.h.until(() => a.h.unreachable.includes(ID3), 'paused peer reported');
  assert.ok((a.t.stats(ID3)?.dropped ?? 0) >= 2900, 'bounded queue dropped the rest');
  assert.equal(a.t.isActive(ID3), false);
});

/** A TCP proxy that can stop forwarding (and reading) in both directions: a SIGSTOPped peer. */
async function pausableProxy(targetPort: number): Promise<{ url: string; pause(): void; resume(): void; close(): void }> {
  let paused = false;
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((down) => {
    const up = net.connect(targetPort, '127.0.0.1');
    pairs.push([down, up]);
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    if (paused) {
      down.unpipe(up);
      up.unpipe(down);
      down.pause();
      up.pause();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    pause() {
      paused = true;
      for (const [d, u] of pairs) {
        d.unpipe(u);
        u.unpipe(d);
        d.pause();
        u.pause();
      }
    },
    resume() {
      paused = false;
      for (const [d, u] of pairs.splice(0)) {
        d.destroy();
        u.destroy();
      }
    },
    close() {
      for (const [d, u] of pairs) {
        d.destroy();
        u.destroy();
      }
      server.close();
    },
  };
}

test('a peer paused mid-stream: others unaffected, reported, reconnected once it is back', async (t) => {
  t.after(stopAll);
  const a = await node(ID1, { writeStallMs: 1000, connectTimeoutMs: 500, maxQueueMessages: 200 });
  const b = await node(ID2);
  const c = await node(ID3);
  const proxy = await pausableProxy(Number(new URL(b.url).port));
  t.after(() => proxy.close());
  a.t.setPeer(ID2, [proxy.url]);
  a.t.setPeer(ID3, [c.url]);
  await a.h.until(() => a.t.isActive(ID2) && a.t.isActive(ID3), 'connected');
  a.t.send([app(ID1, ID2, 1), beat(ID1, ID2, 1)]);
  await b.h.until(() => b.h.received.length === 2, 'first messages');

  proxy.pause();
  const big = [ent(1, 256 << 10)];
  let i = 1;
  // keep sending to both until the paused peer is reported and its queue drops
  const given = (): boolean => a.h.unreachable.includes(ID2) && (a.t.stats(ID2)?.dropped ?? 0) > 0 && !a.t.isActive(ID2);
  for (const deadline = Date.now() + 20_000; !given(); await new Promise((r) => setTimeout(r, 2))) {
    assert.ok(Date.now() < deadline, 'the paused peer was never reported unreachable, inactive, with messages dropped');
    i++;
    a.t.send([app(ID1, ID2, i, big), beat(ID1, ID2, i), app(ID1, ID3, i), beat(ID1, ID3, i)]);
  }
  await c.h.until(() => c.h.received.length === 2 * (i - 1), 'c unaffected');
  assert.ok(a.h.unreachable.includes(ID2), 'paused peer reported');
  assert.ok(!a.h.unreachable.includes(ID3));
  assert.equal(a.t.isActive(ID2), false);
  assert.ok((a.t.stats(ID2)?.dropped ?? 0) > 0);

  proxy.resume();
  await a.h.until(() => a.t.isActive(ID2), 'reconnected', 6000);
  // as raft does: keep sending; each lane comes back on its own schedule
  const retry = setInterval(() => a.t.send([beat(ID1, ID2, 1_000_000), app(ID1, ID2, 1_000_000)]), 50);
  try {
    await b.h.until(
      () => [MessageType.MsgApp, MessageType.MsgHeartbeat].every((ty) => b.h.received.some((m) => m.type === ty && m.commit === 1_000_000)),
      'delivery resumed on both lanes',
      6000,
    );
  } finally {
    clearInterval(retry);
  }
});

test('heartbeats do not queue behind a large batch of entries', async (t) => {
  t.after(stopAll);
  const a = await node(ID1);
  const b = await node(ID2);
  connect([a, b]);
  await a.h.until(() => a.t.isActive(ID2), 'connected');
  const ents = Array.from({ length: 8 }, (_, k) => ent(k + 1, 1 << 20));
  const bulk: Message[] = [];
  for (let i = 0; i < 6; i++) bulk.push(app(ID1, ID2, i * 8, ents));
  a.t.send([...bulk, beat(ID1, ID2, 42)]);
  await b.h.until(() => b.h.received.length === 7, '48 MiB of entries and a heartbeat', 10_000);
  const order = b.h.received.map((m) => m.type);
  assert.ok(order.indexOf(MessageType.MsgHeartbeat) < order.length - 1, `heartbeat arrived before the last MsgApp: ${order.join(',')}`);
  assert.deepEqual(b.h.received.filter((m) => m.type === MessageType.MsgApp).map((m) => m.index), bulk.map((m) => m.index));
});

test('snapshot streaming: a multi-MB file arrives intact; failures are reported', async (t) => {
  t.after(stopAll);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-snap-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const a = await node(ID1);
  const b = await node(ID2, { snapshotDir: dir });
  connect([a, b]);
  const data = crypto.randomBytes(9 * 1024 * 1024 + 123);
  a.h.snapshotData.set(100, data);
  const snapMsg = msg({
    type: MessageType.MsgSnap,
    from: ID1,
    to: ID2,
    term: 3,
    snapshot: { metadata: { index: 100, term: 3, confState: { voters: [ID1, ID2], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: Buffer.from('meta') },
  });
  a.t.send([snapMsg, beat(ID1, ID2, 1)]);
  await b.h.until(() => b.h.snapshots.length === 1, 'snapshot received', 10_000);
  await a.h.until(() => a.h.snapshotReports.length === 1, 'snapshot reported');
  assert.deepEqual(a.h.snapshotReports, [{ id: ID2, failed: false }]);
  assert.equal(a.h.doneCalls, 1);
  const got = b.h.snapshots[0];
  assert.equal(path.dirname(got.file), dir);
  const fileHash = crypto.createHash('sha256').update(fs.readFileSync(got.file)).digest('hex');
  assert.equal(fileHash, crypto.createHash('sha256').update(data).digest('hex'));
  assert.equal(got.msg.snapshot?.metadata.index, 100);
  assert.deepEqual(got.msg.snapshot?.metadata.confState.voters, [ID1, ID2]);
  assert.deepEqual(Buffer.from(got.msg.snapshot?.data ?? []), Buffer.from('meta'));
  assert.ok(b.h.received.some((m) => m.type === MessageType.MsgHeartbeat), 'messages flow beside a snapshot');

  // to a peer that is down: failed, and the data source is still released
  a.t.setPeer(ID3, ['http://127.0.0.1:1']);
  a.t.send([{ ...snapMsg, to: ID3 }]);
  await a.h.until(() => a.h.snapshotReports.length === 2, 'failed snapshot reported');
  assert.deepEqual(a.h.snapshotReports[1], { id: ID3, failed: true });
  assert.equal(a.h.doneCalls, 2);
  assert.ok(a.h.unreachable.includes(ID3));
  // no temp files left behind besides the one handed over
  assert.deepEqual(fs.readdirSync(dir), [path.basename(got.file)]);
});

test('a member of another cluster is refused', async (t) => {
  t.after(stopAll);
  const a = await node(ID1, { clusterId: 0xbadn });
  const b = await node(ID2);
  connect([a, b]);
  const data = Buffer.alloc(1000);
  a.h.snapshotData.set(5, data);
  for (let i = 0; i < 20; i++) {
    a.t.send([beat(ID1, ID2, i), app(ID1, ID2, i)]);
    await new Promise((r) => setTimeout(r, 20));
  }
  a.t.send([msg({ type: MessageType.MsgSnap, from: ID1, to: ID2, snapshot: { metadata: { index: 5, term: 1, confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array(0) } })]);
  await a.h.until(() => a.h.snapshotReports.length === 1, 'snapshot refused');
  assert.deepEqual(a.h.snapshotReports, [{ id: ID2, failed: true }]);
  assert.deepEqual(b.h.received, []);
  assert.deepEqual(b.h.snapshots, []);
  assert.ok(a.h.unreachable.includes(ID2));
  assert.equal(a.t.isActive(ID2), false);
});

test('Members call: membership from any reachable member; token checked', async (t) => {
  t.after(stopAll);
  const a = await node(ID1);
  const list: PeerMember[] = [
    { id: ID1, name: 'infra1', peerURLs: [a.url], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
    { id: ID2, name: 'infra2', peerURLs: ['http://10.0.0.2:2380'], clientURLs: [], isLearner: true },
  ];
  a.h.memberList = list;
  const r = await fetchMembers(['http://127.0.0.1:1', a.url], 'tok');
  assert.equal(r.clusterId, 0xc1n);
  assert.equal(r.memberId, ID1);
  assert.deepEqual(r.members, list);
  assert.deepEqual((await fetchMembers([a.url])).members, list);
  await assert.rejects(fetchMembers([a.url], 'other-token'), /cluster token mismatch/);
  await assert.rejects(fetchMembers(['http://127.0.0.1:1'], undefined, undefined, 1000), /could not retrieve cluster information/);
});

test('TLS between peers (--peer-auto-tls certificates)', async (t) => {
  t.after(stopAll);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-peer-tls-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tls = peerTransportTls({ dataDir: dir, peerAutoTls: true, listenPeerUrls: ['https://127.0.0.1:0'] });
  assert.ok(tls);
  const a = await node(ID1, { url: 'https://127.0.0.1:0', tls });
  const b = await node(ID2, { url: 'https://127.0.0.1:0', tls });
  assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  connect([a, b]);
  for (let i = 1; i <= 50; i++) a.t.send([app(ID1, ID2, i, [ent(i, 100)])]);
  await b.h.until(() => b.h.received.length === 50, 'messages over TLS');
  assert.deepEqual(b.h.received.map((m) => m.index), Array.from({ length: 50 }, (_, i) => i + 1));
  b.h.memberList = [];
  assert.equal((await fetchMembers([b.url], undefined, tls)).memberId, ID2);
});
