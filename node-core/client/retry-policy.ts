// Which unary calls may be sent again to another endpoint after a failure,
// as clientv3 3.4 decides (retry.go: repeatable vs nonRepeatable). A call that
// only reads is repeatable: after any Unavailable-class failure it goes to the
// next endpoint. A call that changes state is not: once its request may have
// reached a member it is never sent again, since a write that timed out (or
// whose connection broke after sending) may already be committed, and a
// second apply bumps the revision, fires watchers again, turns a guarded
// txn's own write into a conflict, applies a non-idempotent txn twice. Such a
// call moves on only when it demonstrably never left (its endpoint could not
// be connected to: the client checks that before sending, see client.ts).
import * as pb from '../proto/gen/etcdserverpb';

/** Reads by method (clientv3's withRetryPolicy(repeatable) set, minus the writes it also retries, plus Authenticate as its getToken walks every endpoint). */
const REPEATABLE = new Set<string>([
  pb.KVService.Range.path,
  pb.LeaseService.LeaseTimeToLive.path,
  pb.LeaseService.LeaseLeases.path,
  pb.ClusterService.MemberList.path,
  pb.MaintenanceService.Status.path,
  pb.MaintenanceService.Hash.path,
  pb.MaintenanceService.HashKV.path,
  pb.AuthService.Authenticate.path,
  pb.AuthService.UserGet.path,
  pb.AuthService.UserList.path,
  pb.AuthService.RoleGet.path,
  pb.AuthService.RoleList.path,
]);

/** A txn that only reads, in both branches and every nested txn. */
export function isReadOnlyTxn(t: pb.TxnRequestInit): boolean {
  const ops = [...(t.success ?? []), ...(t.failure ?? [])];
  return ops.every((op) => !op.request_put && !op.request_delete_range && (!op.request_txn || isReadOnlyTxn(op.request_txn)));
}

/**
 * Whether a call (by its method path and request) is safe to send again after
 * it may have reached a member. Anything not known to be a read is a write:
 * Put, DeleteRange, a txn with a put or delete, Compact, LeaseGrant/Revoke
 * (a second grant leaks a lease or fails on its ID, a second revoke reports
 * not found), member and auth changes, alarm (de)activation, Defragment,
 * MoveLeader, lock and election calls.
 */
export function isRepeatable(path: string, req: unknown): boolean {
  if (REPEATABLE.has(path)) return true;
  if (path === pb.KVService.Txn.path) return isReadOnlyTxn(req as pb.TxnRequestInit);
  if (path === pb.MaintenanceService.Alarm.path) return ((req as pb.AlarmRequestInit).action ?? pb.AlarmRequest_AlarmAction.GET) === pb.AlarmRequest_AlarmAction.GET;
  return false;
}
