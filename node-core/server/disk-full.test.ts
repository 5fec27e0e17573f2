// A full disk, as etcd meets it: the member logs a fatal line saying
// `no space left on device` with the file, and exits non-zero (never an
// unhandled rejection); once space is freed it restarts and every write it
// acknowledged is there (the write-ahead log replays into the data file).
// The data dir sits on a small tmpfs; its size decides which file fills
// first: the log (a new 16 MiB segment does not fit) or the LMDB data file.
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { StorageError } from '../backend/storage-error';
import { EtcdClient } from '../client';
import { silentLogger } from '../support/logger';
import { freePort, startEtcdesk, tempDir } from '../testing/processes';
import { startNode } from './start';

const MiB = 1024 * 1024;
const VALUE_BYTES = 100 * 1024;
const mounted: string[] = [];

/** Mounts a tmpfs of `bytes` at a new directory (we run as root here and in CI; failing to mount fails the test). */
function mountTmpfs(bytes: number): string {
  const dir = tempDir('disk-full');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.push(dir);
  return dir;
}

after(() => {
  for (const d of mounted) execFileSync('umount', ['-l', d], { stdio: 'pipe' });
});

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

const valueOf = (i: number): Buffer => Buffer.alloc(VALUE_BYTES, i % 251);

/** Puts 100 KiB values from 4 writers until the member stops answering; returns the keys it acknowledged. */
async function fillUntilFailure(endpoint: string, stopped: ChildProcess | Promise<unknown>): Promise<Set<number>> {
  const client = new EtcdClient({ endpoints: [endpoint], timeoutMs: 15_000 });
  const acked = new Set<number>();
  let next = 0;
  let failed = false;
  const writer = async (): Promise<void> => {
    while (!failed && next < 1500) {
      const i = next++;
      try {
        await client.put({ key: Buffer.from(`k${i}`), value: valueOf(i) });
        acked.add(i);
      } catch {
        failed = true;
      }
    }
  };
  try {
    await Promise.all([writer(), writer(), writer(), writer()]);
  } finally {
    client.close();
  }
  assert.ok(failed, `1500 puts of ${VALUE_BYTES} bytes fitted; the disk never filled`);
  assert.ok(acked.size > 10, `only ${acked.size} puts acknowledged before the failure`);
  await ('pid' in stopped ? exited(stopped) : stopped);
  return acked;
}

async function diskFull(tmpfsBytes: number, fullFile: RegExp): Promise<void> {
  const mnt = mountTmpfs(tmpfsBytes);
  const dataDir = path.join(mnt, 'data');
  const node = await startEtcdesk({ dataDir, extraArgs: ['--log-level', 'warn'] });
  const acked = await fillUntilFailure(node.endpoint, node.proc);
  const out = node.output();
  assert.equal(node.proc.exitCode, 1, `exit ${node.proc.exitCode} / ${node.proc.signalCode}:\n${out.slice(-3000)}`);
  const fatal = out.split('\n').find((l) => l.includes('"level":"fatal"'));
  assert.ok(fatal, `no fatal line:\n${out.slice(-3000)}`);
  assert.match(fatal, /no space left on device/);
  assert.ok(fatal.includes(dataDir), fatal);
  assert.match(fatal, fullFile);
  assert.doesNotMatch(out, /unhandled|triggerUncaughtException|Node\.js v\d/i, 'the process ended through the fatal path, not a crash');

  // space is freed: the member starts and serves every acknowledged write
  execFileSync('mount', ['-o', `remount,size=${tmpfsBytes + 512 * MiB}`, mnt], { stdio: 'pipe' });
  const again = await startEtcdesk({ dataDir, extraArgs: ['--log-level', 'warn'] });
  const client = new EtcdClient({ endpoints: [again.endpoint] });
  try {
    const lost: number[] = [];
    for (const i of acked) {
      const kv = await client.get(`k${i}`);
      if (!kv || !Buffer.from(kv.value).equals(valueOf(i))) lost.push(i);
    }
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged keys lost or wrong`);
    // and it takes writes again
    await client.put({ key: Buffer.from('after'), value: Buffer.from('space freed') });
    assert.equal(Buffer.from((await client.get('after'))!.value).toString(), 'space freed');
  } finally {
    client.close();
    await again.stop();
  }
}

describe('disk full', () => {
  it('the write-ahead log cannot get a new segment: fatal, exit 1, nothing acknowledged lost', { timeout: 180_000 }, async () => {
    await diskFull(40 * MiB, /member\/wal\/[0-9a-f]{16}\.wal/);
  });

  it('the LMDB data file cannot grow: fatal, exit 1, nothing acknowledged lost', { timeout: 180_000 }, async () => {
    await diskFull(28 * MiB, /member\/db\/data\.mdb/);
  });

  it('embedded in a host process: the node stops and reports the failure; the host goes on, with no unhandled rejection', { timeout: 180_000 }, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const mnt = mountTmpfs(28 * MiB);
      const peer = `http://127.0.0.1:${await freePort()}`;
      const cfg = { dataDir: path.join(mnt, 'data'), name: 'm', listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [peer], initialAdvertisePeerUrls: [peer], initialCluster: `m=${peer}` };
      const running = await startNode(cfg, { logger: silentLogger });
      const acked = await fillUntilFailure(running.clientUrls[0], running.closed);
      const failure = running.node.fatalError;
      assert.ok(failure instanceof StorageError, String(failure));
      assert.equal(failure.kind, 'no-space');
      assert.match(failure.message, /no space left on device/);
      // the failure names the file that found the disk full: at 28 MiB usually the data file, but the next WAL
      // segment may get there first (which fills first is each of the tests above's own subject, not this one's)
      assert.ok(failure.path === path.join(cfg.dataDir, 'member', 'db', 'data.mdb') || /member\/wal\/[0-9a-f]{16}\.wal$/.test(failure.path ?? ''), String(failure.path));
      // the host restarts it once space is freed, in the same process
      execFileSync('mount', ['-o', `remount,size=${512 * MiB}`, mnt], { stdio: 'pipe' });
      const again = await startNode(cfg, { logger: silentLogger });
      const client = new EtcdClient({ endpoints: [again.clientUrls[0]] });
      try {
        for (const i of acked) assert.ok(Buffer.from((await client.get(`k${i}`))?.value ?? []).equals(valueOf(i)), `k${i}`);
      } finally {
        client.close();
        await again.stop();
      }
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
