// A byte flipped in one member's data file: found by the leader's periodic
// hash check (CORRUPT raised through the log, writes refused with etcd's
// error) and at start (the local checkpoint, and with
// --experimental-initial-corrupt-check the peers' hashes).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { etcdctl, startCluster, type ClusterProcs } from '../testing/processes';

let cluster: ClusterProcs | undefined;
after(async () => {
  await cluster?.stop().catch(() => undefined);
});

/** Flips one byte inside every copy of `marker` in the member's LMDB data file; returns how many. */
function flip(dataDir: string, marker: string): number {
  const file = path.join(dataDir, 'member', 'db', 'data.mdb');
  const buf = fs.readFileSync(file);
  const fd = fs.openSync(file, 'r+');
  let n = 0;
  try {
    for (let at = buf.indexOf(marker); at >= 0; at = buf.indexOf(marker, at + 1)) {
      fs.writeSync(fd, Buffer.from([buf[at + 4] ^ 0x01]), 0, 1, at + 4);
      n++;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
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

test('a flipped byte is found by the periodic check and at start', async () => {
  cluster = await startCluster('etcdesk', 3, ['--experimental-corrupt-check-time', '1s', '--experimental-initial-corrupt-check']);
  const c = cluster;
  const ep = c.members[0].endpoint;
  const marker = `MARK${crypto.randomBytes(12).toString('hex')}`;
  const marker3 = `MARK${crypto.randomBytes(12).toString('hex')}`;
  assert.equal((await etcdctl(ep, ['put', 'victim', marker])).code, 0);
  assert.equal((await etcdctl(ep, ['put', 'victim3', marker3])).code, 0);
  for (let i = 0; i < 20; i++) assert.equal((await etcdctl(ep, ['put', `k${i}`, 'v'])).code, 0);
  // let every member commit its state machine to the data file
  await new Promise((r) => setTimeout(r, 800));

  // at start: member 3 stopped cleanly, one byte flipped, restarted → refuses (local checkpoint)
  await c.members[2].stop();
  assert.ok(flip(c.members[2].dataDir, marker3) >= 1);
  await assert.rejects(c.restart(2), /exited/);
  // the record's own checksum (backend) or the store checkpoint, whichever reads it first
  assert.match(c.members[2].output(), /found data corruption: the store hashes to \d+ at revision \d+, but hashed to \d+|checksum mismatch on a stored record/);
  // without the checkpoint, the initial check against the peers' HashKV catches it
  fs.rmSync(path.join(c.members[2].dataDir, 'member', 'integrity.json'));
  await assert.rejects(c.restart(2), /exited/);
  assert.match(c.members[2].output(), /found data inconsistency with peers|checksum mismatch on a stored record/);

  // periodic: a byte flipped under a running member; the leader's check raises CORRUPT
  const members = [0, 1];
  assert.ok(flip(c.members[1].dataDir, marker) >= 1);
  await until('the CORRUPT alarm', async () => (await etcdctl(ep, ['alarm', 'list'])).stdout.includes('alarm:CORRUPT'));
  // raised by the leader's periodic check (member 0, which gogo leaves out) or by the member whose
  // record failed its checksum on a read, whichever came first
  assert.match((await etcdctl(ep, ['alarm', 'list'])).stdout.trim(), /^(memberID:\d+ )?alarm:CORRUPT$/m);
  for (const i of members) {
    const r = await etcdctl(c.members[i].endpoint, ['put', 'x', 'y']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error: etcdserver: corrupt cluster/);
  }
  // reads are still served
  assert.equal((await etcdctl(ep, ['get', 'k1', '--print-value-only'])).stdout.trim(), 'v');
  c.members.splice(2, 1);
});
