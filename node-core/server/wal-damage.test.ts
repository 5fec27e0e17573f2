// A member whose write-ahead log is damaged before its tail refuses to start,
// as etcd does (`walpb: crc mismatch`), instead of cutting the log there and
// serving a store that lost acknowledged writes. Real etcd is checked the
// same way beside it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { decodeEntry, encodeEntry } from '../proto/gen/raftpb';
import { describe, it } from 'node:test';
import { EtcdClient } from '../client';
import { hasEtcd, startEtcd, startEtcdesk, tempDir, waitHealthy } from '../testing/processes';

/** Offsets of the records of one WAL segment (u32 length, u32 crc, body). */
function recordOffsets(file: string): { off: number; len: number }[] {
  const b = fs.readFileSync(file);
  const out: { off: number; len: number }[] = [];
  for (let pos = 0; pos + 8 <= b.length; ) {
    const len = b.readUInt32LE(pos);
    if (len === 0) break;
    out.push({ off: pos, len });
    pos += 8 + len;
  }
  return out;
}

function exited(p: { proc: import('node:child_process').ChildProcess }): Promise<number | null> {
  if (p.proc.exitCode !== null) return Promise.resolve(p.proc.exitCode);
  return new Promise((resolve) => p.proc.once('exit', (code) => resolve(code)));
}

