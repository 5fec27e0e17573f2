// The one table that explains errors a user can cause: each maps an error's
// identity to one sentence saying why it happened and what to do about it.
// etcd's errors are identified as etcd's own clients identify them (clientv3's
// rpctypes): by gRPC code plus etcd's exact message, which is the same from
// node-core and from a remote etcd. Transport errors (the connection, gRPC's
// message size limit) come from the gRPC library, so only their code and the
// library's fixed wording identify them; those patterns live here and nowhere else.
import type { SerializedError } from './types';

export interface ErrorHelp {
  /** One sentence: the cause, then the fix. */
  sentence: string;
  /** What the user can do, short enough for a button or a heading. */
  title: string;
}

/** etcd's defaults: --max-request-bytes, and the gRPC message limit above it (etcd adds 512 KiB of framing room). */
export const REQUEST_LIMIT = '1.5 MiB';
export const MESSAGE_LIMIT = '2 MiB';

const G = { InvalidArgument: 3, NotFound: 5, FailedPrecondition: 9, PermissionDenied: 7, ResourceExhausted: 8, OutOfRange: 11, Unavailable: 14, DataLoss: 15, Unauthenticated: 16 } as const;

type Entry = readonly [code: number, message: string, title: string, sentence: string];

// etcd 3.4's rpctypes messages, exactly (node-core/errors holds the same table for the server side).
export const ETCD_ERROR_HELP: readonly Entry[] = [
  [G.InvalidArgument, 'etcdserver: request is too large', 'Value too large', `The request is larger than etcd's ${REQUEST_LIMIT} request limit (${MESSAGE_LIMIT} per gRPC message), so keep large data outside etcd and store a reference to it, or raise the server's --max-request-bytes.`],
  [G.InvalidArgument, 'etcdserver: key is not provided', 'Key is empty', 'etcd keys cannot be empty, so type a key name before saving.'],
  [G.InvalidArgument, 'etcdserver: key not found', 'Key does not exist', 'A lease can only be attached to a key that exists, so create the key first (or create it with the lease from New key).'],
  [G.InvalidArgument, 'etcdserver: too many operations in txn request', 'Too many operations', 'The transaction has more operations than the server allows (--max-txn-ops, 128 by default), so split it into smaller transactions.'],
  [G.InvalidArgument, 'etcdserver: duplicate key given in txn request', 'Key written twice', 'A transaction branch may write each key only once, so remove the duplicate put or delete.'],
  [G.OutOfRange, 'etcdserver: mvcc: required revision has been compacted', 'Revision compacted', 'That revision was removed by compaction, so use a revision at or after the compacted one (the current revision always works).'],
  [G.OutOfRange, 'etcdserver: mvcc: required revision is a future revision', 'Revision not reached yet', 'The revision is higher than the cluster\'s current revision, so use a revision no greater than the one shown in the header.'],
  [G.ResourceExhausted, 'etcdserver: mvcc: database space exceeded', 'Database full', 'The backend reached its quota and raised the NOSPACE alarm, so compact and defragment in Maintenance, then disarm the alarm.'],
  [G.NotFound, 'etcdserver: requested lease not found', 'Lease not found', 'The lease expired or was revoked, so grant a new lease and attach the key to it.'],
  [G.OutOfRange, 'etcdserver: too large lease TTL', 'TTL too large', 'etcd caps lease TTLs at about 9 billion seconds, so choose a smaller TTL.'],
  [G.FailedPrecondition, 'etcdserver: Peer URLs already exists', 'Peer URL in use', 'Another member already uses that peer URL, so give the new member its own URL.'],
  [G.InvalidArgument, 'etcdserver: given member URLs are invalid', 'Invalid peer URL', 'Peer URLs must be full URLs such as http://10.0.0.4:2380, so add the scheme and port.'],
  [G.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members', 'Cluster would lose quorum', 'The change would leave fewer started members than a quorum, so start the stopped members first.'],
  [G.FailedPrecondition, 'etcdserver: can only promote a learner member which is in sync with leader', 'Learner not caught up', 'The learner has not caught up with the leader yet, so wait for it to sync and promote it again.'],
  [G.FailedPrecondition, 'etcdserver: root user does not exist', 'No root user', 'etcd needs a user named root before authentication can be enabled, so create root (Enable auth does it for you).'],
  [G.FailedPrecondition, 'etcdserver: root user does not have root role', 'Root lacks the root role', 'etcd needs user root to hold the root role before authentication can be enabled, so grant role root to root.'],
  [G.FailedPrecondition, 'etcdserver: user name already exists', 'User exists', 'A user with that name already exists, so pick another name or change that user\'s password instead.'],
  [G.InvalidArgument, 'etcdserver: user name is empty', 'User name empty', 'A user needs a name, so type one before adding.'],
  [G.FailedPrecondition, 'etcdserver: user name not found', 'No such user', 'That user does not exist (it may have just been deleted), so refresh the list and pick an existing user.'],
  [G.FailedPrecondition, 'etcdserver: role name already exists', 'Role exists', 'A role with that name already exists, so pick another name or grant permissions to the existing role.'],
  [G.FailedPrecondition, 'etcdserver: role name not found', 'No such role', 'That role does not exist (it may have just been deleted), so refresh the list and pick an existing role.'],
  [G.InvalidArgument, 'etcdserver: role name is empty', 'Role name empty', 'A role needs a name, so type one before adding.'],
  [G.InvalidArgument, 'etcdserver: authentication failed, invalid user ID or password', 'Wrong user or password', 'The server rejected the user name or password, so check both in the connection settings.'],
  [G.PermissionDenied, 'etcdserver: permission denied', 'Permission denied', 'The connected user has no role granting this operation on this key, so grant a role with the permission in Users & Roles or connect as root.'],
  [G.FailedPrecondition, 'etcdserver: role is not granted to the user', 'Role not granted', 'The user does not hold that role, so there is nothing to revoke.'],
  [G.FailedPrecondition, 'etcdserver: permission is not granted to the role', 'Permission not granted', 'The role has no permission on exactly that key or range, so there is nothing to revoke.'],
  [G.FailedPrecondition, 'etcdserver: authentication is not enabled', 'Authentication is off', 'Authentication is not enabled, so there is nothing to disable and no user to sign in as.'],
  [G.Unauthenticated, 'etcdserver: invalid auth token', 'Signed out', 'The server no longer accepts this session\'s token (auth was re-enabled or the token expired), so reconnect.'],
  [G.InvalidArgument, 'etcdserver: invalid auth management', 'Root is protected', 'etcd refuses to delete user root, delete role root or revoke root from root while authentication is on, so disable authentication first.'],
  [G.Unavailable, 'etcdserver: no leader', 'No leader', 'The cluster has no leader (too many members are down or partitioned), so bring a majority of members back and retry.'],
  [G.Unavailable, 'etcdserver: request timed out', 'Timed out', 'The cluster did not commit the request in time (it may have lost quorum), so check the Cluster view and retry.'],
  [G.Unavailable, 'etcdserver: leader changed', 'Leader changed', 'Leadership moved while the request was in flight, so retry it.'],
  [G.DataLoss, 'etcdserver: corrupt cluster', 'Corruption detected', 'A member\'s data failed its integrity check and the CORRUPT alarm is raised, so restore that member from a backup.'],
  [G.FailedPrecondition, 'etcdserver: bad leader transferee', 'Cannot lead', 'Only a healthy voting member can become leader, so choose another member.'],
  [G.Unavailable, 'etcdserver: rpc not supported for learner', 'Learner cannot answer', 'Learners answer only serializable reads, so connect to a voting member.'],
];

const byIdentity = new Map<string, Entry>(ETCD_ERROR_HELP.map((e) => [`${e[0]}|${e[1]}`, e]));

const help = (title: string, sentence: string): ErrorHelp => ({ title, sentence });

/** The explanation for an error, or null when the table has none (then etcd's message stands alone). */
export function explainError(err: SerializedError): ErrorHelp | null {
  const hit = byIdentity.get(`${err.code}|${err.message}`);
  if (hit) return help(hit[2], hit[3]);
  // gRPC's message size limit (grpc-go and grpc-js word it alike).
  if (err.code === G.ResourceExhausted && /message larger than max/i.test(err.message)) return help(ETCD_ERROR_HELP[0][2], ETCD_ERROR_HELP[0][3]);
  // No endpoint answered: grpc-js's "No connection established" / connect errors.
  if (err.code === G.Unavailable || /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|No connection established/i.test(err.message))
    return help('Endpoint unreachable', 'No endpoint answered (the server is down, the address or port is wrong, or a firewall blocks it), so check the endpoints in the connection settings and that etcd listens on them.');
  if (/certificate|SSL|TLS/i.test(err.message) && err.code !== -1) return help('TLS failed', 'The TLS handshake failed (wrong CA, certificate or server name), so check the TLS files of the connection.');
  return null;
}

/** etcd's or the library's message, tidied for display: grpc-js ends some with an empty "Resolution note:". */
export function cleanErrorMessage(message: string): string {
  return message.replace(/\s*Resolution note:\s*$/, '').replace(/^\d+ [A-Z_]+: /, '');
}
