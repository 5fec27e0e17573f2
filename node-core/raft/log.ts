// The raft log: stable entries behind Storage plus the unstable tail (and possibly an incoming
// snapshot) that the caller has not persisted yet.
import { ErrCompacted, ErrUnavailable, invariant } from './errors';
import type { Storage } from './storage';
import { type Entry, type Snapshot, limitSize } from './types';

/** Entries and snapshot not yet handed to Storage; offset is the index of entries[0]. */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot) return this.snapshot.metadata.index;
    return undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset].term;
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) return;
    // Only drop entries if the term still matches: a newer leader may have replaced them
    // while the write was in flight.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      // in place, as Go's append: a leader appends one proposal at a time, and copying the whole
      // tail each time made a Ready's worth of proposals quadratic. Nothing outside this class holds
      // this array (unstableEntries and slice hand out copies).
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable; storage's copy of the overlap gets overwritten on persist.
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = [...this.slice(this.offset, after), ...ents];
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(lo <= hi && lo >= this.offset && hi <= this.offset + this.entries.length, () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. */
  committed: number;
  /** Highest index the application has been told to apply. Always <= committed. */
  applied: number;

  constructor(
    readonly storage: Storage,
    readonly maxNextEntsSize: number = Number.POSITIVE_INFINITY,
  ) {
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.Entries)=${this.unstable.entries.length}`;
  }

  /**
   * Appends ents after (index, logTerm) if that entry matches, truncating a conflicting suffix.
   * Returns the last index of the new entries, or undefined when the log does not match.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, () => `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    invariant(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry that is new or conflicts with the log (0 if all are present).
   * Entries must be contiguous.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.length === 0 ? [] : [...this.unstable.entries];
  }

  /** Committed entries not yet handed out for application. */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined && this.unstable.snapshot.metadata.index !== 0;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // Never decrease: a leader may send a commit index lower than what we already know.
    if (this.committed < toCommit) {
      invariant(this.lastIndex() >= toCommit, () => `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(this.committed >= i && i >= this.applied, () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /**
   * The term of entry i: a number, 0 when i is outside [firstIndex-1, lastIndex], or an error
   * value when storage has compacted it.
   */
  termOrError(i: number): number | ErrCompacted | ErrUnavailable {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof ErrCompacted || e instanceof ErrUnavailable) return e;
      throw e;
    }
  }

  /** Term of i, or undefined if it is compacted/unavailable. */
  term(i: number): number | undefined {
    const t = this.termOrError(i);
    return typeof t === 'number' ? t : undefined;
  }

  /** Entries from i to the end, size-limited; throws ErrCompacted if i is below firstIndex. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), Number.POSITIVE_INFINITY);
      } catch (e) {
        // Compaction raced the read; try again from the new first index.
        if (!(e instanceof ErrCompacted)) throw e;
      }
    }
  }

  /** Whether a log ending at (lasti, term) is at least as up to date as ours (the vote rule). */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    const t = this.termOrError(i);
    return typeof t === 'number' && t === term;
  }

  /** Commits maxIndex if it carries the given (current) term: Raft's rule against old-term commits. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed) {
      const t = this.termOrError(maxIndex);
      if ((typeof t === 'number' ? t : 0) === term) {
        this.commitTo(maxIndex);
        return true;
      }
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi), size-limited. Throws ErrCompacted if lo was compacted. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    if (lo < this.unstable.offset) {
      const upTo = Math.min(hi, this.unstable.offset);
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, upTo, maxSize);
      } catch (e) {
        if (e instanceof ErrUnavailable) {
          invariant(false, () => `entries[${lo}:${upTo}) is unavailable from storage`);
        }
        throw e;
      }
      // Storage stopped early because of the size limit: the rest would not fit either.
      if (stored.length < upTo - lo) return stored;
      ents = stored;
    }
    if (hi > this.unstable.offset) {
      const u = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      ents = ents.length > 0 ? [...ents, ...u] : u;
    }
    return limitSize(ents, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted();
    const length = this.lastIndex() + 1 - fi;
    invariant(hi <= fi + length, () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
