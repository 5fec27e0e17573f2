// Waiting by notification (etcd's pkg/wait): callers register and are
// answered when the event they wait for happens, never by polling.
//  - WaitRegistry: one waiter per id (a proposal's request id), answered by
//    trigger/fail; entries carry a deadline so one sweep can time out the
//    overdue ones (all waiters of a registry share one timeout, so
//    registration order is deadline order and the sweep stops at the first
//    waiter still in time).
//  - IndexWaiter (etcd's WaitTime): waiters for "applied index ≥ n",
//    released in index order by notify(applied).

interface Entry<V, M> {
  resolve(v: V): void;
  reject(e: Error): void;
  deadline: number;
  meta: M;
}

export class WaitRegistry<K, V, M = undefined> {
  private readonly waiters = new Map<K, Entry<V, M>>();

  /** Waits for `id`; a second registration of a live id is a caller bug. */
  register(id: K, deadline: number, meta: M): Promise<V> {
    if (this.waiters.has(id)) return Promise.reject(new Error(`duplicate wait id ${String(id)}`));
    return new Promise<V>((resolve, reject) => this.waiters.set(id, { resolve, reject, deadline, meta }));
  }

  isRegistered(id: K): boolean {
    return this.waiters.has(id);
  }

  get size(): number {
    return this.waiters.size;
  }

  /** Answers the waiter of `id`; false when nobody waits for it (another member's proposal). */
  trigger(id: K, v: V): boolean {
    const w = this.waiters.get(id);
    if (!w) return false;
    this.waiters.delete(id);
    w.resolve(v);
    return true;
  }

  fail(id: K, e: Error): boolean {
    const w = this.waiters.get(id);
    if (!w) return false;
    this.waiters.delete(id);
    w.reject(e);
    return true;
  }

  /** Rejects every waiter whose deadline passed with `errorFor(meta)`; returns their ids. */
  expire(now: number, errorFor: (meta: M) => Error): K[] {
    const gone: K[] = [];
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) break;
      this.waiters.delete(id);
      gone.push(id);
      w.reject(errorFor(w.meta));
    }
    return gone;
  }

  failAll(e: Error): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.reject(e);
  }
}

interface IndexEntry {
  index: number;
  resolve(): void;
  reject(e: Error): void;
}

export class IndexWaiter {
  /** Sorted by index (ascending); waits usually arrive in increasing order, so inserts land at the end. */
  private readonly waiting: IndexEntry[] = [];
  private failed?: Error;

  constructor(private current: number) {}

  get index(): number {
    return this.current;
  }

  /** Resolves once notify() reported an index ≥ `index` (at once if it already did). */
  wait(index: number): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (index <= this.current) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const e: IndexEntry = { index, resolve, reject };
      let i = this.waiting.length;
      while (i > 0 && this.waiting[i - 1].index > index) i--;
      this.waiting.splice(i, 0, e);
    });
  }

  /** The applied index moved to `index` (it may also move back, after a snapshot replaced the state). */
  notify(index: number): void {
    this.current = index;
    let n = 0;
    while (n < this.waiting.length && this.waiting[n].index <= index) n++;
    if (n === 0) return;
    for (const e of this.waiting.splice(0, n)) e.resolve();
  }

  /** Rejects every waiter, now and later (the member stopped). */
  failAll(e: Error): void {
    this.failed = e;
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}
