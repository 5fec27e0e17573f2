// etcd's gRPC gateway: the v3 API as HTTP/JSON on the client URLs (POST
// /v3/kv/range, /v3/watch, ...), answered by the very handlers the gRPC
// server registered (one implementation, two encodings). etcd mounts
// grpc-gateway v1.9 with its default marshaler (jsonpb, OrigName) under
// "/v3/" and rewrites "/v3beta/" to "/v3/"; its gateway dials the member's
// own gRPC port, so what a handler sees here is what a gRPC client's call
// would carry: the request message, the `authorization` header as metadata
// (and `Grpc-Metadata-*` headers), deadlines aside.
//
// Requests are read as Go's json.Decoder + jsonpb do (jsonpb.ts,
// go-json.ts), converted to the wire format and decoded by the generated
// decoder (so a handler gets exactly what the gRPC path would give it), and
// responses go back through the wire format to JSON. Unary answers are one
// JSON object; streams are newline-delimited `{"result":{...}}` objects, an
// error ending them as `{"error":{"grpc_code",...}}`; a failed call is
// `{"error","message","code"}` with grpc-gateway's HTTP status for the code.
import { EventEmitter } from 'node:events';
import type http from 'node:http';
import { Duplex } from 'node:stream';
import { Metadata } from '@grpc/grpc-js';
import type { GrpcServer, Handler, StatusLike } from '../grpc-server';
import { GoJsonSyntaxError, decodeNext, goQuote } from './go-json';
import { JsonpbError, messageFromJson, messageToJson, methodTypes, type InitObject } from './jsonpb';

