// Turns what a handler threw into the gRPC status a client sees: etcd's own
// code and message for EtcdErrors, grpc-go's answer for a request that does
// not decode, Unknown with the message for anything else (logged, never a
// crash).
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../errors';
import { ProtoDecodeError } from '../proto/wire';

/**
 * grpc-go's status for a request message its codec refused, with the
 * gogoproto text the decoder put in the error. A server sends this for
 * anything a generated `decodeX`/`requestDeserialize` throws. grpc-go words
 * it differently for the two kinds of call: a unary request
 * (server.go: "grpc: error unmarshalling request: %v") and a message read
 * from a stream, which then ends the stream (rpc_util.go recv: "grpc: failed
 * to unmarshal the received message %v", no colon).
 */
export function unmarshalStatus(e: ProtoDecodeError, stream: boolean): { code: status; details: string } {
  const details = stream ? `grpc: failed to unmarshal the received message ${e.message}` : `grpc: error unmarshalling request: ${e.message}`;
  return { code: status.INTERNAL, details };
}

export function toServiceError(e: unknown): Partial<ServiceError> {
  if (e instanceof EtcdError) return { code: e.code, details: e.message, metadata: new Metadata() };
  // a unary request that did not decode (a stream's server maps its own with unmarshalStatus(e, true))
  if (e instanceof ProtoDecodeError) return { ...unmarshalStatus(e, false), metadata: new Metadata() };
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 2, details: msg, metadata: new Metadata() };
}
