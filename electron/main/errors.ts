// Errors cross IPC as {code, message}: etcd's gRPC code and exact message when
// etcd said it, -1 for the app's own. Recognising one of etcd's errors goes by
// its identity in node-core's table (code and message), never by searching text.
import { Errors, type EtcdErrorName } from '../../node-core/index';
import type { SerializedError } from '../contract/index';

export function serializeError(e: unknown): SerializedError {
  const s = plain(e);
  const name = etcdErrorName(s);
  return name ? { ...s, etcdError: name } : s;
}

function plain(e: unknown): SerializedError {
  if (e && typeof e === 'object' && 'message' in e) {
    const code = (e as { code?: unknown }).code;
    return { code: typeof code === 'number' ? code : -1, message: String((e as { message: unknown }).message) };
  }
  return { code: -1, message: String(e) };
}

const names = Object.keys(Errors) as EtcdErrorName[];

/** The table entry an error is (same code and message, or the message with a detail after it). */
function etcdErrorName(s: SerializedError): EtcdErrorName | undefined {
  return names.find((n) => {
    const ref = Errors[n];
    return s.code === ref.code && (s.message === ref.message || s.message.startsWith(`${ref.message} (`));
  });
}

/**
 * Is `e` etcd's error `name`? Over gRPC an error arrives as a status (code +
 * details), so identity is the table entry's code and message; a few errors
 * carry a detail after the message (the client adds "(compact revision N)").
 */
export function isEtcdError(e: unknown, ...which: EtcdErrorName[]): boolean {
  const name = etcdErrorName(plain(e));
  return !!name && which.includes(name);
}

/** The errors that mean "these credentials do not get in": the app asks the user to sign in. */
export const SIGN_IN_ERRORS: EtcdErrorName[] = ['UserEmpty', 'InvalidAuthToken', 'AuthFailed'];

export const needsSignIn = (e: unknown): boolean => isEtcdError(e, ...SIGN_IN_ERRORS);