/** HTTP path → gRPC method, as etcd 3.4's generated gateway registers them (rpc.pb.gw.go, v3lock, v3election). */
const ROUTES = new Map<string, string>([
  ['/v3/kv/range', '/etcdserverpb.KV/Range'],
  ['/v3/kv/put', '/etcdserverpb.KV/Put'],
  ['/v3/kv/deleterange', '/etcdserverpb.KV/DeleteRange'],
  ['/v3/kv/txn', '/etcdserverpb.KV/Txn'],
  ['/v3/kv/compaction', '/etcdserverpb.KV/Compact'],
  ['/v3/watch', '/etcdserverpb.Watch/Watch'],
  ['/v3/lease/grant', '/etcdserverpb.Lease/LeaseGrant'],
  ['/v3/lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['/v3/kv/lease/revoke', '/etcdserverpb.Lease/LeaseRevoke'],
  ['/v3/lease/keepalive', '/etcdserverpb.Lease/LeaseKeepAlive'],
  ['/v3/lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['/v3/kv/lease/timetolive', '/etcdserverpb.Lease/LeaseTimeToLive'],
  ['/v3/lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['/v3/kv/lease/leases', '/etcdserverpb.Lease/LeaseLeases'],
  ['/v3/cluster/member/add', '/etcdserverpb.Cluster/MemberAdd'],
  ['/v3/cluster/member/remove', '/etcdserverpb.Cluster/MemberRemove'],
  ['/v3/cluster/member/update', '/etcdserverpb.Cluster/MemberUpdate'],
  ['/v3/cluster/member/list', '/etcdserverpb.Cluster/MemberList'],
  ['/v3/cluster/member/promote', '/etcdserverpb.Cluster/MemberPromote'],
  ['/v3/maintenance/alarm', '/etcdserverpb.Maintenance/Alarm'],
  ['/v3/maintenance/status', '/etcdserverpb.Maintenance/Status'],
  ['/v3/maintenance/defragment', '/etcdserverpb.Maintenance/Defragment'],
  // Hash and HashKV share this pattern; grpc-gateway's mux takes the first registered, Hash
  ['/v3/maintenance/hash', '/etcdserverpb.Maintenance/Hash'],
  ['/v3/maintenance/snapshot', '/etcdserverpb.Maintenance/Snapshot'],
  ['/v3/maintenance/transfer-leadership', '/etcdserverpb.Maintenance/MoveLeader'],
  ['/v3/auth/enable', '/etcdserverpb.Auth/AuthEnable'],
  ['/v3/auth/disable', '/etcdserverpb.Auth/AuthDisable'],
  ['/v3/auth/authenticate', '/etcdserverpb.Auth/Authenticate'],
  ['/v3/auth/user/add', '/etcdserverpb.Auth/UserAdd'],
  ['/v3/auth/user/get', '/etcdserverpb.Auth/UserGet'],
  ['/v3/auth/user/list', '/etcdserverpb.Auth/UserList'],
  ['/v3/auth/user/delete', '/etcdserverpb.Auth/UserDelete'],
  ['/v3/auth/user/changepw', '/etcdserverpb.Auth/UserChangePassword'],
  ['/v3/auth/user/grant', '/etcdserverpb.Auth/UserGrantRole'],
  ['/v3/auth/user/revoke', '/etcdserverpb.Auth/UserRevokeRole'],
  ['/v3/auth/role/add', '/etcdserverpb.Auth/RoleAdd'],
  ['/v3/auth/role/get', '/etcdserverpb.Auth/RoleGet'],
  ['/v3/auth/role/list', '/etcdserverpb.Auth/RoleList'],
  ['/v3/auth/role/delete', '/etcdserverpb.Auth/RoleDelete'],
  ['/v3/auth/role/grant', '/etcdserverpb.Auth/RoleGrantPermission'],
  ['/v3/auth/role/revoke', '/etcdserverpb.Auth/RoleRevokePermission'],
  ['/v3/lock/lock', '/v3lockpb.Lock/Lock'],
  ['/v3/lock/unlock', '/v3lockpb.Lock/Unlock'],
  ['/v3/election/campaign', '/v3electionpb.Election/Campaign'],
  ['/v3/election/proclaim', '/v3electionpb.Election/Proclaim'],
  ['/v3/election/leader', '/v3electionpb.Election/Leader'],
  ['/v3/election/observe', '/v3electionpb.Election/Observe'],
  ['/v3/election/resign', '/v3electionpb.Election/Resign'],
]);

/** grpc-gateway's HTTPStatusFromCode. */
const HTTP_STATUS: Record<number, number> = {
  0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 16: 401, 8: 429, 9: 412, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500,
};
/** Go's http.StatusText for those. */
const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict', 412: 'Precondition Failed',
  429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
const httpStatusOf = (code: number): number => HTTP_STATUS[code] ?? 500;

const INVALID_ARGUMENT = 3;
const UNKNOWN = 2;
const RESOURCE_EXHAUSTED = 8;
const DEADLINE_EXCEEDED = 4;

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
/** grpc-gateway's timeoutDecode: an integer and a unit; undefined when malformed. */
function parseTimeout(v: string): number | undefined {
  const unit = TIMEOUT_UNITS[v[v.length - 1]];
  const digits = v.slice(0, -1);
  if (unit === undefined || !/^[+-]?\d+$/.test(digits)) return undefined;
  const n = BigInt(digits);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) return undefined;
  return Number(n) * unit;
}

function afterDeadline(surface: CallSurface, fire: () => void): NodeJS.Timeout | undefined {
  if (surface.deadline === Infinity) return undefined;
  return setTimeout(fire, Math.max(0, surface.deadline - Date.now()));
}

/** What the member's gRPC response headers add (grpc-gateway forwards them as Grpc-Metadata-*). */
const GRPC_HEADER_METADATA: [string, string] = ['Grpc-Metadata-Content-Type', 'application/grpc'];
/** ... and a trailers-only (failed) call's trailers, forwarded as HTTP trailers. */
const GRPC_TRAILER = 'Grpc-Trailer-Content-Type';

interface Status {
  code: number;
  details: string;
}

function statusOf(e: StatusLike | Error | null | undefined): Status {
  const s = (e ?? {}) as StatusLike;
  const code = typeof s.code === 'number' && Number.isInteger(s.code) ? s.code : UNKNOWN;
  const details = typeof s.details === 'string' && typeof s.code === 'number' ? s.details : typeof s.message === 'string' ? s.message : 'Unknown Error';
  return { code, details };
}

/** grpc-gateway's errorBody, marshalled by jsonpb (empty fields omitted). */
function errorBody(s: Status): string {
  const parts: string[] = [];
  if (s.details) parts.push(`"error":${goQuote(s.details)}`, `"message":${goQuote(s.details)}`);
  if (s.code) parts.push(`"code":${s.code}`);
  return `{${parts.join(',')}}`;
}

/** grpc-gateway's streamChunk for an error ending a stream. */
function streamErrorChunk(s: Status): string {
  const http = httpStatusOf(s.code);
  const parts: string[] = [];
  if (s.code) parts.push(`"grpc_code":${s.code}`);
  parts.push(`"http_code":${http}`);
  if (s.details) parts.push(`"message":${goQuote(s.details)}`);
  parts.push(`"http_status":${goQuote(STATUS_TEXT[http] ?? '')}`);
  return `{"error":{${parts.join(',')}}}`;
}

/** Go's http.Error. */
export function plainError(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(`${text}\n`);
}

/**
 * A failed call. `fromServer`: the status came from the member (a
 * trailers-only gRPC response, whose content-type trailer grpc-gateway
 * forwards as an HTTP trailer); else the gateway refused the request itself.
 */
function sendError(res: http.ServerResponse, s: Status, fromServer: boolean): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = errorBody(s);
  res.setHeader('Content-Type', 'application/json');
  if (fromServer) {
    res.setHeader('Trailer', GRPC_TRAILER);
    res.writeHead(httpStatusOf(s.code));
    res.write(body);
    res.addTrailers({ [GRPC_TRAILER]: 'application/grpc' });
    res.end();
    return;
  }
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.writeHead(httpStatusOf(s.code));
  res.end(body);
}

/** What grpc-gateway's AnnotateContext passes on as gRPC metadata that a handler may read. */
function metadataOf(req: http.IncomingMessage): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : [v];
    for (const one of values) {
      try {
        if (k === 'authorization') md.add('authorization', one);
        else if (k.startsWith('grpc-metadata-')) {
          const key = k.slice('grpc-metadata-'.length);
          if (key.endsWith('-bin')) md.add(key, Buffer.from(one, 'base64'));
          else md.add(key, one);
        }
      } catch {
        // a header grpc-js refuses as metadata is not something a handler reads
      }
    }
  }
  if (req.headers.host) md.set('x-forwarded-host', String(req.headers['x-forwarded-host'] ?? req.headers.host));
  const ip = req.socket?.remoteAddress;
  if (ip) md.set('x-forwarded-for', req.headers['x-forwarded-for'] ? `${String(req.headers['x-forwarded-for'])}, ${ip}` : ip);
  return md;
}

