// The node's gRPC server, on our own lean HTTP/2 server (`h2/`) for plain
// connections and on node:http2 for TLS ones. @grpc/grpc-js stays for
// clients; on the server its per-call machinery (interceptor chains, filter
// stacks, per-call objects) cost more than etcd spends on a whole Put, and
// node:http2 itself ~76 µs of CPU per request against the lean server's ~20
// (see bench/RESULTS.md). Calls reach the HTTP/2 stream only through a
// `CallStream` (one adapter per transport), so both serve the same calls. This serves the generated service definitions
// (`FooService`) with the handlers the services already implement
// (`FooHandlers`, typed with grpc-js's call types): the call objects here
// present the same surface — `request`, `metadata`, `cancelled`, the
// 'cancelled' event, getPeer/getDeadline/getAuthContext, and for streams a
// Node object-mode Duplex whose `emit('error', status)` ends the call with
// that status, as in grpc-js.
//
// What clients rely on, as grpc-go's server does it: `grpc-timeout`
// deadlines (DEADLINE_EXCEEDED), metadata (binary `-bin` values included),
// status codes with percent-encoded messages, the receive size limit
// (RESOURCE_EXHAUSTED with grpc-go's text), gzip/deflate request messages,
// unknown methods (UNIMPLEMENTED with grpc-go's text), keepalive pings,
// GOAWAY on shutdown with in-flight unary calls finishing, flow control on
// streams (a response stream's writes complete only when HTTP/2 takes them).
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import zlib from 'node:zlib';
import { Metadata, type MethodDefinition, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ProtoDecodeError } from '../proto/wire';
import { unmarshalStatus } from './grpc-status';
import { createLeanH2Server, EncodedHeaders, type LeanH2Server, type LeanH2Stream } from './h2/server';

/** gRPC status codes used here (grpc-js's `status` enum values). */
const OK = 0;
const CANCELLED = 1;
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;

export interface GrpcServerOptions {
  /** Largest request message accepted (etcd: --max-request-bytes + 512 KiB). */
  maxReceiveMessageBytes: number;
  /** Server keepalive: ping an idle connection this often (etcd's --grpc-keepalive-interval, 2 h). */
  keepaliveTimeMs?: number;
  /** ... and close it when the ping is not answered within this (--grpc-keepalive-timeout, 20 s). */
  keepaliveTimeoutMs?: number;
}

/** What the services see of a status (grpc-js's ServerErrorResponse / ServiceError shape). */
export interface StatusLike {
  code?: number;
  details?: string;
  message?: string;
  metadata?: Metadata | null;
}

interface Status {
  code: number;
  details: string;
  metadata?: Metadata | null;
}

export type Handler = (call: unknown, cb?: (err: StatusLike | null, value?: unknown, trailer?: Metadata) => void) => void;

interface Route {
  path: string;
  def: MethodDefinition<unknown, unknown>;
  handler: Handler;
}

const GRPC_CONTENT_TYPE = 'application/grpc';
const ACCEPT_ENCODING = 'identity,deflate,gzip';
const RESPONSE_HEADERS: Readonly<HeaderRecord> = Object.freeze({
  ':status': '200',
  'content-type': GRPC_CONTENT_TYPE,
  'grpc-accept-encoding': ACCEPT_ENCODING,
});
const OK_TRAILERS: Readonly<HeaderRecord> = Object.freeze({ 'grpc-status': '0' });
// the same, HPACK-encoded once for every lean stream (the encoder keeps no per-connection state)
const RESPONSE_HEADERS_ENC = new EncodedHeaders(RESPONSE_HEADERS);
const OK_TRAILERS_ENC = new EncodedHeaders(OK_TRAILERS);
const UNSUPPORTED_MEDIA = Object.freeze({ ':status': '415', 'content-type': 'text/plain' });

function toStatus(e: StatusLike | Error | null | undefined, trailer?: Metadata): Status {
  const s = (e ?? {}) as StatusLike;
  const code = typeof s.code === 'number' && Number.isInteger(s.code) ? s.code : UNKNOWN;
  const details = typeof s.details === 'string' && typeof s.code === 'number' ? s.details : typeof s.message === 'string' ? s.message : 'Unknown Error';
  return { code, details, metadata: trailer ?? s.metadata ?? null };
}

