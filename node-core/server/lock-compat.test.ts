// etcdctl lock and elect against real etcd 3.4 and etcdesk-node, side by
// side. etcdctl runs clientv3/concurrency itself, so this checks that the
// KV, lease and watch semantics the recipes rely on match etcd's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { background, LeaseIds, lines as outLines, until, type Background } from './compat-helpers.test';

describe('etcdctl compatibility: lock and elect', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const servers = (): ServerProc[] => [etcd, ours];

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  // per side, LEASEn is the n-th lease id that side printed (keys are <name>/<lease id in hex>)
  const ids = [new LeaseIds(), new LeaseIds()];
  const n = (side: number, s: string): string => ids[side].normalize(s);
  const bgBoth = (args: string[]): Background[] => servers().map((s) => background(s.endpoint, args));
  const lines = (b: Background): number => outLines(b.output()).length;
  const show = (bs: Background[]) => (): string => bs.map((b) => b.output()).join('---\n');
  /** The keys under a lock/election name, oldest first (the queue the recipes wait in). */
  const queue = async (s: ServerProc, name: string): Promise<string[]> => {
    const r = await etcdctl(s.endpoint, ['get', `${name}/`, '--prefix', '--keys-only', '--sort-by', 'CREATE']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  /** Waits until both servers have `count` contenders queued under `name`. */
  const queued = async (name: string, count: number): Promise<string[][]> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const qs = await Promise.all(servers().map((s) => queue(s, name)));
      if (qs.every((q) => q.length === count)) return qs;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} contenders for ${name}: ${JSON.stringify(qs)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('lock with a command runs it under the lock', async () => {
    const [a, b] = await Promise.all(servers().map((s) => etcdctl(s.endpoint, ['lock', 'l1', '--', 'sh', '-c', 'echo "held $ETCD_LOCK_KEY"'])));
    assert.equal(n(1, b.stdout), n(0, a.stdout));
    assert.match(b.stdout, /^held l1\/[0-9a-f]+\n$/);
    assert.equal(b.code, a.code);
  });

  it('a second locker waits for the holder to unlock', async () => {
    const holders = bgBoth(['lock', 'l2']);
    await until(() => holders.every((h) => lines(h) >= 1), 10_000, 'the first lock', show(holders));
    const waiters = bgBoth(['lock', 'l2', 'echo', 'second']);
    // the waiter is connected and queued behind the holder (its key exists, created after the
    // holder's): only now does "no output" mean "waiting", not "never got there"
    const qs = await queued('l2', 2);
    for (const [side, q] of qs.entries()) assert.equal(n(side, q[0]), n(side, holders[side].output().trim()), 'the holder is first in line');
    for (const w of waiters) assert.equal(w.output(), '', 'the waiter must not get the lock while it is held');
    const [ha, hb] = await Promise.all(holders.map((h) => h.stop('SIGINT')));
    assert.equal(n(1, hb.stdout), n(0, ha.stdout));
    await until(() => waiters.every((w) => lines(w) >= 1), 10_000, 'the waiter to get the lock', show(waiters));
    const [wa, wb] = await Promise.all(waiters.map((w) => w.stop()));
    assert.equal(wb.stdout, wa.stdout);
    assert.equal(wb.stdout, 'second\n');
  });

  it('elect: campaign, listen, succession when the leader resigns', async () => {
    const first = bgBoth(['elect', 'e1', 'p1']);
    await until(() => first.every((f) => lines(f) >= 2), 10_000, 'the first leader', show(first));
    const observers = bgBoth(['elect', '-l', 'e1']);
    await until(() => observers.every((o) => lines(o) >= 2), 10_000, 'the observers to see the leader', show(observers));
    const second = bgBoth(['elect', 'e1', 'p2']);
    // the second candidate is queued (its key exists): its silence now means it waits
    await queued('e1', 2);
    for (const s of second) assert.equal(s.output(), '', 'a second candidate must not lead while the first does');
    const [fa, fb] = await Promise.all(first.map((f) => f.stop('SIGINT')));
    assert.equal(n(1, fb.stdout), n(0, fa.stdout));
    await until(() => second.every((s) => lines(s) >= 2) && observers.every((o) => lines(o) >= 4), 10_000, 'the succession', show([...second, ...observers]));
    const [sa, sb] = await Promise.all(second.map((s) => s.stop('SIGINT')));
    const [oa, ob] = await Promise.all(observers.map((o) => o.stop()));
    assert.equal(n(1, sb.stdout), n(0, sa.stdout));
    assert.equal(n(1, ob.stdout), n(0, oa.stdout));
    // the observer names the first leader's key, then the second's: two different leases
    assert.match(n(1, ob.stdout), /^e1\/(LEASE\d+)\np1\ne1\/(?!\1\n)LEASE\d+\np2\n/);
  });
});
