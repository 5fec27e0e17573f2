import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { Backend } from '../backend/backend';
import { Errors } from '../errors/index';
import { MvccStore } from '../mvcc/store';
import { putReq, rangeReq } from '../mvcc/test-helpers';
import type { Event } from '../proto/gen/mvccpb';
import { Lessor, minLeaseTTL } from './lessor';

interface Env {
  dir: string;
  backend: Backend;
  lessor: Lessor;
  store: MvccStore;
  clock: { now: number };
  reopen(): Promise<void>;
  close(): Promise<void>;
}

async function open(opts: { checkpointIntervalMs?: number } = {}): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lessor-test-'));
  const clock = { now: 1_000_000 };
  const mk = (backend: Backend): { lessor: Lessor; store: MvccStore } => {
    const lessor = Lessor.open(backend, { minTTL: 2, now: () => clock.now, checkpointIntervalMs: opts.checkpointIntervalMs });
    const store = MvccStore.open(backend, { leases: lessor.hooks });
    return { lessor, store };
  };
  const backend = Backend.open(dir, { sync: false });
  const env: Env = {
    dir,
    backend,
    clock,
    ...mk(backend),
    async reopen() {
      await env.backend.commit();
      await env.store.close();
      await env.backend.close();
      env.backend = Backend.open(dir, { sync: false });
      Object.assign(env, mk(env.backend));
    },
    async close() {
      await env.store.close();
      await env.backend.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

let env: Env | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('lessor', () => {
  it("minimum TTL is etcd's ceil(1.5 election timeouts in heartbeat ticks)", () => {
    assert.equal(minLeaseTTL(1000, 100), 2);
    assert.equal(minLeaseTTL(5000, 100), 8);
    assert.equal(minLeaseTTL(1000, 300), 2);
  });

  it('grant: minimum TTL, too large, duplicates, id 0', async () => {
    env = await open();
    const l = env.lessor;
    assert.deepEqual(l.grant(1n, 1), { ID: 1n, TTL: 2 });
    assert.deepEqual(l.grant(2n, 100), { ID: 2n, TTL: 100 });
    assert.throws(() => l.grant(2n, 5), Errors.LeaseExist);
    assert.throws(() => l.grant(3n, 9_000_000_001), Errors.LeaseTTLTooLarge);
    assert.throws(() => l.grant(0n, 5), Errors.LeaseNotFound);
    assert.deepEqual(l.list().sort(), [1n, 2n]);
  });

  it('a member that is not primary never reports a lease expired', async () => {
    env = await open();
    env.lessor.grant(1n, 5);
    env.clock.now += 3_600_000;
    assert.deepEqual(env.lessor.expired(100), []);
    assert.equal(env.lessor.lookup(1n)!.remainingMs, Infinity);
  });

  it('primary: expiry after TTL plus the promotion grace, renew pushes it back, retries after 3 s', async () => {
    env = await open();
    const l = env.lessor;
    l.grant(1n, 10);
    l.promote(1000);
    env.clock.now += 10_500;
    assert.deepEqual(l.expired(100), []);
    assert.equal(await l.renew(1n), 10);
    env.clock.now += 9_999;
    assert.deepEqual(l.expired(100), []);
    env.clock.now += 2;
    assert.deepEqual(l.expired(100), [1n]);
    // handed out once; again only after the retry interval if still not revoked
    assert.deepEqual(l.expired(100), []);
    env.clock.now += 3_000;
    assert.deepEqual(l.expired(100), [1n]);
    await assert.rejects(l.renew(2n), Errors.LeaseNotFound);
    l.demote();
    await assert.rejects(l.renew(1n), Errors.NotLeader);
  });

  it('a renew of an expired lease waits for its revoke and reports it gone', async () => {
    env = await open();
    const l = env.lessor;
    l.grant(1n, 2);
    l.promote(0);
    env.clock.now += 2_001;
    let settled: unknown;
    const p = l.renew(1n).then(
      (v) => (settled = v),
      (e: unknown) => (settled = e),
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, undefined);
    l.revoke(1n, env.store);
    await p;
    assert.equal(settled, Errors.LeaseNotFound);
  });

  it('revoke deletes every attached key at one revision, sorted, and the lease record', async () => {
    env = await open();
    const l = env.lessor;
    l.grant(7n, 60);
    for (const k of ['c', 'a', 'b']) env.store.put(putReq({ key: Buffer.from(k), value: Buffer.from('v'), lease: 7n }));
    env.store.put(putReq({ key: Buffer.from('free'), value: Buffer.from('v') }));
    assert.deepEqual(
      l.lookup(7n)!.keys.map((k) => k.toString()),
      ['a', 'b', 'c'],
    );
    const seen: [Event[], number][] = [];
    env.store.subscribe((evs, rev) => seen.push([evs, rev]));
    const before = env.store.rev;
    l.revoke(7n, env.store);
    assert.equal(env.store.rev, before + 1);
    assert.equal(seen.length, 1);
    assert.deepEqual(
      seen[0][0].map((e) => e.kv!.key.toString()),
      ['a', 'b', 'c'],
    );
    assert.equal(env.store.range(rangeReq({ key: Buffer.from('a'), range_end: Buffer.from('z') })).count, 1);
    assert.equal(l.lookup(7n), undefined);
    assert.throws(() => l.revoke(7n, env!.store), Errors.LeaseNotFound);
    assert.equal(env.backend.get('lease', Buffer.from([0, 0, 0, 0, 0, 0, 0, 7])), undefined);
  });

  it('a lease without keys revokes without a new revision', async () => {
    env = await open();
    env.lessor.grant(3n, 60);
    const before = env.store.rev;
    env.lessor.revoke(3n, env.store);
    assert.equal(env.store.rev, before);
  });

  it('leases and their keys survive a restart; a re-promoted leader restarts the clocks', async () => {
    env = await open();
    env.lessor.grant(5n, 30);
    env.store.put(putReq({ key: Buffer.from('k'), value: Buffer.from('v'), lease: 5n }));
    await env.reopen();
    const v = env.lessor.lookup(5n)!;
    assert.equal(v.ttl, 30);
    assert.deepEqual(
      v.keys.map((k) => k.toString()),
      ['k'],
    );
    env.lessor.promote(1000);
    assert.equal(env.lessor.lookup(5n)!.remainingMs, 31_000);
  });

  it('checkpoints bound what leader changes can add: promote resumes from the checkpointed remainder', async () => {
    env = await open({ checkpointIntervalMs: 60_000 });
    const l = env.lessor;
    l.grant(9n, 600);
    l.promote(0);
    env.clock.now += 60_000;
    const cps = l.dueCheckpoints();
    assert.deepEqual(cps, [{ ID: 9n, remaining_TTL: 540 }]);
    l.checkpoint(9n, 540); // applied from the log
    // leadership moves away and back: the lease resumes from 540 s, not 600 s
    l.demote();
    env.clock.now += 5_000;
    l.promote(1000);
    assert.equal(l.lookup(9n)!.remainingMs, 541_000);
    // the checkpoint is persisted (etcd's checkpoint-persist): a restart keeps it
    await env.reopen();
    env.lessor.promote(0);
    assert.equal(env.lessor.lookup(9n)!.remainingMs, 540_000);
  });

  it('renew clears a checkpointed remainder through the log before refreshing', async () => {
    env = await open();
    const l = env.lessor;
    l.grant(4n, 100);
    l.checkpoint(4n, 10);
    l.promote(0);
    assert.equal(l.lookup(4n)!.remainingMs, 10_000);
    const proposed: unknown[] = [];
    l.checkpointer = async (cps) => {
      proposed.push(cps);
      for (const cp of cps) l.checkpoint(cp.ID!, cp.remaining_TTL ?? 0);
    };
    assert.equal(await l.renew(4n), 100);
    assert.deepEqual(proposed, [[{ ID: 4n, remaining_TTL: 0 }]]);
    assert.equal(l.lookup(4n)!.remainingMs, 100_000);
  });

  it('recover reloads the bucket (a state snapshot installed underneath)', async () => {
    env = await open();
    env.lessor.grant(11n, 30);
    env.lessor.grant(12n, 40);
    // what a snapshot brought: lease 12 gone, 13 new
    env.backend.del('lease', Buffer.from([0, 0, 0, 0, 0, 0, 0, 12]));
    const other = Lessor.open(env.backend, { minTTL: 2 });
    other.grant(13n, 50);
    await env.backend.commit();
    env.lessor.recover();
    assert.deepEqual(env.lessor.list().sort(), [11n, 13n]);
    assert.equal(env.lessor.lookup(13n)!.ttl, 50);
  });
});
