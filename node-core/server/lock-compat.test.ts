// etcdctl lock and elect against real etcd 3.4 and etcdesk-node, side by
// side. etcdctl runs clientv3/concurrency itself, so this checks that the
// KV, lease and watch semantics the recipes rely on match etcd's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';
import { background, normalizeLeases, sleep, until, type Background } from './compat-helpers.test';

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

  const bgBoth = (args: string[]): Background[] => servers().map((s) => background(s.endpoint, args));
  const lines = (b: Background): number => b.output().split('\n').length - 1;

  it('lock with a command runs it under the lock', async () => {
    const [a, b] = await Promise.all(servers().map((s) => etcdctl(s.endpoint, ['lock', 'l1', '--', 'sh', '-c', 'echo "held $ETCD_LOCK_KEY"'])));
    assert.equal(normalizeLeases(b.stdout), normalizeLeases(a.stdout));
    assert.match(b.stdout, /^held l1\/[0-9a-f]+\n$/);
    assert.equal(b.code, a.code);
  });

  it('a second locker waits for the holder to unlock', async () => {
    const holders = bgBoth(['lock', 'l2']);
    await until(() => holders.every((h) => lines(h) >= 1));
    const waiters = bgBoth(['lock', 'l2', 'echo', 'second']);
    await sleep(700);
    for (const w of waiters) assert.equal(w.output(), '', 'the waiter must not get the lock while it is held');
    const [ha, hb] = await Promise.all(holders.map((h) => h.stop('SIGINT')));
    assert.equal(normalizeLeases(hb.stdout), normalizeLeases(ha.stdout));
    await until(() => waiters.every((w) => lines(w) >= 1));
    const [wa, wb] = await Promise.all(waiters.map((w) => w.stop()));
    assert.equal(wb.stdout, wa.stdout);
    assert.equal(wb.stdout, 'second\n');
  });

  it('elect: campaign, listen, succession when the leader resigns', async () => {
    const first = bgBoth(['elect', 'e1', 'p1']);
    await until(() => first.every((f) => lines(f) >= 2));
    const observers = bgBoth(['elect', '-l', 'e1']);
    await until(() => observers.every((o) => lines(o) >= 2));
    const second = bgBoth(['elect', 'e1', 'p2']);
    await sleep(500);
    for (const s of second) assert.equal(s.output(), '');
    const [fa, fb] = await Promise.all(first.map((f) => f.stop('SIGINT')));
    assert.equal(normalizeLeases(fb.stdout), normalizeLeases(fa.stdout));
    await until(() => second.every((s) => lines(s) >= 2) && observers.every((o) => lines(o) >= 4));
    const [sa, sb] = await Promise.all(second.map((s) => s.stop('SIGINT')));
    const [oa, ob] = await Promise.all(observers.map((o) => o.stop()));
    assert.equal(normalizeLeases(sb.stdout), normalizeLeases(sa.stdout));
    assert.equal(normalizeLeases(ob.stdout), normalizeLeases(oa.stdout));
    assert.match(normalizeLeases(ob.stdout), /^e1\/LEASE\np1\ne1\/LEASE\np2\n/);
  });
});
