// The idle full GC (issue #15): after a burst of allocation leaves the heap
// grown (or Buffers piled up), the first quiet interval collects and gives the
// memory back (the node's RSS after a load, after a full Range), and a quiet
// stretch gives back the young generation a write load grew; while the loop
// stays busy it never pauses it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import { startIdleGc } from './idle-gc';

const MB = 1024 * 1024;
const youngGeneration = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.physical_space_size;

/** Many small objects kept a while (promoted to old space), then 9 in 10 dropped: a fragmented old space. */
function burst(): object[] {
  const all: object[] = [];
  for (let i = 0; i < 1_500_000; i++) all.push({ i, s: `key/${i}`, b: [i, i + 1] });
  return all.filter((_, i) => i % 10 === 0);
}

describe('idle full GC', () => {
  it('collects once the loop goes quiet after a burst, and the heap shrinks', async () => {
    let kept: object[] = [];
    let collected!: (r: { heapBefore: number; heapAfter: number }) => void;
    const done = new Promise<{ heapBefore: number; heapAfter: number }>((r) => (collected = r));
    const gc = startIdleGc({ intervalMs: 50, minGrowthBytes: 16 * MB, minGrowthRatio: 0, onCollect: collected });
    try {
      kept = burst();
      const grown = v8.getHeapStatistics().total_heap_size;
      // the collector's timer is unref'd (it never keeps a process alive): this one waits for it
      let timeout: NodeJS.Timeout | undefined;
      const r = await Promise.race([done, new Promise<never>((_, rej) => (timeout = setTimeout(() => rej(new Error('no collection within 20 s')), 20_000)))]);
      clearTimeout(timeout);
      assert.equal(gc.runs, 1);
      assert.ok(r.heapBefore >= grown - 16 * MB, `collected the grown heap (${r.heapBefore / MB} MB, grown to ${grown / MB} MB)`);
      // compacted: the survivors (150,000 objects, one in ten) need far fewer pages than the burst
      // (a plain full GC frees the dead objects but keeps nearly every page: ~245 of ~285 MB)
      assert.ok(r.heapAfter < r.heapBefore / 2, `heap ${r.heapBefore / MB} → ${r.heapAfter / MB} MB`);
      assert.equal(kept.length, 150_000);
    } finally {
      gc.stop();
    }
  });

  it('gives back the young generation a burst grew, once the loop has been quiet for V8 to see allocation slow', { timeout: 30_000 }, async () => {
    let trimmed!: (r: { before: number; after: number }) => void;
    const done = new Promise<{ before: number; after: number }>((r) => (trimmed = r));
    // no full collection in the way: only the young generation's trim
    const gc = startIdleGc({ intervalMs: 50, minGrowthBytes: 1024 * MB, settleGrowthBytes: 1024 * MB, onTrimYoung: trimmed });
    try {
      let churn: object[] = [];
      for (let i = 0; i < 3_000_000; i++) {
        churn.push({ i, b: [i] });
        if (churn.length > 50_000) churn = [];
      }
      const grown = youngGeneration();
      assert.ok(grown >= 8 * MB, `the burst grew the young generation (${grown / MB} MB)`);
      let timeout: NodeJS.Timeout | undefined;
      const r = await Promise.race([done, new Promise<never>((_, rej) => (timeout = setTimeout(() => rej(new Error('no trim within 20 s')), 20_000)))]);
      clearTimeout(timeout);
      assert.equal(gc.youngTrims, 1);
      assert.ok(r.before >= 8 * MB && r.after <= 2 * MB, `young generation ${r.before / MB} → ${r.after / MB} MB`);
      assert.ok(youngGeneration() <= 2 * MB);
      assert.equal(gc.runs, 0);
    } finally {
      gc.stop();
    }
  });

  it('a long quiet stretch collects growth too small for the first rule (a full Range on a big store)', async () => {
    let collected!: (r: { heapBefore: number; heapAfter: number }) => void;
    const done = new Promise<{ heapBefore: number; heapAfter: number }>((r) => (collected = r));
    // the first rule wants 1 GiB of growth: only the quiet stretch's second look can collect
    const gc = startIdleGc({ intervalMs: 50, minGrowthBytes: 1024 * MB, youngQuietMs: 500, settleGrowthBytes: 16 * MB, onCollect: collected });
    try {
      let response: Buffer[] | undefined = Array.from({ length: 768 }, () => Buffer.alloc(64 * 1024, 1));
      assert.equal(response.length, 768);
      response = undefined;
      const t0 = Date.now();
      let timeout: NodeJS.Timeout | undefined;
      const r = await Promise.race([done, new Promise<never>((_, rej) => (timeout = setTimeout(() => rej(new Error('no collection within 20 s')), 20_000)))]);
      clearTimeout(timeout);
      assert.ok(Date.now() - t0 >= 400, 'not before the quiet stretch');
      assert.equal(gc.runs, 1);
      assert.ok(r.heapBefore >= 48 * MB, `collected with heap + external at ${r.heapBefore / MB} MB`);
      // the Buffers' memory is released by V8's array buffer sweeper, just after the collection
      let buffers = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 40 && buffers > 16 * MB; i++) {
        await new Promise((res) => setTimeout(res, 50));
        buffers = process.memoryUsage().arrayBuffers;
      }
      assert.ok(buffers <= 16 * MB, `the response's Buffers were given back (${buffers / MB} MB left)`);
    } finally {
      gc.stop();
    }
  });

  it("collects after a burst of Buffers (a full Range's response), which live outside V8's heap", async () => {
    let collected!: (r: { heapBefore: number; heapAfter: number }) => void;
    const done = new Promise<{ heapBefore: number; heapAfter: number }>((r) => (collected = r));
    // the first rule alone (no second look within the test)
    const gc = startIdleGc({ intervalMs: 50, minGrowthBytes: 32 * MB, minGrowthRatio: 0, youngQuietMs: 60_000, onCollect: collected });
    try {
      // 96 MB in 64 KiB Buffers: next to nothing on the JS heap itself
      let response: Buffer[] | undefined = Array.from({ length: 1536 }, () => Buffer.alloc(64 * 1024, 1));
      assert.equal(response.length, 1536);
      response = undefined;
      let timeout: NodeJS.Timeout | undefined;
      const r = await Promise.race([done, new Promise<never>((_, rej) => (timeout = setTimeout(() => rej(new Error('no collection within 20 s')), 20_000)))]);
      clearTimeout(timeout);
      // triggered by the Buffers (the JS heap alone grew by far less than the 32 MB threshold)
      assert.ok(r.heapBefore > 64 * MB, `collected with heap + external at ${r.heapBefore / MB} MB`);
    } finally {
      gc.stop();
    }
  });

  it('does not pause a busy loop, however much garbage it makes', async () => {
    const gc = startIdleGc({ intervalMs: 20, minGrowthBytes: 1 * MB, minGrowthRatio: 0 });
    const heapBefore = v8.getHeapStatistics().total_heap_size;
    try {
      // a loop busy for 20 intervals (turns of setImmediate, as request handling is), its heap growing all along
      const end = performance.now() + 400;
      const garbage: object[] = [];
      await new Promise<void>((resolve) => {
        const spin = (): void => {
          const t = performance.now() + 5;
          while (performance.now() < t) for (let i = 0; i < 1000; i++) garbage.push({ i, s: `key/${i}` });
          if (performance.now() < end) setImmediate(spin);
          else resolve();
        };
        spin();
      });
      assert.ok(v8.getHeapStatistics().total_heap_size > heapBefore + 8 * MB, 'the heap grew past the threshold');
      garbage.length = 0;
      assert.equal(gc.runs, 0, 'no collection while the loop was busy');
    } finally {
      gc.stop();
    }
  });
});
