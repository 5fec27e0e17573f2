// A learner joins a running three-member cluster, receives the log, and
// answers only what etcd lets a learner answer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctlUntil, etcdctl, freePort, hasEtcd, startCluster, startEtcdesk, type ClusterProcs, type ServerProc } from '../testing/processes';

describe('learner member', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let c: ClusterProcs;
  let learner: ServerProc | undefined;
  before(async () => {
    c = await startCluster('etcdesk', 3, ['--log-level', 'warn']);
  });
  after(async () => {
    await learner?.stop();
    await c?.stop();
  });

  it('joins with --initial-cluster-state existing, replicates, and refuses what etcd refuses on a learner', { timeout: 60_000 }, async () => {
    assert.equal((await etcdctl(c.endpoints, ['put', 'before-join', 'yes'])).code, 0);
    const peerPort = await freePort();
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const add = await etcdctlUntil(c.endpoints, ['member', 'add', 'learner1', '--learner', `--peer-urls=${peerUrl}`]);
    assert.equal(add.code, 0, add.stderr);
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(add.stdout)![1];
    learner = await startEtcdesk({
      name: 'learner1',
      peerPort,
      waitReady: false,
      extraArgs: ['--initial-cluster', initial, '--initial-cluster-state', 'existing', '--initial-cluster-token', c.token, '--log-level', 'warn'],
    });
    const deadline = Date.now() + 30_000;
    let got = '';
    while (Date.now() < deadline) {
      const r = await etcdctl(learner.endpoint, ['get', 'before-join', '--print-value-only', '--consistency=s'], { timeoutMs: 3000 });
      got = r.stdout.trim();
      if (got === 'yes') break;
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(got, 'yes', `learner did not replicate: ${learner.output().slice(-2000)}`);
    const put = await etcdctl(learner.endpoint, ['put', 'x', 'y']);
    assert.notEqual(put.code, 0);
    assert.match(put.stderr, /etcdserver: rpc not supported for learner/);
    const lin = await etcdctl(learner.endpoint, ['get', 'before-join']);
    assert.match(lin.stderr, /etcdserver: rpc not supported for learner/);
    const st = await etcdctl(learner.endpoint, ['endpoint', 'status', '-w', 'json']);
    assert.equal(st.code, 0, st.stderr);
    assert.equal((JSON.parse(st.stdout) as { Status: { isLearner: boolean } }[])[0].Status.isLearner, true);
  });
});
