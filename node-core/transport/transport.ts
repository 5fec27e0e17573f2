// The peer transport: raft messages between members (the role of etcd's rafthttp).
//
// The wire is gRPC over HTTP/2 (service etcdeskpeerpb.Peer, see proto/etcdeskpeerpb/peer.proto)
// spoken through node:http2 directly rather than grpc-js: on the replication hot path grpc-js
// adds a serialize → frame copy and a filter stack per message, while here a whole batch is
// encoded once into one buffer and written with one call.
//
// Per peer there are two long-lived Stream calls on separate connections, like etcd's msgappv2 and
// message streams: lane "app" carries MsgApp/MsgProp (large), lane "msg" everything else
// (heartbeats, votes, responses), so heartbeats never wait behind a large batch of entries in a
// TCP send buffer. Each lane keeps send order, writes one batch of everything queued while its
// previous write was in flight, and holds a bounded queue: when a peer is slow, down or paused,
// messages are dropped and raft is told (reportUnreachable), and raft retries. MsgSnap goes over
// a Snapshot call of its own, streamed in chunks from openSnapshotData.
import crypto from 'node:crypto';
import { once } from 'node:events';
import fsp from 'node:fs/promises';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { ConnectionOptions, SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';
import { MessageType, type Message } from '../raft/index';
import { Reader } from '../proto/wire';
import { decodeMembersRequest, decodeMembersResponse, encodeMembersRequest, encodeMembersResponse } from '../proto/gen/etcdeskpeerpb';
import { decodeHashKVRequest, decodeHashKVResponse, encodeHashKVRequest, encodeHashKVResponse, type HashKVResponse, type HashKVResponseInit } from '../proto/gen/etcdserverpb';
import { EtcdError } from '../errors/index';
import { listenTarget } from '../support/listen-address';
import type { Logger } from '../support/logger';
import {
  FrameParser,
  approxMessageBytes,
  bytesFieldFrameHeader,
  decodeBatch,
  decodeRaftMessage,
  encodeBatchFrame,
  encodeRaftMessage,
  grpcFrame,
} from './transport-codec';

/** TLS for the peer port: the shape of server/tls.ts's peerTransportTls() (cluster must not import server). */
export interface PeerTlsOptions {
  server: TlsOptions & SecureContextOptions;
  client: ConnectionOptions;
  /** --peer-cert-allowed-cn/-hostname: whether a handshaken peer connection must be closed. */
  refuseConnection?: (socket: TLSSocket) => boolean;
}

export interface PeerMember {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface TransportHandler {
  /** Every message except MsgSnap, in per-lane send order. Called synchronously from socket events. */
  receive(msg: Message): void;
  /** A MsgSnap whose state-machine data was written (fsynced, checksum verified) to dbFile, which the handler now owns. */
  receiveSnapshot(msg: Message, dbFile: string): void;
  /** The state-machine data of an outgoing MsgSnap; done() is called once the transfer ended either way. */
  openSnapshotData(msg: Message): Promise<{ stream: AsyncIterable<Buffer>; done(): void }>;
  reportUnreachable(id: bigint): void;
  reportSnapshot(id: bigint, failed: boolean): void;
  /** Answered on the Members call (for members joining with --initial-cluster-state existing). */
  members?(): PeerMember[];
  /** Answered on the HashKV call (members' corruption checks); rejects with an EtcdError (compacted, future revision). */
  hashKV?(revision: number): Promise<HashKVResponseInit>;
}

export interface TransportOptions {
  memberId: bigint;
  clusterId: bigint;
  listenPeerUrls: string[];
  tls?: PeerTlsOptions;
  handler: TransportHandler;
  log: Logger;
  /** When set, a Members call naming another --initial-cluster-token is refused. */
  clusterToken?: string;
  /** Where received snapshot files are written (default: the OS temp dir); same filesystem as the data dir lets the handler rename. */
  snapshotDir?: string;
  /** Largest gRPC message accepted (a batch holding one entry of --max-request-bytes must fit). Default 128 MiB. */
  maxMessageBytes?: number;
  /** Per-lane queue bounds before messages are dropped. Defaults: 4096 messages (etcd's streamBufSize), 64 MiB. */
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  /** A dial not answered by then counts as failed (default 3 s: a paused process accepts TCP but never speaks). */
  connectTimeoutMs?: number;
  /** A stream pushing back that long means the peer stopped reading: reconnect (default 5 s, etcd's ConnWriteTimeout). */
  writeStallMs?: number;
  /** Lab only (the app's chaos lab "isolate"): while it returns true, raft messages in and out are dropped, as in a network partition. */
  dropPeerTraffic?: () => boolean;
}

export interface FetchedMembers {
  clusterId: bigint;
  /** The member that answered. */
  memberId: bigint;
  members: PeerMember[];
}

const SERVICE = '/etcdeskpeerpb.Peer/';
const PATH_STREAM = `${SERVICE}Stream`;
const PATH_SNAPSHOT = `${SERVICE}Snapshot`;
const PATH_MEMBERS = `${SERVICE}Members`;
const PATH_HASHKV = `${SERVICE}HashKV`;

const H_CLUSTER = 'x-etcd-cluster-id';
const H_FROM = 'x-raft-from';
const H_TO = 'x-raft-to';
const H_LANE = 'x-etcdesk-lane';

const enum Code {
  OK = 0,
  Unknown = 2,
  InvalidArgument = 3,
  FailedPrecondition = 9,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
}

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2000;
const CONNECT_TIMEOUT_MS = 3000;
const WRITE_STALL_MS = 5000;
/** isActive() turns false while the stream has pushed back this long. */
const ACTIVE_STALL_MS = 1000;
const CHECK_INTERVAL_MS = 500;
/** One write's worth; the rest of a longer queue goes in the next write. */
const MAX_BATCH_BYTES = 4 << 20;
const SNAPSHOT_CHUNK = 1 << 20;
const SNAPSHOT_IDLE_MS = 30_000;
/** Flow-control windows: the 64 KiB default would cap a connection at one window per round trip. */
const STREAM_WINDOW = 16 << 20;
const SESSION_WINDOW = 64 << 20;
const H2_SETTINGS: http2.Settings = { initialWindowSize: STREAM_WINDOW, maxFrameSize: 1 << 20 };
const MAX_SESSION_MEMORY_MB = 256;

const hex = (id: bigint): string => id.toString(16);

function parseHexId(v: string | string[] | undefined): bigint | undefined {
  if (typeof v !== 'string' || !/^[0-9a-f]{1,16}$/i.test(v)) return undefined;
  return BigInt(`0x${v}`);
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

interface DialTarget {
  authority: string;
  secure: boolean;
  socketPath?: string;
}

function dialTarget(url: string): DialTarget {
  const u = new URL(url);
  if (u.protocol === 'unix:' || u.protocol === 'unixs:') {
    const secure = u.protocol === 'unixs:';
    return { authority: `${secure ? 'https' : 'http'}://localhost`, secure, socketPath: u.host + u.pathname };
  }
  const secure = u.protocol === 'https:';
  return { authority: `${secure ? 'https' : 'http'}://${u.host}`, secure };
}

/** An HTTP/2 client session to a peer URL, with TLS when the URL asks for it. */
function connectPeer(url: string, tlsOpts: PeerTlsOptions | undefined): http2.ClientHttp2Session {
  const t = dialTarget(url);
  const clientTls: ConnectionOptions = { ...(tlsOpts?.client ?? {}), ALPNProtocols: ['h2'] };
  const opts: http2.SecureClientSessionOptions = { settings: H2_SETTINGS, maxSessionMemory: MAX_SESSION_MEMORY_MB };
  if (t.socketPath !== undefined) {
    const p = t.socketPath;
    opts.createConnection = () => (t.secure ? tls.connect({ ...clientTls, path: p }) : net.connect(p));
  } else if (t.secure) Object.assign(opts, clientTls);
  const s = http2.connect(t.authority, opts);
  s.once('connect', (_s: http2.ClientHttp2Session, socket: net.Socket) => {
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
  });
  return s;
}

/** Status of a finished gRPC call from its headers/trailers, or undefined when they carry none. */
function grpcStatus(h: http2.IncomingHttpHeaders): { code: number; message: string } | undefined {
  const s = headerString(h['grpc-status']);
  if (s === undefined) return undefined;
  const raw = headerString(h['grpc-message']) ?? '';
  let message = raw;
  try {
    message = decodeURIComponent(raw);
  } catch {
    // not percent-encoded: keep as is
  }
  return { code: Number(s), message };
}

class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

type LaneState = 'connecting' | 'open' | 'backoff' | 'closed';

/** One long-lived Stream call to a peer, its queue and its reconnect loop. */
class Lane {
  state: LaneState = 'backoff';
  private session: http2.ClientHttp2Session | undefined;
  private stream: http2.ClientHttp2Stream | undefined;
  private queue: Message[] = [];
  private queuedBytes = 0;
  /** When the stream last refused more (write() returned false), 0 while it takes writes. */
  private blockedSince = 0;
  /** When the outstanding liveness ping was sent, 0 when none is. */
  private pingSentAt = 0;
  private connectStartedAt = 0;
  /** When the current stream was established (a reconnect moves it). */
  openedAt = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private urlIndex = 0;
  /** Whether the last failure was logged, so a peer that stays down logs once, not every retry. */
  private failureLogged = false;
  sentMessages = 0;
  droppedMessages = 0;

  constructor(
    private readonly t: PeerTransport,
    readonly peer: Peer,
    readonly name: 'app' | 'msg',
  ) {}

  connect(): void {
    if (this.state === 'closed') return;
    this.clearTimer();
    this.state = 'connecting';
    this.connectStartedAt = Date.now();
    const urls = this.peer.urls;
    if (urls.length === 0) return this.down(new Error('peer has no URLs'));
    const url = urls[this.urlIndex % urls.length];
    let session: http2.ClientHttp2Session;
    let stream: http2.ClientHttp2Stream;
    try {
      session = connectPeer(url, this.t.tls);
      stream = session.request(
        {
          ':method': 'POST',
          ':path': PATH_STREAM,
          'content-type': 'application/grpc',
          te: 'trailers',
          [H_CLUSTER]: hex(this.t.clusterId),
          [H_FROM]: hex(this.t.memberId),
          [H_TO]: hex(this.peer.id),
          [H_LANE]: this.name,
        },
        { endStream: false },
      );
    } catch (e) {
      return this.down(e instanceof Error ? e : new Error(String(e)));
    }
    this.session = session;
    this.stream = stream;
    const current = (): boolean => this.stream === stream;
    session.on('error', (e: Error) => current() && this.down(e));
    session.on('close', () => current() && this.down(new Error('connection closed')));
    stream.on('error', (e: Error) => current() && this.down(e));
    stream.on('response', (h) => {
      if (!current()) return;
      const st = grpcStatus(h);
      if (st && st.code !== Code.OK) return this.down(new GrpcCallError(st.code, st.message));
      this.state = 'open';
      this.openedAt = Date.now();
      this.backoffMs = BACKOFF_MIN_MS;
      if (this.failureLogged) this.t.log.info('peer stream established', this.fields());
      this.failureLogged = false;
      this.flush();
    });
    stream.on('trailers', (h) => {
      if (!current()) return;
      const st = grpcStatus(h);
      this.down(st && st.code !== Code.OK ? new GrpcCallError(st.code, st.message) : new Error('stream ended by peer'));
    });
    stream.on('close', () => current() && this.down(new Error('stream closed')));
    stream.resume();
  }

  private fields(extra?: Record<string, unknown>): Record<string, unknown> {
    return { 'local-member-id': hex(this.t.memberId), 'remote-peer-id': hex(this.peer.id), 'stream-type': this.name, ...extra };
  }

  /** Tears the connection down; queued messages are dropped (raft retries) and the peer reported. */
  down(err: Error): void {
    if (this.state === 'closed' || this.state === 'backoff') return;
    const wasOpen = this.state === 'open';
    this.teardown();
    this.droppedMessages += this.queue.length;
    // what was written into a dead connection is lost as surely as what is still queued
    if (wasOpen || this.queue.length > 0) this.t.peerUnreachable(this.peer);
    this.queue = [];
    this.queuedBytes = 0;
    if (err instanceof GrpcCallError && err.code === Code.FailedPrecondition) {
      if (!this.failureLogged) this.t.log.error('peer refused the stream', this.fields({ error: err.message }));
      this.failureLogged = true;
    } else if (wasOpen || !this.failureLogged) {
      this.t.log.warn(wasOpen ? 'lost peer stream' : 'failed to dial peer', this.fields({ error: err.message }));
      this.failureLogged = true;
    }
    if (!wasOpen) this.urlIndex++;
    this.state = 'backoff';
    this.timer = setTimeout(() => this.connect(), this.backoffMs);
    this.timer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
  }

  private teardown(): void {
    const { session, stream } = this;
    this.session = undefined;
    this.stream = undefined;
    this.blockedSince = 0;
    this.pingSentAt = 0;
    stream?.destroy();
    session?.destroy();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.clearTimer();
    this.teardown();
    this.state = 'closed';
    this.queue = [];
    this.queuedBytes = 0;
  }

  /** Reconnects at once (new URLs): anything queued is dropped with the old connection. */
  restart(): void {
    if (this.state === 'closed') return;
    this.clearTimer();
    this.teardown();
    this.state = 'backoff';
    this.backoffMs = BACKOFF_MIN_MS;
    this.urlIndex = 0;
    this.connect();
  }

  /** Queues m; false when it was dropped (peer down or queue full). */
  enqueue(m: Message): boolean {
    if (this.state !== 'open' && this.state !== 'connecting') {
      this.droppedMessages++;
      return false;
    }
    const size = approxMessageBytes(m);
    if (this.queue.length >= this.t.maxQueueMessages || (this.queue.length > 0 && this.queuedBytes + size > this.t.maxQueueBytes)) {
      this.droppedMessages++;
      return false;
    }
    this.queue.push(m);
    this.queuedBytes += size;
    return true;
  }

  /**
   * Writes everything queued, as one batch per write (capped at MAX_BATCH_BYTES). Writes go out at
   * once while the stream takes them; once it pushes back (its buffer is full: the peer or the
   * network is slower than us), messages queue until 'drain' and then leave as one batch. Waiting
   * for each write's completion instead would add a round of the event loop to every message.
   */
  flush(): void {
    const stream = this.stream;
    if (this.state !== 'open' || !stream || this.blockedSince !== 0) return;
    while (this.queue.length > 0) {
      let count = this.queue.length;
      let bytes = this.queuedBytes;
      if (bytes > MAX_BATCH_BYTES) {
        bytes = 0;
        count = 0;
        while (count < this.queue.length && (count === 0 || bytes + approxMessageBytes(this.queue[count]) <= MAX_BATCH_BYTES)) {
          bytes += approxMessageBytes(this.queue[count]);
          count++;
        }
      }
      let frame: Buffer;
      try {
        frame = encodeBatchFrame(this.queue, count);
      } catch (e) {
        this.t.log.error('failed to encode raft messages', this.fields({ error: e instanceof Error ? e.message : String(e) }));
        this.droppedMessages += this.queue.length;
        this.queue = [];
        this.queuedBytes = 0;
        this.t.peerUnreachable(this.peer);
        return;
      }
      if (count === this.queue.length) {
        this.queue = [];
        this.queuedBytes = 0;
      } else {
        this.queue = this.queue.slice(count);
        this.queuedBytes -= bytes;
      }
      this.sentMessages += count;
      if (!stream.write(frame)) {
        this.blockedSince = Date.now();
        stream.once('drain', () => {
          if (this.stream !== stream) return;
          this.blockedSince = 0;
          this.flush();
        });
        return;
      }
    }
  }

  /**
   * Called periodically: catches peers that never answer a dial, stopped reading, or stopped
   * answering HTTP/2 pings (a paused process whose socket buffers still take our small writes).
   */
  check(now: number): void {
    if (this.state === 'connecting') {
      if (now - this.connectStartedAt > this.t.connectTimeoutMs) this.down(new Error('connection timed out'));
      return;
    }
    if (this.state !== 'open') return;
    if (this.blockedSince !== 0 && now - this.blockedSince > this.t.writeStallMs) return this.down(new Error('write timed out'));
    if (this.pingSentAt !== 0) {
      if (now - this.pingSentAt > this.t.writeStallMs) this.down(new Error('peer stopped answering pings'));
      return;
    }
    const session = this.session;
    if (!session) return;
    this.pingSentAt = now;
    try {
      session.ping((err) => {
        if (this.session !== session || err) return;
        this.pingSentAt = 0;
      });
    } catch {
      // too many unacknowledged pings: the check above takes the connection down in time
    }
  }

  active(now: number): boolean {
    if (this.state !== 'open') return false;
    if (this.blockedSince !== 0 && now - this.blockedSince > ACTIVE_STALL_MS) return false;
    return !(this.pingSentAt !== 0 && now - this.pingSentAt > ACTIVE_STALL_MS);
  }
}

class Peer {
  readonly app: Lane;
  readonly msg: Lane;
  urls: string[];
  snapshotInFlight = false;
  unreachable = false;

  constructor(
    t: PeerTransport,
    readonly id: bigint,
    urls: string[],
  ) {
    this.urls = urls;
    this.app = new Lane(t, this, 'app');
    this.msg = new Lane(t, this, 'msg');
  }
}

interface Listener {
  url: string;
  port: number;
  server: http2.Http2Server | http2.Http2SecureServer;
}

export class PeerTransport {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly tls: PeerTlsOptions | undefined;
  readonly log: Logger;
  readonly maxQueueMessages: number;
  readonly maxQueueBytes: number;
  readonly connectTimeoutMs: number;
  readonly writeStallMs: number;
  private readonly opts: TransportOptions;
  private readonly handler: TransportHandler;
  private readonly maxMessageBytes: number;
  private readonly peers = new Map<bigint, Peer>();
  private readonly listeners: Listener[] = [];
  private readonly serverSessions = new Set<http2.ServerHttp2Session>();
  private readonly snapshotSessions = new Set<http2.ClientHttp2Session>();
  /** Last time a message arrived from each peer (for isActive when we have nothing to send). */
  private readonly lastReceived = new Map<bigint, number>();
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.memberId = opts.memberId;
    this.clusterId = opts.clusterId;
    this.tls = opts.tls;
    this.log = opts.log;
    this.handler = opts.handler;
    this.maxMessageBytes = opts.maxMessageBytes ?? 128 << 20;
    this.maxQueueMessages = opts.maxQueueMessages ?? 4096;
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 << 20;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    this.writeStallMs = opts.writeStallMs ?? WRITE_STALL_MS;
  }

  /** Listens on every --listen-peer-urls; with port 0 the actual ports are in listenUrls(). */
  async start(): Promise<void> {
    for (const url of this.opts.listenPeerUrls) this.listeners.push(await this.listen(url));
    this.checkTimer = setInterval(() => this.check(), CHECK_INTERVAL_MS);
    this.checkTimer.unref();
  }

  /** The listen URLs with the ports actually bound. */
  listenUrls(): string[] {
    return this.listeners.map((l) => {
      const u = new URL(l.url);
      if (u.protocol === 'unix:' || u.protocol === 'unixs:' || l.port === 0) return l.url;
      u.port = String(l.port);
      return u.toString().replace(/\/$/, '');
    });
  }

  get ports(): number[] {
    return this.listeners.map((l) => l.port);
  }

  setPeer(id: bigint, urls: string[]): void {
    if (this.stopped || id === this.memberId) return;
    const p = this.peers.get(id);
    if (!p) {
      const peer = new Peer(this, id, [...urls]);
      this.peers.set(id, peer);
      peer.app.connect();
      peer.msg.connect();
      return;
    }
    if (p.urls.length === urls.length && p.urls.every((u, i) => u === urls[i])) return;
    p.urls = [...urls];
    p.app.restart();
    p.msg.restart();
  }

  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    this.lastReceived.delete(id);
    p.app.close();
    p.msg.close();
  }

  /** Queues msgs per peer and lane and starts writing; never blocks, never throws. */
  send(msgs: Message[]): void {
    if (this.stopped || this.opts.dropPeerTraffic?.()) return;
    let touched: Lane[] | undefined;
    for (const m of msgs) {
      const peer = this.peers.get(m.to);
      if (!peer) {
        this.log.debug('ignored message to unknown peer', { 'remote-peer-id': hex(m.to), type: MessageType[m.type] });
        if (m.type === MessageType.MsgSnap) this.safely(() => this.handler.reportSnapshot(m.to, true));
        continue;
      }
      if (m.type === MessageType.MsgSnap) {
        void this.sendSnapshot(peer, m);
        continue;
      }
      const lane = m.type === MessageType.MsgApp || m.type === MessageType.MsgProp ? peer.app : peer.msg;
      if (lane.enqueue(m)) {
        if (!touched) touched = [lane];
        else if (!touched.includes(lane)) touched.push(lane);
      } else this.peerUnreachable(peer);
    }
    if (touched) for (const lane of touched) lane.flush();
  }

  /** Outbound stream up and writing, or a message received lately. */
  isActive(id: bigint): boolean {
    const p = this.peers.get(id);
    if (!p) return false;
    const now = Date.now();
    if (p.msg.active(now) || p.app.active(now)) return true;
    const r = this.lastReceived.get(id);
    return r !== undefined && now - r < this.writeStallMs;
  }

  /**
   * Since when both streams to the peer have been up without interruption
   * (etcd's ActiveSince); undefined while either is down or stalled.
   */
  activeSince(id: bigint): number | undefined {
    const p = this.peers.get(id);
    if (!p) return undefined;
    const now = Date.now();
    if (!p.msg.active(now) || !p.app.active(now)) return undefined;
    return Math.max(p.msg.openedAt, p.app.openedAt);
  }

  /** Counters for metrics and tests. */
  stats(id: bigint): { sent: number; dropped: number } | undefined {
    const p = this.peers.get(id);
    if (!p) return undefined;
    return { sent: p.app.sentMessages + p.msg.sentMessages, dropped: p.app.droppedMessages + p.msg.droppedMessages };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    for (const p of this.peers.values()) {
      p.app.close();
      p.msg.close();
    }
    this.peers.clear();
    for (const s of this.snapshotSessions) s.destroy();
    this.snapshotSessions.clear();
    for (const s of this.serverSessions) s.destroy();
    this.serverSessions.clear();
    await Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
    this.listeners.length = 0;
  }

  private check(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      p.app.check(now);
      p.msg.check(now);
    }
  }

  /**
   * Reports a peer unreachable once per turn of the event loop, after the current send() or
   * socket event returned: a burst of drops is one report, and the handler is never re-entered
   * from inside send().
   */
  peerUnreachable(p: Peer): void {
    if (p.unreachable) return;
    p.unreachable = true;
    queueMicrotask(() => {
      p.unreachable = false;
      if (!this.stopped && this.peers.get(p.id) === p) this.safely(() => this.handler.reportUnreachable(p.id));
    });
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error('transport handler threw', { error: e instanceof Error ? e.message : String(e) });
    }
  }

  // ---- outgoing snapshots ----

  private async sendSnapshot(peer: Peer, m: Message): Promise<void> {
    const to = peer.id;
    if (peer.snapshotInFlight) {
      this.log.warn('snapshot already being sent to peer; dropped', { 'remote-peer-id': hex(to) });
      this.safely(() => this.handler.reportSnapshot(to, true));
      return;
    }
    peer.snapshotInFlight = true;
    let data: { stream: AsyncIterable<Buffer>; done(): void } | undefined;
    let session: http2.ClientHttp2Session | undefined;
    let failed = true;
    let total = 0;
    const started = Date.now();
    try {
      data = await this.handler.openSnapshotData(m);
      if (this.stopped) throw new Error('transport stopped');
      session = connectPeer(peer.urls[0] ?? '', this.tls);
      this.snapshotSessions.add(session);
      const s = session;
      s.on('error', () => {});
      s.setTimeout(SNAPSHOT_IDLE_MS, () => s.destroy(new Error('snapshot transfer timed out')));
      const req = s.request({
        ':method': 'POST',
        ':path': PATH_SNAPSHOT,
        'content-type': 'application/grpc',
        te: 'trailers',
        [H_CLUSTER]: hex(this.clusterId),
        [H_FROM]: hex(this.memberId),
        [H_TO]: hex(to),
      });
      const result = callResult(req);
      result.catch(() => {});
      const msgBytes = encodeRaftMessage(m);
      req.write(bytesFieldFrameHeader(1, msgBytes.length));
      req.write(msgBytes);
      const hash = crypto.createHash('sha256');
      for await (const chunk of data.stream) {
        for (let off = 0; off < chunk.length; off += SNAPSHOT_CHUNK) {
          const piece = chunk.subarray(off, Math.min(chunk.length, off + SNAPSHOT_CHUNK));
          hash.update(piece);
          total += piece.length;
          req.write(bytesFieldFrameHeader(2, piece.length));
          if (!req.write(piece)) await Promise.race([once(req, 'drain'), result]);
        }
      }
      req.end(grpcFrame(Buffer.concat([bytesFieldFrameHeader(3, 32).subarray(5), hash.digest()])));
      await result;
      failed = false;
      this.log.info('sent database snapshot to peer', { 'remote-peer-id': hex(to), bytes: total, took: `${Date.now() - started}ms` });
    } catch (e) {
      this.log.warn('failed to send database snapshot to peer', { 'remote-peer-id': hex(to), error: e instanceof Error ? e.message : String(e) });
    } finally {
      peer.snapshotInFlight = false;
      if (session) {
        this.snapshotSessions.delete(session);
        session.close();
      }
      if (data) this.safely(() => data?.done());
      // after stop() the raft loop is gone: only the data source is released
      if (!this.stopped) {
        if (failed) this.safely(() => this.handler.reportUnreachable(to));
        this.safely(() => this.handler.reportSnapshot(to, failed));
      }
    }
  }

  // ---- server side ----

  private async listen(url: string): Promise<Listener> {
    const u = new URL(url);
    const secure = u.protocol === 'https:' || u.protocol === 'unixs:';
    if (secure && !this.tls) throw new Error(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${url} with HTTPS scheme`);
    if (!secure && this.tls) this.log.warn('peer URL is plain HTTP while peer TLS is configured; serving plain text', { url });
    const server =
      secure && this.tls
        ? http2.createSecureServer({ ...this.tls.server, ALPNProtocols: ['h2'], allowHTTP1: false, settings: H2_SETTINGS, maxSessionMemory: MAX_SESSION_MEMORY_MB })
        : http2.createServer({ settings: H2_SETTINGS, maxSessionMemory: MAX_SESSION_MEMORY_MB });
    server.on('session', (s: http2.ServerHttp2Session) => {
      if (this.stopped) return void s.destroy();
      this.serverSessions.add(s);
      s.on('close', () => this.serverSessions.delete(s));
      s.on('error', () => {});
      try {
        s.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // session already closing
      }
    });
    const refuse = secure ? this.tls?.refuseConnection : undefined;
    // a peer whose certificate is not allowed is closed before its session starts
    if (refuse) server.prependListener('secureConnection', (socket: TLSSocket) => void (refuse(socket) && socket.destroy()));
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    server.on('sessionError', () => {});
    server.on('tlsClientError', () => {});
    const target = listenTarget(url);
    if (target.path && fs.existsSync(target.path)) fs.unlinkSync(target.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        resolve();
      };
      if (target.path) server.listen(target.path, done);
      else server.listen(target.port, target.host, done);
    });
    const addr = server.address();
    return { url, port: typeof addr === 'object' && addr ? addr.port : 0, server };
  }

  /** Identity check of every call but Members: etcd's X-Etcd-Cluster-ID and X-Raft-To. */
  private refusal(headers: http2.IncomingHttpHeaders): string | undefined {
    const cid = parseHexId(headers[H_CLUSTER]);
    if (cid !== this.clusterId) return `cluster ID mismatch (local ${hex(this.clusterId)}, remote ${headerString(headers[H_CLUSTER]) ?? 'none'})`;
    const to = parseHexId(headers[H_TO]);
    if (to !== undefined && to !== this.memberId) return `member ID mismatch (local ${hex(this.memberId)}, requested ${hex(to)})`;
    if (parseHexId(headers[H_FROM]) === undefined) return 'missing sender member ID';
    return undefined;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {});
    if (this.stopped) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    const p = headers[':path'];
    if (headers[':method'] !== 'POST') return respondStatus(stream, Code.Unimplemented, 'POST only');
    if (p === PATH_MEMBERS) return this.serveMembers(stream);
    if (p !== PATH_STREAM && p !== PATH_SNAPSHOT && p !== PATH_HASHKV) return respondStatus(stream, Code.Unimplemented, `unknown method ${String(p)}`);
    const refused = this.refusal(headers);
    if (refused) {
      this.log.warn('refused peer call', { path: p, error: refused, remote: stream.session?.socket?.remoteAddress });
      return respondStatus(stream, Code.FailedPrecondition, refused);
    }
    const from = parseHexId(headers[H_FROM]) ?? 0n;
    if (p === PATH_STREAM) this.serveStream(stream, from);
    else if (p === PATH_HASHKV) this.serveHashKV(stream);
    else this.serveSnapshot(stream, from);
  }

  private serveHashKV(stream: http2.ServerHttp2Stream): void {
    const call = new ServerCall(stream);
    const parser = new FrameParser(1 << 20);
    let revision = 0;
    stream.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk, (payload) => {
          revision = decodeHashKVRequest(payload).revision;
        });
      } catch (e) {
        call.finish(Code.InvalidArgument, e instanceof Error ? e.message : String(e));
      }
    });
    stream.on('end', () => {
      const hashKV = this.handler.hashKV;
      if (!hashKV) return call.finish(Code.Unimplemented, 'hash not available');
      // the member keeps serving its peers during the scan (it yields between slices);
      // a handler that throws at once is answered as one that rejects
      new Promise<HashKVResponseInit>((resolve) => resolve(hashKV.call(this.handler, revision))).then(
        (r) => call.finish(Code.OK, '', grpcFrame(encodeHashKVResponse(r))),
        (e: unknown) => {
          if (e instanceof EtcdError) call.finish(e.code as Code, e.message);
          else call.finish(Code.Unknown, e instanceof Error ? e.message : String(e));
        },
      );
    });
  }

  /**
   * A peer's HashKV at `revision` over its peer URLs (the first that answers),
   * as etcd's getPeerHashKVs asks /members/hashkv: peer TLS, not client auth.
   * A refusal by the peer rejects with its EtcdError (code and message).
   */
  async peerHashKV(peerId: bigint, urls: string[], revision: number, timeoutMs: number): Promise<HashKVResponse> {
    let last: Error = new Error('no peer URLs');
    for (const url of urls) {
      let session: http2.ClientHttp2Session | undefined;
      let timer: NodeJS.Timeout | undefined;
      try {
        session = connectPeer(url, this.tls);
        session.on('error', () => {});
        const req = session.request({
          ':method': 'POST',
          ':path': PATH_HASHKV,
          'content-type': 'application/grpc',
          te: 'trailers',
          [H_CLUSTER]: hex(this.clusterId),
          [H_FROM]: hex(this.memberId),
          [H_TO]: hex(peerId),
        });
        const result = callResult(req);
        req.end(grpcFrame(encodeHashKVRequest({ revision })));
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs}ms`)), timeoutMs);
        });
        const frames = await Promise.race([result, timeout]);
        if (frames.length !== 1) throw new Error('malformed HashKV response');
        return decodeHashKVResponse(frames[0]);
      } catch (e) {
        last = e instanceof GrpcCallError ? new EtcdError(e.code, e.message) : e instanceof Error ? e : new Error(String(e));
        if (last instanceof EtcdError) throw last;
      } finally {
        if (timer) clearTimeout(timer);
        session?.destroy();
      }
    }
    throw last;
  }

  private serveStream(stream: http2.ServerHttp2Stream, from: bigint): void {
    const call = new ServerCall(stream);
    const parser = new FrameParser(this.maxMessageBytes);
    const deliver = (m: Message): void => {
      if (this.opts.dropPeerTraffic?.()) return;
      if (m.type === MessageType.MsgSnap) {
        this.log.warn('ignored MsgSnap on a message stream', { 'remote-peer-id': hex(from) });
        return;
      }
      try {
        this.handler.receive(m);
      } catch (e) {
        this.log.error('raft message handler threw', { error: e instanceof Error ? e.message : String(e) });
      }
    };
    const onFrame = (payload: Buffer): void => decodeBatch(payload, deliver);
    stream.on('data', (chunk: Buffer) => {
      this.lastReceived.set(from, Date.now());
      try {
        parser.push(chunk, onFrame);
      } catch (e) {
        this.log.warn('bad peer stream', { 'remote-peer-id': hex(from), error: e instanceof Error ? e.message : String(e) });
        call.finish(Code.InvalidArgument, e instanceof Error ? e.message : String(e));
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on('end', () => call.finish(Code.OK, '', grpcFrame(Buffer.alloc(0))));
  }

  private serveSnapshot(stream: http2.ServerHttp2Stream, from: bigint): void {
    const call = new ServerCall(stream);
    const parser = new FrameParser(this.maxMessageBytes);
    const dir = this.opts.snapshotDir ?? os.tmpdir();
    const file = path.join(dir, `etcdesk-snap-${hex(from)}-${Date.now()}-${crypto.randomBytes(4).toString('hex')}.db.tmp`);
    const hash = crypto.createHash('sha256');
    let msg: Message | undefined;
    let expected: Buffer | undefined;
    let failed = false;
    let size = 0;
    let pending = 0;
    let fh: fsp.FileHandle | undefined;
    // writes run one after another on this chain; the stream pauses while too much is pending
    let writes: Promise<unknown> = fsp.open(file, 'w', 0o600).then((h) => (fh = h));
    const fail = (code: Code, message: string): void => {
      if (failed) return;
      failed = true;
      this.log.warn('failed to receive database snapshot', { 'remote-peer-id': hex(from), error: message });
      call.finish(code, message);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      void writes.catch(() => {}).then(async () => {
        await fh?.close().catch(() => {});
        await fsp.unlink(file).catch(() => {});
      });
    };
    const onFrame = (payload: Buffer): void => {
      const r = new Reader(payload);
      while (r.pos < r.end) {
        const t = r.uint32();
        if (t === 0x0a) msg = decodeRaftMessage(r.bytes());
        else if (t === 0x12) {
          const data = r.bytes();
          hash.update(data);
          size += data.length;
          pending += data.length;
          writes = writes.then(() => fh?.write(data)).then(() => {
            pending -= data.length;
            if (pending < SNAPSHOT_CHUNK * 4 && stream.isPaused()) stream.resume();
          });
          if (pending >= SNAPSHOT_CHUNK * 8) stream.pause();
        } else if (t === 0x1a) expected = Buffer.from(r.bytes());
        else r.skip(t & 7);
      }
    };
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      this.lastReceived.set(from, Date.now());
      try {
        parser.push(chunk, onFrame);
      } catch (e) {
        fail(Code.InvalidArgument, e instanceof Error ? e.message : String(e));
      }
    });
    stream.on('aborted', () => fail(Code.Unavailable, 'sender went away'));
    stream.on('close', () => {
      if (!call.finished) fail(Code.Unavailable, 'stream closed');
    });
    stream.on('end', () => {
      if (failed) return;
      void (async () => {
        try {
          await writes;
          await fh?.sync();
          await fh?.close();
          fh = undefined;
        } catch (e) {
          return fail(Code.Internal, `writing ${file}: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (!msg || msg.type !== MessageType.MsgSnap) return fail(Code.InvalidArgument, 'snapshot without its MsgSnap');
        if (!expected || !hash.digest().equals(expected)) return fail(Code.DataLoss, 'snapshot checksum mismatch');
        if (failed) return;
        this.log.info('received database snapshot', { 'remote-peer-id': hex(from), bytes: size, index: msg.snapshot?.metadata.index });
        call.finish(Code.OK, '', grpcFrame(Buffer.alloc(0)));
        const m = msg;
        this.safely(() => this.handler.receiveSnapshot(m, file));
      })();
    });
  }

  private serveMembers(stream: http2.ServerHttp2Stream): void {
    const call = new ServerCall(stream);
    const parser = new FrameParser(1 << 20);
    let token = '';
    stream.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk, (payload) => {
          token = decodeMembersRequest(payload).cluster_token;
        });
      } catch (e) {
        call.finish(Code.InvalidArgument, e instanceof Error ? e.message : String(e));
      }
    });
    stream.on('end', () => {
      const own = this.opts.clusterToken;
      if (token !== '' && own !== undefined && own !== '' && token !== own) {
        return call.finish(Code.FailedPrecondition, `cluster token mismatch (local ${own}, remote ${token})`);
      }
      const list = this.handler.members?.();
      if (!list) return call.finish(Code.Unimplemented, 'membership not available');
      const body = encodeMembersResponse({
        cluster_id: this.clusterId,
        member_id: this.memberId,
        members: list.map((m) => ({ ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner })),
      });
      call.finish(Code.OK, '', grpcFrame(body));
    });
  }
}

/** Server half of one gRPC call: response headers at once, status in trailers at the end. */
class ServerCall {
  finished = false;
  private status: { code: Code; message: string } = { code: Code.OK, message: '' };

  constructor(private readonly stream: http2.ServerHttp2Stream) {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      const h: http2.OutgoingHttpHeaders = { 'grpc-status': String(this.status.code) };
      if (this.status.message) h['grpc-message'] = encodeURIComponent(this.status.message);
      stream.sendTrailers(h);
    });
  }

  finish(code: Code, message: string, body?: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.status = { code, message };
    if (this.stream.destroyed || this.stream.closed) return;
    if (body) this.stream.end(body);
    else this.stream.end();
  }
}

/** A trailers-only gRPC answer: refusals before any message is read. */
function respondStatus(stream: http2.ServerHttp2Stream, code: Code, message: string): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) },
    { endStream: true },
  );
  // the sender may still be writing: discard without reading it
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/** Resolves with the response payloads of a call when it ends with grpc-status 0; rejects otherwise. */
function callResult(req: http2.ClientHttp2Stream, maxBytes = 16 << 20): Promise<Buffer[]> {
  return new Promise<Buffer[]>((resolve, reject) => {
    const frames: Buffer[] = [];
    const parser = new FrameParser(maxBytes);
    let settled = false;
    const settle = (st: { code: number; message: string } | undefined): void => {
      if (settled) return;
      settled = true;
      if (!st) reject(new Error('call ended without a status'));
      else if (st.code !== Code.OK) reject(new GrpcCallError(st.code, st.message));
      else resolve(frames);
    };
    req.on('response', (h) => {
      const st = grpcStatus(h);
      if (st) settle(st);
    });
    req.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk, (f) => frames.push(Buffer.from(f)));
      } catch (e) {
        settled = true;
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    req.on('trailers', (h) => settle(grpcStatus(h)));
    req.on('error', (e: Error) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    req.on('close', () => settle(undefined));
  });
}

/**
 * Asks existing members for the membership (etcd's GetClusterFromRemotePeers), trying each peer
 * URL in turn until one answers.
 */
export async function fetchMembers(peerUrls: string[], clusterToken?: string, tlsOpts?: PeerTlsOptions, timeoutMs = 5000): Promise<FetchedMembers> {
  let last: Error = new Error('no peer URLs given');
  for (const url of peerUrls) {
    let session: http2.ClientHttp2Session | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      session = connectPeer(url, tlsOpts);
      const s = session;
      s.on('error', () => {});
      const req = s.request({ ':method': 'POST', ':path': PATH_MEMBERS, 'content-type': 'application/grpc', te: 'trailers' });
      const result = callResult(req);
      req.end(grpcFrame(encodeMembersRequest({ cluster_token: clusterToken ?? '' })));
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs}ms`)), timeoutMs);
      });
      const frames = await Promise.race([result, timeout]);
      if (frames.length !== 1) throw new Error('malformed Members response');
      const r = decodeMembersResponse(frames[0]);
      return {
        clusterId: r.cluster_id,
        memberId: r.member_id,
        members: r.members.map((m) => ({ id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner })),
      };
    } catch (e) {
      last = new Error(`${url}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      if (timer) clearTimeout(timer);
      session?.destroy();
    }
  }
  throw new Error(`could not retrieve cluster information from the given URLs: ${last.message}`);
}
