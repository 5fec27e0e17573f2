// The node's gRPC server, directly on node:http2. @grpc/grpc-js stays for
// clients; on the server its per-call machinery (interceptor chains, filter
// stacks, per-call objects) cost more than etcd spends on a whole Put (see
// bench/RESULTS.md). This serves the generated service definitions
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
const RESPONSE_HEADERS = Object.freeze({
  ':status': 200,
  'content-type': GRPC_CONTENT_TYPE,
  'grpc-accept-encoding': ACCEPT_ENCODING,
});
const OK_TRAILERS = Object.freeze({ 'grpc-status': '0' });

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

function metadataFrom(headers: http2.IncomingHttpHeaders): Metadata {
  const md = new Metadata();
  for (const k of Object.keys(headers)) {
    if (k.charCodeAt(0) === 0x3a || RESERVED.has(k)) continue;
    const v = headers[k];
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : k.endsWith('-bin') ? v.split(',') : [v];
    for (const one of values) {
      try {
        if (k.endsWith('-bin')) md.add(k, Buffer.from(one.trim(), 'base64'));
        else md.add(k, one);
      } catch {
        // a header grpc-js would refuse as metadata: not something a handler reads
      }
    }
  }
  return md;
}

function trailersFrom(status: Status): http2.OutgoingHttpHeaders {
  const t: http2.OutgoingHttpHeaders = { 'grpc-status': String(status.code), 'grpc-message': encodeGrpcMessage(status.details) };
  if (status.metadata) addMetadata(t, status.metadata);
  return t;
}