/** grpc-message is percent-encoded (gRPC HTTP/2 spec): everything outside printable ASCII, and '%'. */
export function encodeGrpcMessage(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b < 0x20 || b > 0x7e || b === 0x25 ? '%' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
  return out;
}

// headers the transport owns: never shown to handlers as metadata (grpc-js drops the same)
const RESERVED = new Set([':path', ':authority', ':method', ':scheme', 'content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'content-length']);

/** Metadata from the request's header fields in wire order (repeated fields stay separate values, as grpc-go gives them). */
function metadataFrom(raw: readonly string[]): Metadata {
  const md = new Metadata();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i];
    if (k.charCodeAt(0) === 0x3a || RESERVED.has(k)) continue;
    const v = raw[i + 1];
    try {
      if (k.endsWith('-bin')) for (const one of v.split(',')) md.add(k, Buffer.from(one.trim(), 'base64'));
      else md.add(k, v);
    } catch {
      // a header grpc-js would refuse as metadata: not something a handler reads
    }
  }
  return md;
}

type HeaderRecord = Record<string, string>;

function trailersFrom(status: Status): HeaderRecord {
  const t: HeaderRecord = { 'grpc-status': String(status.code), 'grpc-message': encodeGrpcMessage(status.details) };
  if (status.metadata) addMetadata(t, status.metadata);
  return t;
}

function addMetadata(h: HeaderRecord, md: Metadata): void {
  for (const [k, v] of Object.entries(md.getMap())) {
    if (RESERVED.has(k) || k.startsWith('grpc-')) continue;
    h[k] = Buffer.isBuffer(v) ? v.toString('base64') : v;
  }
}

/** grpc-timeout: up to 8 digits and a unit (Hours, Minutes, Seconds, milli, micro, nano). */
const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
export function parseGrpcTimeout(v: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]];
}

/** Splits a request body into gRPC messages; each comes out decompressed. */
class MessageReader {
  private buf: Buffer | undefined;
  constructor(
    private readonly max: number,
    private readonly encoding: string | undefined,
  ) {}

