// Turns what a handler threw into the gRPC status a client sees: etcd's own
// code and message for EtcdErrors, Unknown with the message for anything else
// (logged, never a crash).
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../errors';

export function toServiceError(e: unknown): Partial<ServiceError> {
  if (e instanceof EtcdError) return { code: e.code, details: e.message, metadata: new Metadata() };
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 2, details: msg, metadata: new Metadata() };
}
