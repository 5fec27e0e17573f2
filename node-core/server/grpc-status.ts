// Turns what a handler threw into the gRPC status a client sees: etcd's own
// code and message for EtcdErrors, grpc-go's answer for a request that does
// not decode, Unknown with the message for anything else (logged, never a
// crash).
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../errors';
import { ProtoDecodeError } from '../proto/wire';

/**
 * grpc-go's status for a request message its codec refused (etcd 3.4's grpc
 * server: `status.Errorf(codes.Internal, "grpc: error unmarshalling request:
 * %v", err)`), with the gogoproto text the decoder put in the error. A server
 * sends this for anything a generated `decodeX`/`requestDeserialize` throws
 * (for a stream: ends the stream with it).
 */
export function unmarshalStatus(e: ProtoDecodeError): { code: status; details: string } {
  return { code: status.INTERNAL, details: `grpc: error unmarshalling request: ${e.message}` };
}

export function toServiceError(e: unknown): Partial<ServiceError> {
  if (e instanceof EtcdError) return { code: e.code, details: e.message, metadata: new Metadata() };
  if (e instanceof ProtoDecodeError) return { ...unmarshalStatus(e), metadata: new Metadata() };
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 2, details: msg, metadata: new Metadata() };
}
