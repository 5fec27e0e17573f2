// etcdctl lease commands against real etcd 3.4 and etcdesk-node, side by
// side (lease ids normalized: each server picks its own).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type CtlResult, type ServerProc } from '../testing/processes';
import { background, normalizeLeases, sleep, until } from './compat-helpers.test';

describe('etcdctl compatibility: lease', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const servers = (): ServerProc[] => [etcd, ours];

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
    const n = (r: CtlResult): CtlResult => ({ ...r, stdout: keys(normalizeLeases(r.stdout)), stderr: normalizeLeases(r.stderr) });
    assert.deepEqual(n(b), n(a), `etcdctl ${argv[1].join(' ')}`);
    return [a, b];
  }

  const idOf = (r: CtlResult): string => /lease ([0-9a-f]{16}) granted/.exec(r.stdout)![1];

  it('grant, attach keys, timetolive --keys, list, keep-alive --once, revoke', async () => {
    const [g1, g2] = await same(['lease', 'grant', '100']);
    const ids = [idOf(g1), idOf(g2)];
    await same((_s, i) => ['put', 'lk1', 'v', `--lease=${ids[i]}`]);
    await same((_s, i) => ['put', 'lk2', 'v', `--lease=${ids[i]}`]);
    await same((_s, i) => ['lease', 'timetolive', ids[i]]);
    await same((_s, i) => ['lease', 'timetolive', ids[i], '--keys']);
    await same((_s, i) => ['lease', 'timetolive', ids[i], '--keys', '-w', 'json']);
    await same(['lease', 'list']);
    await same((_s, i) => ['lease', 'keep-alive', '--once', ids[i]]);
    await same((_s, i) => ['lease', 'keep-alive', '--once', ids[i], '-w', 'json']);
    await same((_s, i) => ['lease', 'revoke', ids[i]]);
    await same(['get', 'lk', '--prefix', '-w', 'json']);
    await same((_s, i) => ['lease', 'timetolive', ids[i]]);
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

  it('keep-alive stream: several renewals of one lease', async () => {
    const [g1, g2] = await same(['lease', 'grant', '5']);
    const ids = [idOf(g1), idOf(g2)];
    const ka = servers().map((s, i) => background(s.endpoint, ['lease', 'keep-alive', ids[i]]));
    await until(() => ka.every((k) => k.output().split('\n').length >= 2), 5000);
    const [a, b] = await Promise.all(ka.map((k) => k.stop()));
    const first = (r: CtlResult): string => normalizeLeases(r.stdout).split('\n')[0];
    assert.equal(first(b), first(a));
    await same((_s, i) => ['lease', 'revoke', ids[i]]);
  });

  it('expiry: a lease of the minimum TTL expires and its keys vanish in one revision', async () => {
    const [g1, g2] = await same(['lease', 'grant', '2']);
    const ids = [idOf(g1), idOf(g2)];
    await same((_s, i) => ['put', 'ek1', 'a', `--lease=${ids[i]}`]);
    await same((_s, i) => ['put', 'ek2', 'b', `--lease=${ids[i]}`]);
    await same((_s, i) => ['put', 'ek3', 'c', `--lease=${ids[i]}`]);
    const watches = servers().map((s) => background(s.endpoint, ['watch', '--prefix', 'ek', '-w', 'json']));
    await until(() => watches.every((w) => w.output().includes('"type":1')), 8000);
    await sleep(300);
    const [wa, wb] = await Promise.all(watches.map((w) => w.stop()));
    assert.equal(normalizeLeases(wb.stdout), normalizeLeases(wa.stdout));
    // one response, three deletes at the same revision
    const resp = JSON.parse(wb.stdout.trim().split('\n')[0]) as { Events: { type: number; kv: { mod_revision: number } }[] };
    assert.equal(resp.Events.length, 3);
    assert.equal(new Set(resp.Events.map((e) => e.kv.mod_revision)).size, 1);
    await same(['get', 'ek', '--prefix']);
    await same((_s, i) => ['lease', 'timetolive', ids[i]]);
  });
});
