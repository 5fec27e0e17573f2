// Auto compaction against etcd's v3compactor semantics, on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Errors } from '../errors';
import { parseRetention, startAutoCompaction, startPeriodic, startRevision, type Compactable, type CompactorClock } from './compactor';

class FakeClock implements CompactorClock {
  t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): { cancel(): void } {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return { cancel: () => (this.timers = this.timers.filter((x) => x.id !== id)) };
  }
  /** Advances time, firing due timers in order (and letting their async work settle). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    this.t = end;
  }
}

const quiet = { info: () => undefined, warn: () => undefined };

function target(): Compactable & { revNow: number; compacted: number[]; fail?: Error } {
  const t = {
    revNow: 1,
    compacted: [] as number[],
    fail: undefined as Error | undefined,
    rev: () => t.revNow,
    compact: async (rev: number) => {
      if (t.fail) throw t.fail;
      t.compacted.push(rev);
    },
    log: quiet,
  };
  return t;
}

test('parseRetention: bare numbers are hours (periodic) or revisions; durations as Go parses them', () => {
  assert.equal(parseRetention('periodic', '1'), 3600_000);
  assert.equal(parseRetention('periodic', '0'), 0);
  assert.equal(parseRetention('periodic', '30m'), 1800_000);
  assert.equal(parseRetention('periodic', '1h30m'), 5400_000);
  assert.equal(parseRetention('revision', '1000'), 1000);
  assert.throws(() => parseRetention('periodic', 'abc'), /error parsing CompactionRetention/);
});

test('periodic: first compaction after one period at the revision of one period ago, then every period (≤ 1h)', async () => {
  const clock = new FakeClock();
  const c = target();
  const period = 10_000; // samples every 1 s, 11 samples kept
  const p = startPeriodic(c, period, clock);
  for (let s = 1; s <= 10; s++) {
    c.revNow = 100 + s * 10;
    await clock.advance(1000);
  }
  // one period elapsed: compacts at the oldest sample, taken at t=0 (rev 1)
  assert.deepEqual(c.compacted, [1]);
  for (let s = 11; s <= 20; s++) {
    c.revNow = 100 + s * 10;
    await clock.advance(1000);
  }
  // next one a period later, at the oldest of the period/interval + 1 samples kept
  // (etcd samples before waiting: at t=20 s that is the t=9 s sample, rev 190)
  assert.deepEqual(c.compacted, [1, 190]);
  p.stop();
});

test('periodic: paused members do not compact; a failure is retried at the next sample', async () => {
  const clock = new FakeClock();
  const c = target();
  const p = startPeriodic(c, 10_000, clock);
  p.pause();
  await clock.advance(30_000);
  assert.deepEqual(c.compacted, []);
  p.resume();
  c.fail = Errors.NoLeader;
  await clock.advance(1000);
  assert.deepEqual(c.compacted, []);
  c.fail = undefined;
  await clock.advance(1000);
  assert.equal(c.compacted.length, 1);
  // ErrCompacted counts as success: no retry storm
  c.fail = Errors.Compacted;
  await clock.advance(10_000);
  c.fail = undefined;
  await clock.advance(5_000);
  assert.equal(c.compacted.length, 1);
  p.stop();
});

test('revision: every interval compacts at rev − retention, skipping unchanged and non-positive targets', async () => {
  const clock = new FakeClock();
  const c = target();
  const r = startRevision(c, 100, clock, 5 * 60_000);
  c.revNow = 50;
  await clock.advance(5 * 60_000);
  assert.deepEqual(c.compacted, []);
  c.revNow = 350;
  await clock.advance(5 * 60_000);
  assert.deepEqual(c.compacted, [250]);
  await clock.advance(5 * 60_000);
  assert.deepEqual(c.compacted, [250]);
  c.revNow = 1000;
  await clock.advance(5 * 60_000);
  assert.deepEqual(c.compacted, [250, 900]);
  r.stop();
});

test('startAutoCompaction: only the leader proposes, through propose({compaction})', async () => {
  const clock = new FakeClock();
  const proposed: number[] = [];
  let leaderCb: ((l: boolean) => void) | undefined;
  let closeNode!: () => void;
  const host = {
    config: { autoCompactionMode: 'revision' as const, autoCompactionRetention: '10' },
    mvcc: { rev: 100 },
    log: quiet,
    propose: async (req: { compaction: { revision: number } }) => {
      proposed.push(req.compaction.revision);
    },
    onLeaderChange: (cb: (l: boolean) => void) => {
      leaderCb = cb;
      return () => (leaderCb = undefined);
    },
    closed: new Promise<void>((r) => (closeNode = r)),
  };
  const c = startAutoCompaction(host, clock);
  assert.ok(c);
  await clock.advance(5 * 60_000);
  assert.deepEqual(proposed, [], 'not leader: nothing proposed');
  leaderCb!(true);
  await clock.advance(5 * 60_000);
  assert.deepEqual(proposed, [90]);
  leaderCb!(false);
  host.mvcc.rev = 200;
  await clock.advance(5 * 60_000);
  assert.deepEqual(proposed, [90]);
  closeNode();
  await new Promise((r) => setImmediate(r));
  assert.equal(leaderCb, undefined);
  assert.equal(startAutoCompaction({ ...host, config: { autoCompactionMode: 'periodic', autoCompactionRetention: '0' } }, clock), undefined);
});

test('a member with --auto-compaction-retention=1s compacts through the log on its own', async () => {
  const { startNode } = await import('../server/start');
  const { EtcdClient } = await import('../client/client');
  const { silentLogger } = await import('../support/logger');
  const { freePort, tempDir } = await import('../testing/processes');
  const peer = `http://127.0.0.1:${await freePort()}`;
  const r = await startNode(
    { dataDir: tempDir('autocompact'), name: 'm', listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [peer], initialAdvertisePeerUrls: [peer], initialCluster: `m=${peer}`, autoCompactionMode: 'periodic', autoCompactionRetention: '1s' },
    { logger: silentLogger },
  );
  const c = new EtcdClient({ endpoints: [r.clientUrls[0]] });
  try {
    for (let i = 0; i < 10; i++) await c.put({ key: Buffer.from('k'), value: Buffer.from(String(i)) });
    const deadline = Date.now() + 10_000;
    let compactRev = -1;
    while (compactRev <= 1 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 200));
      compactRev = (await c.hashKV(0)).compact_revision;
    }
    assert.ok(compactRev > 1, `compacted (compact revision ${compactRev})`);
    await assert.rejects(c.range({ key: Buffer.from('k'), revision: 1 }), /required revision has been compacted/);
  } finally {
    c.close();
    await r.stop();
  }
});
