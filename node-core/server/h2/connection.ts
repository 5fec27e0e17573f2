// One server-side HTTP/2 connection (RFC 9113) over any Duplex (a net.Socket, a TLS
// socket after ALPN h2, a test pair), written for the node's gRPC traffic rather than
// general HTTP: frames are parsed straight from the socket's chunks, each stream is one
// small object with callback fields (no EventEmitter, no stream.Duplex per call), and
// every frame produced in one turn of the event loop goes out in a single write.
//
// Why: node:http2 costs ~76 µs of CPU per unary request before any gRPC work (nghttp2
// plus its JS↔C++ glue and one Duplex per stream), which is etcd's whole per-request
// budget on this machine (bench/RESULTS.md). This is the measured alternative.
//
// Robustness rule: nothing a peer sends may throw out of the 'data' handler. Protocol
// violations end the connection with GOAWAY or the stream with RST_STREAM and the
// RFC's error code; a handler that throws resets only its own stream.
import type { Duplex } from 'node:stream';
import {
  DEFAULT_WINDOW,
  Flag,
  FRAME_HEADER,
  FrameType,
  H2Error,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  PREFACE,
  Setting,
  writeFrameHeader,
} from './frames';
import { EncodedHeaders, encodeHeaders, HpackDecoder, HpackError, type HeaderInput } from './hpack';
import { requestHeadersValid, trailersValid } from './request-headers';

