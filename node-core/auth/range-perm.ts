// Per-user merged permission intervals, as etcd's range_perm_cache.go builds
// them with its adt.IntervalTree. Keys compare with etcd's "bytes affine"
// order, where an empty byte string means +infinity: a permission with
// range_end "\0" becomes [key, +inf), and a query's empty range_end means a
// single key. The checks reproduce etcd's Contains (a query interval is
// permitted only if the stored intervals that intersect it cover it without a
// gap) and Intersects (a single key is permitted if any interval holds it).
import { Permission_Type, type Permission } from '../proto/gen/authpb';

/** A byte string where the empty one stands for +infinity (etcd's BytesAffineComparable). */
export type AffineKey = Buffer;

export function affineCompare(a: AffineKey, b: AffineKey): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return Buffer.compare(a, b);
}

export interface Interval {
  begin: AffineKey;
  end: AffineKey;
}

const EMPTY = Buffer.alloc(0);

/** etcd's NewBytesAffinePoint: [key, key+"\0"). */
export function pointInterval(key: Buffer): Interval {
  return { begin: key, end: Buffer.concat([key, Buffer.from([0])]) };
}

/** etcd's adt Interval.Compare(): 0 when the two intervals intersect. */
function compareIntervals(q: Interval, x: Interval): number {
  const bb = affineCompare(q.begin, x.begin);
  const be = affineCompare(q.begin, x.end);
  const eb = affineCompare(q.end, x.begin);
  if (bb < 0 && eb <= 0) return -1;
  if (be >= 0) return 1;
  return 0;
}

/** The interval a stored permission covers (getMergedPerms in etcd). */
export function permissionInterval(perm: Permission): Interval {
  const re = perm.range_end;
  if (re.length === 0) return pointInterval(perm.key);
  // range_end "\0" is etcd's "to the end of the key space"
  const end = re.length === 1 && re[0] === 0 ? EMPTY : re;
  return { begin: perm.key, end };
}

/**
 * A sorted set of intervals. etcd keeps an interval tree; users hold few
 * permissions, so a sorted array visited linearly gives the same answers with
 * less code.
 */
export class IntervalSet {
  private readonly items: Interval[] = [];

  insert(ivl: Interval): void {
    // stable insert after equal begins, like the red-black tree's right descent
    let i = this.items.length;
    while (i > 0 && affineCompare(this.items[i - 1].begin, ivl.begin) > 0) i--;
    this.items.splice(i, 0, ivl);
  }

  get size(): number {
    return this.items.length;
  }

  /** etcd's IntervalTree.Intersects for a point query. */
  intersects(q: Interval): boolean {
    for (const x of this.items) if (compareIntervals(q, x) === 0) return true;
    return false;
  }

  /** etcd's IntervalTree.Contains: the intersecting intervals cover q contiguously. */
  contains(q: Interval): boolean {
    let minBegin: AffineKey | undefined;
    let maxEnd: AffineKey = EMPTY;
    for (const x of this.items) {
      if (compareIntervals(q, x) !== 0) continue;
      if (minBegin === undefined) {
        minBegin = x.begin;
        maxEnd = x.end;
        continue;
      }
      if (affineCompare(maxEnd, x.begin) < 0) return false;
      if (affineCompare(x.end, maxEnd) > 0) maxEnd = x.end;
    }
    return minBegin !== undefined && affineCompare(maxEnd, q.end) >= 0 && affineCompare(minBegin, q.begin) <= 0;
  }
}

export interface UnifiedPermissions {
  read: IntervalSet;
  write: IntervalSet;
}

export function mergePermissions(perms: Iterable<Permission>): UnifiedPermissions {
  const read = new IntervalSet();
  const write = new IntervalSet();
  for (const p of perms) {
    const ivl = permissionInterval(p);
    switch (p.permType) {
      case Permission_Type.READWRITE:
        read.insert(ivl);
        write.insert(ivl);
        break;
      case Permission_Type.READ:
        read.insert(ivl);
        break;
      case Permission_Type.WRITE:
        write.insert(ivl);
        break;
    }
  }
  return { read, write };
}

export type PermKind = 'read' | 'write';

/** etcd's isRangeOpPermitted once the user's merged permissions are known. */
export function checkRange(perms: UnifiedPermissions, key: Buffer, rangeEnd: Buffer | undefined, kind: PermKind): boolean {
  const set = kind === 'read' ? perms.read : perms.write;
  if (!rangeEnd || rangeEnd.length === 0) return set.intersects(pointInterval(key));
  // a query's range_end "\0" (from-key) is open-ended
  const end = rangeEnd.length === 1 && rangeEnd[0] === 0 ? EMPTY : rangeEnd;
  return set.contains({ begin: key, end });
}
