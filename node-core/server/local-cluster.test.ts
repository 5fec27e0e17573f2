// The in-process local cluster the desktop app embeds: three members elect a
// leader, replicate, and a new leader takes over when the leader is stopped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
});
