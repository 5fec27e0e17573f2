// Errors cross IPC as {code, message}: etcd's gRPC code and exact message when
// etcd said it, -1 for the app's own.
import type { SerializedError } from '../contract/index';

export function serializeError(e: unknown): SerializedError {
  if (e && typeof e === 'object' && 'message' in e) {
    const code = (e as { code?: unknown }).code;
    return { code: typeof code === 'number' ? code : -1, message: String((e as { message: unknown }).message) };
  }
  return { code: -1, message: String(e) };
}