  /** The whole messages now available; throws a Status on an oversized or undecodable frame. */
  push(chunk: Buffer): Buffer[] {
    let data = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = undefined;
    const out: Buffer[] = [];
    while (data.length >= 5) {
      const len = data.readUInt32BE(1);
      if (len > this.max) throw { code: RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${len} vs. ${this.max})` } satisfies Status;
      if (data.length < 5 + len) break;
      const compressed = data[0] === 1;
      let msg = data.subarray(5, 5 + len);
      if (compressed) msg = this.inflate(msg);
      out.push(msg);
      data = data.subarray(5 + len);
    }
    if (data.length) this.buf = Buffer.from(data);
    return out;
  }

  get pending(): boolean {
    return this.buf !== undefined;
  }

  private inflate(msg: Buffer): Buffer {
    let out: Buffer;
    try {
      if (this.encoding === 'gzip') out = zlib.gunzipSync(msg, { maxOutputLength: this.max + 1 });
      else if (this.encoding === 'deflate') out = zlib.inflateSync(msg, { maxOutputLength: this.max + 1 });
      else throw { code: INTERNAL, details: 'grpc: compressed flag set with identity or empty encoding' } satisfies Status;
    } catch (e) {
      if ((e as Status).code === INTERNAL) throw e;
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || (e as { code?: string }).code === 'ERR_OUT_OF_RANGE')
        throw { code: RESOURCE_EXHAUSTED, details: `grpc: received message after decompression larger than max (${this.max})` } satisfies Status;
      throw { code: INTERNAL, details: `grpc: failed to decompress the received message: ${(e as Error).message}` } satisfies Status;
    }
    if (out.length > this.max) throw { code: RESOURCE_EXHAUSTED, details: `grpc: received message after decompression larger than max (${this.max})` } satisfies Status;
    return out;
  }
}

function frame(msg: Buffer): Buffer {
  const f = Buffer.allocUnsafe(5 + msg.length);
  f[0] = 0;
  f.writeUInt32BE(msg.length, 1);
  msg.copy(f, 5);
  return f;
}

type AuthContext = { transportSecurityType?: string; sslPeerCertificate?: ReturnType<TLSSocket['getPeerCertificate']> };

/** Per-connection facts a call may ask for, computed once per connection. */
class SessionInfo {
  private authCtx?: AuthContext;
  readonly peer: string;
  constructor(private readonly socket: unknown) {
    const s = socket as { remoteAddress?: string; remotePort?: number } | undefined;
    this.peer = s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? 0}` : 'unknown';
  }
  authContext(): AuthContext {
    if (!this.authCtx) {
      const sock = this.socket as Partial<TLSSocket> | undefined;
      if (sock && typeof sock.getPeerCertificate === 'function' && sock.encrypted) {
        const cert = sock.getPeerCertificate();
        this.authCtx = { transportSecurityType: 'ssl', sslPeerCertificate: cert && cert.raw ? cert : undefined };
      } else this.authCtx = {};
    }
    return this.authCtx;
  }
}

/**
 * Every call's grpc-timeout behind one timer, armed for the earliest deadline. A timer per call
 * (most never fire: the answer comes first) cost each request a Timeout, and since a client's
 * remaining time differs from call to call, a timer list of its own for that duration.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

class DeadlineTimer {
  private readonly calls = new Set<CallCore>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  add(core: CallCore): void {
    this.calls.add(core);
    if (core.deadline < this.armedFor) this.arm(core.deadline);
  }

  delete(core: CallCore): void {
    this.calls.delete(core);
    if (this.calls.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.armedFor = Infinity;
    }
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    // a timer longer than 2^31-1 ms would fire at once: wake then and look again (grpc-timeout allows ~11,000 years)
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    const due: CallCore[] = [];
    let next = Infinity;
    for (const c of this.calls) {
      if (c.deadline <= now) due.push(c);
      else if (c.deadline < next) next = c.deadline;
    }
    for (const c of due) {
      this.calls.delete(c);
      c.expire();
    }
    if (next < this.armedFor) this.arm(next);
  }
}

/**
 * What a call needs of its HTTP/2 stream. node:http2's streams (TLS ports)
 * and the lean server's (plain ports) each have an adapter below.
 */
interface CallStream {
  /** Request headers by name (only the transport's own fields are read from it). */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Request header fields as [name, value, ...] in wire order (metadata). */
  readonly rawHeaders: readonly string[];
  readonly info: SessionInfo;
  /** Whether anything can still be sent. */
  readonly writable: boolean;
  /** The gRPC response headers, with the handler's metadata if any. */
  respond(md?: Metadata): void;
  /** One framed message; cb once HTTP/2 took it (flow control) or the stream is gone. */
  write(framed: Buffer, cb?: () => void): void;
  /** Ends the response (headers already sent): an optional last framed message, then trailers (undefined: grpc-status 0). */
  end(last: Buffer | undefined, trailers: HeaderRecord | undefined): void;
  /** A headers-only response ending the stream (gRPC trailers-only, or 415 for a non-gRPC request). */
  respondOnly(h: Readonly<HeaderRecord>): void;
  /** Input callbacks: each DATA chunk, the peer's end, and the stream gone for any reason (exactly once). */
  listen(ondata: (chunk: Buffer) => void, onend: () => void, onclose: () => void): void;
  pause(): void;
  resume(): void;
}

/** node:http2's stream (TLS ports: nghttp2 does ALPN and the HTTP/1.1 fallback there). */
class NodeCallStream implements CallStream {
  private paused = false;
  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    readonly rawHeaders: readonly string[],
    readonly info: SessionInfo,
  ) {}
  get writable(): boolean {
    return !this.stream.destroyed && !this.stream.closed;
  }
  respond(md?: Metadata): void {
    let h: HeaderRecord = RESPONSE_HEADERS;
    if (md) {
      h = { ...RESPONSE_HEADERS };
      addMetadata(h, md);
    }
    this.stream.respond(h, { waitForTrailers: true });
  }
  write(framed: Buffer, cb?: () => void): void {
    this.stream.write(framed, cb && (() => cb()));
  }
  end(last: Buffer | undefined, trailers: HeaderRecord | undefined): void {
    const stream = this.stream;
    stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? OK_TRAILERS));
    if (last) stream.end(last);
    else stream.end();
  }
  respondOnly(h: Readonly<HeaderRecord>): void {
    this.stream.respond(h, { endStream: true });
  }
  listen(ondata: (chunk: Buffer) => void, onend: () => void, onclose: () => void): void {
    this.stream.on('data', ondata);
    this.stream.once('end', onend);
    this.stream.once('close', onclose);
  }
  pause(): void {
    this.paused = true;
    this.stream.pause();
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.stream.resume();
  }
}

