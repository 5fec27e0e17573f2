// The client's long-lived bidi streams: watch and lease keep-alive. One stream
// per watch keeps cancel/reconnect logic local; an admin app holds a handful.
import type * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors } from '../errors/index';
import * as pb from '../proto/gen/etcdserverpb';
import type * as mvccpb from '../proto/gen/mvccpb';
import { isFailoverError, isInvalidToken, toEtcdError } from './connection';

interface StreamHost {
  channel(): grpc.Client;
  metadata(): Promise<grpc.Metadata>;
  failover(): void;
  resetToken(): void;
}

export interface WatchOptions {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  startRevision?: number;
  prevKv?: boolean;
  progressNotify?: boolean;
}

export interface WatchUpdate {
  events: mvccpb.Event[];
  revision: number;
}

export interface WatchListener {
  onEvents(u: WatchUpdate): void;
  /** Terminal: compacted, permission denied, closed by the server for good. */
  onError?(e: EtcdError): void;
  onCreated?(revision: number): void;
}

const RECONNECT_MS = 500;

export class Watch {
  private call: grpc.ClientDuplexStream<pb.WatchRequestInit, pb.WatchResponse> | null = null;
  private closed = false;
  private nextRev: number;
  private watchId = -1;
  private retryTimer: NodeJS.Timeout | null = null;
  readonly ready: Promise<number>;
  private resolveReady!: (rev: number) => void;
  private rejectReady!: (e: EtcdError) => void;

  constructor(
    private readonly host: StreamHost,
    private readonly opts: WatchOptions,
    private readonly listener: WatchListener,
    private readonly onClose: () => void,
  ) {
    this.nextRev = opts.startRevision ?? 0;
    this.ready = new Promise<number>((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => undefined);
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let md: grpc.Metadata;
    try {
      md = await this.host.metadata();
    } catch (e) {
      return this.fail(toEtcdError(e));
    }
    if (this.closed) return;
    const m = pb.WatchService.Watch;
    const call = this.host.channel().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => pb.WatchResponse, md, {});
    this.call = call;
    call.on('data', (r: pb.WatchResponse) => this.onData(r));
    call.on('error', (err) => {
      if (this.closed || call !== this.call) return;
      const e = toEtcdError(err);
      if (isFailoverError(e)) {
        this.host.failover();
        this.retry();
      } else if (isInvalidToken(e)) {
        this.host.resetToken();
        this.retry();
      } else this.fail(e);
    });
    call.on('end', () => {
      if (!this.closed && call === this.call) this.retry();
    });
    call.write({
      create_request: {
        key: this.opts.key,
        range_end: this.opts.rangeEnd,
        start_revision: this.nextRev || undefined,
        prev_kv: this.opts.prevKv,
        progress_notify: this.opts.progressNotify,
      },
    });
  }

  private onData(r: pb.WatchResponse): void {
    if (r.created) {
      this.watchId = r.watch_id;
      const rev = r.header?.revision ?? 0;
      if (!this.nextRev) this.nextRev = rev + 1;
      this.resolveReady(rev);
      this.listener.onCreated?.(rev);
    }
    if (r.canceled) {
      const e = r.compact_revision
        ? new EtcdError(Errors.Compacted.code, `${Errors.Compacted.message} (compact revision ${r.compact_revision})`)
        : new EtcdError(Errors.WatchCanceled.code, r.cancel_reason || Errors.WatchCanceled.message);
      return this.fail(e);
    }
    if (r.events.length) {
      const last = r.events[r.events.length - 1].kv?.mod_revision ?? 0;
      if (last >= this.nextRev) this.nextRev = last + 1;
      this.listener.onEvents({ events: r.events, revision: r.header?.revision ?? last });
    }
  }

  private retry(): void {
    this.call?.removeAllListeners();
    this.call?.on('error', () => undefined);
    this.call?.cancel();
    this.call = null;
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, RECONNECT_MS);
  }

  private fail(e: EtcdError): void {
    this.rejectReady(e);
    this.listener.onError?.(e);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const call = this.call;
    this.call = null;
    if (call) {
      if (this.watchId >= 0) call.write({ cancel_request: { watch_id: this.watchId } });
      call.removeAllListeners();
      call.on('error', () => undefined);
      call.end();
      call.cancel();
    }
    this.onClose();
  }
}

export class LeaseKeepAlive {
  private call: grpc.ClientDuplexStream<pb.LeaseKeepAliveRequestInit, pb.LeaseKeepAliveResponse> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  ttl = 0;

  constructor(
    private readonly host: StreamHost,
    readonly id: bigint,
    private readonly onResponse: ((r: pb.LeaseKeepAliveResponse) => void) | undefined,
    private readonly onError: ((e: EtcdError) => void) | undefined,
    private readonly onClose: () => void,
  ) {
    void this.open();
  }

  static async once(host: StreamHost, id: bigint): Promise<pb.LeaseKeepAliveResponse> {
    const md = await host.metadata();
    const m = pb.LeaseService.LeaseKeepAlive;
    return new Promise((resolve, reject) => {
      const call = host.channel().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => pb.LeaseKeepAliveResponse, md, {
        deadline: Date.now() + 10_000,
      });
      call.on('data', (r: pb.LeaseKeepAliveResponse) => {
        call.removeAllListeners();
        call.on('error', () => undefined);
        call.end();
        call.cancel();
        if (r.TTL <= 0) reject(Errors.LeaseNotFound);
        else resolve(r);
      });
      call.on('error', (e) => reject(toEtcdError(e)));
      call.write({ ID: id });
    });
  }

  private async open(): Promise<void> {
    if (this.closed) return;
    let md: grpc.Metadata;
    try {
      md = await this.host.metadata();
    } catch (e) {
      return this.fail(toEtcdError(e));
    }
    const m = pb.LeaseService.LeaseKeepAlive;
    const call = this.host.channel().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => pb.LeaseKeepAliveResponse, md, {});
    this.call = call;
    call.on('data', (r: pb.LeaseKeepAliveResponse) => {
      if (r.TTL <= 0) return this.fail(Errors.LeaseNotFound);
      this.ttl = r.TTL;
      this.onResponse?.(r);
      this.schedule(Math.max(500, (r.TTL * 1000) / 3));
    });
    call.on('error', (err) => {
      if (this.closed) return;
      const e = toEtcdError(err);
      if (isFailoverError(e)) {
        this.host.failover();
        this.call = null;
        this.schedule(RECONNECT_MS, true);
      } else this.fail(e);
    });
    call.write({ ID: this.id });
  }

  private schedule(ms: number, reopen = false): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (reopen || !this.call) void this.open();
      else this.call.write({ ID: this.id });
    }, ms);
  }

  private fail(e: EtcdError): void {
    this.onError?.(e);
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.call) {
      this.call.removeAllListeners();
      this.call.on('error', () => undefined);
      this.call.end();
      this.call.cancel();
      this.call = null;
    }
    this.onClose();
  }
}
