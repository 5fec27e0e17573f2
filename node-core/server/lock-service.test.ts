// The v3lock gRPC service against real etcd 3.4 (same calls, same answers)
// and mutual exclusion under contention with kept-alive leases.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, prefixEnd } from '../client/client';
import { LockService, type LockRequestInit, type LockResponse } from '../proto/gen/v3lockpb';
import { hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { LeaseIds, sleep } from './compat-helpers.test';

const clientOf = (s: ServerProc): EtcdClient => new EtcdClient({ endpoints: [s.clientUrl], timeoutMs: 20_000 });

/**
 * What may differ between two servers: cluster and member ids; lease ids, mapped per side in order
 * of appearance (LEASEn), in fields and in keys (<name>/<lease id in hex>).
 */
function norm(v: unknown, ids: LeaseIds): unknown {
  return JSON.parse(
    JSON.stringify(v, (k, x: unknown) => {
      if (typeof x === 'bigint') return k === 'cluster_id' || k === 'member_id' ? 'ID' : x === 0n ? '0' : ids.label(x);
      if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer') {
        return Buffer.from((x as { data: number[] }).data)
          .toString('latin1')
          .replace(/\/([0-9a-f]+)$/, (_m, h: string) => `/${ids.see(h)}`);
      }
      return x;
    }),
  );
}

async function outcome<T>(p: Promise<T>, ids: LeaseIds): Promise<unknown> {
  try {
    return norm({ ok: await p }, ids);
  } catch (e) {
    const err = e as { code?: number; message?: string };
    return { code: err.code, message: err.message };
  }
}

describe('v3lock service', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  let ce: EtcdClient;
  const ids = [new LeaseIds(), new LeaseIds()];
  let co: EtcdClient;

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
    ce = clientOf(etcd);
    co = clientOf(ours);
  });
  after(async () => {
    ce?.close();
    co?.close();
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  async function same<T>(f: (c: EtcdClient) => Promise<T>): Promise<unknown> {
    const a = await outcome(f(ce), ids[0]);
    const b = await outcome(f(co), ids[1]);
    assert.deepEqual(b, a);
    return b;
  }

  it('Lock and Unlock answer as etcd (headers, keys, errors)', async () => {
    const leases = await Promise.all([ce.leaseGrant(30), co.leaseGrant(30)]);
    // each side's granted lease is its LEASE1: a key or field naming another lease reads differently
    leases.forEach((l, i) => ids[i].label(l.ID));
    const lease = (c: EtcdClient): bigint => (c === ce ? leases[0].ID : leases[1].ID);
    const r = (await same((c) => c.unary(LockService.Lock, { name: Buffer.from('svc'), lease: lease(c) }))) as { ok: { key: string } };
    assert.match(r.ok.key, /^svc\/LEASE\d+$/);
    // the same session locking again gets its own key back (the Mutex's reuse path)
    await same((c) => c.unary(LockService.Lock, { name: Buffer.from('svc'), lease: lease(c) }));
    await same((c) => c.unary(LockService.Lock, { name: Buffer.from('svc'), lease: 123456789n }));
    await same(async (c) => {
      const got = await c.unary<LockRequestInit, LockResponse>(LockService.Lock, { name: Buffer.from('svc'), lease: lease(c) });
      return c.unary(LockService.Unlock, { key: got.key });
    });
    await same((c) => c.unary(LockService.Unlock, { key: Buffer.from('not-held') }));
    await same((c) => c.range({ key: Buffer.from('svc'), range_end: Buffer.from('svd') }));
  });

  it('a revoked holder lease releases the lock to the next waiter', async () => {
    const [l1, l2] = await Promise.all([co.leaseGrant(30), co.leaseGrant(30)]);
    await co.unary(LockService.Lock, { name: Buffer.from('rv'), lease: l1.ID });
    let got = false;
    const waiter = co.unary<LockRequestInit, LockResponse>(LockService.Lock, { name: Buffer.from('rv'), lease: l2.ID }).then((r) => {
      got = true;
      return r;
    });
    // the waiter is queued (its key exists behind the holder's): only now does "not yet" mean waiting
    for (const deadline = Date.now() + 10_000; (await co.range({ key: Buffer.from('rv/'), range_end: prefixEnd('rv/'), count_only: true })).count < 2; await sleep(20)) {
      assert.ok(Date.now() < deadline, 'the waiter never queued');
    }
    assert.equal(got, false);
    await co.leaseRevoke(l1.ID);
    const r = await waiter;
    assert.equal(Buffer.from(r.key).toString(), `rv/${l2.ID.toString(16)}`);
  });

  it('two holders never overlap while their leases are kept alive', async () => {
    const workers = 4;
    const rounds = 6;
    let holders = 0;
    let maxHolders = 0;
    let entered = 0;
    const run = async (w: number): Promise<void> => {
      const c = clientOf(ours);
      const g = await c.leaseGrant(5);
      const ka = c.leaseKeepAlive(g.ID);
      try {
        for (let i = 0; i < rounds; i++) {
          const r = await c.unary<LockRequestInit, LockResponse>(LockService.Lock, { name: Buffer.from('mutex'), lease: g.ID });
          holders++;
          entered++;
          maxHolders = Math.max(maxHolders, holders);
          await sleep(5 + ((w * 7 + i * 13) % 20));
          holders--;
          await c.unary(LockService.Unlock, { key: r.key });
        }
      } finally {
        ka.close();
        await c.leaseRevoke(g.ID).catch(() => undefined);
        c.close();
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, w) => run(w)));
    assert.equal(entered, workers * rounds);
    assert.equal(maxHolders, 1);
  });
});
