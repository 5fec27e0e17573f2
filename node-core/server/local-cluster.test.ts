// The in-process local cluster the desktop app embeds: three members elect a
// leader, replicate, and a new leader takes over when the leader is stopped;
// leadership moved from member to member costs no write.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EtcdClient } from '../client/client';
import { tempDir } from '../testing/processes';
import { startLocalCluster } from './local-cluster';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function leaderIndex(c: Awaited<ReturnType<typeof startLocalCluster>>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    for (let i = 0; i < c.size; i++) if (c.member(i)?.node.isLeader()) return i;
    if (Date.now() - t0 > timeoutMs) return -1;
    await sleep(50);
  }
}

describe('in-process local cluster', () => {
  it('elects a leader, replicates writes, and fails over when the leader stops', { timeout: 60_000 }, async () => {
    const c = await startLocalCluster({ dir: tempDir('local-cluster'), config: { heartbeatInterval: 50, electionTimeout: 500 } });
    try {
      const l = await leaderIndex(c, 10_000);
      assert.ok(l >= 0, 'a leader is elected');
      const node = c.member(l)!.node;
      const a = await node.propose({ put: { key: Buffer.from('k'), value: Buffer.from('v1') } as never });
      assert.ok(a.rev > 1);
      // every member applies it
      for (let i = 0; i < c.size; i++) {
        const m = c.member(i)!.node;
        for (let t = 0; t < 100 && m.mvcc.rev < a.rev; t++) await sleep(20);
        assert.equal(m.mvcc.get(Buffer.from('k'))?.value.toString(), 'v1');
      }
      await c.stopMember(l);
      const l2 = await leaderIndex(c, 10_000);
      assert.ok(l2 >= 0 && l2 !== l, `new leader ${l2} after stopping ${l}`);
      await c.member(l2)!.node.propose({ put: { key: Buffer.from('k'), value: Buffer.from('v2') } as never });
      await c.restartMember(l);
      const back = c.member(l)!.node;
      await back.readBarrier();
      assert.equal(back.mvcc.get(Buffer.from('k'))?.value.toString(), 'v2');
    } finally {
      await c.stop();
    }
  });

  it('writes through every member keep succeeding while leadership moves from member to member', { timeout: 90_000 }, async () => {
    const c = await startLocalCluster({ dir: tempDir('local-cluster-move'), config: { heartbeatInterval: 50, electionTimeout: 500 } });
    const clients = c.clientUrls.map((u) => new EtcdClient({ endpoints: [u] }));
    try {
      assert.ok((await leaderIndex(c, 10_000)) >= 0, 'a leader is elected');
      let stop = false;
      const failures: string[] = [];
      const written = clients.map(() => 0);
      // one writer per member: a follower forwards its proposals to the leader being replaced
      const writers = clients.map(async (cl, i) => {
        while (!stop) {
          try {
            await cl.put({ key: Buffer.from(`/moves/${i}`), value: Buffer.from(String(written[i] + 1)) });
            written[i]++;
          } catch (e) {
            failures.push(`writer ${i}: ${(e as Error).message}`);
          }
        }
      });
      let moves = 0;
      for (let k = 0; k < 8; k++) {
        const l = await leaderIndex(c, 10_000);
        const target = c.member((l + 1) % c.size)!.node.memberId;
        await clients[l].moveLeader(target);
        moves++;
        await sleep(50);
      }
      stop = true;
      await Promise.all(writers);
      assert.equal(moves, 8);
      assert.deepEqual(failures, []);
      // every acknowledged write is there: each writer's last value, on every member
      const last = await leaderIndex(c, 10_000);
      await c.member(last)!.node.readBarrier();
      for (let i = 0; i < c.size; i++) {
        assert.ok(written[i] > 0, `writer ${i} wrote`);
        const m = c.member(i)!.node;
        await m.readBarrier();
        for (let w = 0; w < c.size; w++) assert.equal(m.mvcc.get(Buffer.from(`/moves/${w}`))?.value.toString(), String(written[w]), `member ${i}, writer ${w}`);
      }
    } finally {
      for (const cl of clients) cl.close();
      await c.stop();
    }
  });
});