/** The lean server's stream (plain ports). */
class LeanCallStream implements CallStream {
  private drainCbs: (() => void)[] | undefined;
  constructor(
    private readonly stream: LeanH2Stream,
    readonly info: SessionInfo,
  ) {}
  get headers(): Readonly<Record<string, string>> {
    return this.stream.headers;
  }
  get rawHeaders(): readonly string[] {
    return this.stream.rawHeaders;
  }
  get writable(): boolean {
    return !this.stream.closed && !this.stream.localEnded;
  }
  respond(md?: Metadata): void {
    if (!md) {
      this.stream.respond(RESPONSE_HEADERS_ENC);
      return;
    }
    const h: HeaderRecord = { ...RESPONSE_HEADERS };
    addMetadata(h, md);
    this.stream.respond(h);
  }
  write(framed: Buffer, cb?: () => void): void {
    if (this.stream.write(framed) || this.stream.closed) {
      cb?.();
      return;
    }
    if (!cb) return;
    if (!this.drainCbs) {
      this.drainCbs = [];
      this.stream.ondrain = this.drained;
    }
    this.drainCbs.push(cb);
  }
  private readonly drained = (): void => {
    const cbs = this.drainCbs;
    this.drainCbs = undefined;
    if (cbs) for (const cb of cbs) cb();
  };
  end(last: Buffer | undefined, trailers: HeaderRecord | undefined): void {
    if (last) this.stream.write(last);
    this.stream.end(trailers ?? OK_TRAILERS_ENC);
  }
  respondOnly(h: Readonly<HeaderRecord>): void {
    this.stream.respond(h, true);
  }
  listen(ondata: (chunk: Buffer) => void, onend: () => void, onclose: () => void): void {
    const s = this.stream;
    s.ondata = ondata;
    s.onend = onend;
    s.onclose = () => {
      // a write waiting for window will never complete: let its writer go on (it finds the call over)
      this.drained();
      onclose();
    };
  }
  pause(): void {
    this.stream.pause();
  }
  resume(): void {
    this.stream.resume();
  }
}

/**
 * The state every call shares: its stream, deadline, whether headers and
 * the status went out, and cancellation. Unary and stream calls wrap it.
 */
class CallCore {
  headersSent = false;
  done = false;
  deadline = Infinity;
  private deadlines: DeadlineTimer | undefined;
  private md: Metadata | undefined;
  onCancel: (() => void) | undefined;

  constructor(readonly stream: CallStream) {}

  get info(): SessionInfo {
    return this.stream.info;
  }

  get headers(): CallStream['headers'] {
    return this.stream.headers;
  }

  get metadata(): Metadata {
    if (!this.md) this.md = metadataFrom(this.stream.rawHeaders);
    return this.md;
  }

  startDeadline(ms: number, deadlines: DeadlineTimer): void {
    this.deadline = Date.now() + ms;
    this.deadlines = deadlines;
    deadlines.add(this);
  }

  /** The deadline passed (DeadlineTimer): DEADLINE_EXCEEDED, and the handler sees 'cancelled'. */
  expire(): void {
    if (this.done) return;
    this.sendStatus({ code: DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
    this.onCancel?.();
  }

  sendMetadata(md: Metadata): void {
    if (this.headersSent || this.done || !this.stream.writable) return;
    this.headersSent = true;
    this.stream.respond(md);
  }

  /** Writes one encoded message; cb runs once HTTP/2 took it (flow control) or at once when the call is over. */
  write(msg: Buffer, cb?: () => void): void {
    if (this.done || !this.stream.writable) {
      cb?.();
      return;
    }
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond();
    }
    this.stream.write(frame(msg), cb);
  }

  /** Ends the call with a status: trailers after headers, else a trailers-only response. */
  sendStatus(status: Status): void {
    if (this.done) return;
    this.finish();
    if (!this.stream.writable) return;
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respondOnly({ ':status': '200', 'content-type': GRPC_CONTENT_TYPE, ...trailersFrom(status) });
    } else {
      this.stream.end(undefined, status.code === OK && !status.metadata ? undefined : trailersFrom(status));
    }
  }

  /** The unary success path in one go: headers, the message, OK trailers. */
  sendUnaryOk(msg: Buffer, trailer?: Metadata): void {
    if (this.done) return;
    this.finish();
    if (!this.stream.writable) return;
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond();
    }
    this.stream.end(frame(msg), trailer ? trailersFrom({ code: OK, details: '', metadata: trailer }) : undefined);
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    this.deadlines?.delete(this);
  }
}

