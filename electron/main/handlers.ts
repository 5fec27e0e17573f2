// The contract's handlers, composed from one part per domain (handlers/*.ts),
// and dispatch: the one way in for Electron's IPC and the shell's POST alike.
// Plain Node (no Electron import) so the browser shell serves the very same functions.
import { ErrorCode, type Channel, type Envelope } from '../contract/index';
import { validateRequest } from '../contract/schemas';
import { serializeError } from './errors';
import { authHandlers } from './handlers/auth';
import { backupHandlers } from './handlers/backup';
import { chaosHandlers } from './handlers/chaos';
import { clusterHandlers } from './handlers/cluster';
import { connectionHandlers } from './handlers/connection';
import { dataHandlers } from './handlers/data';
import { doctorHandlers } from './handlers/doctor';
import type { HandlerContext, HandlerDeps, Handlers } from './handlers/context';
import { keyHandlers } from './handlers/keys';
import { leaseHandlers } from './handlers/lease';
import { maintenanceHandlers } from './handlers/maintenance';
import { scanHandlers } from './handlers/scan';
import { txnHandlers } from './handlers/txn';

export type { Handler, HandlerContext, HandlerDeps, Handlers } from './handlers/context';
export { checkPermission } from './handlers/auth';
export { SnapshotDigest } from './snapshot-file';

export function createHandlers(deps: HandlerDeps): Handlers {
  // The Handlers type makes this complete: a channel no domain serves fails to compile.
  return {
    ...connectionHandlers(deps),
    ...dataHandlers(deps),
    ...keyHandlers(deps),
    ...txnHandlers(deps),
    ...leaseHandlers(deps),
    ...authHandlers(deps),
    ...clusterHandlers(deps),
    ...maintenanceHandlers(deps),
    ...backupHandlers(deps),
    ...doctorHandlers(deps),
    ...scanHandlers(deps),
    ...chaosHandlers(deps),
  };
}

/**
 * Validates the request against its channel's schema, runs the handler, and
 * wraps the outcome in the contract's envelope. A malformed request is
 * answered with ErrorCode.InvalidRequest and never reaches the handler.
 */
export async function dispatch(handlers: Handlers, channel: Channel, req: unknown, ctx: HandlerContext): Promise<Envelope<unknown>> {
  const valid = validateRequest(channel, req);
  if (!valid.ok) return { ok: false, error: { code: ErrorCode.InvalidRequest, message: `invalid request: ${valid.message}` } };
  try {
    const h = handlers[channel] as (r: unknown, c: HandlerContext) => Promise<unknown>;
    return { ok: true, value: await h(valid.value, ctx) };
  } catch (e) {
    return { ok: false, error: serializeError(e) };
  }
}