function addMetadata(h: http2.OutgoingHttpHeaders, md: Metadata): void {
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

/** Per-connection facts a call may ask for, computed once per session. */
class SessionInfo {
  private authCtx?: { transportSecurityType?: string; sslPeerCertificate?: ReturnType<TLSSocket['getPeerCertificate']> };
  readonly peer: string;
  constructor(private readonly session: http2.Http2Session) {
    const s = session.socket as { remoteAddress?: string; remotePort?: number } | undefined;
    this.peer = s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? 0}` : 'unknown';
  }
  authContext(): { transportSecurityType?: string; sslPeerCertificate?: ReturnType<TLSSocket['getPeerCertificate']> } {
    if (!this.authCtx) {
      const sock = this.session.socket as Partial<TLSSocket> | undefined;
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
 * The state every call shares: the HTTP/2 stream, deadline, whether headers
 * and the status went out, and cancellation. Unary and stream calls wrap it.
 */
class CallCore {
  headersSent = false;
  done = false;
  deadline = Infinity;
  private deadlines: DeadlineTimer | undefined;
  private md: Metadata | undefined;
  onCancel: (() => void) | undefined;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    readonly info: SessionInfo,
  ) {}

  get metadata(): Metadata {
    if (!this.md) this.md = metadataFrom(this.headers);
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
    if (this.headersSent || this.done || this.stream.destroyed) return;
    const h: http2.OutgoingHttpHeaders = { ...RESPONSE_HEADERS };
    addMetadata(h, md);
    this.respond(h);
  }

  private respond(h: http2.OutgoingHttpHeaders): void {
    this.headersSent = true;
    this.stream.respond(h, { waitForTrailers: true });
  }

  /** Writes one encoded message; cb runs once HTTP/2 took it (flow control) or at once when the call is over. */
  write(msg: Buffer, cb?: () => void): void {
    if (this.done || this.stream.destroyed) {
      cb?.();
      return;
    }
    if (!this.headersSent) this.respond(RESPONSE_HEADERS);
    this.stream.write(frame(msg), cb);
  }

  /** Ends the call with a status: trailers after headers, else a trailers-only response. */
  sendStatus(status: Status): void {
    if (this.done) return;
    this.finish();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (!this.headersSent) {
      const h: http2.OutgoingHttpHeaders = { ':status': 200, 'content-type': GRPC_CONTENT_TYPE, ...trailersFrom(status) };
      this.headersSent = true;
      stream.respond(h, { endStream: true });
    } else {
      const trailers = status.code === OK && !status.metadata ? OK_TRAILERS : trailersFrom(status);
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end();
    }
  }

  /** The unary success path in one go: headers, the message, OK trailers. */
  sendUnaryOk(msg: Buffer, trailer?: Metadata): void {
    if (this.done) return;
    this.finish();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    if (!this.headersSent) this.respond(RESPONSE_HEADERS);
    const trailers = trailer ? trailersFrom({ code: OK, details: '', metadata: trailer }) : OK_TRAILERS;
    stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    stream.end(frame(msg));
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
  getAuthContext(): ReturnType<SessionInfo['authContext']> {
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
  getAuthContext(): ReturnType<SessionInfo['authContext']> {
    return this.core.info.authContext();
  }
  getMetricsRecorder(): never {
    throw new Error('ORCA metrics are not supported by this server');
  }

  override _read(): void {
    if (this.core.stream.isPaused()) this.core.stream.resume();
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

export interface GrpcShutdownOptions {
  /** How long in-flight unary calls may take to finish after GOAWAY. */
  graceMs?: number;
}

export class GrpcServer {
  private readonly routes = new Map<string, Route>();
  private readonly services = new Set<string>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly h2Servers: (http2.Http2Server | http2.Http2SecureServer)[] = [];
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private shuttingDown = false;
  private readonly deadlines = new DeadlineTimer();

  constructor(private readonly opts: GrpcServerOptions) {}

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
   * An HTTP/2 server that serves this gRPC server's methods. It does not
   * listen: the client listener hands it connections (`emit('connection')`),
   * plain sockets, TLS sockets still to handshake (with `tls`), or a duplex.
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
    h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) =>
      this.onStream(stream, headers, toHttp && (() => toHttp(stream, headers, flags, raw))),
    );
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
    const every = this.opts.keepaliveTimeMs;
    if (every && every > 0 && Number.isFinite(every)) {
      const timeout = this.opts.keepaliveTimeoutMs ?? 20_000;
      const t = setInterval(() => {
        if (session.destroyed || session.closed) return;
        const noAnswer = setTimeout(() => session.destroy(), timeout);
        noAnswer.unref();
        try {
          session.ping((err) => {
            clearTimeout(noAnswer);
            if (err) session.destroy();
          });
        } catch {
          clearTimeout(noAnswer);
        }
      }, every);
      t.unref();
      session.once('close', () => clearInterval(t));
    }
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, toHttp?: () => void): void {
    stream.on('error', () => undefined);
    const ct = headers['content-type'];
    if (typeof ct !== 'string' || !ct.startsWith(GRPC_CONTENT_TYPE)) {
      if (toHttp) return toHttp();
      // grpc-go answers a non-gRPC request on its handler with 415
      stream.respond({ ':status': 415, 'content-type': 'text/plain' }, { endStream: true });
      return;
    }
    const path = String(headers[':path'] ?? '');
    const route = this.routes.get(path);
    const encoding = headers['grpc-encoding'] as string | undefined;
    const info = sessionInfo(stream.session!);
    const unary = route !== undefined && !route.def.requestStream && !route.def.responseStream;
    if (unary) {
      // in flight until its stream closed: a graceful shutdown waits for the answer to be out
      this.inFlight++;
      stream.once('close', () => this.unaryDone());
    }
    const core = new CallCore(stream, headers, info);
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
    if (route.def.requestStream) this.startStreamingRequest(core, route, reader);
    else this.startUnaryRequest(core, route, reader);
  }

  /** Unary and server-streaming: one request message, read whole before the handler runs. */
  private startUnaryRequest(core: CallCore, route: Route, reader: MessageReader): void {
    const stream = core.stream;
    let msgs: Buffer[] = [];
    let call: UnaryCall | StreamCall | undefined;
    const cancel = (): void => {
      if (!call || call.cancelled) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
      if (call instanceof StreamCall) call.destroy();
    };
    core.onCancel = cancel;
    stream.on('data', (chunk: Buffer) => {
      if (core.done) return;
      try {
        const got = reader.push(chunk);
        if (got.length) msgs = msgs.length ? msgs.concat(got) : got;
      } catch (e) {
        core.sendStatus(e as Status);
      }
    });
    stream.once('end', () => {
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
    });
    stream.once('close', () => {
      if (!core.done) {
        core.finish();
        cancel();
      }
    });
  }

  /** Bidi (and client streaming): requests flow as 'data' with backpressure; the handler starts at once. */
  private startStreamingRequest(core: CallCore, route: Route, reader: MessageReader): void {
    const stream = core.stream;
    const call = new StreamCall(core, route);
    const cancel = (): void => {
      if (call.cancelled) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
      call.destroy();
    };
    core.onCancel = cancel;
    stream.on('data', (chunk: Buffer) => {
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
    });
    stream.once('end', () => {
      if (!core.done && !call.destroyed) call.push(null);
    });
    stream.once('close', () => {
      if (!core.done) {
        core.finish();
        cancel();
      }
    });
    if (route.def.responseStream) this.invoke(core, () => route.handler(call));
    else this.invoke(core, () => route.handler(call, (err, value, trailer) => this.answerUnary(core, route, err, value, trailer)));
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
    return this.sessions.size;
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

const infos = new WeakMap<http2.Http2Session, SessionInfo>();
function sessionInfo(s: http2.Http2Session): SessionInfo {
  let i = infos.get(s);
  if (!i) {
    i = new SessionInfo(s);
    infos.set(s, i);
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
