// Auto compaction, as etcd's v3compactor: --auto-compaction-mode periodic
// (keep the history of the last retention period) or revision (keep the last
// N revisions). It runs on every member so the revision window is known when
// a member takes over, but only the leader proposes Compaction, through the
// log, like any client's compaction.
import { Errors } from '../errors';
import { parseDuration } from './config';

/** What the compactor needs from the node. */
export interface Compactable {
  rev(): number;
  compact(rev: number): Promise<void>;
  log: { info(msg: string, f?: Record<string, unknown>): void; warn(msg: string, f?: Record<string, unknown>): void };
}

/** Timers and time, injectable so tests run hours in milliseconds. */
export interface CompactorClock {
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

export const realClock: CompactorClock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export type CompactorMode = 'periodic' | 'revision';

/**
 * etcd's parseCompactionRetention: a bare integer is hours (periodic) or a
 * revision count (revision); otherwise a Go duration (periodic only in
 * effect). Returns milliseconds for periodic, revisions for revision mode.
 */
export function parseRetention(mode: CompactorMode, retention: string): number {
  if (/^\d+$/.test(retention)) {
    const n = Number(retention);
    return mode === 'revision' ? n : n * 3600_000;
  }
  let ms: number;
  try {
    ms = parseDuration(retention);
  } catch {
    throw new Error(`error parsing CompactionRetention: time: invalid duration "${retention}"`);
  }
  // etcd keeps the time.Duration as is: in revision mode it counts nanoseconds as revisions
  return mode === 'revision' ? Math.round(ms * 1e6) : ms;
}

const HOUR = 3600_000;
/** etcd's revInterval: revision mode checks every five minutes. */
export const REVISION_INTERVAL_MS = 5 * 60_000;

export interface Compactor {
  pause(): void;
  resume(): void;
  stop(): void;
}

function succeeded(e: unknown): boolean {
  return e === undefined || e === Errors.Compacted || (e instanceof Error && e.message === Errors.Compacted.message);
}

/**
 * etcd's Periodic: samples the revision every period/10 (at most 6 min),
 * keeps period/interval + 1 samples, and once a full period has passed since
 * the last success compacts at the oldest sample (the revision of one period
 * ago); afterwards every compaction interval (the period, at most an hour).
 */
export function startPeriodic(c: Compactable, periodMs: number, clock: CompactorClock = realClock): Compactor {
  const compactInterval = Math.min(periodMs, HOUR);
  const retryInterval = compactInterval / 10;
  const retentions = Math.floor(periodMs / retryInterval) + 1;
  const revs: number[] = [];
  let lastSuccess = clock.now();
  let baseInterval = periodMs;
  let paused = false;
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  let busy = false;

  const loop = (): void => {
    revs.push(c.rev());
    if (revs.length > retentions) revs.shift();
    timer = clock.after(retryInterval, () => void tick());
  };
  const tick = async (): Promise<void> => {
    if (stopped) return;
    if (paused || busy || clock.now() - lastSuccess < baseInterval) return loop();
    if (baseInterval === periodMs) baseInterval = compactInterval;
    const rev = revs[0];
    busy = true;
    c.log.info('starting auto periodic compaction', { revision: rev, 'compact-period': `${periodMs}ms` });
    try {
      await c.compact(rev);
      lastSuccess = clock.now();
      c.log.info('completed auto periodic compaction', { revision: rev });
    } catch (e) {
      if (succeeded(e)) lastSuccess = clock.now();
      else c.log.warn('failed auto periodic compaction', { revision: rev, 'retry-interval': `${retryInterval}ms`, error: (e as Error).message });
    } finally {
      busy = false;
    }
    if (!stopped) loop();
  };
  loop();
  return {
    pause: () => (paused = true),
    resume: () => (paused = false),
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}

/** etcd's Revision: every five minutes compacts at current revision − retention, unless unchanged. */
export function startRevision(c: Compactable, retention: number, clock: CompactorClock = realClock, intervalMs = REVISION_INTERVAL_MS): Compactor {
  let prev = 0;
  let paused = false;
  let stopped = false;
  let timer: { cancel(): void } | undefined;
  const schedule = (): void => {
    timer = clock.after(intervalMs, () => void tick());
  };
  const tick = async (): Promise<void> => {
    if (stopped) return;
    const rev = c.rev() - retention;
    if (paused || rev <= 0 || rev === prev) return schedule();
    c.log.info('starting auto revision compaction', { revision: rev, 'revision-compaction-retention': retention });
    try {
      await c.compact(rev);
      prev = rev;
      c.log.info('completed auto revision compaction', { revision: rev });
    } catch (e) {
      if (succeeded(e)) prev = rev;
      else c.log.warn('failed auto revision compaction', { revision: rev, 'retry-interval': `${intervalMs}ms`, error: (e as Error).message });
    }
    if (!stopped) schedule();
  };
  schedule();
  return {
    pause: () => (paused = true),
    resume: () => (paused = false),
    stop: () => {
      stopped = true;
      timer?.cancel();
    },
  };
}

/** Node-side wiring: what EtcdNode gives the compactor. */
export interface CompactorHost {
  readonly config: { autoCompactionMode: CompactorMode; autoCompactionRetention: string };
  readonly mvcc: { readonly rev: number };
  readonly log: Compactable['log'];
  propose(req: { compaction: { revision: number } }): Promise<unknown>;
  onLeaderChange(cb: (isLeader: boolean) => void): () => void;
  readonly closed: Promise<void>;
}

/**
 * Starts auto compaction if configured (retention non-zero): paused until this
 * member leads, paused again when it stops leading, stopped when the node closes.
 */
export function startAutoCompaction(host: CompactorHost, clock: CompactorClock = realClock): Compactor | undefined {
  const mode = host.config.autoCompactionMode;
  const retention = parseRetention(mode, host.config.autoCompactionRetention);
  if (retention <= 0) return undefined;
  const c: Compactable = {
    rev: () => host.mvcc.rev,
    compact: async (rev) => {
      await host.propose({ compaction: { revision: rev } });
    },
    log: host.log,
  };
  const compactor = mode === 'revision' ? startRevision(c, retention, clock) : startPeriodic(c, retention, clock);
  compactor.pause();
  host.log.info('auto compaction enabled', { mode, retention: host.config.autoCompactionRetention });
  const off = host.onLeaderChange((lead) => (lead ? compactor.resume() : compactor.pause()));
  void host.closed.then(() => {
    off();
    compactor.stop();
  });
  return compactor;
}
