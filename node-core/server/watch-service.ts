// The Watch service: etcd 3.4's v3rpc/watch.go over the watch hub. One hub
// stream per gRPC stream; requests (create / cancel / progress) are handled
// one at a time in arrival order; responses leave in order through one queue
// that honours the gRPC stream's flow control. Responses a stalled client
// leaves waiting (queued here plus handed to gRPC) are bounded by etcd's
// chanBufLen: past it the hub sees the stream as full and the watcher
// catches up from history once the client reads again. A stream that asked
// for a leader (clientv3.WithRequireLeader) is refused without one and
// cancelled once its member has had none for etcd's maxNoLeaderCnt election
// timeouts (v3rpc's monitorLeader; see leader-monitor.ts).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { ClusterNode } from '../cluster';
import { Errors, type EtcdError } from '../errors';
import type { RangeRequest, WatchCreateRequest, WatchHandlers, WatchRequest, WatchResponseInit } from '../proto/gen/etcdserverpb';
import { encodeWatchResponse } from '../proto/gen/etcdserverpb';
import { encodeEvent, type Event, type EventInit } from '../proto/gen/mvccpb';
import { WatchError, type WatchHub, type HubResponse, type WatchStream } from '../watch/hub';
import { toServiceError } from './grpc-status';
import { leaderBoundStream } from './leader-monitor';
import type { RequestGuard } from './request-guard';
import type { ServerContext } from './server-context';

/** etcd's chanBufLen: event responses a stream may have waiting once the client stops reading. */
const STREAM_BUFFER = 128;
/**
 * Cap on queued event responses while gRPC still takes them: one revision's
 * fan-out to thousands of watchers of a stream queues whole (as long as the
 * client reads), instead of sending most of them through history.
 */
const MAX_QUEUED = 65536;
/** clientv3.InvalidWatchID: a response not tied to one watcher. */
const INVALID_WATCH_ID = -1;
const EMPTY = Buffer.alloc(0);
/** etcd fragments at --max-request-bytes plus its gRPC overhead allowance (v3rpc's grpcOverheadBytes). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

function rangeAt(key: Buffer, rev: number): RangeRequest {
  return {
    key,
    range_end: EMPTY,
    limit: 0,
    revision: rev,
    sort_order: 0,
    sort_target: 0,
    serializable: true,
    keys_only: false,
    count_only: false,
    min_mod_revision: 0,
    max_mod_revision: 0,
    min_create_revision: 0,
    max_create_revision: 0,
  };
}

function varintLen(n: number): number {
  let l = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    l++;
  }
  return l;
}

/**
 * etcd's sendFragments: splits a response whose encoding reaches the limit
 * into responses flagged `fragment`, the last one unflagged; a single event
 * is never split.
 */
export function fragment(wr: WatchResponseInit, maxBytes: number): WatchResponseInit[] {
  const events = wr.events ?? [];
  if (events.length < 2) return [wr];
  const sizes = events.map((e) => {
    const n = encodeEvent(e).length;
    return 1 + varintLen(n) + n;
  });
  const base = encodeWatchResponse({ ...wr, events: [] }).length;
  const total = sizes.reduce((a, b) => a + b, base);
  if (total < maxBytes) return [wr];
  const fragBase = encodeWatchResponse({ ...wr, events: [], fragment: true }).length;
  const out: WatchResponseInit[] = [];
  let idx = 0;
  for (;;) {
    const cur: EventInit[] = [];
    let size = fragBase;
    while (idx < events.length) {
      cur.push(events[idx]);
      size += sizes[idx];
      if (cur.length > 1 && size >= maxBytes) {
        cur.pop();
        break;
      }
      idx++;
    }
    const last = idx === events.length;
    out.push({ ...wr, events: cur, fragment: !last });
    if (last) return out;
  }
}

type Item = { ctrl: WatchResponseInit } | { hub: HubResponse };

