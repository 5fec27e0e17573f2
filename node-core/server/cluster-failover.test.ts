// Three etcdesk-node processes: the leader is killed with SIGKILL under
// write load, paused with SIGSTOP, and the cluster must keep every
// acknowledged write, elect a new leader, refuse stale reads from the paused
// one, and end with identical stores on every member. (How fast a leader is
// elected is the benchmark's business, not a verdict here.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { currentRevision, ensureEtcdload, etcdctl, etcdctlUntil, findLeader, hasEtcd, startCluster, tempDir, waitFor, type ClusterProcs } from '../testing/processes';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForLeader(c: ClusterProcs, among: number[], timeoutMs: number): Promise<{ leader: number }> {
  const t0 = Date.now();
  for (;;) {
    const l = await findLeader(c, among);
    if (l >= 0) return { leader: l };
    if (Date.now() - t0 > timeoutMs) throw new Error(`no leader among ${among.join(',')} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function hashKV(endpoint: string): Promise<{ hash: number; rev: number }> {
  const r = await etcdctl(endpoint, ['endpoint', 'hashkv', '-w', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { HashKV: { header: { revision: number }; hash: number } }[];
  return { hash: j[0].HashKV.hash, rev: j[0].HashKV.header.revision };
}

describe('three-member cluster under failures', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let c: ClusterProcs;
  let load: string;
  before(async () => {
    load = await ensureEtcdload();
    c = await startCluster('etcdesk', 3, ['--log-level', 'warn']);
  });
  after(async () => {
    for (const m of c?.members ?? []) {
      try {
        process.kill(m.proc.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    await c?.stop();
  });

  it('kill -9 of the leader under load: a new leader, no acknowledged write lost, stores identical', { timeout: 90_000 }, async () => {
    const { leader } = await waitForLeader(c, [0, 1, 2], 10_000);
    const ackFile = path.join(tempDir('acks'), 'acked');
    const gen = spawn(load, ['-endpoints', c.endpoints, '-op', 'unique-put', '-clients', '32', '-conns', '3', '-total', '1000000', '-acked-file', ackFile, '-timeout', '6s'], { stdio: 'ignore' });
    const genDone = new Promise<void>((r) => gen.on('close', () => r()));
    // kill once the load is being applied (some hundreds of puts), while it runs
    const start = await currentRevision(c.members[leader].clientUrl);
    await waitFor('the load to be applied', async () => {
      assert.equal(gen.exitCode, null, 'the load ended before the kill');
      return (await currentRevision(c.members[leader].clientUrl)) >= start + 300;
    }, 20_000, 20);
    await c.members[leader].kill();
    const others = [0, 1, 2].filter((i) => i !== leader);
    await waitForLeader(c, others, 20_000);
    await genDone;
    const acked = fs.readFileSync(ackFile, 'utf8').split('\n').filter(Boolean);
    assert.ok(acked.length > 200, `only ${acked.length} writes acknowledged`);
    await c.restart(leader);
    // let the restarted member catch up, then compare
    let hashes: { hash: number; rev: number }[] = [];
    await waitFor('every member at the same revision and hash', async () => {
      hashes = await Promise.all(c.members.map((m) => hashKV(m.endpoint)));
      return hashes.every((h) => h.rev === hashes[0].rev && h.hash === hashes[0].hash);
    }, 30_000, 200).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(hashes)}`));
    for (const m of c.members) {
      const r = await etcdctl(m.endpoint, ['get', 'ack/', '--prefix', '--keys-only', '--consistency=s'], { timeoutMs: 60_000 });
      const present = new Set(r.stdout.split('\n').filter((l) => l.startsWith('ack/')));
      const lost = acked.filter((k) => !present.has(k));
      assert.equal(lost.length, 0, `${m.name} lost ${lost.length} of ${acked.length} acknowledged writes`);
    }
  });

  it('a paused leader is replaced and its reads after resuming are never stale', { timeout: 60_000 }, async () => {
    const { leader } = await waitForLeader(c, [0, 1, 2], 10_000);
    const old = c.members[leader];
    assert.equal((await etcdctl(c.endpoints, ['put', 'pause-key', 'before'])).code, 0);
    process.kill(old.proc.pid!, 'SIGSTOP');
    try {
      const others = [0, 1, 2].filter((i) => i !== leader);
      await waitForLeader(c, others, 10_000);
      const w = await etcdctl(others.map((i) => c.members[i].endpoint).join(','), ['put', 'pause-key', 'after']);
      assert.equal(w.code, 0, w.stderr);
    } finally {
      process.kill(old.proc.pid!, 'SIGCONT');
    }
    // the old leader must not answer a linearizable read from its stale state
    const r = await etcdctl(old.endpoint, ['get', 'pause-key', '--print-value-only'], { timeoutMs: 20_000 });
    if (r.code === 0) assert.equal(r.stdout.trim(), 'after');
    else assert.match(r.stderr, /timed out|no leader|leader changed/);
    const after = await waitForLeader(c, [0, 1, 2], 10_000);
    assert.notEqual(after.leader, -1);
  });

  it('a learner that never started: added, refused promotion, removed, under load (learner-promote.test.ts promotes a real one)', { timeout: 60_000 }, async () => {
    const gen = spawn(load, ['-endpoints', c.endpoints, '-op', 'put', '-clients', '8', '-total', '1000000', '-timeout', '8s'], { stdio: 'ignore' });
    try {
      const add = await etcdctlUntil(c.endpoints, ['member', 'add', 'learner1', '--learner', '--peer-urls', 'http://127.0.0.1:1']);
      assert.equal(add.code, 0, add.stderr);
      const list = await etcdctl(c.endpoints, ['member', 'list']);
      const line = list.stdout.split('\n').find((l) => l.includes('http://127.0.0.1:1,') || l.includes('http://127.0.0.1:1 '));
      assert.ok(line && line.trim().endsWith('true'), list.stdout);
      const id = line!.split(',')[0];
      // a learner that never started has no log: promotion is refused as etcd refuses it
      const promote = await etcdctl(c.endpoints, ['member', 'promote', id], { timeoutMs: 20_000 });
      assert.notEqual(promote.code, 0);
      assert.match(promote.stderr, /can only promote a learner member which is in sync with leader/);
      const rm = await etcdctlUntil(c.endpoints, ['member', 'remove', id]);
      assert.equal(rm.code, 0, rm.stderr);
      const after = await etcdctl(c.endpoints, ['member', 'list']);
      assert.equal(after.stdout.trim().split('\n').length, 3, after.stdout);
    } finally {
      gen.kill('SIGKILL');
    }
  });
});