/** The parts of a gRPC call object the services use (grpc-server.ts's UnaryCall/StreamCall surface). */
class CallSurface {
  /** From the Grpc-Timeout header (grpc-gateway turns it into the call's deadline). */
  deadline = Infinity;
  constructor(
    private readonly req: http.IncomingMessage,
    private readonly path: string,
    readonly metadata: Metadata,
  ) {}
  getPeer(): string {
    const s = this.req.socket;
    return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort ?? 0}` : 'unknown';
  }
  getDeadline(): Date | number {
    return this.deadline === Infinity ? Infinity : new Date(this.deadline);
  }
  getPath(): string {
    return this.path;
  }
  getHost(): string {
    return String(this.req.headers.host ?? '');
  }
  /**
   * No transport credentials: etcd's gateway reaches the member over its own
   * connection, so a client certificate presented to the gateway never
   * names a user (etcd refuses such requests when auth is on; see gateway.ts).
   */
  getAuthContext(): Record<string, never> {
    return {};
  }
  sendMetadata(): void {
    // the gateway answers with its own headers
  }
}

class GatewayUnaryCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    private readonly surface: CallSurface,
  ) {
    super();
  }
  get metadata(): Metadata {
    return this.surface.metadata;
  }
  getPeer = (): string => this.surface.getPeer();
  getDeadline = (): Date | number => this.surface.getDeadline();
  getPath = (): string => this.surface.getPath();
  getHost = (): string => this.surface.getHost();
  getAuthContext = (): Record<string, never> => this.surface.getAuthContext();
  sendMetadata = (): void => this.surface.sendMetadata();
}

/**
 * A streaming call answering over HTTP: each response a `{"result":...}`
 * line written as it comes (its write completes when the socket took it),
 * emit('error', status) ends the stream with grpc-gateway's error chunk.
 */
class GatewayStreamCall extends Duplex {
  cancelled = false;
  request: unknown = undefined;
  private status: Status = { code: 0, details: '' };
  private wrote = false;

  constructor(
    private readonly surface: CallSurface,
    private readonly res: http.ServerResponse,
    private readonly toJson: (msg: unknown) => string,
  ) {
    super({ objectMode: true });
    this.on('error', (e: StatusLike) => {
      this.status = statusOf(e);
      this.end();
    });
  }
  get metadata(): Metadata {
    return this.surface.metadata;
  }
  getPeer(): string {
    return this.surface.getPeer();
  }
  getDeadline(): Date | number {
    return this.surface.getDeadline();
  }
  getPath(): string {
    return this.surface.getPath();
  }
  getHost(): string {
    return this.surface.getHost();
  }
  getAuthContext(): Record<string, never> {
    return this.surface.getAuthContext();
  }
  sendMetadata(): void {
    this.surface.sendMetadata();
  }

  private startResponse(status: number, grpcHeaders: boolean): void {
    if (this.res.headersSent) return;
    this.res.setHeader('Content-Type', 'application/json');
    if (grpcHeaders) this.res.setHeader(GRPC_HEADER_METADATA[0], GRPC_HEADER_METADATA[1]);
    this.res.writeHead(status);
  }

  override _read(): void {
    // requests are pushed as the body is parsed
  }

  override _write(msg: unknown, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return cb();
    let line: string;
    try {
      line = `{"result":${this.toJson(msg)}}\n`;
    } catch (e) {
      this.status = { code: 13, details: `grpc: error while marshaling: ${(e as Error).message}` };
      this.end();
      return cb();
    }
    this.startResponse(200, true);
    this.wrote = true;
    res.write(line, () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    if (this.status.code !== 0) {
      // before any message the HTTP status says it; after, only the chunk
      if (!this.wrote) this.startResponse(httpStatusOf(this.status.code), false);
      res.end(streamErrorChunk(this.status));
      return;
    }
    this.startResponse(200, this.wrote);
    res.end();
  }

  /** A handler may end with trailing metadata (grpc-js's end(md)): not a chunk to write. */
  override end(): this {
    return super.end();
  }
}

export interface GatewayOptions {
  /** Bound on a request body read whole (unary and server-streaming calls). */
  maxBodyBytes?: number;
}

export type GatewayHandler = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => void;

/** The gateway's mux: answers a request for `path` (under /v3/), 404 for paths no method has. */
export function createGateway(server: GrpcServer, opts: GatewayOptions = {}): GatewayHandler {
  const maxRequest = server.maxReceiveMessageBytes;
  // base64 and escapes make JSON larger than the message; a body beyond this cannot hold an acceptable one
  const maxBody = opts.maxBodyBytes ?? maxRequest * 6 + 64 * 1024;

  /** JSON → the request message exactly as the gRPC server would decode it from the wire. */
  const toRequest = (grpcPath: string, init: InitObject): unknown => {
    const m = server.method(grpcPath)!;
    const bytes = m.def.requestSerialize(init);
    if (bytes.length > maxRequest) throw { code: RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${bytes.length} vs. ${maxRequest})` } satisfies Status;
    return m.def.requestDeserialize(bytes);
  };
  const toJson = (grpcPath: string, resType: string, msg: unknown): string => {
    const m = server.method(grpcPath)!;
    return messageToJson(resType, m.def.responseDeserialize(m.def.responseSerialize(msg)) as Record<string, unknown>);
  };

  return (req, res, path) => {
    // a client going away mid-request concerns that request only
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const grpcPath = ROUTES.get(path);
    const method = grpcPath ? server.method(grpcPath) : undefined;
    const types = grpcPath ? methodTypes(grpcPath) : undefined;
    if (!grpcPath || !method || !types) return plainError(res, 404, 'Not Found');
    if (req.method !== 'POST') return plainError(res, 405, 'Method Not Allowed');
    const surface = new CallSurface(req, grpcPath, metadataOf(req));
    const timeout = req.headers['grpc-timeout'];
    if (typeof timeout === 'string' && timeout !== '') {
      const ms = parseTimeout(timeout);
      if (ms === undefined) {
        return sendError(res, { code: INVALID_ARGUMENT, details: `invalid grpc-timeout: ${timeout}` }, false);
      }
      if (ms !== 0) surface.deadline = Date.now() + ms;
    }
    if (method.def.requestStream) serveBidi(req, res, grpcPath, types, method.handler, surface);
    else
      readBody(req, maxBody, (err, body) => {
        if (err) return sendError(res, err, false);
        let init: InitObject = {};
        try {
          const first = decodeNext(body, 0);
          if (first) init = messageFromJson(types[0], first.value);
        } catch (e) {
          if (e instanceof GoJsonSyntaxError || e instanceof JsonpbError) return sendError(res, { code: INVALID_ARGUMENT, details: e.message }, false);
          // a bug here answers this request only, never takes the member down
          return sendError(res, { code: UNKNOWN, details: e instanceof Error ? e.message : String(e) }, false);
        }
        let request: unknown;
        try {
          request = toRequest(grpcPath, init);
        } catch (e) {
          return sendError(res, statusOf(e as StatusLike), true);
        }
        if (method.def.responseStream) serveStream(res, grpcPath, types, method.handler, surface, request);
        else serveUnary(res, grpcPath, types, method.handler, surface, request);
      });
  };

  function serveUnary(res: http.ServerResponse, grpcPath: string, types: [string, string], handler: Handler, surface: CallSurface, request: unknown): void {
    const call = new GatewayUnaryCall(request, surface);
    let answered = false;
    // the deadline passes on the gateway's side: the call is cancelled, the client told so
    const timer = afterDeadline(surface, () => {
      respond({ code: DEADLINE_EXCEEDED, details: 'context deadline exceeded' }, undefined, false);
      call.cancelled = true;
      call.emit('cancelled', 'deadline');
    });
    res.once('close', () => {
      if (answered) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
    });
    const respond = (err: StatusLike | null, value?: unknown, fromServer = true): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (err) return sendError(res, statusOf(err), fromServer);
      let body: string;
      try {
        body = toJson(grpcPath, types[1], value);
      } catch (e) {
        return sendError(res, { code: 13, details: `grpc: error while marshaling: ${(e as Error).message}` }, true);
      }
      if (res.writableEnded || res.destroyed) return;
      res.setHeader('Content-Type', 'application/json');
      res.setHeader(GRPC_HEADER_METADATA[0], GRPC_HEADER_METADATA[1]);
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.writeHead(200);
      res.end(body);
    };
    const answer = (err: StatusLike | null, value?: unknown): void => respond(err, value);
    try {
      handler(call, answer);
    } catch (e) {
      // as the gRPC server: a throwing handler is UNKNOWN, never a crash
      answer({ code: UNKNOWN, details: e instanceof Error ? e.message : String(e) });
    }
  }

  function startStreamCall(res: http.ServerResponse, grpcPath: string, types: [string, string], surface: CallSurface): GatewayStreamCall {
    const call = new GatewayStreamCall(surface, res, (msg) => toJson(grpcPath, types[1], msg));
    res.once('close', () => {
      if (call.writableFinished) return;
      call.cancelled = true;
      call.emit('cancelled', 'cancelled');
      call.destroy();
    });
    const timer = afterDeadline(surface, () => {
      call.emit('error', { code: DEADLINE_EXCEEDED, details: 'context deadline exceeded' });
      call.cancelled = true;
      call.emit('cancelled', 'deadline');
    });
    call.once('finish', () => clearTimeout(timer));
    res.once('close', () => clearTimeout(timer));
    return call;
  }

  function invokeStream(call: GatewayStreamCall, handler: Handler): void {
    try {
      handler(call);
    } catch (e) {
      call.emit('error', { code: UNKNOWN, details: e instanceof Error ? e.message : String(e) });
    }
  }

  function serveStream(res: http.ServerResponse, grpcPath: string, types: [string, string], handler: Handler, surface: CallSurface, request: unknown): void {
    const call = startStreamCall(res, grpcPath, types, surface);
    call.request = request;
    call.push(null);
    invokeStream(call, handler);
  }

  /**
   * Watch and LeaseKeepAlive: every JSON value in the body is one request,
   * sent as soon as it is read; the end of the body (or a value that does
   * not decode, after the first) closes the request side. A first request
   * that does not decode fails the call (grpc-gateway answers it as UNKNOWN).
   */
  function serveBidi(req: http.IncomingMessage, res: http.ServerResponse, grpcPath: string, types: [string, string], handler: Handler, surface: CallSurface): void {
    let buf = Buffer.alloc(0);
    let pos = 0;
    let call: GatewayStreamCall | undefined;
    let closed = false;
    let ended = false;
    const closeSend = (): void => {
      if (closed) return;
      closed = true;
      if (call && !call.destroyed) call.push(null);
    };
    const start = (first: unknown | undefined): void => {
      call = startStreamCall(res, grpcPath, types, surface);
      if (first !== undefined) call.push(first);
      invokeStream(call, handler);
      if (closed) call.push(null);
    };
    const fail = (e: unknown): void => {
      if (call) return closeSend();
      closed = true;
      const s = e instanceof GoJsonSyntaxError || e instanceof JsonpbError ? { code: UNKNOWN, details: e.message } : statusOf(e as StatusLike);
      sendError(res, s, false);
    };
    const pump = (): void => {
      while (!closed) {
        let next: ReturnType<typeof decodeNext>;
        try {
          next = decodeNext(buf, pos);
        } catch (e) {
          // a value cut short by the chunk boundary: wait for more of the body
          if (e instanceof GoJsonSyntaxError && e.eof && !ended) return;
          return fail(e);
        }
        if (!next) {
          if (!ended) return;
          if (!call) start(undefined);
          return closeSend();
        }
        // a number at the very end of what arrived may go on in the next chunk
        if (!ended && next.end === buf.length && next.value.k === 'number') return;
        let request: unknown;
        try {
          request = toRequest(grpcPath, messageFromJson(types[0], next.value));
        } catch (e) {
          return fail(e);
        }
        pos = next.end;
        if (!call) start(request);
        else if (!call.destroyed) call.push(request);
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (closed) return;
      buf = pos > 0 ? Buffer.concat([buf.subarray(pos), chunk]) : Buffer.concat([buf, chunk]);
      pos = 0;
      if (buf.length > maxBody) return fail({ code: RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${buf.length} vs. ${maxRequest})` });
      pump();
    });
    req.once('end', () => {
      ended = true;
      pump();
    });
  }
}

/** Reads a whole request body, refusing one beyond `max` bytes. */
function readBody(req: http.IncomingMessage, max: number, done: (err: Status | undefined, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (c: Buffer) => {
    if (over) return;
    size += c.length;
    if (size > max) {
      over = true;
      done({ code: RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${size} vs. ${max})` }, Buffer.alloc(0));
      return;
    }
    chunks.push(c);
  });
  req.once('end', () => {
    if (!over) done(undefined, Buffer.concat(chunks));
  });
}