export interface LeanH2Options {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce and enforce (etcd's default: 2^32-1). */
  maxConcurrentStreams?: number;
  /** Per-stream receive window we announce (SETTINGS_INITIAL_WINDOW_SIZE). Default 1 MiB. */
  streamWindow?: number;
  /** Connection receive window (raised from 65,535 with a WINDOW_UPDATE at start). Default 16 MiB. */
  connectionWindow?: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce (RFC 9113 §6.5.2 accounting). A request over it is
   * reset with FRAME_SIZE_ERROR (grpc-go's answer); an encoded block (HEADERS + CONTINUATION) over it ends the
   * connection with ENHANCE_YOUR_CALM. Default 64 KiB: nghttp2's cap on one field, far above what etcd clients send
   * (a JWT token, grpc-go's few fields); grpc-go's 16 MiB would let each connection pin 16 MiB per header block.
   */
  maxHeaderListSize?: number;
  /** Control frames we answer with (PING/SETTINGS ACKs, RST_STREAMs the peer provoked) that may wait unwritten. Default 1000 (nghttp2). */
  maxQueuedControlFrames?: number;
  /** Streams the peer may reset while we still hold them: a burst, refilled at `resetRate` per second. Default 1000 and 33 (nghttp2). */
  resetBurst?: number;
  resetRate?: number;
  /** Zero-length DATA without END_STREAM and empty header fragments without END_HEADERS tolerated. Default 1000 (node:http2). */
  maxEmptyFrames?: number;
  /** A connection that has not sent the preface and its SETTINGS within this is closed. Default 10 s. */
  prefaceTimeoutMs?: number;
  /**
   * Bytes the socket may hold unwritten (the peer not reading) before stream writes return false (their
   * `ondrain` then waits for the socket) and the connection stops reading input. Default 4 MiB.
   */
  maxSocketBacklog?: number;
}

export type StreamHandler = (stream: LeanH2Stream) => void;

type Headers = HeaderInput | EncodedHeaders;

const blockOf = (h: Headers): Buffer => (h instanceof EncodedHeaders ? h.block : encodeHeaders(h));

/** Bytes of output gathered per backing buffer; small frames are copied into it, larger payloads are referenced. */
const OUT_CHUNK = 64 * 1024;
const COPY_LIMIT = 4096;

/**
 * One request stream. Callbacks are plain fields set by the handler in `onStream`:
 * `ondata` for each DATA payload (a view of the socket's buffer: keep it, don't mutate it),
 * `onend` when the peer half-closes, `onclose` once the stream is gone for whatever reason
 * (code NO_ERROR after a normal end, the RST code, or CANCEL when the connection went away).
 */
export class LeanH2Stream {
  ondata: ((chunk: Buffer) => void) | undefined = undefined;
  onend: (() => void) | undefined = undefined;
  onclose: ((code: number) => void) | undefined = undefined;
  /** Called when DATA that `write` had to queue (it returned false) has all gone out. */
  ondrain: (() => void) | undefined = undefined;
  remoteEnded = false;
  /** While paused the stream's receive window is not given back: the peer stops once it is used up. */
  paused = false;
  localEnded = false;
  closed = false;
  headersSent = false;
  /** How much the peer lets us send on this stream. */
  sendWindow: number;
  /** How much the peer may still send before we must have sent a WINDOW_UPDATE. */
  recvWindow: number;
  recvConsumed = 0;
  /** DATA waiting for window (in order); trailers wait behind it in `pendingEnd`. */
  pending: Buffer[] | undefined = undefined;
  pendingEnd: Buffer | null | undefined = undefined;
  private headerRecord: Record<string, string> | undefined = undefined;

  constructor(
    readonly conn: H2Connection,
    readonly id: number,
    /** The request's header fields as a flat [name, value, ...] list, in wire order. */
    readonly rawHeaders: string[],
  ) {
    this.sendWindow = conn.peerInitialWindow;
    this.recvWindow = conn.streamWindow;
  }

  /** Request headers by name (repeated fields joined with ", "), built on first use. */
  get headers(): Record<string, string> {
    if (this.headerRecord) return this.headerRecord;
    const r: Record<string, string> = {};
    const h = this.rawHeaders;
    for (let i = 0; i < h.length; i += 2) r[h[i]] = h[i] in r ? `${r[h[i]]}, ${h[i + 1]}` : h[i + 1];
    this.headerRecord = r;
    return r;
  }

  /** Sends the response headers (`endStream` for a headers-only / gRPC trailers-only response). */
  respond(h: Headers, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.conn.sendHeaders(this.id, blockOf(h), endStream);
    if (endStream) {
      this.localEnded = true;
      this.localDone();
    }
  }

  /**
   * Queues DATA; what the peer's windows do not allow yet waits in order. The buffer is not copied: don't reuse it.
   * Returns false when some of it had to wait for window (then `ondrain` says when it is out), as Writable.write.
   */
  write(buf: Uint8Array): boolean {
    if (this.closed || this.localEnded) return false;
    if (!this.headersSent) this.respond([':status', '200']);
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
    if (this.pending) {
      this.pending.push(b);
      return false;
    }
    const sent = this.conn.sendData(this, b, false);
    if (sent < b.length) {
      this.pending = [b.subarray(sent)];
      this.conn.blocked.add(this);
      return false;
    }
    // windows the peer grants without reading must not let a writer (a watch) fill our memory
    if (this.conn.backlogged()) {
      this.conn.waitSocket(this);
      return false;
    }
    return true;
  }

  /** Stops giving the peer receive window for this stream (its DATA still arrives until the window is used up). */
  pause(): void {
    this.paused = true;
  }

  /** Gives back the window held while paused. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.closed && !this.remoteEnded) this.conn.creditStream(this);
  }

  /** Ends our side: with trailers (a HEADERS frame with END_STREAM) or an empty DATA with END_STREAM. */
  end(trailers?: Headers): void {
    if (this.closed || this.localEnded) return;
    if (!this.headersSent) this.respond([':status', '200']);
    this.localEnded = true;
    const block = trailers ? blockOf(trailers) : null;
    if (this.pending) {
      this.pendingEnd = block;
      return;
    }
    this.finish(block);
  }

  /** Abandons the stream with RST_STREAM(code). */
  reset(code: number = H2Error.CANCEL): void {
    if (this.closed) return;
    this.conn.sendRst(this.id, code);
    this.close(code);
  }

  /** @internal sends END_STREAM once all queued DATA is out. */
  finish(block: Buffer | null): void {
    if (block) this.conn.sendHeaders(this.id, block, true);
    else this.conn.sendEmptyEnd(this.id);
    this.localDone();
  }

  private localDone(): void {
    if (this.remoteEnded) {
      this.close(H2Error.NO_ERROR);
      return;
    }
    // we answered before the peer finished sending: tell it to stop (RFC 9113 §8.1)
    this.conn.sendRst(this.id, H2Error.NO_ERROR);
    this.close(H2Error.NO_ERROR);
  }

  /** @internal */
  close(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    this.conn.forget(this);
    const cb = this.onclose;
    if (cb) {
      try {
        cb(code);
      } catch {
        // a failing close callback must not take the connection down
      }
    }
  }
}

const enum Phase {
  Preface,
  Frames,
  Dead,
}

/** One HTTP/2 connection; created by LeanH2Server.handleSocket. */
export class H2Connection {
  readonly streams = new Map<number, LeanH2Stream>();
  /** Streams with DATA waiting for window, drained in arrival order on WINDOW_UPDATE / SETTINGS. */
  readonly blocked = new Set<LeanH2Stream>();
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = MIN_MAX_FRAME_SIZE;
  /** The peer's SETTINGS_HEADER_TABLE_SIZE: recorded only, our encoder keeps no dynamic table. */
  peerHeaderTableSize = 4096;
  readonly streamWindow: number;
  private readonly connWindow: number;
  private readonly maxStreams: number;
  private readonly maxHeaderList: number;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow: number;
  private connRecvConsumed = 0;
  private readonly decoder = new HpackDecoder();
  private phase = Phase.Preface;
  private firstFrame = true;
  /** Highest client stream id seen; ids at or below it that we don't hold are closed. */
  private lastStreamId = 0;
  /** Set once we sent GOAWAY: streams above this id are refused. */
  private goawayLastId = -1;
  private peerGoaway = false;
  // incoming bytes not yet forming a whole frame, and how many are needed for one
  private inParts: Buffer[] = [];
  private inLen = 0;
  private need: number = PREFACE.length;
  // a header block spread over HEADERS + CONTINUATION frames
  private hdrStream = 0;
  private hdrEndStream = false;
  private hdrParts: Buffer[] = [];
  private hdrLen = 0;
  // output gathered during this turn
  private ob = Buffer.allocUnsafeSlow(OUT_CHUNK);
  private obStart = 0;
  private obPos = 0;
  private outParts: Buffer[] = [];
  private flushQueued = false;
  private readonly pings: { data: Buffer; cb: (err: Error | null) => void }[] = [];
  private pingSeq = 0;
  // abuse limits (CVE-2019-9512/9514/9515/9518, CVE-2023-44487, CVE-2024-27316)
  private readonly maxCtrl: number;
  /** Answering control frames emitted and not yet taken by the socket (their write's callback has not run). */
  private ctrlQueued = 0;
  /** Of those, the ones in the output not yet handed to socket.write. */
  private batchCtrl = 0;
  private readonly resetBurst: number;
  private readonly resetRate: number;
  private resetTokens: number;
  private resetStamp = 0;
  private readonly maxEmpty: number;
  private emptyFrames = 0;
  private prefaceTimer: NodeJS.Timeout | undefined;
  private readonly maxBacklog: number;
  /** Streams whose last write found the socket backlogged: their `ondrain` runs on the socket's 'drain'. */
  private readonly socketWaiters = new Set<LeanH2Stream>();
  private drainHooked = false;
  private inputPaused = false;
  /** Bytes of output gathered this turn, not yet handed to socket.write. */
  private batchBytes = 0;
  /** Frames gathered this turn, not yet handed to socket.write (batchCtrl of them answering control frames). */
  private batchFrames = 0;
  /** This turn's output, only control-frame answers, was held back one turn (flushNow). */
  private ctrlHeld = false;

  constructor(
    readonly socket: Duplex,
    private readonly onStream: StreamHandler,
    opts: LeanH2Options,
    private readonly onGone: (c: H2Connection) => void,
  ) {
    this.maxStreams = opts.maxConcurrentStreams ?? 0xffff_ffff;
    this.streamWindow = opts.streamWindow ?? 1 << 20;
    this.connWindow = opts.connectionWindow ?? 16 << 20;
    this.maxHeaderList = opts.maxHeaderListSize ?? 64 << 10;
    this.maxCtrl = opts.maxQueuedControlFrames ?? 1000;
    this.resetBurst = this.resetTokens = opts.resetBurst ?? 1000;
    this.resetRate = opts.resetRate ?? 33;
    this.maxEmpty = opts.maxEmptyFrames ?? 1000;
    this.maxBacklog = opts.maxSocketBacklog ?? 4 << 20;
    this.connRecvWindow = this.connWindow;
    // our SETTINGS go first (RFC 9113 §3.4): concurrency, per-stream window, header list limit
    const s = Buffer.allocUnsafe(18);
    s.writeUInt16BE(Setting.MAX_CONCURRENT_STREAMS, 0);
    s.writeUInt32BE(this.maxStreams, 2);
    s.writeUInt16BE(Setting.INITIAL_WINDOW_SIZE, 6);
    s.writeUInt32BE(this.streamWindow, 8);
    s.writeUInt16BE(Setting.MAX_HEADER_LIST_SIZE, 12);
    s.writeUInt32BE(this.maxHeaderList, 14);
    this.emitFrame(FrameType.SETTINGS, 0, 0, s);
    if (this.connWindow > DEFAULT_WINDOW) this.emitWindowUpdate(0, this.connWindow - DEFAULT_WINDOW);
    const sock = socket as Duplex & { setNoDelay?: (on: boolean) => void };
    sock.setNoDelay?.(true);
    socket.on('data', this.onData);
    socket.on('error', this.onSocketGone);
    socket.on('close', this.onSocketGone);
    socket.on('end', this.onSocketEnd);
    // a half-open socket that never speaks HTTP/2 must not be kept forever (Go's server closes it too)
    this.prefaceTimer = setTimeout(this.onPrefaceTimeout, opts.prefaceTimeoutMs ?? 10_000);
    this.prefaceTimer.unref();
  }

  private readonly onPrefaceTimeout = (): void => {
    this.prefaceTimer = undefined;
    if (this.firstFrame) this.destroy();
  };

  /** Graceful shutdown: GOAWAY(NO_ERROR), refuse new streams, close the socket once the open ones are done. */
  goaway(): void {
    if (this.phase === Phase.Dead || this.goawayLastId >= 0) return;
    this.goawayLastId = this.lastStreamId;
    this.emitGoaway(this.lastStreamId, H2Error.NO_ERROR);
    this.maybeEnd();
  }

  /** Sends a PING; `cb` runs on its ACK, or with an error if the connection goes away first (keepalive). */
  ping(cb: (err: Error | null) => void): void {
    if (this.phase === Phase.Dead) {
      cb(new Error('connection closed'));
      return;
    }
    const data = Buffer.alloc(8);
    data.writeUInt32BE(++this.pingSeq >>> 0, 4);
    this.pings.push({ data, cb });
    this.emitFrame(FrameType.PING, 0, 0, data);
  }

  /** Ends the connection now, streams closed with CANCEL. */
  destroy(): void {
    this.die(H2Error.CANCEL);
    this.socket.destroy();
  }

  get isClosed(): boolean {
    return this.phase === Phase.Dead;
  }

  // ---- input ---------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === Phase.Dead) return;
    try {
      this.receive(chunk);
    } catch {
      // a bug of ours, never the peer's bytes: still never let it escape into the socket
      this.connError(H2Error.INTERNAL_ERROR);
    }
  };

  private receive(chunk: Buffer): void {
    if (this.inLen) {
      this.inParts.push(chunk);
      this.inLen += chunk.length;
      if (this.inLen < this.need) {
        if (this.phase === Phase.Preface && !this.prefaceSoFar(Buffer.concat(this.inParts, this.inLen))) this.connError(H2Error.PROTOCOL_ERROR);
        return;
      }
      chunk = Buffer.concat(this.inParts, this.inLen);
      this.inParts = [];
      this.inLen = 0;
    }
    let pos = 0;
    if (this.phase === Phase.Preface) {
      if (chunk.length < PREFACE.length) {
        if (!this.prefaceSoFar(chunk)) {
          this.connError(H2Error.PROTOCOL_ERROR);
          return;
        }
        this.inParts.push(chunk);
        this.inLen = chunk.length;
        return;
      }
      if (PREFACE.compare(chunk, 0, PREFACE.length) !== 0) {
        this.connError(H2Error.PROTOCOL_ERROR);
        return;
      }
      pos = PREFACE.length;
      this.phase = Phase.Frames;
    }
    const n = chunk.length;
    for (;;) {
      const avail = n - pos;
      if (avail < FRAME_HEADER) {
        this.need = FRAME_HEADER;
        break;
      }
      const len = (chunk[pos] << 16) | (chunk[pos + 1] << 8) | chunk[pos + 2];
      // we never raise SETTINGS_MAX_FRAME_SIZE above its default
      if (len > MIN_MAX_FRAME_SIZE) {
        this.connError(H2Error.FRAME_SIZE_ERROR);
        return;
      }
      if (avail < FRAME_HEADER + len) {
        this.need = FRAME_HEADER + len;
        break;
      }
      const type = chunk[pos + 3];
      const flags = chunk[pos + 4];
      const sid = ((chunk[pos + 5] & 0x7f) << 24) | (chunk[pos + 6] << 16) | (chunk[pos + 7] << 8) | chunk[pos + 8];
      const start = pos + FRAME_HEADER;
      pos = start + len;
      this.onFrame(type, flags, sid, chunk.subarray(start, pos));
      if (this.phase === Phase.Dead) return;
    }
    if (pos < n) {
      const rest = chunk.subarray(pos);
      this.inParts.push(rest);
      this.inLen = rest.length;
    }
  }

  private prefaceSoFar(b: Buffer): boolean {
    return PREFACE.compare(b, 0, b.length, 0, Math.min(b.length, PREFACE.length)) === 0;
  }

  private onFrame(type: number, flags: number, sid: number, p: Buffer): void {
    // a header block must be finished before any other frame (RFC 9113 §6.10)
    if (this.hdrStream !== 0 && type !== FrameType.CONTINUATION) return this.connError(H2Error.PROTOCOL_ERROR);
    if (this.firstFrame) {
      // the client's preface ends with a SETTINGS frame (RFC 9113 §3.4)
      if (type !== FrameType.SETTINGS || flags & Flag.ACK) return this.connError(H2Error.PROTOCOL_ERROR);
      this.firstFrame = false;
      clearTimeout(this.prefaceTimer);
      this.prefaceTimer = undefined;
    }
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, sid, p);
      case FrameType.HEADERS:
        return this.onHeaders(flags, sid, p);
      case FrameType.PRIORITY:
        if (sid === 0) return this.connError(H2Error.PROTOCOL_ERROR);
        if (p.length !== 5) return this.streamError(sid, H2Error.FRAME_SIZE_ERROR);
        return; // priorities are advisory; gRPC does not use them
      case FrameType.RST_STREAM:
        return this.onRst(sid, p);
      case FrameType.SETTINGS:
        return this.onSettings(flags, sid, p);
      case FrameType.PUSH_PROMISE:
        return this.connError(H2Error.PROTOCOL_ERROR); // clients cannot push
      case FrameType.PING:
        return this.onPing(flags, sid, p);
      case FrameType.GOAWAY:
        if (sid !== 0) return this.connError(H2Error.PROTOCOL_ERROR);
        if (p.length < 8) return this.connError(H2Error.FRAME_SIZE_ERROR);
        this.peerGoaway = true;
        return this.maybeEnd();
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(sid, p);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, sid, p);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  private onHeaders(flags: number, sid: number, p: Buffer): void {
    if (sid === 0) return this.connError(H2Error.PROTOCOL_ERROR);
    let start = 0;
    let end = p.length;
    let pad = 0;
    if (flags & Flag.PADDED) {
      if (end < 1) return this.connError(H2Error.FRAME_SIZE_ERROR);
      pad = p[0];
      start = 1;
    }
    if (flags & Flag.PRIORITY) {
      // priority is ignored; the block must still be decoded whatever it says, or HPACK's table falls out of step
      if (end - start < 5) return this.connError(H2Error.FRAME_SIZE_ERROR);
      start += 5;
    }
    if (pad > end - start) return this.connError(H2Error.PROTOCOL_ERROR);
    end -= pad;
    const frag = p.subarray(start, end);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) return this.onHeaderBlock(sid, endStream, frag);
    if (frag.length === 0 && !this.emptyFrame()) return;
    this.hdrStream = sid;
    this.hdrEndStream = endStream;
    this.hdrParts = [frag];
    this.hdrLen = frag.length;
  }