describe('a damaged write-ahead log', () => {
  it('stops the member at start-up with an error naming the file and offset; the data is left as it was', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('wal-damage');
    const node = await startEtcdesk({ dataDir, extraArgs: ['--log-level', 'warn'] });
    const client = new EtcdClient({ endpoints: [node.endpoint] });
    try {
      for (let i = 0; i < 60; i++) await client.put({ key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}-`.padEnd(64, 'v')) });
    } finally {
      client.close();
    }
    await node.stop();
    assert.equal(node.proc.exitCode, 0, node.output());
    const walDir = path.join(dataDir, 'member', 'wal');
    const seg = fs
      .readdirSync(walDir)
      .filter((f) => f.endsWith('.wal'))
      .sort()
      .map((f) => path.join(walDir, f))
      .at(-1)!;
    // a byte in the middle of the log, inside the body of a record that has acknowledged records after it
    const recs = recordOffsets(seg).filter((r) => r.len > 64);
    assert.ok(recs.length >= 40, `${recs.length} entry records`);
    const victim = recs[Math.floor(recs.length / 2)];
    const b = fs.readFileSync(seg);
    b[victim.off + 8 + Math.floor(victim.len / 2)] ^= 0x10;
    fs.writeFileSync(seg, b);

    const again = await startEtcdesk({ dataDir, waitReady: false });
    // it must exit; serving (healthy) is the failure this test is about
    const healthy = waitHealthy(again.clientUrl, 30_000, again.proc).then(() => 'healthy' as const, () => 'not healthy' as const);
    const code = await Promise.race([exited(again), healthy]);
    if (code === 'healthy') await again.kill();
    assert.notEqual(code, 'healthy', `the member started on a damaged log:\n${again.output()}`);
    assert.notEqual(code, 0, again.output());
    assert.equal(code, 1);
    assert.ok(again.output().includes(`${seg} at offset ${victim.off}`), again.output());
    assert.match(again.output(), /"level":"fatal".*walpb: crc mismatch/);
    assert.ok(fs.readFileSync(seg).equals(b), 'the damaged log is not cut or rewritten');
  });

  it('a torn tail (a last write cut at a sector by a power loss) is repaired: the member starts, logs it, and serves everything', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('wal-torn');
    const node = await startEtcdesk({ dataDir, extraArgs: ['--log-level', 'warn'] });
    let client = new EtcdClient({ endpoints: [node.endpoint] });
    try {
      for (let i = 0; i < 20; i++) await client.put({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) });
    } finally {
      client.close();
    }
    await node.stop();
    const walDir = path.join(dataDir, 'member', 'wal');
    const seg = path.join(walDir, fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
    const b = fs.readFileSync(seg);
    const recs = recordOffsets(seg);
    // entry records: type 5, a raftpb.Entry
    const lastEntry = recs.filter((r) => b[r.off + 8] === 5).at(-1)!;
    const last = decodeEntry(b.subarray(lastEntry.off + 9, lastEntry.off + 8 + b.readUInt32LE(lastEntry.off)));
    // the batch of a write that was in flight: a Batch record, then an entry of 3000 bytes
    const body = Buffer.concat([Buffer.from([5]), encodeEntry({ Term: last.Term, Index: last.Index + 1, Type: 0, Data: Buffer.alloc(3000, 0x61) })]);
    const rec = (x: Buffer): Buffer => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(x.length, 0);
      h.writeUInt32LE(zlib.crc32(x) >>> 0, 4);
      return Buffer.concat([h, x]);
    };
    const entry = rec(body);
    const mark = Buffer.alloc(5);
    mark[0] = 4;
    mark.writeUInt32LE(entry.length, 1);
    const batch = Buffer.concat([rec(mark), entry]);
    const at = recs.at(-1)!.off + 8 + recs.at(-1)!.len;
    // the power went before its sectors from the second one on reached the disk
    const kept = (Math.floor(at / 512) + 2) * 512 - at;
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, batch, 0, kept, at);
    fs.closeSync(fd);
    const again = await startEtcdesk({ dataDir, extraArgs: ['--log-level', 'warn'] });
    client = new EtcdClient({ endpoints: [again.endpoint] });
    try {
      assert.match(again.output(), /repaired the write-ahead log: cut a torn write at its tail/);
      for (let i = 0; i < 20; i++) assert.equal(Buffer.from((await client.get(`k${i}`))!.value).toString(), `v${i}`);
      await client.put({ key: Buffer.from('after'), value: Buffer.from('ok') });
      assert.equal(Buffer.from((await client.get('after'))!.value).toString(), 'ok');
    } finally {
      client.close();
      await again.stop();
    }
  });

  it('etcd refuses the same damage: a flipped byte in a middle record of its WAL stops its start-up with crc mismatch', { timeout: 60_000, skip: !hasEtcd() && 'etcd not installed' }, async () => {
    const dataDir = tempDir('wal-damage-etcd');
    const node = await startEtcd({ dataDir });
    const client = new EtcdClient({ endpoints: [node.endpoint] });
    try {
      for (let i = 0; i < 60; i++) await client.put({ key: Buffer.from(`k${i}`), value: Buffer.from(`value-${i}-`.padEnd(64, 'v')) });
    } finally {
      client.close();
    }
    await node.stop();
    const walDir = path.join(dataDir, 'member', 'wal');
    const seg = path.join(walDir, fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
    // etcd's frames: u64 LE length (low 56 bits; padding in the top byte), then the walpb.Record
    const b = fs.readFileSync(seg);
    const frames: { off: number; len: number }[] = [];
    for (let pos = 0; pos + 8 <= b.length; ) {
      const raw = b.readBigUInt64LE(pos);
      if (raw === 0n) break;
      const len = Number(raw & 0xffffffffffffffn);
      const pad = raw >> 63n ? Number((raw >> 56n) & 7n) : 0;
      frames.push({ off: pos, len });
      pos += 8 + len + pad;
    }
    const victim = frames.filter((f) => f.len > 64)[Math.floor(frames.filter((f) => f.len > 64).length / 2)];
    // inside the entry's value, near the record's end: the record still parses, its checksum does not match
    b[victim.off + 8 + victim.len - 10] ^= 0x10;
    fs.writeFileSync(seg, b);
    const again = await startEtcd({ dataDir, waitReady: false });
    const code = await exited(again);
    assert.notEqual(code, 0, again.output());
    assert.match(again.output(), /crc mismatch/);
  });
});