/** A unary call, as grpc-js's ServerUnaryCall (an EventEmitter with `request`). */
class UnaryCall extends EventEmitter {
  cancelled = false;
  request: unknown = undefined;
  constructor(
    private readonly core: CallCore,
    private readonly path: string,
  ) {
    super();
  }
  get metadata(): Metadata {
    return this.core.metadata;
  }
  getPeer(): string {
    return this.core.info.peer;
  }
  sendMetadata(md: Metadata): void {
    this.core.sendMetadata(md);
  }
  getDeadline(): Date | number {
    return this.core.deadline === Infinity ? Infinity : new Date(this.core.deadline);
  }
  getPath(): string {
    return this.path;
  }
  getHost(): string {
    return String(this.core.headers[':authority'] ?? '');
  }
  getAuthContext(): AuthContext {
    return this.core.info.authContext();
  }
  getMetricsRecorder(): never {
    throw new Error('ORCA metrics are not supported by this server');
  }
}

/**
 * A streaming call (server streaming or bidi), as grpc-js's
 * ServerWritableStream / ServerDuplexStream: read requests as 'data', write
 * responses with write() (false past the high-water mark; 'drain' follows),
 * end() for OK, emit('error', status) to end with that status.
 */
class StreamCall extends Duplex {
  cancelled = false;
  request: unknown = undefined;
  private pendingStatus: Status = { code: OK, details: 'OK' };
  private trailing: Metadata | undefined;

  constructor(
    private readonly core: CallCore,
    private readonly route: Route,
  ) {
    super({ objectMode: true });
    this.on('error', (e: StatusLike) => {
      this.pendingStatus = toStatus(e);
      this.end();
    });
  }
  get metadata(): Metadata {
    return this.core.metadata;
  }
  getPeer(): string {
    return this.core.info.peer;
  }
  sendMetadata(md: Metadata): void {
    this.core.sendMetadata(md);
  }
  getDeadline(): Date | number {
    return this.core.deadline === Infinity ? Infinity : new Date(this.core.deadline);
  }
  getPath(): string {
    return this.route.path;
  }
  getHost(): string {
    return String(this.core.headers[':authority'] ?? '');
  }
  getAuthContext(): AuthContext {
    return this.core.info.authContext();
  }
  getMetricsRecorder(): never {
    throw new Error('ORCA metrics are not supported by this server');
  }

  override _read(): void {
    this.core.stream.resume();
  }

  override _write(msg: unknown, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    let bytes: Buffer;
    try {
      bytes = this.route.def.responseSerialize(msg);
    } catch (e) {
      this.core.sendStatus({ code: INTERNAL, details: `grpc: error while marshaling: ${(e as Error).message}` });
      cb();
      return;
    }
    this.core.write(bytes, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
    this.core.sendStatus({ ...this.pendingStatus, metadata: this.pendingStatus.metadata ?? this.trailing ?? null });
  }

  override end(md?: unknown): this {
    if (md instanceof Metadata) this.trailing = md;
    return super.end();
  }
}

/** A call's reaction to its stream's input; `begin` starts a handler that runs before any request arrives. */
interface CallInput {
  data(chunk: Buffer): void;
  end(): void;
  close(): void;
  begin?(): void;
}

export interface GrpcShutdownOptions {
  /** How long in-flight unary calls may take to finish after GOAWAY. */
  graceMs?: number;
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly h2Servers: (http2.Http2Server | http2.Http2SecureServer)[] = [];
  /** Plain connections: the lean HTTP/2 server (h2/), fed sockets by the client listener. */
  private readonly lean: LeanH2Server;
  private readonly deadlines = new DeadlineTimer();
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private shuttingDown = false;

  constructor(private readonly opts: GrpcServerOptions) {
    this.lean = createLeanH2Server((stream) => this.onLeanStream(stream));
  }

  /** Registers a service's handlers under its generated definition (grpc-js's Server.addService). */
  addService(def: ServiceDefinition, impl: UntypedServiceImplementation): void {
    for (const [name, m] of Object.entries(def)) {
      const handler = impl[name] as Handler | undefined;
      if (typeof handler !== 'function') continue;
      const method = m as MethodDefinition<unknown, unknown>;
      this.routes.set(method.path, { path: method.path, def: method, handler });
      this.services.add(method.path.split('/')[1] ?? '');
    }
  }