  private onContinuation(flags: number, sid: number, p: Buffer): void {
    if (this.hdrStream === 0 || sid !== this.hdrStream) return this.connError(H2Error.PROTOCOL_ERROR);
    if (p.length === 0 && !(flags & Flag.END_HEADERS) && !this.emptyFrame()) return;
    if (p.length) this.hdrParts.push(p);
    this.hdrLen += p.length;
    // an endless CONTINUATION run is a memory attack (CVE-2024-27316 class): cap the encoded block too
    if (this.hdrLen > this.maxHeaderList) return this.connError(H2Error.ENHANCE_YOUR_CALM);
    if (!(flags & Flag.END_HEADERS)) return;
    const block = Buffer.concat(this.hdrParts, this.hdrLen);
    this.hdrStream = 0;
    this.hdrParts = [];
    this.hdrLen = 0;
    this.onHeaderBlock(sid, this.hdrEndStream, block);
  }

  private onHeaderBlock(sid: number, endStream: boolean, block: Buffer): void {
    let fields: string[];
    try {
      fields = this.decoder.decode(block, this.maxHeaderList);
    } catch (e) {
      // the decoder's table may be half updated: the connection cannot continue (RFC 9113 §4.3)
      return this.connError(e instanceof HpackError ? H2Error.COMPRESSION_ERROR : H2Error.INTERNAL_ERROR);
    }
    const existing = this.streams.get(sid);
    if (existing) {
      // trailers: must end the stream, and only once
      if (existing.remoteEnded) return this.streamError(sid, H2Error.STREAM_CLOSED);
      if (this.decoder.truncated) return this.streamError(sid, H2Error.FRAME_SIZE_ERROR);
      if (!endStream || !trailersValid(fields)) return this.streamError(sid, H2Error.PROTOCOL_ERROR);
      return this.remoteEnd(existing);
    }
    if ((sid & 1) === 0) return this.connError(H2Error.PROTOCOL_ERROR);
    // a stream we already closed (answered early, reset): its late trailers are ignored (RFC 9113 §5.1), decoded above for HPACK's sake
    if (sid <= this.lastStreamId) return;
    this.lastStreamId = sid;
    // over our MAX_HEADER_LIST_SIZE (the decoder kept only a bounded part): that stream only, as grpc-go
    if (this.decoder.truncated) return this.replyRst(sid, H2Error.FRAME_SIZE_ERROR);
    // after our GOAWAY, or over the concurrency limit: refused, the client may retry it elsewhere
    if (this.goawayLastId >= 0 || this.streams.size >= this.maxStreams) return this.replyRst(sid, H2Error.REFUSED_STREAM);
    // a malformed request (RFC 9113 §8.1.1): that stream only, as nghttp2 does
    if (!requestHeadersValid(fields)) return this.replyRst(sid, H2Error.PROTOCOL_ERROR);
    const s = new LeanH2Stream(this, sid, fields);
    this.streams.set(sid, s);
    if (!this.runHandler(s, this.onStream, s)) return;
    if (endStream) this.remoteEnd(s);
  }

