// The ordered half of the key index (etcd's treeIndex btree): a B+tree of
// latin1 key strings (one char per byte, so `<` is bytewise order) whose
// leaves are linked, so a range is one descent and then a plain loop over
// arrays. Point lookups go through a Map beside it; this tree only serves
// ordered scans, inserts of new keys, and removals by compaction.

const MAX = 64;

export class Leaf<V> {
  keys: string[] = [];
  vals: V[] = [];
  next: Leaf<V> | null = null;
}

class Inner<V> {
  /** keys[i] is the smallest key under children[i + 1]. */
  keys: string[] = [];
  children: TreeNode<V>[] = [];
}

type TreeNode<V> = Leaf<V> | Inner<V>;

/** Number of elements of a (sorted) that are <= k. */
function upperBound(a: string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of elements of a (sorted) that are < k. */
function lowerBound(a: string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class KeyTree<V> {
  private root: TreeNode<V> = new Leaf<V>();
  private count = 0;
  /** Removals since the last rebuild; removals leave leaves underfull, so many of them trigger one. */
  private removed = 0;
  /** Index in the leaf returned by the last seek(). */
  seekIndex = 0;

  get size(): number {
    return this.count;
  }

  /** Inserts a key that is not in the tree (the caller's Map knows). */
  insert(key: string, val: V): void {
    const path: Inner<V>[] = [];
    const idxs: number[] = [];
    let n = this.root;
    while (n instanceof Inner) {
      const i = upperBound(n.keys, key);
      path.push(n);
      idxs.push(i);
      n = n.children[i];
    }
    const leaf = n;
    const at = lowerBound(leaf.keys, key);
    leaf.keys.splice(at, 0, key);
    leaf.vals.splice(at, 0, val);
    this.count++;
    if (leaf.keys.length <= MAX) return;

    // split the leaf, then every parent that overflows in turn
    const right = new Leaf<V>();
    const half = leaf.keys.length >>> 1;
    right.keys = leaf.keys.splice(half);
    right.vals = leaf.vals.splice(half);
    right.next = leaf.next;
    leaf.next = right;
    let sep = right.keys[0];
    let newChild: TreeNode<V> = right;
    for (let d = path.length - 1; d >= 0; d--) {
      const p = path[d];
      const i = idxs[d];
      p.keys.splice(i, 0, sep);
      p.children.splice(i + 1, 0, newChild);
      if (p.children.length <= MAX) return;
      const r = new Inner<V>();
      const h = p.children.length >>> 1;
      r.children = p.children.splice(h);
      // p keeps h children and h - 1 keys; key h - 1 moves up
      const moved = p.keys.splice(h - 1);
      sep = moved[0];
      r.keys = moved.slice(1);
      newChild = r;
    }
    const top = new Inner<V>();
    top.keys = [sep];
    top.children = [this.root, newChild];
    this.root = top;
  }

  /** Removes a key if present. */
  remove(key: string): boolean {
    const leaf = this.seek(key);
    const i = this.seekIndex;
    if (!leaf || leaf.keys[i] !== key) return false;
    leaf.keys.splice(i, 1);
    leaf.vals.splice(i, 1);
    this.count--;
    if (++this.removed > 1024 && this.removed > this.count) this.rebuild();
    return true;
  }

  /**
   * The leaf holding the first key >= key, with its index in seekIndex, or
   * null when every key is smaller. Iterate with leaf.next from there.
   */
  seek(key: string): Leaf<V> | null {
    let n = this.root;
    while (n instanceof Inner) n = n.children[upperBound(n.keys, key)];
    let leaf: Leaf<V> | null = n;
    let i = lowerBound(leaf.keys, key);
    while (leaf && i >= leaf.keys.length) {
      leaf = leaf.next;
      i = 0;
    }
    this.seekIndex = i;
    return leaf;
  }

  /** Calls fn for each key in [lo, hi) in order (hi null: no upper bound) until it returns false. */
  forRange(lo: string, hi: string | null, fn: (key: string, val: V) => boolean | void): void {
    let leaf = this.seek(lo);
    let i = this.seekIndex;
    for (; leaf; leaf = leaf.next, i = 0) {
      const ks = leaf.keys;
      const vs = leaf.vals;
      for (; i < ks.length; i++) {
        if (hi !== null && ks[i] >= hi) return;
        if (fn(ks[i], vs[i]) === false) return;
      }
    }
  }

  /** Replaces the content with sorted (keys, vals), leaves full to 3/4. */
  load(keys: string[], vals: V[]): void {
    this.count = keys.length;
    this.removed = 0;
    const per = (MAX * 3) >>> 2;
    const leaves: Leaf<V>[] = [];
    for (let s = 0; s < keys.length || leaves.length === 0; s += per) {
      const l = new Leaf<V>();
      l.keys = keys.slice(s, s + per);
      l.vals = vals.slice(s, s + per);
      if (leaves.length) leaves[leaves.length - 1].next = l;
      leaves.push(l);
      if (s + per >= keys.length) break;
    }
    let level: TreeNode<V>[] = leaves;
    let mins: string[] = leaves.map((l) => l.keys[0] ?? '');
    while (level.length > 1) {
      const up: TreeNode<V>[] = [];
      const upMins: string[] = [];
      for (let s = 0; s < level.length; s += per) {
        const n = new Inner<V>();
        n.children = level.slice(s, s + per);
        n.keys = mins.slice(s + 1, s + per);
        up.push(n);
        upMins.push(mins[s]);
      }
      level = up;
      mins = upMins;
    }
    this.root = level[0];
  }

  private rebuild(): void {
    const keys: string[] = [];
    const vals: V[] = [];
    for (let leaf = this.seek(''); leaf; leaf = leaf.next) {
      for (let i = 0; i < leaf.keys.length; i++) {
        keys.push(leaf.keys[i]);
        vals.push(leaf.vals[i]);
      }
    }
    this.load(keys, vals);
  }
}
