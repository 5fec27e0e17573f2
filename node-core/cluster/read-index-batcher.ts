// Linearizable reads (etcd's linearizableReadLoop, pipelined): reads that
// arrive in the same event-loop turn share one ReadIndex round; while rounds
// are outstanding new reads start new rounds, up to MAX_ROUNDS in flight, so
// a round trip to the leader no longer caps read throughput. Each round is
// answered by its own read state (matched by its context) and its reads are
// released once this member has applied up to the read index. A round that
// gets no read state within an election timeout (a leader change dropped
// it) is asked again under a new context.
//
// The only voter, leading, needs no round at all (raft itself answers its
// ReadIndex at once, but with its commit index, which for a single voter runs
// ahead of the disk: every proposal accepted so far, so a read would wait for
// the next batch of writes to be fsynced and applied, as long as a write). No
// other member can acknowledge a write, and this one acknowledges a write only
// once it has applied it, after its fsync: every write acknowledged before the
// read began, on this run or an earlier one, is in the log on disk. So its
// read index is the last index on disk (`localIndex`), and the read is served
// once applied reaches it: at once, in practice.
import { Errors } from '../errors';
import type { IndexWaiter } from './wait-registry';

/** ReadIndex rounds waiting for their read state at once. */
export const MAX_ROUNDS = 8;

interface PendingRead {
  resolve(): void;
  reject(e: Error): void;
  deadline: number;
  done: boolean;
}

interface Round {
  reads: PendingRead[];
  sentAt: number;
}

export interface ReadIndexBatcherOptions {
  /**
   * This member's id, in every context: the leader keeps pending ReadIndex
   * requests by context, and one member's round must never be taken for
   * another's (a duplicate is dropped and never answered).
   */
  memberId: bigint;
  /** Starts a ReadIndex with this context (raw node readIndex + schedule a Ready). */
  sendReadIndex(ctx: Buffer): void;
  /** The applied index, notified by the apply path. */
  applied: IndexWaiter;
  /** etcd's request timeout: a read not served by then fails with etcdserver: request timed out. */
  timeoutMs: number;
  /** A round without an answer for this long is asked again. */
  retryMs: number;
  /**
   * The read index when this member alone can fix it (the only voter, and
   * leading): the last log index durable on disk. Undefined otherwise (a
   * ReadIndex round through raft).
   */
  localIndex?(): number | undefined;
}

export class ReadIndexBatcher {
  private pending: PendingRead[] = [];
  /** Rounds sent and not yet answered, by context (hex). */
  private readonly rounds = new Map<string, Round>();
  /** Rounds answered, waiting for the apply to reach their index. */
  private readonly applying = new Set<PendingRead[]>();
  private seq = 0;
  private flushScheduled = false;
  private stopped?: Error;

  constructor(private readonly o: ReadIndexBatcherOptions) {}

  /** Resolves once this member has applied everything committed when the read began. */
  read(): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped);
    const local = this.o.localIndex?.();
    if (local !== undefined && this.o.applied.index >= local) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const r: PendingRead = { resolve, reject, deadline: Date.now() + this.o.timeoutMs, done: false };
      if (local !== undefined) this.whenApplied([r], local);
      else {
        this.pending.push(r);
        this.scheduleFlush();
      }
    });
  }

  get inFlight(): number {
    return this.rounds.size;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.rounds.size >= MAX_ROUNDS) return;
    this.flushScheduled = true;
    // reads of the same turn join one round
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.stopped || !this.pending.length || this.rounds.size >= MAX_ROUNDS) return;
    const reads = this.pending;
    this.pending = [];
    this.send({ reads, sentAt: 0 }, Date.now());
  }

  private send(round: Round, now: number): void {
    const ctx = Buffer.allocUnsafe(16);
    ctx.writeBigUInt64BE(this.o.memberId, 0);
    ctx.writeBigUInt64BE(BigInt(++this.seq), 8);
    round.sentAt = now;
    this.rounds.set(ctx.toString('hex'), round);
    this.o.sendReadIndex(ctx);
  }

  /** A read state from raft: releases its round once applied reaches its index. */
  onReadState(ctx: Uint8Array, index: number): void {
    const key = Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
    const round = this.rounds.get(key);
    if (!round) return;
    this.rounds.delete(key);
    this.whenApplied(round.reads, index);
    if (this.pending.length) this.scheduleFlush();
  }

  /** Releases `reads` once this member has applied up to `index`. */
  private whenApplied(reads: PendingRead[], index: number): void {
    const release = (): void => {
      this.applying.delete(reads);
      for (const r of reads) settle(r);
    };
    if (this.o.applied.index >= index) release();
    else {
      this.applying.add(reads);
      this.o.applied.wait(index).then(release, (e: Error) => {
        this.applying.delete(reads);
        for (const r of reads) settle(r, e);
      });
    }
  }

  /** Times out overdue reads and asks again for rounds a leader change lost. */
  sweep(now: number): void {
    const expire = (list: PendingRead[]): PendingRead[] => list.filter((r) => !r.done && (r.deadline > now || (settle(r, Errors.Timeout), false)));
    this.pending = expire(this.pending);
    for (const reads of this.applying) if (!expire(reads).length) this.applying.delete(reads);
    const lost: Round[] = [];
    for (const [key, round] of this.rounds) {
      round.reads = expire(round.reads);
      if (!round.reads.length) this.rounds.delete(key);
      else if (now - round.sentAt > this.o.retryMs) {
        this.rounds.delete(key);
        lost.push(round);
      }
    }
    // a ReadIndex lost to a leader change is never answered: ask again
    for (const round of lost) this.send(round, now);
    if (this.pending.length) this.scheduleFlush();
  }

  stop(e: Error): void {
    this.stopped = e;
    for (const r of this.pending) settle(r, e);
    for (const round of this.rounds.values()) for (const r of round.reads) settle(r, e);
    for (const reads of this.applying) for (const r of reads) settle(r, e);
    this.pending = [];
    this.rounds.clear();
    this.applying.clear();
  }
}

function settle(r: PendingRead, e?: Error): void {
  if (r.done) return;
  r.done = true;
  if (e) r.reject(e);
  else r.resolve();
}