  /**
   * Serves HTTP/2 on a plain connection (the lean server): the client
   * listener hands over sockets whose first bytes are the HTTP/2 preface
   * (pushed back with unshift, or given as `head`).
   */
  serveSocket(socket: Duplex, head?: Buffer): void {
    const conn = this.lean.handleSocket(socket, head);
    if (this.shuttingDown) {
      conn.goaway();
      return;
    }
    this.keepalive(
      () => conn.isClosed,
      (cb) => conn.ping(cb),
      () => conn.destroy(),
    );
  }

  /**
   * A node:http2 server that serves this gRPC server's methods: TLS ports
   * (and plain ones with ETCDESK_NODE_HTTP2=1). It does not listen: the
   * client listener hands it connections (`emit('connection')`), TLS sockets
   * still to handshake (with `tls`), plain sockets, or a duplex.
   * With `tls` and `httpHandler`, other requests go to httpHandler, HTTP/1.1
   * and non-gRPC HTTP/2 alike (etcd's grpcHandlerFunc on a TLS port: /health,
   * /metrics over https).
   */
  http2Server(tls?: http2.SecureServerOptions, httpHandler?: http.RequestListener): http2.Http2Server | http2.Http2SecureServer {
    const options: http2.ServerOptions = {
      // grpc-js's choice too: the session's memory is bounded by flow control, not by nghttp2's 10 MB guess
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      settings: { maxConcurrentStreams: 2 ** 32 - 1 },
    };
    // on TLS, as etcd's one https server: HTTP/1.1 (ALPN or none) and HTTP/2 requests that are not gRPC go to httpHandler
    const secure = tls ? http2.createSecureServer({ ...options, ...tls, allowHTTP1: httpHandler !== undefined }) : undefined;
    const h2 = secure ?? http2.createServer(options);
    const toHttp = secure && httpHandler ? httpFallback(secure, httpHandler) : undefined;
    h2.on('session', (s: http2.ServerHttp2Session) => this.onSession(s));
    h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => {
      stream.on('error', () => undefined);
      const ct = headers['content-type'];
      if (typeof ct !== 'string' || !ct.startsWith(GRPC_CONTENT_TYPE)) {
        if (toHttp) toHttp(stream, headers, flags, raw);
        // grpc-go answers a non-gRPC request on its handler with 415
        else stream.respond(UNSUPPORTED_MEDIA, { endStream: true });
        return;
      }
      this.onStream(new NodeCallStream(stream, headers, raw, sessionInfo(stream.session!, stream.session?.socket)));
    });
    // a failed handshake or a reset connection concerns that client only
    h2.on('tlsClientError', () => undefined);
    h2.on('sessionError', () => undefined);
    this.h2Servers.push(h2);
    return h2;
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('error', () => undefined);
    session.once('close', () => this.sessions.delete(session));
    if (this.shuttingDown) {
      session.close();
      return;
    }
    this.keepalive(
      () => session.destroyed || session.closed,
      (cb) => session.ping((err) => cb(err)),
      () => session.destroy(),
    );
  }

  /** Server keepalive (--grpc-keepalive-interval/-timeout): a ping every interval; no answer within the timeout ends the connection. */
  private keepalive(gone: () => boolean, ping: (cb: (err: Error | null) => void) => void, destroy: () => void): void {
    const every = this.opts.keepaliveTimeMs;
    if (!every || every <= 0 || !Number.isFinite(every)) return;
    const timeout = this.opts.keepaliveTimeoutMs ?? 20_000;
    const t = setInterval(() => {
      if (gone()) {
        clearInterval(t);
        return;
      }
      const noAnswer = setTimeout(destroy, timeout);
      noAnswer.unref();
      try {
        ping((err) => {
          clearTimeout(noAnswer);
          if (err) destroy();
        });
      } catch {
        clearTimeout(noAnswer);
      }
    }, every);
    t.unref();
  }

  private onLeanStream(stream: LeanH2Stream): void {
    const headers = stream.headers;
    const ct = headers['content-type'];
    if (ct === undefined || !ct.startsWith(GRPC_CONTENT_TYPE)) {
      // grpc-go answers a non-gRPC request on its handler with 415
      stream.respond(UNSUPPORTED_MEDIA, true);
      return;
    }
    this.onStream(new LeanCallStream(stream, sessionInfo(stream.conn, stream.conn.socket)));
  }

