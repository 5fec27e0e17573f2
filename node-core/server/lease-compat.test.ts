// etcdctl lease commands against real etcd 3.4 and etcdesk-node, side by
// side (lease ids mapped to labels per side, in order of appearance: each
// server picks its own ids, but the same lease must be named in the same
// places).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type CtlResult, type ServerProc } from '../testing/processes';
import { background, LeaseIds, lines, until } from './compat-helpers.test';

describe('etcdctl compatibility: lease', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const servers = (): ServerProc[] => [etcd, ours];
  // one mapper per side for the whole suite: LEASEn is the n-th lease that side ever printed
  const ids = [new LeaseIds(), new LeaseIds()];

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  /** The same command on both (in parallel, so TTL countdowns line up); returns [etcd, ours]. */
  async function same(args: string[] | ((s: ServerProc, i: number) => string[])): Promise<[CtlResult, CtlResult]> {
    const argv = servers().map((s, i) => (typeof args === 'function' ? args(s, i) : args));
    const [a, b] = await Promise.all(servers().map((s, i) => etcdctl(s.endpoint, argv[i])));
    // etcd lists a lease's attached keys in Go map order (random from run to run): compare them sorted
    const keys = (s: string): string =>
      s
        .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, k: string) => `attached keys([${k.split(' ').sort().join(' ')}])`)
        .replace(/"keys":\[([^\]]*)\]/g, (_m, k: string) => `"keys":[${k.split(',').sort().join(',')}]`);
    const n = (r: CtlResult, side: number): CtlResult => ({ ...r, stdout: keys(ids[side].normalize(r.stdout)), stderr: ids[side].normalize(r.stderr) });
    assert.deepEqual(n(b, 1), n(a, 0), `etcdctl ${argv[1].join(' ')}`);
    return [a, b];
  }

  const idOf = (r: CtlResult): string => /lease ([0-9a-f]{16}) granted/.exec(r.stdout)![1];

  it('grant, attach keys, timetolive --keys, list, keep-alive --once, revoke', async () => {
    const [g1, g2] = await same(['lease', 'grant', '100']);
    const leaseIds = [idOf(g1), idOf(g2)];
    await same((_s, i) => ['put', 'lk1', 'v', `--lease=${leaseIds[i]}`]);
    await same((_s, i) => ['put', 'lk2', 'v', `--lease=${leaseIds[i]}`]);
    await same((_s, i) => ['lease', 'timetolive', leaseIds[i]]);
    await same((_s, i) => ['lease', 'timetolive', leaseIds[i], '--keys']);
    await same((_s, i) => ['lease', 'timetolive', leaseIds[i], '--keys', '-w', 'json']);
    await same(['lease', 'list']);
    await same((_s, i) => ['lease', 'keep-alive', '--once', leaseIds[i]]);
    await same((_s, i) => ['lease', 'keep-alive', '--once', leaseIds[i], '-w', 'json']);
    await same((_s, i) => ['lease', 'revoke', leaseIds[i]]);
    await same(['get', 'lk', '--prefix', '-w', 'json']);
    await same((_s, i) => ['lease', 'timetolive', leaseIds[i]]);
    await same(['lease', 'list']);
  });

  it('errors: unknown leases, TTL too large, minimum TTL, json grant', async () => {
    await same(['lease', 'revoke', '1234']);
    await same(['lease', 'timetolive', '1234']);
    await same(['lease', 'keep-alive', '--once', '1234']);
    await same(['put', 'x', 'y', '--lease=1234']);
    await same(['lease', 'grant', '9000000001']);
    await same(['lease', 'grant', '1']);
    await same(['lease', 'grant', '0', '-w', 'json']);
    await same(['lease', 'grant', '-5']);
  });

  it('keep-alive stream: several renewals of one lease', { timeout: 30_000 }, async () => {
    // TTL 5: etcdctl renews every TTL/3 s, so three renewals take about 3.5 s
    const [g1, g2] = await same(['lease', 'grant', '5']);
    const leaseIds = [idOf(g1), idOf(g2)];
    const ka = servers().map((s, i) => background(s.endpoint, ['lease', 'keep-alive', leaseIds[i]]));
    await until(() => ka.every((k) => lines(k.output()).length >= 3), 15_000, 'three renewals on each side', () => ka.map((k) => k.output()).join('---\n'));
    const [a, b] = await Promise.all(ka.map((k) => k.stop()));
    const three = (r: CtlResult, side: number): string[] => lines(ids[side].normalize(r.stdout)).slice(0, 3);
    assert.deepEqual(three(b, 1), three(a, 0));
    assert.equal(new Set(three(b, 1)).size, 1, 'every renewal names the same lease, with the full TTL');
    assert.match(three(b, 1)[0], /^lease LEASE\d+ keepalived with TTL\(5\)$/);
    await same((_s, i) => ['lease', 'revoke', leaseIds[i]]);
  });

  it('expiry: a lease of the minimum TTL expires and its keys vanish in one revision', async () => {
    const [g1, g2] = await same(['lease', 'grant', '2']);
    const leaseIds = [idOf(g1), idOf(g2)];
    await same((_s, i) => ['put', 'ek1', 'a', `--lease=${leaseIds[i]}`]);
    await same((_s, i) => ['put', 'ek2', 'b', `--lease=${leaseIds[i]}`]);
    await same((_s, i) => ['put', 'ek3', 'c', `--lease=${leaseIds[i]}`]);
    const watches = servers().map((s) => background(s.endpoint, ['watch', '--prefix', 'ek', '-w', 'json']));
    // the expiry's response: all three deletes in one (a line with three events)
    await until(() => watches.every((w) => lines(w.output()).some((l) => l.includes('"type":1'))), 10_000, 'the expiry deletes', () => watches.map((w) => w.output()).join('---\n'));
    const [wa, wb] = await Promise.all(watches.map((w) => w.stop()));
    assert.equal(ids[1].normalize(wb.stdout), ids[0].normalize(wa.stdout));
    // one response, three deletes at the same revision
    const resp = JSON.parse(wb.stdout.trim().split('\n')[0]) as { Events: { type: number; kv: { mod_revision: number } }[] };
    assert.equal(resp.Events.length, 3);
    assert.equal(new Set(resp.Events.map((e) => e.kv.mod_revision)).size, 1);
    await same(['get', 'ek', '--prefix']);
    await same((_s, i) => ['lease', 'timetolive', leaseIds[i]]);
  });
});
