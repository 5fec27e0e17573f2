// Auth errors that etcd's rpctypes table lacks: etcd returns them to clients
// (or fails at start) with its auth package's own message. The rest of the
// auth errors are the shared table's Errors.X.
import { Code, EtcdError } from '../errors/index';

export const AuthErrors = {
  /** etcd's ErrNoPasswordUser has no gRPC mapping, so clients see codes.Unknown with this text. */
  NoPasswordUser: new EtcdError(Code.Unknown, 'auth: authentication failed, password was given for no password user'),
  InvalidAuthOpts: new EtcdError(Code.Unknown, 'auth: invalid auth options'),
  InvalidAuthMethod: new EtcdError(Code.Unknown, 'auth: invalid auth signature method'),
  MissingKey: new EtcdError(Code.Unknown, 'auth: missing key data'),
  KeyMismatch: new EtcdError(Code.Unknown, "auth: public and private keys don't match"),
  VerifyOnly: new EtcdError(Code.Unknown, 'auth: token signing attempted with verify-only key'),
} as const;
