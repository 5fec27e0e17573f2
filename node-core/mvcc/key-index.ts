// etcd's keyIndex (mvcc/key_index.go): the revisions of one key, grouped in
// generations. A generation starts with a put that creates the key and ends
// with the tombstone that deletes it; the last generation is empty while the
// key is deleted. Revisions are kept as two parallel number arrays (main,
// sub) so a key costs a few small arrays instead of one object per revision.
import type { RevSet } from './revision';

export class Generation {
  mains: number[];
  subs: number[];
  constructor(mains: number[] = [], subs: number[] = []) {
    this.mains = mains;
    this.subs = subs;
  }
}

/** Index of the last revision with main <= atRev, -1 if none (etcd's generation.walk). */
export function lastAtOrBefore(mains: number[], atRev: number): number {
  let hi = mains.length - 1;
  if (hi < 0) return -1;
  if (mains[hi] <= atRev) return hi;
  let lo = 0;
  if (mains[0] > atRev) return -1;
  // invariant: mains[lo] <= atRev < mains[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (mains[mid] <= atRev) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Index of the first revision with main >= rev, mains.length if none. */
export function firstAtOrAfter(mains: number[], rev: number): number {
  let lo = 0;
  let hi = mains.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (mains[mid] < rev) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Appends to a short array by copying it exactly: V8 grows an array on push
 * to 17 slots at once, which for the one or two revisions most keys have
 * would be most of the index's memory. Long arrays (hot keys) grow by push.
 */
function append<T>(a: T[], v: T): T[] {
  if (a.length >= 8) {
    a.push(v);
    return a;
  }
  const n = a.length;
  const b = new Array<T>(n + 1);
  for (let i = 0; i < n; i++) b[i] = a[i];
  b[n] = v;
  return b;
}

// Second result of doCompact; module-level so the per-key compaction loop
// allocates nothing.
let compactRevIndex = -1;

export class KeyIndex {
  /** The key as a latin1 string: one char per byte, so `<` is bytewise order. */
  readonly key: string;
  /** Lease of the key's live value (0n when none or deleted), as the lessor's item map in etcd. */
  lease = 0n;
  /**
   * The live value's bytes as a latin1 string, when the store's value cache
   * holds it. A string, not a Buffer: V8 sizes and moves strings itself, while
   * a small Buffer would pin the whole allocation slab it was cut from.
   */
  val: string | undefined = undefined;
  /** The last change (etcd's keyIndex.modified), kept here so reads at or past it touch one object. */
  modMain = 0;
  modSub = 0;
  /** Whether the last change is a tombstone (or there is none). */
  deleted = true;
  /** Create revision of the live generation (0 while deleted). */
  created = 0;
  /** Puts in the live generation, including compacted ones: the key's version (0 while deleted). */
  ver = 0;
  /**
   * etcd's generations, or null while the key's whole history is its one
   * live revision (modMain, modSub), or nothing at all when deleted: most
   * keys of a store loaded once, or compacted, are that, and cost no arrays.
   */
  hist: Generation[] | null = null;

  constructor(key: string) {
    this.key = key;
  }

  put(main: number, sub: number): void {
    const h = this.hist;
    if (h === null) {
      if (this.deleted) {
        this.created = main;
        this.ver = 1;
      } else {
        this.hist = [new Generation([this.modMain, main], [this.modSub, sub])];
        this.ver++;
      }
    } else {
      const g = h[h.length - 1];
      if (g.mains.length === 0) {
        this.created = main;
        this.ver = 0;
      }
      g.mains = append(g.mains, main);
      g.subs = append(g.subs, sub);
      this.ver++;
    }
    this.modMain = main;
    this.modSub = sub;
    this.deleted = false;
  }

  /** First record of a key met while rebuilding from disk (etcd's keyIndex.restore). */
  restore(created: number, main: number, sub: number, ver: number): void {
    this.hist = null;
    this.created = created;
    this.ver = ver;
    this.modMain = main;
    this.modSub = sub;
    this.deleted = false;
  }

  /** false when the key is already deleted (etcd's ErrRevisionNotFound). */
  tombstone(main: number, sub: number): boolean {
    if (this.deleted) return false;
    if (this.hist === null) this.hist = [new Generation([this.modMain], [this.modSub])];
    this.put(main, sub);
    this.hist = append(this.hist, new Generation());
    this.deleted = true;
    this.created = 0;
    this.ver = 0;
    return true;
  }

  isEmpty(): boolean {
    const h = this.hist;
    return h === null ? this.deleted : h.length === 1 && h[0].mains.length === 0;
  }

  /** Whether the key exists now. */
  live(): boolean {
    return !this.deleted;
  }

  /** The generations, built for a key that keeps them inline (history reads only; not kept). */
  private gensView(): Generation[] {
    if (this.hist !== null) return this.hist;
    return this.deleted ? [new Generation()] : [new Generation([this.modMain], [this.modSub])];
  }

  /**
   * The generation whose revision is visible at atRev (etcd's findGeneration),
   * or undefined when the key did not exist at atRev.
   */
  genAt(atRev: number): Generation | undefined {
    const gens = this.gensView();
    const lastg = gens.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = gens[cg];
      const n = g.mains.length;
      if (n === 0) continue;
      if (cg !== lastg && g.mains[n - 1] <= atRev) return undefined;
      if (g.mains[0] <= atRev) return g;
    }
    return undefined;
  }

  /**
   * Pushes every revision of the key in [fromRev, toRev] onto out, tombstones
   * marked: what the key bucket holds for it in that span (etcd's watchers
   * read the bucket, so unlike keyIndex.since nothing is merged).
   */
  since(fromRev: number, toRev: number, out: RevRef[]): void {
    if (this.hist === null) {
      if (!this.deleted && this.modMain >= fromRev && this.modMain <= toRev) out.push({ main: this.modMain, sub: this.modSub, tomb: false, key: this.key });
      return;
    }
    const gens = this.hist;
    const lastg = gens.length - 1;
    for (let gi = 0; gi <= lastg; gi++) {
      const g = gens[gi];
      const n = g.mains.length;
      if (n === 0 || g.mains[n - 1] < fromRev) continue;
      if (g.mains[0] > toRev) break;
      for (let i = firstAtOrAfter(g.mains, fromRev); i < n; i++) {
        const main = g.mains[i];
        if (main > toRev) break;
        out.push({ main, sub: g.subs[i], tomb: i === n - 1 && gi !== lastg, key: this.key });
      }
    }
  }

  private doCompact(gens: Generation[], atRev: number, available: RevSet): number {
    let genIdx = 0;
    let g = gens[0];
    while (genIdx < gens.length - 1) {
      if (g.mains[g.mains.length - 1] > atRev) break;
      genIdx++;
      g = gens[genIdx];
    }
    compactRevIndex = -1;
    const i = lastAtOrBefore(g.mains, atRev);
    if (i >= 0) {
      available.add(g.mains[i], g.subs[i]);
      compactRevIndex = i;
    }
    return genIdx;
  }

  /** Drops revisions superseded at atRev; adds the kept one to available (etcd's keyIndex.compact). */
  compact(atRev: number, available: RevSet): void {
    const gens = this.hist;
    if (gens === null) {
      // one revision (or none): it is kept whatever atRev
      if (!this.deleted && this.modMain <= atRev) available.add(this.modMain, this.modSub);
      return;
    }
    let genIdx = this.doCompact(gens, atRev, available);
    const revIndex = compactRevIndex;
    const g = gens[genIdx];
    if (g.mains.length !== 0) {
      if (revIndex > 0) {
        g.mains = g.mains.slice(revIndex);
        g.subs = g.subs.slice(revIndex);
      }
      if (g.mains.length === 1 && genIdx !== gens.length - 1) {
        available.delete(g.mains[0], g.subs[0]);
        genIdx++;
      }
    }
    const left = genIdx > 0 ? gens.slice(genIdx) : gens;
    // back to the inline form when one generation of at most one revision is left
    // (then that revision, if any, is the live one: modMain, modSub)
    this.hist = left.length === 1 && left[0].mains.length <= 1 ? null : left;
  }

  /** The revision a compaction at atRev would keep, added to available (etcd's keyIndex.keep). */
  keep(atRev: number, available: RevSet): void {
    if (this.isEmpty()) return;
    const gens = this.hist;
    if (gens === null) {
      if (this.modMain <= atRev) available.add(this.modMain, this.modSub);
      return;
    }
    const genIdx = this.doCompact(gens, atRev, available);
    const revIndex = compactRevIndex;
    const g = gens[genIdx];
    if (g.mains.length !== 0 && revIndex === g.mains.length - 1 && genIdx !== gens.length - 1) {
      available.delete(g.mains[revIndex], g.subs[revIndex]);
    }
  }
}

/** One revision of a key, with whether it is the key's tombstone. */
export interface RevRef {
  main: number;
  sub: number;
  tomb: boolean;
  key: string;
}
