// Long-lived streams main opens for a window: watches (owned by the window
// that asked, closed when it goes) and lease keep-alives (shared by every
// window, one per lease). Both close with the connection.
import type { LeaseKeepAlive, Watch } from '../../node-core/index';

export class WatchRegistry {
  private readonly watches = new Map<string, { owner: string; watch: Pick<Watch, 'close'> }>();
  private seq = 0;

  /** A fresh id for a watch about to open. */
  nextId(): string {
    return `w${++this.seq}`;
  }

  add(id: string, owner: string, watch: Pick<Watch, 'close'>): void {
    this.watches.set(id, { owner, watch });
  }

  /** Forget a watch that ended by itself (error, cancel) without closing it again. */
  forget(id: string): void {
    this.watches.delete(id);
  }

  stop(id: string): void {
    this.watches.get(id)?.watch.close();
    this.watches.delete(id);
  }

  closeOwner(owner: string): void {
    for (const [id, w] of this.watches) if (w.owner === owner) this.stop(id);
  }

  closeAll(): void {
    for (const w of this.watches.values()) w.watch.close();
    this.watches.clear();
  }

  get size(): number {
    return this.watches.size;
  }
}

export class KeepAliveRegistry {
  private readonly running = new Map<string, Pick<LeaseKeepAlive, 'close'>>();

  has(id: string): boolean {
    return this.running.has(id);
  }

  /** Starts one keep-alive per lease: a second start for the same lease is a no-op. */
  start(id: string, open: () => Pick<LeaseKeepAlive, 'close'>): void {
    if (!this.running.has(id)) this.running.set(id, open());
  }

  stop(id: string): void {
    this.running.get(id)?.close();
    this.running.delete(id);
  }

  /** The stream ended by itself (lease gone). */
  forget(id: string): void {
    this.running.delete(id);
  }

  closeAll(): void {
    for (const k of this.running.values()) k.close();
    this.running.clear();
  }
}