  private remoteEnd(s: LeanH2Stream): void {
    s.remoteEnded = true;
    const cb = s.onend;
    if (cb) this.runHandler(s, cb, undefined);
  }

  /**
   * Runs a stream's handler callback: one that throws resets only its own stream, never the connection.
   * The argument is passed through (no closure per DATA frame on the request path).
   */
  private runHandler<A>(s: LeanH2Stream, cb: (arg: A) => void, arg: A): boolean {
    try {
      cb(arg);
      return true;
    } catch {
      s.reset(H2Error.INTERNAL_ERROR);
      return false;
    }
  }

  private onDataFrame(flags: number, sid: number, p: Buffer): void {
    if (sid === 0) return this.connError(H2Error.PROTOCOL_ERROR);
    const len = p.length; // padding counts against the windows too
    this.connRecvWindow -= len;
    if (this.connRecvWindow < 0) return this.connError(H2Error.FLOW_CONTROL_ERROR);
    // the payload is handed over (or dropped) right away, so it is consumed now
    this.connRecvConsumed += len;
    if (this.connRecvConsumed >= this.connWindow >>> 1) {
      this.emitWindowUpdate(0, this.connRecvConsumed);
      this.connRecvWindow += this.connRecvConsumed;
      this.connRecvConsumed = 0;
    }
    let start = 0;
    let end = len;
    if (flags & Flag.PADDED) {
      if (len < 1) return this.connError(H2Error.FRAME_SIZE_ERROR);
      const pad = p[0];
      start = 1;
      if (pad > end - 1) return this.connError(H2Error.PROTOCOL_ERROR);
      end -= pad;
    }
    // endless empty DATA costs us a frame's work each and the peer nothing (CVE-2019-9518)
    if (end === start && !(flags & Flag.END_STREAM) && !this.emptyFrame()) return;
    const s = this.streams.get(sid);
    if (!s) {
      if (sid > this.lastStreamId) return this.connError(H2Error.PROTOCOL_ERROR); // idle stream
      return; // closed by us (reset or answered early): late frames are ignored (RFC 9113 §5.1)
    }
    if (s.remoteEnded) return this.streamError(sid, H2Error.STREAM_CLOSED);
    s.recvWindow -= len;
    if (s.recvWindow < 0) return this.streamError(sid, H2Error.FLOW_CONTROL_ERROR);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const ondata = s.ondata;
    if (end > start && ondata) {
      if (!this.runHandler(s, ondata, p.subarray(start, end))) return;
      if (s.closed) return;
    }
    if (endStream) return this.remoteEnd(s);
    s.recvConsumed += len;
    if (!s.paused) this.creditStream(s);
  }

