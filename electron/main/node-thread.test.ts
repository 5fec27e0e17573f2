// The app hosts each node in its own worker thread: a started node serves
// gRPC from a thread that is not main's; stop halts that thread (its port
// refuses afterwards); a node that dies on its own (disk full) reports its
// fatal message to main; the local cluster's Stop halts one member's thread
// and says so at once, while the others elect a leader.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EtcdClient } from '../../node-core/index';
import { freePort, nodeCoreEngine } from './node-host';
import { startNodeThread, type NodeThread } from './node-thread';

const MiB = 1024 * 1024;
const dirs: string[] = [];
const mounted: string[] = [];
after(() => {
  for (const d of mounted) execFileSync('umount', ['-l', d], { stdio: 'pipe' });
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-thread-'));
  dirs.push(d);
  return d;
}

async function single(dataDir: string): Promise<NodeThread> {
  const c = `http://127.0.0.1:${await freePort()}`;
  const p = `http://127.0.0.1:${await freePort()}`;
  return startNodeThread({
    name: 't1',
    config: { name: 't1', dataDir, listenClientUrls: [c], advertiseClientUrls: [c], listenPeerUrls: [p], initialAdvertisePeerUrls: [p], initialCluster: `t1=${p}`, initialClusterToken: 'thread-test' },
  });
}

describe('a node in a worker thread', { timeout: 120_000 }, () => {
  it('serves gRPC from its own thread; stop halts the thread and its port refuses', async () => {
    const t = await single(path.join(tempDir(), 'node'));
    assert.ok(t.threadId > 0, 'hosted off the main thread');
    const client = new EtcdClient({ endpoints: t.clientUrls, timeoutMs: 5000 });
    try {
      await client.put({ key: Buffer.from('k'), value: Buffer.from('v') });
      assert.equal((await client.range({ key: Buffer.from('k') })).kvs[0]?.value.toString(), 'v');
      assert.equal(t.exited, false);
      await t.stop();
      assert.equal(t.exited, true, 'the thread has exited');
      assert.equal(await t.closed, undefined, 'a stop asked for is no death');
      await assert.rejects(new EtcdClient({ endpoints: t.clientUrls, timeoutMs: 2000 }).status(), 'nothing answers on its port');
    } finally {
      client.close();
    }
  });

  it('a start that fails is refused with the node\'s error, and its thread goes', async () => {
    const dir = tempDir();
    const first = await single(path.join(dir, 'a'));
    try {
      // the same client port again: the second node cannot listen
      const url = first.clientUrls[0];
      const p = `http://127.0.0.1:${await freePort()}`;
      await assert.rejects(
        startNodeThread({ name: 't2', config: { name: 't2', dataDir: path.join(dir, 'b'), listenClientUrls: [url], advertiseClientUrls: [url], listenPeerUrls: [p], initialAdvertisePeerUrls: [p], initialCluster: `t2=${p}` } }),
        (e: Error & { code?: string }) => e.code === 'EADDRINUSE' || /EADDRINUSE/.test(e.message),
      );
    } finally {
      await first.stop();
    }
  });

  it('disk full: the node\'s fatal error reaches main as its death, with the file', async () => {
    const dir = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${28 * MiB}`, 'tmpfs', dir], { stdio: 'pipe' });
    mounted.push(dir);
    const t = await single(path.join(dir, 'node'));
    const client = new EtcdClient({ endpoints: t.clientUrls, timeoutMs: 5000 });
    try {
      let next = 0;
      let failed = false;
      const writer = async (): Promise<void> => {
        while (!failed && next < 1500) {
          const i = next++;
          await client.put({ key: Buffer.from(`k${i}`), value: Buffer.alloc(100 * 1024, i % 251) }).catch(() => (failed = true));
        }
      };
      await Promise.all([writer(), writer(), writer(), writer()]);
      assert.ok(failed, 'the disk never filled');
      const why = await t.closed;
      assert.match(why ?? '', /^node t1 stopped: .*\/(wal\/[0-9a-f]{16}\.wal|db\/data\.mdb): no space left on device/);
      assert.equal(t.exited, true, 'the dead node\'s thread is gone');
    } finally {
      client.close();
      await t.stop();
    }
  });

  it('local cluster: Stop halts one member\'s thread and says so before it has finished; the others elect a leader', async () => {
    const hosted = await nodeCoreEngine().startCluster!(tempDir(), 0);
    const local = hosted.local!;
    try {
      const leaderOf = async (url: string): Promise<bigint> => {
        const one = new EtcdClient({ endpoints: [url], timeoutMs: 2000 });
        try {
          return (await one.status()).leader;
        } finally {
          one.close();
        }
      };
      const before = local.members();
      assert.deepEqual(before.map((m) => m.running), [true, true, true]);
      const seen: boolean[][] = [];
      const off = local.onChange(() => seen.push(local.members().map((m) => m.running)));
      const stopping = local.stopMember(0);
      assert.deepEqual(seen[0], [false, true, true], 'told at once, before the stop completes');
      await stopping;
      off();
      await assert.rejects(leaderOf(before[0].clientUrl), 'the stopped member answers nothing');
      // the two left keep (or elect) a leader that is not the stopped one
      const ids = new Set<bigint>();
      for (const m of before.slice(1)) {
        for (let i = 0; ; i++) {
          const l = await leaderOf(m.clientUrl).catch(() => 0n);
          if (l !== 0n) {
            ids.add(l);
            break;
          }
          assert.ok(i < 100, 'no leader among the two left');
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.equal(ids.size, 1);
      await local.restartMember(0);
      assert.equal(local.members()[0].running, true);
      assert.ok(await leaderOf(before[0].clientUrl));
    } finally {
      await hosted.stop();
    }
  });
});
