// One member's store made to differ from its peers, each detector shown on its
// own: the local checkpoint at start (integrity.json), the peers' HashKV at
// start (--experimental-initial-corrupt-check) and the leader's periodic
// check (--experimental-corrupt-check-time, CORRUPT raised through the log,
// writes refused with etcd's error). The stores are changed the way a bad
// disk or a buggy apply would leave them *consistent*: through the backend,
// with the record checksums rewritten, so the record checksum (see
// record-checksum.test.ts) cannot be what finds them.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { Backend } from '../backend/backend';
import { decodeKeyValue, encodeKeyValue } from '../proto/gen/mvccpb';
import { etcdctl, findLeader, startCluster, type ClusterProcs } from '../testing/processes';
import { INTEGRITY_FILE } from './corruption';

let cluster: ClusterProcs | undefined;
after(async () => {
  await cluster?.stop().catch(() => undefined);
});

/**
 * Rewrites the stored value of every revision of `key` in a stopped member's store (one byte
 * changed), checksums included. Returns how many records it changed.
 */
async function rewriteValue(dataDir: string, key: string): Promise<number> {
  const be = Backend.open(path.join(dataDir, 'member'));
  let n = 0;
  try {
    for (const [rev, bytes] of [...be.range('key')]) {
      const kv = decodeKeyValue(bytes);
      if (kv.key.toString() !== key || kv.value.length === 0) continue;
      const value = Buffer.from(kv.value);
      value[value.length - 1] ^= 0x01;
      be.put('key', Buffer.from(rev), encodeKeyValue({ ...kv, key: Buffer.from(kv.key), value }));
      n++;
    }
    await be.commit();
  } finally {
    await be.close();
  }
  return n;
}

async function until(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('each corruption detector finds a member whose store differs, on its own', { timeout: 120_000 }, async () => {
  cluster = await startCluster('etcdesk', 3, ['--experimental-corrupt-check-time', '1s']);
  const c = cluster;
  const ep = c.members[0].endpoint;
  const marker = `MARK${crypto.randomBytes(12).toString('hex')}`;
  assert.equal((await etcdctl(ep, ['put', 'victim', marker])).code, 0);
  for (let i = 0; i < 20; i++) assert.equal((await etcdctl(ep, ['put', `k${i}`, 'v'])).code, 0);
  const leader = await findLeader(c);
  assert.ok(leader >= 0, 'a leader');
  const f2 = [0, 1, 2].filter((i) => i !== leader)[1];
  // every member has applied the writes before one is stopped (a clean stop commits its store)
  await until('every member at the same revision', async () => {
    const revs = await Promise.all(c.members.map(async (m) => (await etcdctl(m.endpoint, ['get', 'k19', '-w', 'json', '--consistency=s'])).stdout));
    return revs.every((r) => r.includes('"revision":22'));
  });

  // 1. the local checkpoint: f2 stopped cleanly, its store changed, restarted → refused
  await c.members[f2].stop();
  assert.ok(fs.existsSync(path.join(c.members[f2].dataDir, 'member', INTEGRITY_FILE)), 'a clean stop writes the checkpoint');
  assert.ok((await rewriteValue(c.members[f2].dataDir, 'victim')) >= 1);
  await assert.rejects(c.restart(f2), /exited/);
  assert.match(c.members[f2].output(), /found data corruption: the store hashes to \d+ at revision \d+, but hashed to \d+ when it was last closed/);
  assert.doesNotMatch(c.members[f2].output(), /checksum mismatch/);

  // 2. without the checkpoint the member starts as it is (nothing local can tell) ...
  fs.rmSync(path.join(c.members[f2].dataDir, 'member', INTEGRITY_FILE));
  // ... unless it compares HashKV with its peers first
  await assert.rejects(c.restart(f2, ['--experimental-initial-corrupt-check']), /exited/);
  assert.match(c.members[f2].output(), /found data inconsistency with peers/);
  assert.doesNotMatch(c.members[f2].output(), /checksum mismatch|found data corruption/);

  // 3. periodic: the same member started without the initial check comes up (nothing local can
  // tell); the leader's periodic HashKV comparison raises CORRUPT (for member 0, as etcd 3.4,
  // which gogo leaves out)
  // (not waiting for /health: it fails once the alarm is up, as etcd's)
  await c.restart(f2, [], false);
  await until('the CORRUPT alarm', async () => (await etcdctl(ep, ['alarm', 'list'])).stdout.includes('alarm:CORRUPT'));
  assert.equal((await etcdctl(ep, ['alarm', 'list'])).stdout, 'alarm:CORRUPT \n', 'one alarm, for member 0 (the periodic check)');
  assert.match(c.members[leader].output(), /same compact revision then hashes must match/);
  assert.doesNotMatch(c.members[f2].output(), /checksum mismatch/);
  for (const i of [0, 1, 2]) {
    const r = await etcdctl(c.members[i].endpoint, ['put', 'x', 'y']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error: etcdserver: corrupt cluster/);
  }
  // reads are still served
  assert.equal((await etcdctl(ep, ['get', 'k1', '--print-value-only'])).stdout.trim(), 'v');
});
