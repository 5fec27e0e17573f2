// A byte flipped on disk in a stored record is found when the record is read:
// the read fails with etcd's corrupt error (the bytes are never served) and
// the CORRUPT alarm goes up through the log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { etcdctl, hasEtcd, startEtcdesk, type ServerProc } from '../testing/processes';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('record checksums', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  let n: ServerProc;
  before(async () => {
    n = await startEtcdesk({ extraArgs: ['--log-level', 'warn'] });
  });
  after(async () => {
    await n?.stop();
  });

  it('a flipped byte in a historical value is reported, never served', { timeout: 30_000 }, async () => {
    const marker = 'FLIPME-' + 'x'.repeat(200);
    assert.equal((await etcdctl(n.endpoint, ['put', 'k', marker])).code, 0);
    const rev = (JSON.parse((await etcdctl(n.endpoint, ['get', 'k', '-w', 'json'])).stdout) as { header: { revision: number } }).header.revision;
    assert.equal((await etcdctl(n.endpoint, ['put', 'k', 'newer'])).code, 0);
    // the state machine reaches the data file on a batch commit: wait until the bytes are there
    const file = path.join(n.dataDir, 'member', 'db', 'data.mdb');
    let buf = fs.readFileSync(file);
    for (const deadline = Date.now() + 10_000; buf.indexOf(Buffer.from(marker)) < 0; buf = fs.readFileSync(file)) {
      assert.ok(Date.now() < deadline, 'the old value never reached the data file');
      await sleep(20);
    }
    const at = buf.indexOf(Buffer.from(marker));
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([buf[at + 10] ^ 0x01]), 0, 1, at + 10);
    fs.closeSync(fd);
    const r = await etcdctl(n.endpoint, ['get', 'k', '--rev', String(rev)]);
    assert.notEqual(r.code, 0, `served: ${r.stdout}`);
    assert.match(r.stderr, /etcdserver: corrupt cluster/);
    assert.doesNotMatch(r.stdout, /FLIPME/);
    let alarms = '';
    for (const deadline = Date.now() + 10_000; !/CORRUPT/.test(alarms); await sleep(100)) {
      assert.ok(Date.now() < deadline, `no CORRUPT alarm: ${alarms}`);
      alarms = (await etcdctl(n.endpoint, ['alarm', 'list'])).stdout;
    }
    // raised by this member for itself (the record checksum), not the periodic check's member 0
    assert.match(alarms, /^memberID:\d+ alarm:CORRUPT $/m);
    // the current value, untouched, is still served
    const cur = await etcdctl(n.endpoint, ['get', 'k', '--print-value-only']);
    assert.equal(cur.stdout.trim(), 'newer');
  });
});