  private onStream(cs: CallStream): void {
    const headers = cs.headers;
    const path = String(headers[':path'] ?? '');
    const route = this.routes.get(path);
    const encoding = headers['grpc-encoding'] as string | undefined;
    const core = new CallCore(cs);
    // unary calls are in flight until their stream closed: a graceful shutdown waits for the answer to be out
    const unary = route !== undefined && !route.def.requestStream && !route.def.responseStream;
    if (unary) this.inFlight++;
    let onData: (chunk: Buffer) => void = () => undefined;
    let onEnd: () => void = () => undefined;
    let onClose: () => void = () => undefined;
    cs.listen(
      (chunk) => onData(chunk),
      () => onEnd(),
      () => {
        if (unary) this.unaryDone();
        onClose();
      },
    );
    if (!route) {
      core.sendStatus({ code: UNIMPLEMENTED, details: unknownMethodText(path, this.services) });
      return;
    }
    if (encoding !== undefined && encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'deflate') {
      core.sendStatus({ code: UNIMPLEMENTED, details: `grpc: Decompressor is not installed for grpc-encoding "${encoding}"` });
      return;
    }
    if (this.shuttingDown) {
      core.sendStatus({ code: UNAVAILABLE, details: 'transport is closing' });
      return;
    }
    const timeout = headers['grpc-timeout'];
    if (typeof timeout === 'string') {
      const ms = parseGrpcTimeout(timeout);
      if (ms !== undefined) core.startDeadline(ms, this.deadlines);
    }
    const reader = new MessageReader(this.opts.maxReceiveMessageBytes, encoding);
    const io = route.def.requestStream ? this.startStreamingRequest(core, route, reader) : this.startUnaryRequest(core, route, reader);
    onData = io.data;
    onEnd = io.end;
    onClose = io.close;
    io.begin?.();
  }

  /** Unary and server-streaming: one request message, read whole before the handler runs. */
  private startUnaryRequest(core: CallCore, route: Route, reader: MessageReader): CallInput {
    let msgs: Buffer[] = [];
    let call: UnaryCall | StreamCall | undefined;
    const cancel = (): void => {
      if (!call || call.cancelled) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
      if (call instanceof StreamCall) call.destroy();
    };
    core.onCancel = cancel;
    return {
      data: (chunk) => {
        if (core.done) return;
        try {
          const got = reader.push(chunk);
          if (got.length) msgs = msgs.length ? msgs.concat(got) : got;
        } catch (e) {
          core.sendStatus(e as Status);
        }
      },
      end: () => {
        if (core.done) return;
        if (msgs.length !== 1 || reader.pending) {
          core.sendStatus({ code: INTERNAL, details: msgs.length > 1 ? 'grpc: too many request messages for a unary call' : 'grpc: error while receiving the request message' });
          return;
        }
        let request: unknown;
        try {
          request = route.def.requestDeserialize(msgs[0]);
        } catch (e) {
          core.sendStatus(decodeFailure(e, false));
          return;
        }
        if (route.def.responseStream) {
          const sc = new StreamCall(core, route);
          sc.request = request;
          sc.push(null);
          call = sc;
          this.invoke(core, () => route.handler(sc));
        } else {
          const uc = new UnaryCall(core, route.path);
          uc.request = request;
          call = uc;
          this.invoke(core, () => route.handler(uc, (err, value, trailer) => this.answerUnary(core, route, err, value, trailer)));
        }
      },
      close: () => {
        if (!core.done) {
          core.finish();
          cancel();
        }
      },
    };
  }

  /** Bidi (and client streaming): requests flow as 'data' with backpressure; the handler starts at once. */
  private startStreamingRequest(core: CallCore, route: Route, reader: MessageReader): CallInput {
    const stream = core.stream;
    const call = new StreamCall(core, route);
    const cancel = (): void => {
      if (call.cancelled) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
      call.destroy();
    };
    core.onCancel = cancel;
    return {
      data: (chunk) => {
        if (core.done) return;
        let msgs: Buffer[];
        try {
          msgs = reader.push(chunk);
        } catch (e) {
          core.sendStatus(e as Status);
          cancel();
          return;
        }
        for (const m of msgs) {
          let req: unknown;
          try {
            req = route.def.requestDeserialize(m);
          } catch (e) {
            core.sendStatus(decodeFailure(e, true));
            cancel();
            return;
          }
          if (!call.push(req)) stream.pause();
        }
      },
      end: () => {
        if (!core.done && !call.destroyed) call.push(null);
      },
      close: () => {
        if (!core.done) {
          core.finish();
          cancel();
        }
      },
      begin: () => {
        if (route.def.responseStream) this.invoke(core, () => route.handler(call));
        else this.invoke(core, () => route.handler(call, (err, value, trailer) => this.answerUnary(core, route, err, value, trailer)));
      },
    };
  }

