// /livez and /readyz as etcd 3.4.29+/3.5 serve them (etcd 3.4.23 here has
// neither, so the expected text is etcd's health.go format): `ok` while
// healthy, ?verbose lists each check, ?exclude skips one, and a member
// left without a leader is live but not ready (503 naming the failed check).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { httpGet, startCluster, startEtcdesk, type ClusterProcs, type ServerProc } from '../testing/processes';

function post(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

const procs: ServerProc[] = [];
const clusters: ClusterProcs[] = [];
after(async () => {
  await Promise.all([...procs.map((p) => p.stop()), ...clusters.map((c) => c.stop().catch(() => undefined))]);
});

describe('/livez and /readyz', () => {
  it('a healthy member answers ok, lists its checks with ?verbose and skips excluded ones', { timeout: 60_000 }, async () => {
    const s = await startEtcdesk({ extraArgs: ['--log-level', 'warn'] });
    procs.push(s);
    assert.deepEqual(await httpGet(`${s.clientUrl}/livez`, 5000), { status: 200, body: 'ok' });
    assert.deepEqual(await httpGet(`${s.clientUrl}/readyz`, 5000), { status: 200, body: 'ok' });
    assert.deepEqual(await httpGet(`${s.clientUrl}/livez?verbose`, 5000), { status: 200, body: '[+]serializable_read ok\nlivez check passed\n' });
    assert.deepEqual(await httpGet(`${s.clientUrl}/readyz?verbose`, 5000), {
      status: 200,
      body: '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nreadyz check passed\n',
    });
    assert.deepEqual(await httpGet(`${s.clientUrl}/readyz?verbose&exclude=linearizable_read`, 5000), {
      status: 200,
      body: '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read excluded: ok\nreadyz check passed\n',
    });
    assert.equal(await post(`${s.clientUrl}/readyz`), 405);
  });

  it('a member without a leader is live but answers /readyz with 503 naming the failed check', { timeout: 60_000 }, async () => {
    const c = await startCluster('etcdesk', 3, ['--log-level', 'warn', '--heartbeat-interval', '50', '--election-timeout', '500']);
    clusters.push(c);
    const m = c.members[0];
    assert.equal((await httpGet(`${m.clientUrl}/readyz`, 5000)).status, 200);
    await Promise.all([c.members[1].kill(), c.members[2].kill()]);
    // the member answers unready once it notices the leader is gone (an election timeout), at most a few tries
    let r = await httpGet(`${m.clientUrl}/readyz`, 5000);
    while (r.status === 200) r = await httpGet(`${m.clientUrl}/readyz`, 5000);
    assert.equal(r.status, 503);
    assert.match(r.body, /^\[\+\]data_corruption ok\n\[\+\]serializable_read ok\n\[-\]linearizable_read failed: etcdserver: (no leader|request timed out)\nreadyz check failed\n$/);
    assert.deepEqual(await httpGet(`${m.clientUrl}/livez`, 5000), { status: 200, body: 'ok' });
    assert.deepEqual(await httpGet(`${m.clientUrl}/readyz?exclude=linearizable_read`, 5000), { status: 200, body: 'ok' });
  });
});

describe('HTTP keep-alive on the client port', () => {
  it('a connection idle past Node clients\' own 5 s still serves /metrics and /health (no "socket hang up" on reuse)', { timeout: 60_000 }, async () => {
    const s = await startEtcdesk({ extraArgs: ['--log-level', 'warn'] });
    procs.push(s);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (p: string): Promise<{ status: number; reused: boolean }> =>
      new Promise((resolve, reject) => {
        const req = http.get(`${s.clientUrl}${p}`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
        });
        req.on('error', reject);
      });
    try {
      assert.equal((await get('/metrics')).status, 200);
      // etcd (Go) keeps an idle connection until the client closes it; Node's default closed it at 5 s (+1 s grace)
      await new Promise((r) => setTimeout(r, 7_000)); // past Node's 5 s and its 1 s grace
      assert.deepEqual(await get('/health'), { status: 200, reused: true });
    } finally {
      agent.destroy();
    }
  });
});
