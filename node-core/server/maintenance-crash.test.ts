// kill -9 during a snapshot and during a defragment: the member restarts on
// its data dir with every acknowledged write (HashKV equal to before).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { EtcdClient } from '../client/client';
import { startEtcdesk, waitFor, type ServerProc } from '../testing/processes';

const procs: ServerProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.kill().catch(() => undefined)));
});

const b = (s: string): Buffer => Buffer.from(s);

async function load(c: EtcdClient, n: number, size: number): Promise<void> {
  const v = Buffer.alloc(size, 0x61);
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => c.put({ key: b(`crash/${i + j}`), value: v })));
  }
}

// snapshots, log compaction and WAL segment release after a few hundred writes (test-only knobs,
// backend/fault-hooks.ts): the data file is then the only copy of the early writes, and a
// defragment that damaged it could not hide behind a replay of the whole log
const SNAPSHOTS = { extraArgs: ['--snapshot-count', '100'], env: { ETCDESK_FAULT_CATCH_UP_ENTRIES: '100', ETCDESK_FAULT_WAL_SEGMENT_BYTES: String(1 << 20) } };

async function restartAndCheck(p: ServerProc, want: { hash: number; rev: number; count: number }): Promise<ServerProc> {
  const again = await startEtcdesk({ name: p.name, dataDir: p.dataDir, clientPort: Number(p.endpoint.split(':')[1]), peerPort: Number(new URL(p.peerUrl).port), ...SNAPSHOTS });
  procs.push(again);
  const c = new EtcdClient({ endpoints: [again.clientUrl], timeoutMs: 15_000 });
  const h = await c.hashKV(want.rev);
  assert.equal(h.hash, want.hash, 'HashKV at the old revision is unchanged');
  const r = await c.range({ key: b('crash/'), range_end: b('crash0'), count_only: true });
  assert.equal(r.count, want.count);
  assert.ok(r.header!.revision >= want.rev);
  // and it takes writes
  await c.put({ key: b('after'), value: b('crash') });
  c.close();
  return again;
}

test('kill -9 during defragment leaves a store that opens with nothing lost', async () => {
  const p = await startEtcdesk(SNAPSHOTS);
  procs.push(p);
  const c = new EtcdClient({ endpoints: [p.clientUrl], timeoutMs: 30_000 });
  await load(c, 1500, 16 * 1024);
  // free pages to make the copy do work
  await c.deleteRange({ key: b('crash/1'), range_end: b('crash/2') });
  const hk = await c.hashKV(0);
  const count = (await c.range({ key: b('crash/'), range_end: b('crash0'), count_only: true })).count;
  const memberDir = path.join(p.dataDir, 'member');
  // the log no longer holds the first writes (its first segment was released)
  await waitFor('the first WAL segment released', () => !fs.existsSync(path.join(memberDir, 'wal', '0000000000000001.wal')));
  let defragEnded = false;
  void c.defragment().then(
    () => (defragEnded = true),
    () => (defragEnded = true),
  );
  // kill as soon as the compacting copy has started
  const copying = (): boolean => fs.readdirSync(memberDir).some((e) => e.startsWith('db-defrag'));
  for (const deadline = Date.now() + 20_000; !copying(); await new Promise((r) => setTimeout(r, 2))) {
    assert.ok(Date.now() < deadline && !defragEnded, 'the defragment never started its copy');
  }
  const answered = defragEnded;
  await p.kill();
  c.close();
  // the kill landed during the copy: the copy is still there (not yet renamed over the data
  // file) and the defragment never answered
  assert.ok(copying(), 'the copy was still in progress when the member died');
  assert.equal(answered, false, 'the defragment had not answered');
  const again = await restartAndCheck(p, { hash: hk.hash, rev: hk.header!.revision, count });
  assert.deepEqual(fs.readdirSync(memberDir).filter((e) => e.startsWith('db-defrag')), [], 'the interrupted copy is cleaned up');
  // and a full defrag afterwards still works
  const c2 = new EtcdClient({ endpoints: [again.clientUrl], timeoutMs: 30_000 });
  await c2.defragment();
  assert.equal((await c2.hashKV(hk.header!.revision)).hash, hk.hash);
  c2.close();
  await again.stop();
});

test('kill -9 during a snapshot stream leaves a store that opens with nothing lost', async () => {
  const p = await startEtcdesk();
  procs.push(p);
  const c = new EtcdClient({ endpoints: [p.clientUrl], timeoutMs: 30_000 });
  await load(c, 800, 16 * 1024);
  const hk = await c.hashKV(0);
  const count = (await c.range({ key: b('crash/'), range_end: b('crash0'), count_only: true })).count;
  let chunks = 0;
  let killed: Promise<void> | undefined;
  const snap = c
    .snapshot(() => {
      // die mid-stream, after the first chunks arrived
      if (++chunks === 2) killed = p.kill();
    })
    .catch((e: unknown) => e);
  const res = await snap;
  await killed;
  assert.ok(res instanceof Error || chunks >= 2, 'the stream was cut');
  c.close();
  const again = await restartAndCheck(p, { hash: hk.hash, rev: hk.header!.revision, count });
  await again.stop();
});
