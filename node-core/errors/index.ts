// etcd's error table (etcd's rpctypes): every error a client can see, with its
// gRPC status code and etcd's exact message. Every layer throws these; the
// server turns them into gRPC statuses unchanged, so clients' error matching
// (which compares messages) works as against etcd.

export const Code = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Code).map(([name, code]) => [code, name]));

/**
 * The text grpc-go gives such an error as a Go error value
 * (`status.Error(...).Error()`): "rpc error: code = PermissionDenied desc = …".
 * etcd puts this text where it reports an rpctypes error in a message field,
 * e.g. a watch's cancel_reason.
 */
export function grpcErrorText(err: { code: number; message: string }): string {
  return `rpc error: code = ${CODE_NAMES[err.code] ?? `Code(${err.code})`} desc = ${err.message}`;
}

export class EtcdError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const e = (code: number, message: string): EtcdError => new EtcdError(code, message);

export const Errors = {
  EmptyKey: e(Code.InvalidArgument, 'etcdserver: key is not provided'),
  KeyNotFound: e(Code.InvalidArgument, 'etcdserver: key not found'),
  ValueProvided: e(Code.InvalidArgument, 'etcdserver: value is provided'),
  LeaseProvided: e(Code.InvalidArgument, 'etcdserver: lease is provided'),
  TooManyOps: e(Code.InvalidArgument, 'etcdserver: too many operations in txn request'),
  DuplicateKey: e(Code.InvalidArgument, 'etcdserver: duplicate key given in txn request'),
  Compacted: e(Code.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  FutureRev: e(Code.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  NoSpace: e(Code.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'),
  LeaseNotFound: e(Code.NotFound, 'etcdserver: requested lease not found'),
  LeaseExist: e(Code.FailedPrecondition, 'etcdserver: lease already exists'),
  LeaseTTLTooLarge: e(Code.OutOfRange, 'etcdserver: too large lease TTL'),
  WatchCanceled: e(Code.Canceled, 'etcdserver: watch canceled'),
  MemberExist: e(Code.FailedPrecondition, 'etcdserver: member ID already exist'),
  PeerURLExist: e(Code.FailedPrecondition, 'etcdserver: Peer URLs already exists'),
  MemberNotEnoughStarted: e(Code.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'),
  MemberBadURLs: e(Code.InvalidArgument, 'etcdserver: given member URLs are invalid'),
  MemberNotFound: e(Code.NotFound, 'etcdserver: member not found'),
  MemberNotLearner: e(Code.FailedPrecondition, 'etcdserver: can only promote a learner member'),
  LearnerNotReady: e(Code.FailedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader'),
  TooManyLearners: e(Code.FailedPrecondition, 'etcdserver: too many learner members in cluster'),
  RequestTooLarge: e(Code.InvalidArgument, 'etcdserver: request is too large'),
  RequestTooManyRequests: e(Code.ResourceExhausted, 'etcdserver: too many requests'),
  RootUserNotExist: e(Code.FailedPrecondition, 'etcdserver: root user does not exist'),
  RootRoleNotExist: e(Code.FailedPrecondition, 'etcdserver: root user does not have root role'),
  UserAlreadyExist: e(Code.FailedPrecondition, 'etcdserver: user name already exists'),
  UserEmpty: e(Code.InvalidArgument, 'etcdserver: user name is empty'),
  UserNotFound: e(Code.FailedPrecondition, 'etcdserver: user name not found'),
  RoleAlreadyExist: e(Code.FailedPrecondition, 'etcdserver: role name already exists'),
  RoleNotFound: e(Code.FailedPrecondition, 'etcdserver: role name not found'),
  RoleEmpty: e(Code.InvalidArgument, 'etcdserver: role name is empty'),
  AuthFailed: e(Code.InvalidArgument, 'etcdserver: authentication failed, invalid user ID or password'),
  PermissionDenied: e(Code.PermissionDenied, 'etcdserver: permission denied'),
  RoleNotGranted: e(Code.FailedPrecondition, 'etcdserver: role is not granted to the user'),
  PermissionNotGranted: e(Code.FailedPrecondition, 'etcdserver: permission is not granted to the role'),
  AuthNotEnabled: e(Code.FailedPrecondition, 'etcdserver: authentication is not enabled'),
  InvalidAuthToken: e(Code.Unauthenticated, 'etcdserver: invalid auth token'),
  InvalidAuthMgmt: e(Code.InvalidArgument, 'etcdserver: invalid auth management'),
  AuthOldRevision: e(Code.InvalidArgument, 'etcdserver: revision of auth store is old'),
  NoLeader: e(Code.Unavailable, 'etcdserver: no leader'),
  NotLeader: e(Code.FailedPrecondition, 'etcdserver: not leader'),
  LeaderChanged: e(Code.Unavailable, 'etcdserver: leader changed'),
  NotCapable: e(Code.Unavailable, 'etcdserver: not capable'),
  Stopped: e(Code.Unavailable, 'etcdserver: server stopped'),
  Timeout: e(Code.Unavailable, 'etcdserver: request timed out'),
  TimeoutDueToLeaderFail: e(Code.Unavailable, 'etcdserver: request timed out, possibly due to previous leader failure'),
  TimeoutDueToConnectionLost: e(Code.Unavailable, 'etcdserver: request timed out, possibly due to connection lost'),
  TimeoutWaitAppliedIndex: e(Code.Unavailable, 'etcdserver: request timed out, waiting for the applied index took too long'),
  Unhealthy: e(Code.Unavailable, 'etcdserver: unhealthy cluster'),
  Corrupt: e(Code.DataLoss, 'etcdserver: corrupt cluster'),
  NotSupportedForLearner: e(Code.Unavailable, 'etcdserver: rpc not supported for learner'),
  BadLeaderTransferee: e(Code.FailedPrecondition, 'etcdserver: bad leader transferee'),
} as const;

export type EtcdErrorName = keyof typeof Errors;

/**
 * The auth store's own errors as etcd's Maintenance server returns them: its
 * admin check (authMaintenanceServer.isAuthenticated) and the Alarm proposal
 * pass auth.Err* through without togRPCError, so grpc-go sends them as code
 * Unknown with the auth package's text ("auth: ...", not "etcdserver: ...").
 */
export const UntranslatedAuthErrors = {
  UserEmpty: e(Code.Unknown, 'auth: user name is empty'),
  UserNotFound: e(Code.Unknown, 'auth: user not found'),
  InvalidAuthToken: e(Code.Unknown, 'auth: invalid auth token'),
  PermissionDenied: e(Code.Unknown, 'auth: permission denied'),
  AuthOldRevision: e(Code.Unknown, 'auth: revision in header is old'),
} as const;

/** The untranslated form of an auth error from the table above (other errors unchanged). */
export function untranslatedAuthError(err: unknown): unknown {
  if (err === Errors.UserEmpty) return UntranslatedAuthErrors.UserEmpty;
  if (err === Errors.UserNotFound) return UntranslatedAuthErrors.UserNotFound;
  if (err === Errors.InvalidAuthToken) return UntranslatedAuthErrors.InvalidAuthToken;
  if (err === Errors.PermissionDenied) return UntranslatedAuthErrors.PermissionDenied;
  if (err === Errors.AuthOldRevision) return UntranslatedAuthErrors.AuthOldRevision;
  return err;
}
