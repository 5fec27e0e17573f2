// Leases on a three-member etcdesk cluster: grant, keep-alive and
// time-to-live through a follower (forwarded to the leader, as etcd), and
// after the leader is stopped the new leader takes over expiry: the lease
// survives the failover and still expires, its keys vanishing everywhere.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../client/client';
import { startCluster, type ClusterProcs } from '../testing/processes';
import { sleep } from './compat-helpers.test';

describe('leases on a three-member cluster', () => {
  let cluster: ClusterProcs;
  const clients: EtcdClient[] = [];

  before(async () => {
    cluster = await startCluster('etcdesk', 3);
    for (const m of cluster.members) clients.push(new EtcdClient({ endpoints: [m.clientUrl], timeoutMs: 10_000 }));
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster?.stop();
  });

  async function leaderIndex(): Promise<number> {
    for (let tries = 0; tries < 50; tries++) {
      for (let i = 0; i < clients.length; i++) {
        try {
          const s = await clients[i].status();
          if (s.leader !== 0n && s.leader === s.header!.member_id) return i;
        } catch {
          // stopped member
        }
      }
      await sleep(200);
    }
    throw new Error('no leader');
  }

  it('follower: grant, keep-alive and time-to-live are answered (forwarded to the leader)', async () => {
    const lead = await leaderIndex();
    const f = clients[(lead + 1) % 3];
    const g = await f.leaseGrant(30);
    await f.put({ key: Buffer.from('fk'), value: Buffer.from('v'), lease: g.ID });
    const ka = await f.leaseKeepAliveOnce(g.ID);
    assert.equal(ka.TTL, 30);
    const ttl = await f.leaseTimeToLive(g.ID, true);
    assert.equal(ttl.grantedTTL, 30);
    assert.ok(ttl.TTL >= 28 && ttl.TTL <= 30, `TTL ${ttl.TTL}`);
    assert.deepEqual(
      ttl.keys.map((k) => Buffer.from(k).toString()),
      ['fk'],
    );
    assert.equal((await f.leaseTimeToLive(123n)).TTL, -1);
    await assert.rejects(f.leaseKeepAliveOnce(123n));
  });

  it('after the leader stops, the new leader expires leases and the keys vanish on every member', async () => {
    const lead = await leaderIndex();
    const f = clients[(lead + 1) % 3];
    const g = await f.leaseGrant(3);
    await f.put({ key: Buffer.from('gone1'), value: Buffer.from('v'), lease: g.ID });
    await f.put({ key: Buffer.from('gone2'), value: Buffer.from('v'), lease: g.ID });
    await cluster.members[lead].stop();
    const next = await leaderIndex();
    assert.notEqual(next, lead);
    const t = await clients[next].leaseTimeToLive(g.ID);
    assert.equal(t.grantedTTL, 3);
    const deadline = Date.now() + 10_000;
    const alive = clients.filter((_, i) => i !== lead);
    while (Date.now() < deadline) {
      const counts = await Promise.all(alive.map((c) => c.range({ key: Buffer.from('gone'), range_end: Buffer.from('gonf'), serializable: true })));
      if (counts.every((r) => r.count === 0)) break;
      await sleep(200);
    }
    const after = await Promise.all(alive.map((c) => c.range({ key: Buffer.from('gone'), range_end: Buffer.from('gonf'), serializable: true })));
    assert.deepEqual(
      after.map((r) => r.count),
      [0, 0],
    );
    assert.equal((await clients[next].leaseTimeToLive(g.ID)).TTL, -1);
  });
});
