// The server layer's per-member state: one set per member, released when
// the member stops (a stopped member in a long-running process, such as
// the desktop app's local cluster, must leave nothing subscribed to its
// store or connected to its old leader).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterNode } from '../cluster';
import { Errors } from '../errors';
import { LeaseIdGenerator, ServerContext } from './server-context';

/** A member with just what the context touches: a store to subscribe to, restore listeners, a leader. */
function fakeMember(memberId: bigint) {
  const storeListeners = new Set<unknown>();
  const restoredListeners = new Set<() => void>();
  const node = {
    memberId,
    leaderId: 0n,
    members: [],
    config: { electionTimeout: 1000 },
    mvcc: {
      rev: 1,
      subscribe(fn: unknown) {
        storeListeners.add(fn);
        return () => storeListeners.delete(fn);
      },
    },
    onStateRestored(cb: () => void) {
      restoredListeners.add(cb);
      return () => restoredListeners.delete(cb);
    },
  };
  return { node: node as unknown as ClusterNode, storeListeners, restoredListeners };
}

test('each member gets its own watch hub, lease ids and leader client; closing one releases only its own', () => {
  const a = fakeMember(0xa1n);
  const b = fakeMember(0xb2n);
  const ca = new ServerContext(a.node);
  const cb = new ServerContext(b.node);
  assert.notEqual(ca.hub, cb.hub);
  assert.equal(a.storeListeners.size, 1);
  assert.equal(a.restoredListeners.size, 1);
  // lease ids carry their member's low 16 bits (etcd's idutil), so members never collide
  assert.equal(ca.leaseIds.next() >> 48n, 0xa1n);
  assert.equal(cb.leaseIds.next() >> 48n, 0xb2n);

  ca.close();
  assert.equal(a.storeListeners.size, 0, 'the stopped member\'s hub still listens to its store');
  assert.equal(a.restoredListeners.size, 0);
  assert.throws(() => ca.leaderClient.get(), (e: unknown) => e === Errors.Stopped);
  // the other member is untouched
  assert.equal(b.storeListeners.size, 1);
  assert.throws(() => cb.leaderClient.get(), (e: unknown) => e === Errors.NoLeader);
  cb.close();
});

test('lease ids increase and skip zero, seeded by the start time so a restart does not repeat them', () => {
  const g = new LeaseIdGenerator(0x1234n, 1_000);
  const first = g.next();
  const second = g.next();
  assert.ok(second > first);
  const later = new LeaseIdGenerator(0x1234n, 2_000);
  assert.ok(later.next() > second, 'a restart a second later hands out ids above the earlier run\'s');
  assert.notEqual(new LeaseIdGenerator(0n, 0).next(), 0n);
});
