// A learner with real processes: added to a three-member etcdesk cluster,
// started on its own data dir, catches up with the log, is promoted to a
// voter (once in sync), takes writes; then a voting member is removed and
// leaves, and the three remaining members keep serving with equal stores.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { EtcdClient } from '../client/client';
import { etcdctl, etcdctlUntil, findLeader, freePort, startCluster, startEtcdesk, waitFor, type ClusterProcs, type ServerProc } from '../testing/processes';

interface MemberJson {
  ID: string;
  name?: string;
  isLearner?: boolean;
}

const listMembers = async (endpoints: string): Promise<MemberJson[]> => {
  const r = await etcdctl(endpoints, ['member', 'list', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as { members: MemberJson[] }).members;
};

const hex = (dec: string): string => BigInt(dec).toString(16);

describe('learner: catch up, promotion, then a voter removed (real processes)', () => {
  let c: ClusterProcs | undefined;
  let learner: ServerProc | undefined;
  after(async () => {
    await learner?.stop().catch(() => undefined);
    await c?.stop().catch(() => undefined);
  });

  it('a started learner catches up, is promoted, and the cluster survives removing a voter', { timeout: 120_000 }, async () => {
    c = await startCluster('etcdesk', 3, ['--log-level', 'warn']);
    const cluster = c;
    const client = new EtcdClient({ endpoints: cluster.members.map((m) => m.clientUrl), timeoutMs: 20_000 });
    try {
      // a log for the learner to catch up with
      for (let i = 0; i < 400; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => client.put({ key: Buffer.from(`pre/${i + j}`), value: Buffer.alloc(512, 0x61) })));
      }
      const peerPort = await freePort();
      const clientPort = await freePort();
      const add = await etcdctlUntil(cluster.endpoints, ['member', 'add', 'm4', '--learner', '--peer-urls', `http://127.0.0.1:${peerPort}`]);
      assert.equal(add.code, 0, add.stderr);
      const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(add.stdout)?.[1];
      assert.ok(initial, add.stdout);
      const id = hex((await listMembers(cluster.endpoints)).find((m) => m.isLearner)!.ID);

      // refused while it has not started (etcd's text)
      const early = await etcdctl(cluster.endpoints, ['member', 'promote', id]);
      assert.notEqual(early.code, 0);
      assert.match(early.stderr, /can only promote a learner member which is in sync with leader/);

      learner = await startEtcdesk({
        name: 'm4',
        clientPort,
        peerPort,
        waitReady: false,
        extraArgs: ['--initial-cluster', initial, '--initial-cluster-state', 'existing', '--initial-cluster-token', cluster.token, '--log-level', 'warn'],
      });
      const l = learner;
      // caught up: the learner serves (serializable) the last write made before it started
      await waitFor(
        'the learner to catch up',
        async () => {
          assert.equal(l.proc.exitCode, null, `the learner exited:\n${l.output().slice(-2000)}`);
          const r = await etcdctl(l.endpoint, ['get', 'pre/399', '--consistency=s', '--print-value-only'], { timeoutMs: 3000 });
          return r.code === 0 && r.stdout.startsWith('aaaa');
        },
        30_000,
        200,
      );
      // a learner refuses linearizable requests, as etcd's
      const refused = await etcdctl(l.endpoint, ['put', 'via-learner', 'x']);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /etcdserver: rpc not supported for learner/);

      // promotion: the leader accepts it once the learner's log is within its sync bound
      let promoted = await etcdctl(cluster.endpoints, ['member', 'promote', id]);
      await waitFor(
        'the promotion to be accepted',
        async () => {
          if (promoted.code === 0) return true;
          assert.match(promoted.stderr, /can only promote a learner member which is in sync with leader|unhealthy cluster/);
          promoted = await etcdctl(cluster.endpoints, ['member', 'promote', id]);
          return promoted.code === 0;
        },
        30_000,
        300,
      );
      assert.match(promoted.stdout, new RegExp(`^Member\\s+${id} promoted in cluster\\s+[0-9a-f]+\\n$`));
      const afterPromote = await listMembers(cluster.endpoints);
      assert.equal(afterPromote.length, 4);
      assert.ok(afterPromote.every((m) => !m.isLearner), JSON.stringify(afterPromote));
      // now a voter: it takes writes itself
      await waitFor('the promoted member to take writes', async () => (await etcdctl(l.endpoint, ['put', 'via-m4', 'yes'], { timeoutMs: 5000 })).code === 0, 20_000, 200);

      // remove a voting member (a follower among the original three): it stops serving
      const leader = await findLeader(cluster, [0, 1, 2]);
      const gone = [0, 1, 2].find((i) => i !== leader)!;
      const goneId = hex((await listMembers(cluster.endpoints)).find((m) => m.name === `m${gone + 1}`)!.ID);
      const rm = await etcdctlUntil(cluster.members[leader].endpoint, ['member', 'remove', goneId]);
      assert.equal(rm.code, 0, rm.stderr);
      await waitFor('the removed member to exit', () => cluster.members[gone].proc.exitCode !== null, 20_000, 100);
      const remaining = [...[0, 1, 2].filter((i) => i !== gone).map((i) => cluster.members[i]), l];
      const endpoints = remaining.map((m) => m.endpoint).join(',');
      const list = await listMembers(endpoints);
      assert.deepEqual(list.map((m) => m.name).sort(), remaining.map((m) => m.name).sort());
      assert.equal((await etcdctl(endpoints, ['put', 'after-remove', 'ok'])).code, 0);
      // every remaining member ends with the same store
      let hashes: string[] = [];
      await waitFor(
        'equal stores on the remaining members',
        async () => {
          hashes = await Promise.all(
            remaining.map(async (m) => {
              const r = await etcdctl(m.endpoint, ['endpoint', 'hashkv', '-w', 'json']);
              const j = JSON.parse(r.stdout) as { HashKV: { header: { revision: number }; hash: number } }[];
              return `${j[0].HashKV.header.revision}:${j[0].HashKV.hash}`;
            }),
          );
          return new Set(hashes).size === 1;
        },
        20_000,
        200,
      ).catch((e: Error) => assert.fail(`${e.message}: ${hashes.join(' ')}`));
      cluster.members.splice(gone, 1);
    } finally {
      client.close();
    }
  });
});
