// The typed apply boundary: every request kind that has a result type has an
// applier (else its proposals would fail NotCapable at apply time), and
// propose() types follow the request's kind (checked by the type checker:
// `npm run typecheck` compiles this file; a wrong mapping fails there).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthUserGetResponseInit, TxnRequestInit, TxnResponseInit } from '../proto/gen/etcdserverpb';
import { alarmAppliers, type AlarmStore } from './alarms';
import { authAppliers } from './apply-auth';
import { kvAppliers } from './apply-kv';
import { leaseAppliers } from './apply-lease';
import { memberAppliers } from './apply-member';
import type { ApplyField, CompactionApplied, ResultOf } from './apply-types';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// what propose() resolves with, per kind
const txnIsTxn: Equal<ResultOf<{ header: object; txn: TxnRequestInit }>, TxnResponseInit> = true;
const compactionIsCompaction: Equal<ResultOf<{ compaction: { revision: number } }>, CompactionApplied> = true;
const leaseGrantHasId: Equal<ResultOf<{ lease_grant: { TTL: number } }>, { ID: bigint; TTL: number }> = true;
const userGetIsUserGet: Equal<ResultOf<{ auth_user_get: { name: string } }>, AuthUserGetResponseInit> = true;
// @ts-expect-error a txn's result is not a compaction's
const txnIsNotCompaction: Equal<ResultOf<{ txn: TxnRequestInit }>, CompactionApplied> = true;

/** Every kind with a result type; the type makes the list complete (a missing or unknown kind does not compile). */
const KINDS: Record<ApplyField, true> = {
  range: true, put: true, delete_range: true, txn: true, compaction: true,
  lease_grant: true, lease_revoke: true, lease_checkpoint: true, alarm: true,
  auth_enable: true, auth_disable: true, authenticate: true, auth_user_add: true, auth_user_delete: true, auth_user_get: true,
  auth_user_change_password: true, auth_user_grant_role: true, auth_user_revoke_role: true, auth_user_list: true, auth_role_list: true,
  auth_role_add: true, auth_role_delete: true, auth_role_get: true, auth_role_grant_permission: true, auth_role_revoke_permission: true,
  member_attr: true,
};

test('every request kind with a result type has exactly one applier', () => {
  assert.ok(txnIsTxn && compactionIsCompaction && leaseGrantHasId && userGetIsUserGet && txnIsNotCompaction);
  const alarms = alarmAppliers(undefined as unknown as AlarmStore);
  const tables = [kvAppliers, leaseAppliers, authAppliers, memberAppliers, alarms];
  for (const kind of Object.keys(KINDS) as ApplyField[]) {
    const owners = tables.filter((t) => typeof t[kind] === 'function');
    assert.equal(owners.length, 1, `request kind ${kind} has ${owners.length} appliers`);
  }
});