class ServerWatchStream {
  private readonly hs: WatchStream;
  private readonly queue: Item[] = [];
  private hubQueued = 0;
  private blocked = false;
  private closed = false;
  private readonly active = new Set<number>();
  private readonly prevKV = new Set<number>();
  private readonly fragmented = new Set<number>();
  /** id → whether a progress notification is due at the next tick (etcd's sws.progress). */
  private readonly progress = new Map<number, boolean>();
  private readonly ticker: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Set by whoever tracks the stream (the leader monitor's untrack). */
  onClose?: () => void;

  constructor(
    private readonly node: ClusterNode,
    hub: WatchHub,
    private readonly guard: RequestGuard,
    private readonly call: ServerDuplexStream<WatchRequest, WatchResponseInit>,
  ) {
    this.hs = hub.newStream({
      send: (r) => {
        if (this.closed) return true;
        // while gRPC keeps taking responses, one revision's fan-out queues whole;
        // once it pushes back, the bound applies and watchers fall back to history
        if (this.blocked ? this.hubQueued + this.call.writableLength >= STREAM_BUFFER : this.hubQueued >= MAX_QUEUED) return false;
        this.hubQueued++;
        this.queue.push({ hub: r });
        this.schedulePump();
        return true;
      },
    });
    const interval = node.config.experimentalWatchProgressNotifyInterval;
    if (interval > 0) {
      this.ticker = setInterval(() => this.onProgressTick(), interval);
      this.ticker.unref();
    }
    call.on('data', (req: WatchRequest) => {
      this.chain = this.chain.then(() => this.handle(req)).catch(() => undefined);
    });
    call.on('drain', () => {
      this.blocked = false;
      this.pump();
    });
    // etcd keeps a half-closed stream running until the client goes away
    call.on('cancelled', () => this.close());
    call.on('close', () => this.close());
    call.on('error', () => this.close());
  }

  /** Ends the stream with an error status (etcd cancels the stream's context). */
  abort(e: EtcdError): void {
    if (this.closed) return;
    this.close();
    this.call.emit('error', toServiceError(e));
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
    if (this.ticker) clearInterval(this.ticker);
    this.hs.close();
    this.queue.length = 0;
  }

  private onProgressTick(): void {
    for (const [id, due] of this.progress) {
      if (due) this.hs.requestProgress(id);
      this.progress.set(id, true);
    }
  }

  private async handle(req: WatchRequest): Promise<void> {
    if (this.closed) return;
    if (req.create_request) await this.create(req.create_request);
    else if (req.cancel_request) {
      const id = req.cancel_request.watch_id;
      if (this.hs.cancel(id)) {
        this.forget(id);
        this.ctrl({ header: this.node.header(), watch_id: id, canceled: true });
      }
    } else if (req.progress_request) {
      this.ctrl({ header: this.node.header(), watch_id: INVALID_WATCH_ID });
    }
  }

  private forget(id: number): void {
    this.active.delete(id);
    this.prevKV.delete(id);
    this.fragmented.delete(id);
    this.progress.delete(id);
  }

  private async create(creq: WatchCreateRequest): Promise<void> {
    // \x00 is the smallest key; a one-byte \x00 range end means every key >= key
    const key = creq.key.length === 0 ? Buffer.from([0]) : creq.key;
    let end: Buffer | undefined;
    if (creq.range_end.length === 0) end = undefined;
    else if (creq.range_end.length === 1 && creq.range_end[0] === 0) end = EMPTY;
    else end = creq.range_end;
    let denied: string | undefined;
    try {
      if (this.guard.forWatch) denied = await this.guard.forWatch(this.call, creq);
      else await this.guard.forRead(this.call, key, creq.range_end);
    } catch (e) {
      denied = e instanceof Error && e.message.startsWith('etcdserver:') ? e.message : Errors.PermissionDenied.message;
    }
    if (denied !== undefined) {
      this.ctrl({ header: this.node.header(), watch_id: INVALID_WATCH_ID, created: true, canceled: true, cancel_reason: denied });
      return;
    }
    if (this.closed) return;
    const wsrev = this.hs.rev;
    const rev = creq.start_revision === 0 ? wsrev + 1 : creq.start_revision;
    let id: number;
    try {
      id = this.hs.watch({ id: creq.watch_id, key, end, startRev: rev, filters: creq.filters });
    } catch (e) {
      const msg = e instanceof WatchError ? e.message : String(e);
      this.ctrl({ header: this.node.header(wsrev), watch_id: INVALID_WATCH_ID, created: true, canceled: true, cancel_reason: msg });
      return;
    }
    this.active.add(id);
    if (creq.progress_notify) this.progress.set(id, true);
    if (creq.prev_kv) this.prevKV.add(id);
    if (creq.fragment) this.fragmented.add(id);
    // queued before any event of the watcher can be: created always comes first
    this.ctrl({ header: this.node.header(wsrev), watch_id: id, created: true });
  }

  private ctrl(r: WatchResponseInit): void {
    if (this.closed) return;
    this.queue.push({ ctrl: r });
    this.schedulePump();
  }

  private pumpScheduled = false;
  private schedulePump(): void {
    // the hub may call in the middle of an apply: write on the next tick
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    let freed = false;
    while (!this.blocked && !this.closed && this.queue.length) {
      const item = this.queue.shift()!;
      let out: WatchResponseInit[];
      if ('ctrl' in item) out = [item.ctrl];
      else {
        this.hubQueued--;
        freed = true;
        const wr = this.fromHub(item.hub);
        if (!wr) continue;
        out = this.fragmented.has(item.hub.watchId) ? fragment(wr, this.node.config.maxRequestBytes + GRPC_OVERHEAD_BYTES) : [wr];
      }
      for (const r of out) this.call.write(r);
      // gRPC holds as many as the bound allows (the client is not keeping up): wait for 'drain'
      if (this.call.writableLength >= STREAM_BUFFER) this.blocked = true;
    }
    if (freed) this.hs.kick();
  }

  /** etcd's sendLoop conversion: prev_kv read at mod_revision - 1, compaction as a cancel. */
  private fromHub(r: HubResponse): WatchResponseInit | undefined {
    const id = r.watchId;
    // a canceled watcher's queued events are dropped, as etcd
    if (!this.active.has(id)) return undefined;
    let events: Event[] = r.events;
    if (this.prevKV.has(id) && events.length) {
      events = events.map((ev) => {
        const kv = ev.kv!;
        try {
          const res = this.node.mvcc.range(rangeAt(kv.key, kv.mod_revision - 1));
          const prev = res.kvs?.[0];
          return prev ? { ...ev, prev_kv: prev as Event['prev_kv'] } : ev;
        } catch {
          return ev; // compacted since: no prev_kv, as etcd
        }
      });
    }
    if (events.length && this.progress.get(id)) this.progress.set(id, false);
    const canceled = r.compactRevision !== 0;
    if (canceled) this.forget(id);
    return {
      header: this.node.header(r.revision),
      watch_id: id,
      events,
      compact_revision: r.compactRevision,
      canceled,
    };
  }
}

export function createWatchHandlers(ctx: ServerContext, guard: RequestGuard): WatchHandlers {
  const { node } = ctx;
  return {
    Watch: (call) => {
      let s: ServerWatchStream | undefined;
      const untrack = leaderBoundStream(ctx.leaderMonitor, call, (e) => s?.abort(e));
      if (!untrack) {
        call.emit('error', toServiceError(Errors.NoLeader));
        return;
      }
      s = new ServerWatchStream(node, ctx.hub, guard, call);
      s.onClose = untrack;
    },
  };
}
