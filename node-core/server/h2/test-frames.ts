// Test helpers for the lean HTTP/2 server's frame-level tests (connection.test.ts,
// abuse.test.ts): an in-memory socket the test writes client bytes into and reads the
// server's frames from, and a raw frame writer/parser, so every byte on the wire is the test's choice.
import { Duplex } from 'node:stream';
import { encodeHeaders } from './hpack';

/**
 * An in-memory socket: the test pushes the client's bytes in and reads what the server wrote.
 * With `stalled` the peer does not read: the first write is taken and never acknowledged, so
 * everything after it waits in the socket's writable buffer (writableLength grows) until `release()`.
 */
export class MemSocket extends Duplex {
  out = Buffer.alloc(0);
  ended = false;
  private held: (() => void) | undefined;
  private waiters: (() => void)[] = [];
  constructor(private stalled = false) {
    super();
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.out = Buffer.concat([this.out, chunk]);
    for (const w of this.waiters.splice(0)) w();
    if (this.stalled) this.held = () => cb();
    else cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w();
    cb();
  }
  /** The peer starts reading again: everything queued is written out. */
  release(): void {
    this.stalled = false;
    const h = this.held;
    this.held = undefined;
    h?.();
  }
  /** Resolves once `pred` holds for the frames written so far (re-checked on every write). */
  async until(pred: (frames: Frame[]) => boolean): Promise<Frame[]> {
    for (;;) {
      const f = parseFrames(this.out);
      if (pred(f)) return f;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

export interface Frame {
  type: number;
  flags: number;
  sid: number;
  payload: Buffer;
}

/** The complete frames in `b` (a trailing partial frame is left out). */
export function parseFrames(b: Buffer): Frame[] {
  const out: Frame[] = [];
  let pos = 0;
  while (b.length - pos >= 9) {
    const len = b.readUIntBE(pos, 3);
    if (b.length - pos < 9 + len) break;
    out.push({ type: b[pos + 3], flags: b[pos + 4], sid: b.readUInt32BE(pos + 5) & 0x7fffffff, payload: b.subarray(pos + 9, pos + 9 + len) });
    pos += 9 + len;
  }
  return out;
}

export function frame(type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

export const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

/** A gRPC request's header block. */
export const REQUEST = encodeHeaders([':method', 'POST', ':scheme', 'http', ':path', '/svc/M', ':authority', 'x', 'content-type', 'application/grpc']);