  private invoke(core: CallCore, run: () => void): void {
    try {
      run();
    } catch (e) {
      // grpc-js answers a throwing handler with UNKNOWN; a service bug must not take the node down
      core.sendStatus({ code: UNKNOWN, details: e instanceof Error ? e.message : String(e) });
    }
  }

  private answerUnary(core: CallCore, route: Route, err: StatusLike | null, value: unknown, trailer?: Metadata): void {
    if (core.done) return;
    if (err) {
      core.sendStatus(toStatus(err, trailer));
      return;
    }
    let bytes: Buffer;
    try {
      bytes = route.def.responseSerialize(value);
    } catch (e) {
      core.sendStatus({ code: INTERNAL, details: `grpc: error while marshaling: ${(e as Error).message}` });
      return;
    }
    core.sendUnaryOk(bytes, trailer);
  }

  private unaryDone(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.drained?.();
  }

  /**
   * GOAWAY to every connection: no new calls; unary calls in flight may
   * finish within the grace period (streams such as Watch never end on their
   * own and are not waited for), then every connection is closed.
   */
  async shutdown(o: GrpcShutdownOptions = {}): Promise<void> {
    this.shuttingDown = true;
    for (const s of this.sessions) if (!s.closed) s.close();
    this.lean.close();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.graceMs ?? 2000);
        this.drained = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.forceShutdown();
  }

  /** Closes every connection now; calls in flight see CANCELLED on the client side. */
  forceShutdown(): void {
    this.shuttingDown = true;
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
    this.lean.destroy();
    for (const h of this.h2Servers) h.close();
  }

  /** A registered method's definition and handler (the HTTP gateway calls the same handlers). */
  method(path: string): { def: MethodDefinition<unknown, unknown>; handler: Handler } | undefined {
    return this.routes.get(path);
  }

  /** The largest request message accepted (the gateway applies it to the messages it decodes). */
  get maxReceiveMessageBytes(): number {
    return this.opts.maxReceiveMessageBytes;
  }

  /** Connections open now (for tests and diagnosis). */
  get connectionCount(): number {
    return this.sessions.size + this.lean.connections.size;
  }
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => void;

/**
 * Node's compatibility layer (request/response objects) for the non-gRPC
 * streams only: adding a 'request' listener makes Node turn every stream
 * into one, so its stream listener is taken back and called per stream.
 */
function httpFallback(h2: http2.Http2SecureServer, handler: http.RequestListener): StreamListener | undefined {
  const before = new Set(h2.listeners('stream'));
  // HTTP/2 requests arrive as Http2ServerRequest/Response, which offer the IncomingMessage/ServerResponse API the handlers use
  h2.on('request', handler as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const compat = h2.listeners('stream').find((l) => !before.has(l)) as StreamListener | undefined;
  if (compat) h2.off('stream', compat);
  return compat;
}

const infos = new WeakMap<object, SessionInfo>();
/** The SessionInfo of a connection (an http2 session or a lean connection), made on its first call. */
function sessionInfo(conn: object, socket: unknown): SessionInfo {
  let i = infos.get(conn);
  if (!i) {
    i = new SessionInfo(socket);
    infos.set(conn, i);
  }
  return i;
}

/** grpc-go's texts for a path no service answers. */
function unknownMethodText(path: string, services: Set<string>): string {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  if (!m) return `malformed method name: "${path}"`;
  return services.has(m[1]) ? `unknown method ${m[2]} for service ${m[1]}` : `unknown service ${m[1]}`;
}

/** A request that did not decode: grpc-go's INTERNAL status and text (unary and stream differ). */
function decodeFailure(e: unknown, stream: boolean): Status {
  if (e instanceof ProtoDecodeError) return unmarshalStatus(e, stream);
  return { code: INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

export const grpcStatus = { OK, CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE } as const;
