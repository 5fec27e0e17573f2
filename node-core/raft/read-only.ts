// Pending ReadIndex requests on the leader in "safe" mode: each waits until a quorum has
// acknowledged a heartbeat carrying its context, which proves we were still leader when the
// request arrived.
import { invariant } from './errors';
import { type Message, type NodeId, type ReadOnlyOption, bytesKey } from './types';

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  addRequest(index: number, m: Message): void {
    const key = bytesKey(m.entries[0].data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records an ack for the request with this context; returns its acks so far. */
  recvAck(id: NodeId, context: Uint8Array | undefined): Map<NodeId, boolean> {
    const rs = this.pending.get(bytesKey(context));
    if (!rs) return new Map();
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Completes the request with this context and every request queued before it: a heartbeat
   * round that confirms a later request confirms the earlier ones too.
   */
  advance(m: Message): ReadIndexStatus[] {
    const ctx = bytesKey(m.context);
    const idx = this.queue.indexOf(ctx);
    if (idx < 0) return [];
    const done = this.queue.slice(0, idx + 1);
    this.queue = this.queue.slice(idx + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      invariant(rs !== undefined, 'cannot find corresponding read state from pending map');
      out.push(rs);
      this.pending.delete(k);
    }
    return out;
  }

  lastPendingRequestCtx(): string | undefined {
    return this.queue.length === 0 ? undefined : this.queue[this.queue.length - 1];
  }

  pendingCount(): number {
    return this.queue.length;
  }
}

export function keyToBytes(k: string): Uint8Array {
  const out = new Uint8Array(k.length);
  for (let i = 0; i < k.length; i++) out[i] = k.charCodeAt(i);
  return out;
}