  /** @internal WINDOW_UPDATE for what a stream consumed, once that is half its window (fewer, larger updates). */
  creditStream(s: LeanH2Stream): void {
    if (s.recvConsumed < this.streamWindow >>> 1) return;
    this.emitWindowUpdate(s.id, s.recvConsumed);
    s.recvWindow += s.recvConsumed;
    s.recvConsumed = 0;
  }

  private onRst(sid: number, p: Buffer): void {
    if (sid === 0) return this.connError(H2Error.PROTOCOL_ERROR);
    if (p.length !== 4) return this.connError(H2Error.FRAME_SIZE_ERROR);
    const s = this.streams.get(sid);
    if (!s) {
      if (sid > this.lastStreamId) return this.connError(H2Error.PROTOCOL_ERROR);
      return;
    }
    // opening streams and resetting them at once starts work the peer never pays for (CVE-2023-44487)
    if (!this.takeResetToken()) return this.connError(H2Error.ENHANCE_YOUR_CALM);
    s.close(p.readUInt32BE(0));
  }

  private onSettings(flags: number, sid: number, p: Buffer): void {
    if (sid !== 0) return this.connError(H2Error.PROTOCOL_ERROR);
    if (flags & Flag.ACK) {
      if (p.length !== 0) return this.connError(H2Error.FRAME_SIZE_ERROR);
      return;
    }
    if (p.length % 6 !== 0) return this.connError(H2Error.FRAME_SIZE_ERROR);
    let grew = false;
    for (let i = 0; i < p.length; i += 6) {
      const id = p.readUInt16BE(i);
      const v = p.readUInt32BE(i + 2);
      switch (id) {
        case Setting.HEADER_TABLE_SIZE:
          this.peerHeaderTableSize = v;
          break;
        case Setting.ENABLE_PUSH:
          if (v > 1) return this.connError(H2Error.PROTOCOL_ERROR);
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (v > MAX_WINDOW) return this.connError(H2Error.FLOW_CONTROL_ERROR);
          // applies to every open stream's send window, negative results included (RFC 9113 §6.9.2)
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) return this.connError(H2Error.FLOW_CONTROL_ERROR);
          }
          if (delta > 0) grew = true;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (v < MIN_MAX_FRAME_SIZE || v > MAX_MAX_FRAME_SIZE) return this.connError(H2Error.PROTOCOL_ERROR);
          this.peerMaxFrame = v;
          break;
        default:
          break; // MAX_CONCURRENT_STREAMS (limits our pushes: we never push), MAX_HEADER_LIST_SIZE (advisory), unknown ones
      }
    }
    if (!this.replyFrame(FrameType.SETTINGS, Flag.ACK, 0)) return;
    if (grew) this.drainBlocked();
  }

  private onPing(flags: number, sid: number, p: Buffer): void {
    if (sid !== 0) return this.connError(H2Error.PROTOCOL_ERROR);
    if (p.length !== 8) return this.connError(H2Error.FRAME_SIZE_ERROR);
    if (!(flags & Flag.ACK)) {
      this.replyFrame(FrameType.PING, Flag.ACK, 0, p);
      return;
    }
    const i = this.pings.findIndex((x) => x.data.equals(p));
    if (i < 0) return;
    const [w] = this.pings.splice(i, 1);
    w.cb(null);
  }

  private onWindowUpdate(sid: number, p: Buffer): void {
    if (p.length !== 4) return this.connError(H2Error.FRAME_SIZE_ERROR);
    const inc = p.readUInt32BE(0) & MAX_WINDOW;
    if (sid === 0) {
      if (inc === 0) return this.connError(H2Error.PROTOCOL_ERROR);
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) return this.connError(H2Error.FLOW_CONTROL_ERROR);
      return this.drainBlocked();
    }
    const s = this.streams.get(sid);
    if (!s) {
      if (sid > this.lastStreamId) return this.connError(H2Error.PROTOCOL_ERROR);
      return;
    }
    if (inc === 0) return this.streamError(sid, H2Error.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.streamError(sid, H2Error.FLOW_CONTROL_ERROR);
    if (this.blocked.has(s)) this.drainStream(s);
  }

  // ---- errors and ending -------------------------------------------------------------------

  private streamError(sid: number, code: number): void {
    const s = this.streams.get(sid);
    if (s) s.reset(code);
    else this.replyRst(sid, code);
  }

  /** Counts one more empty frame; false (and the connection ended) once there were too many. */
  private emptyFrame(): boolean {
    if (++this.emptyFrames <= this.maxEmpty) return true;
    this.connError(H2Error.ENHANCE_YOUR_CALM);
    return false;
  }

  /** Token bucket for peer resets (nghttp2's stream reset rate limit). */
  private takeResetToken(): boolean {
    const now = performance.now();
    if (this.resetTokens < this.resetBurst) {
      this.resetTokens = Math.min(this.resetBurst, this.resetTokens + ((now - this.resetStamp) * this.resetRate) / 1000);
    }
    this.resetStamp = now;
    if (this.resetTokens < 1) return false;
    this.resetTokens -= 1;
    return true;
  }

  /**
   * A control frame the peer made us send. A peer that keeps provoking them while not reading (ping,
   * settings, reset floods: CVE-2019-9512/9515/9514) would grow our output without bound, so once more
   * than maxQueuedControlFrames are waiting the connection ends (GOAWAY ENHANCE_YOUR_CALM). Returns false then.
   */
  private replyFrame(type: number, flags: number, sid: number, payload?: Uint8Array): boolean {
    if (++this.ctrlQueued > this.maxCtrl) {
      this.connError(H2Error.ENHANCE_YOUR_CALM);
      return false;
    }
    this.batchCtrl++;
    this.emitFrame(type, flags, sid, payload);
    return true;
  }

  private replyRst(sid: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.replyFrame(FrameType.RST_STREAM, 0, sid, p);
  }


  /** Connection error (RFC 9113 §5.4.1): GOAWAY with the code, everything flushed, the socket ended. */
  private connError(code: number): void {
    if (this.phase === Phase.Dead) return;
    this.emitGoaway(this.lastStreamId, code);
    this.flush();
    this.die(H2Error.CANCEL);
    this.socket.end();
    // a peer that never closes its side must not keep the socket forever
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private die(code: number): void {
    if (this.phase === Phase.Dead) return;
    this.phase = Phase.Dead;
    clearTimeout(this.prefaceTimer);
    this.inParts = [];
    this.inLen = 0;
    for (const s of [...this.streams.values()]) s.close(code);
    for (const p of this.pings.splice(0)) p.cb(new Error('connection closed'));
    this.onGone(this);
  }

  private readonly onSocketGone = (): void => {
    this.die(H2Error.CANCEL);
  };

  private readonly onSocketEnd = (): void => {
    // the peer half-closed: nothing more can arrive, so streams still waiting on input are over
    this.flush();
    this.die(H2Error.CANCEL);
    this.socket.end();
  };

  /** After GOAWAY either way, the connection ends with its last stream. */
  private maybeEnd(): void {
    if ((this.goawayLastId >= 0 || this.peerGoaway) && this.streams.size === 0 && this.phase !== Phase.Dead) {
      this.flush();
      this.die(H2Error.NO_ERROR);
      this.socket.end();
    }
  }

  /** @internal a stream closed: drop it (and end the connection if it was draining). */
  forget(s: LeanH2Stream): void {
    this.streams.delete(s.id);
    this.blocked.delete(s);
    this.socketWaiters.delete(s);
    if (this.goawayLastId >= 0 || this.peerGoaway) this.maybeEnd();
  }

  // ---- output ----------------------------------------------------------------------------

  /** @internal sends as much of `b` as the windows allow; returns the bytes sent. */
  sendData(s: LeanH2Stream, b: Buffer, endStream: boolean): number {
    const total = b.length;
    let off = 0;
    while (off < total) {
      const n = Math.min(total - off, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) break;
      const last = off + n === total;
      this.emitData(s.id, endStream && last ? Flag.END_STREAM : 0, b, off, off + n);
      off += n;
      s.sendWindow -= n;
      this.connSendWindow -= n;
    }
    return off;
  }

  private drainBlocked(): void {
    for (const s of this.blocked) {
      if (this.connSendWindow <= 0) return;
      this.drainStream(s);
    }
  }

  private drainStream(s: LeanH2Stream): void {
    const q = s.pending;
    if (!q) {
      this.blocked.delete(s);
      return;
    }
    while (q.length) {
      const b = q[0];
      const sent = this.sendData(s, b, false);
      if (sent < b.length) {
        q[0] = b.subarray(sent);
        return;
      }
      q.shift();
    }
    s.pending = undefined;
    this.blocked.delete(s);
    const end = s.pendingEnd;
    if (end !== undefined) {
      s.pendingEnd = undefined;
      s.finish(end);
      return;
    }
    const cb = s.ondrain;
    if (cb) this.runHandler(s, cb, undefined);
  }

  /** @internal HEADERS (+ CONTINUATION when the block is larger than the peer's frame size). */
  sendHeaders(sid: number, block: Buffer, endStream: boolean): void {
    const es = endStream ? Flag.END_STREAM : 0;
    if (block.length <= this.peerMaxFrame) {
      this.emitFrame(FrameType.HEADERS, Flag.END_HEADERS | es, sid, block);
      return;
    }
    let off = 0;
    let type: number = FrameType.HEADERS;
    while (off < block.length) {
      const n = Math.min(this.peerMaxFrame, block.length - off);
      const last = off + n === block.length;
      this.emitFrame(type, (last ? Flag.END_HEADERS : 0) | (type === FrameType.HEADERS ? es : 0), sid, block.subarray(off, off + n));
      type = FrameType.CONTINUATION;
      off += n;
    }
  }

  /** @internal */
  sendEmptyEnd(sid: number): void {
    this.emitFrame(FrameType.DATA, Flag.END_STREAM, sid);
  }

  /** @internal */
  sendRst(sid: number, code: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(code, 0);
    this.emitFrame(FrameType.RST_STREAM, 0, sid, p);
  }

  private emitGoaway(last: number, code: number): void {
    const p = Buffer.allocUnsafe(8);
    p.writeUInt32BE(last, 0);
    p.writeUInt32BE(code, 4);
    this.emitFrame(FrameType.GOAWAY, 0, 0, p);
  }

  private emitWindowUpdate(sid: number, inc: number): void {
    const p = Buffer.allocUnsafe(4);
    p.writeUInt32BE(inc, 0);
    this.emitFrame(FrameType.WINDOW_UPDATE, 0, sid, p);
  }

  private reserve(n: number): void {
    if (this.obPos + n <= this.ob.length) return;
    this.seal();
    // the old buffer stays referenced by queued writes; start a fresh one rather than reuse it
    this.ob = Buffer.allocUnsafeSlow(Math.max(OUT_CHUNK, n));
    this.obStart = this.obPos = 0;
  }

  private seal(): void {
    if (this.obPos > this.obStart) {
      this.outParts.push(this.ob.subarray(this.obStart, this.obPos));
      this.obStart = this.obPos;
    }
  }

  private emitFrame(type: number, flags: number, sid: number, payload?: Uint8Array): void {
    const len = payload ? payload.length : 0;
    this.batchBytes += FRAME_HEADER + len;
    this.batchFrames++;
    this.reserve(FRAME_HEADER + len);
    writeFrameHeader(this.ob, this.obPos, len, type, flags, sid);
    this.obPos += FRAME_HEADER;
    if (payload) {
      this.ob.set(payload, this.obPos);
      this.obPos += len;
    }
    this.schedule();
  }

  private emitData(sid: number, flags: number, b: Buffer, from: number, to: number): void {
    const len = to - from;
    this.batchBytes += FRAME_HEADER + len;
    this.batchFrames++;
    if (len <= COPY_LIMIT) {
      this.reserve(FRAME_HEADER + len);
      writeFrameHeader(this.ob, this.obPos, len, FrameType.DATA, flags, sid);
      this.obPos += FRAME_HEADER;
      b.copy(this.ob, this.obPos, from, to);
      this.obPos += len;
    } else {
      this.reserve(FRAME_HEADER);
      writeFrameHeader(this.ob, this.obPos, len, FrameType.DATA, flags, sid);
      this.obPos += FRAME_HEADER;
      this.seal();
      this.outParts.push(b.subarray(from, to));
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // one write per turn: everything the handlers answer while this turn's input is processed
    setImmediate(this.flushNow);
  }

  /** @internal the socket holds more than maxSocketBacklog bytes the peer has not read. */
  backlogged(): boolean {
    return this.socket.writableLength + this.batchBytes > this.maxBacklog;
  }

  /** @internal `s` wrote into a backlogged socket: its ondrain runs once the socket has written everything. */
  waitSocket(s: LeanH2Stream): void {
    this.socketWaiters.add(s);
    this.hookDrain();
  }

  private hookDrain(): void {
    if (this.drainHooked) return;
    this.drainHooked = true;
    // a socket holding more than its highWaterMark returned false from its last write: 'drain' will come
    this.socket.once('drain', this.onSocketDrain);
  }

  private readonly onSocketDrain = (): void => {
    this.drainHooked = false;
    if (this.inputPaused) {
      this.inputPaused = false;
      this.socket.resume();
    }
    const waiters = [...this.socketWaiters];
    this.socketWaiters.clear();
    for (const s of waiters) {
      // a stream still waiting for window gets its ondrain from drainStream instead
      if (s.closed || s.pending) continue;
      const cb = s.ondrain;
      if (cb) this.runHandler(s, cb, undefined);
    }
  };

  private readonly flushNow = (): void => {
    // output that only answers the peer's control frames while its requests are open waits one more
    // turn, once, to leave with their responses: grpc-go sends a PING (its BDP probe) with the next
    // request after each response, and its ACK written on its own went out ahead of that request's
    // WAL fsync (one more write and a wakeup of the peer, on the one-client put's critical path)
    if (!this.ctrlHeld && this.batchCtrl > 0 && this.batchFrames === this.batchCtrl && this.streams.size > 0) {
      this.ctrlHeld = true;
      setImmediate(this.flushNow);
      return;
    }
    this.ctrlHeld = false;
    this.flushQueued = false;
    this.flush();
  };

  private flush(): void {
    this.seal();
    const parts = this.outParts;
    if (parts.length === 0) return;
    this.outParts = [];
    this.batchBytes = 0;
    this.batchFrames = 0;
    if (this.socket.destroyed || !this.socket.writable) return;
    const data = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const n = this.batchCtrl;
    if (n === 0) this.socket.write(data);
    else {
      // answering control frames stay counted until the socket has written them out (its backpressure:
      // a peer that does not read keeps them queued in the socket, and the count grows)
      this.batchCtrl = 0;
      this.socket.write(data, () => {
        this.ctrlQueued -= n;
      });
    }
    // a peer that does not read its responses: stop reading its requests (no new work) until it does
    if (!this.inputPaused && this.backlogged()) {
      this.inputPaused = true;
      this.socket.pause();
      this.hookDrain();
    }
  }
}
