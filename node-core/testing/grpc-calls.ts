// Raw gRPC calls for tests: any method of any generated service definition,
// with explicit metadata (a token or none), answered as the response or as
// the gRPC status etcd sent ({code, details}).
import { credentials, Metadata, type Client, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import * as grpc from '@grpc/grpc-js';

export type AnyMethod = MethodDefinition<object, unknown>;

/** One channel to `endpoint` (host:port) for raw calls. */
export function rawClient(endpoint: string): Client {
  return new grpc.Client(endpoint, credentials.createInsecure());
}

/** Metadata carrying `token` (none when undefined). */
export function tokenMetadata(token?: string): Metadata {
  const md = new Metadata();
  if (token !== undefined) md.set('token', token);
  return md;
}

export type Outcome = { ok: unknown } | { code: number; details: string };

const failed = (e: ServiceError): Outcome => ({ code: e.code, details: e.details });

/** A unary call; its response or its status. */
export function unary(c: Client, m: AnyMethod, req: object, md: Metadata, timeoutMs = 15_000): Promise<Outcome> {
  return new Promise((resolve) => {
    c.makeUnaryRequest(m.path, m.requestSerialize as (r: object) => Buffer, m.responseDeserialize, req, md, { deadline: Date.now() + timeoutMs }, (e, r) =>
      resolve(e ? failed(e) : { ok: r }),
    );
  });
}

/**
 * The first message of a stream (server-streaming with `req`, or bidi with `req` written first),
 * or the status the stream ended with.
 */
export function firstOfStream(c: Client, m: AnyMethod, req: object, md: Metadata, timeoutMs = 15_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const opts = { deadline: Date.now() + timeoutMs };
    const ser = m.requestSerialize as (r: object) => Buffer;
    const call = m.requestStream ? c.makeBidiStreamRequest(m.path, ser, m.responseDeserialize, md, opts) : c.makeServerStreamRequest(m.path, ser, m.responseDeserialize, req, md, opts);
    let done = false;
    call.on('data', (r: unknown) => {
      if (done) return;
      done = true;
      resolve({ ok: r });
      call.cancel();
    });
    call.on('error', (e: ServiceError) => {
      if (done) return;
      done = true;
      resolve(failed(e));
    });
    call.on('end', () => {
      if (!done) resolve({ code: -1, details: 'stream ended without a message' });
      done = true;
    });
    if (m.requestStream) (call as grpc.ClientDuplexStream<object, unknown>).write(req);
  });
}
