// A full garbage collection once the process goes quiet after heavy
// allocation (issue #15). V8 grows its old space through a write burst and,
// with no more allocation to trigger one, never runs the major GC that would
// give the garbage back: after 200,000 puts the node held ~150 MB of dead
// objects (RSS 2.2x etcd's), while a forced full GC took it back at once. A
// Go server does the same on its own (its GC and scavenger return memory when
// idle); V8 does it only under allocation pressure. So: when the event loop
// has been nearly idle for a whole interval and the heap's committed size plus
// the Buffers' memory (a full Range's response is mostly that) grew well past
// their size after the last such collection, run one, compacting. A busy loop is never
// paused for it (the pause, ~50-150 ms for a 200,000-key store, happens only
// when there is nothing else to do).
//
// A long quiet stretch (6 s) gets a second look: growth too small for the
// first rule (a full Range's 55 MB of response on a 200,000-key store, under
// half its size) is collected in full once it passes 16 MB; else, if the young
// generation is grown, one scavenge (well under a millisecond on an empty one).
// Either lets V8 shrink the young generation, whose semi-spaces grow to 16 MB
// each under a write load (29 of the 266 MB RSS after loading 200,000 keys):
// V8 does so only in a GC that finds allocation slow over the last ~5 s,
// which an idle process never runs.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

export interface IdleGcOptions {
  /** How often the loop's utilisation and the heap are looked at (ms): a quarter second with nothing to do ends a burst. */
  intervalMs?: number;
  /** At most this share of the last interval busy counts as idle. */
  idleUtilization?: number;
  /** Collect once the committed heap + external (Buffer) memory grew this many bytes past its size after the last collection... */
  minGrowthBytes?: number;
  /** ...and this fraction of that size (a big store's normal churn is not worth a pause). */
  minGrowthRatio?: number;
  /** Called after each collection (the CLI logs it at debug level). */
  onCollect?: (r: { ms: number; heapBefore: number; heapAfter: number }) => void;
  /** Quiet this long (ms) before the young generation is offered back: V8's allocation-rate window is 5 s. */
  youngQuietMs?: number;
  /** After a long quiet stretch (youngQuietMs), growth past this many bytes is collected in full. */
  settleGrowthBytes?: number;
  /** A young generation committed past this many bytes is worth the scavenge. */
  youngTrimBytes?: number;
  /** Called after each young-generation trim that gave memory back, with its committed size before and after. */
  onTrimYoung?: (r: { before: number; after: number }) => void;
}

export interface IdleGc {
  /** Full collections run so far (for tests and probes). */
  readonly runs: number;
  /** Young-generation trims that gave memory back so far. */
  readonly youngTrims: number;
  stop(): void;
}

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

/** V8's gc() without --expose-gc on the command line: the flag set at run time exposes it to new contexts. */
function gcFunction(): GcFn | undefined {
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as GcFn) : undefined;
  } catch {
    return undefined;
  }
}

/** Scavenges a quiet stretch may try before leaving the young generation as it is. */
const TRIM_TRIES = 5;

/** Bytes the young generation (V8's new space) holds committed. */
const youngCommitted = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0;

/** What a collection can give back: V8's committed heap and the memory Buffers hold outside it. */
const footprint = (h: v8.HeapInfo): number => h.total_heap_size + h.external_memory;

export function startIdleGc(opts: IdleGcOptions = {}): IdleGc {
  const intervalMs = opts.intervalMs ?? 250;
  const idleUtilization = opts.idleUtilization ?? 0.05;
  const minGrowth = opts.minGrowthBytes ?? 32 * 1024 * 1024;
  const minRatio = opts.minGrowthRatio ?? 0.5;
  const youngQuietMs = opts.youngQuietMs ?? 6000;
  const youngTrimBytes = opts.youngTrimBytes ?? 4 * 1024 * 1024;
  const settleGrowth = opts.settleGrowthBytes ?? 16 * 1024 * 1024;
  let gc: GcFn | undefined | null = null;
  let runs = 0;
  let youngTrims = 0;
  // when the loop's current quiet stretch began (null while busy), whether it had its second look,
  // and the young-generation trims it tried (the last at trimAt)
  let quietSince: number | null = null;
  let settled = false;
  let trimTries = 0;
  let trimAt = 0;
  // the heap's committed size plus Buffers' memory after the last collection: what the RSS is made of
  let base = footprint(v8.getHeapStatistics());
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const last = performance.eventLoopUtilization(now, elu);
    elu = now;
    const heap = v8.getHeapStatistics();
    // V8 gave pages back on its own (its memory reducer): measure growth from there
    const size = footprint(heap);
    if (size < base) base = size;
    if (last.utilization > idleUtilization) {
      quietSince = null;
      settled = false;
      trimTries = 0;
      return;
    }
    const t = performance.now();
    quietSince ??= t;
    if (size - base >= Math.max(minGrowth, base * minRatio)) collect(size);
    else if (!settled && t - quietSince >= youngQuietMs) {
      // once per quiet stretch: asking again every interval would only repeat the work
      settled = true;
      // a long quiet stretch takes back smaller growth too (a full Range's response on a big store
      // stays under half its size); the full collection then also shrinks the young generation
      if (size - base >= settleGrowth) collect(size);
      else trimYoung();
      trimAt = t;
    } else if (settled && trimTries > 0 && trimTries < TRIM_TRIES && t - trimAt >= 1000 && youngCommitted() > youngTrimBytes) {
      // V8's reading of the allocation rate is sometimes not yet low at the first look: again, a
      // second later, a few times
      trimYoung();
      trimAt = t;
    }
  }, intervalMs);
  timer.unref();
  const gcFn = (): GcFn | undefined => {
    // exposed on first need only: a member that never bursts keeps V8's flags untouched
    if (gc === null) gc = gcFunction();
    return gc;
  };
  function collect(before: number): void {
    const fn = gcFn();
    if (!fn) return;
    const t0 = performance.now();
    // compacting: a plain full GC frees the dead objects but leaves the old
    // space's half-empty pages committed (170 MB for 72 live after a load);
    // moving the survivors together lets V8 hand the pages back
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      fn();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
    runs++;
    base = footprint(v8.getHeapStatistics());
    opts.onCollect?.({ ms: performance.now() - t0, heapBefore: before, heapAfter: base });
    // the pause itself must not make the next interval look busy
    elu = performance.eventLoopUtilization();
  }
  function trimYoung(): void {
    const before = youngCommitted();
    if (before <= youngTrimBytes) return;
    const fn = gcFn();
    if (!fn) return;
    trimTries++;
    fn({ type: 'minor' });
    const after = youngCommitted();
    if (after >= before) return;
    youngTrims++;
    opts.onTrimYoung?.({ before, after });
    elu = performance.eventLoopUtilization();
  }
  return {
    get runs() {
      return runs;
    },
    get youngTrims() {
      return youngTrims;
    },
    stop: () => clearInterval(timer),
  };
}
