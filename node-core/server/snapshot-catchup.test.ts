// A follower that was down while the leader compacted its log past the
// follower's position catches up from a state snapshot (raft MsgSnap plus the
// store streamed by the transport), and ends identical to the others.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ensureEtcdload, etcdctl, findLeader, hasEtcd, startCluster, type ClusterProcs } from '../testing/processes';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function hashKV(endpoint: string): Promise<{ hash: number; rev: number } | undefined> {
  const r = await etcdctl(endpoint, ['endpoint', 'hashkv', '-w', 'json'], { timeoutMs: 5000 });
  if (r.code !== 0) return undefined;
  const j = JSON.parse(r.stdout) as { HashKV: { header: { revision: number }; hash: number } }[];
  return { hash: j[0].HashKV.hash, rev: j[0].HashKV.header.revision };
}

describe('snapshot catch-up', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let c: ClusterProcs;
  before(async () => {
    c = await startCluster('etcdesk', 3, ['--log-level', 'info', '--snapshot-count', '200']);
  });
  after(async () => {
    await c?.stop();
  });

  it('a follower behind the compacted log installs a state snapshot and converges', { timeout: 120_000 }, async () => {
    const load = await ensureEtcdload();
    let leader = -1;
    for (let i = 0; i < 50 && leader < 0; i++) {
      leader = await findLeader(c);
      if (leader < 0) await sleep(200);
    }
    assert.ok(leader >= 0);
    const f = (leader + 1) % 3;
    // a lease and its key must come across too
    const grant = await etcdctl(c.endpoints, ['lease', 'grant', '600']);
    const leaseId = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1];
    assert.equal((await etcdctl(c.endpoints, ['put', 'leased', 'v', '--lease', leaseId])).code, 0);
    await c.members[f].stop();
    const up = c.members.filter((_, i) => i !== f).map((m) => m.endpoint).join(',');
    // more than the 5000 entries kept after a snapshot
    const r = spawnSync(load, ['-endpoints', up, '-op', 'put', '-clients', '32', '-total', '7000', '-key-space', '3000'], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    await c.restart(f);
    let hashes: ({ hash: number; rev: number } | undefined)[] = [];
    for (let i = 0; i < 100; i++) {
      hashes = await Promise.all(c.members.map((m) => hashKV(m.endpoint)));
      if (hashes.every((h) => h && h.rev === hashes[0]!.rev && h.hash === hashes[0]!.hash)) break;
      await sleep(300);
    }
    assert.ok(hashes.every((h) => h && h.rev === hashes[0]!.rev && h.hash === hashes[0]!.hash), `members differ: ${JSON.stringify(hashes)}\n${c.members[f].output().slice(-3000)}`);
    assert.match(c.members[f].output(), /installed a state snapshot/);
    const ttl = await etcdctl(c.members[f].endpoint, ['lease', 'timetolive', leaseId, '--keys']);
    assert.match(ttl.stdout, /attached keys\(\[leased\]\)/);
    const get = await etcdctl(c.members[f].endpoint, ['get', 'leased', '--consistency=s', '--print-value-only']);
    assert.equal(get.stdout.trim(), 'v');
  });
});
