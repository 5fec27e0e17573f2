// An etcd v3 client over grpc-js with the generated service definitions.
// Endpoint failover (reads; writes only when they never left, see
// retry-policy.ts), optional user/password auth (token in metadata, re-auth
// when the server forgets it), TLS. Methods take the generated *Init request
// types and resolve to the decoded response types.
import * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors } from '../errors/index';
import * as pb from '../proto/gen/etcdserverpb';
import type * as authpb from '../proto/gen/authpb';
import { type Endpoint, type TlsOptions, isFailoverError, isInvalidToken, makeChannel, parseEndpoint, toEtcdError } from './connection';
import { isRepeatable } from './retry-policy';
import { LeaseKeepAlive, Watch, type WatchOptions, type WatchListener } from './streams';

export interface ClientOptions {
  endpoints: string[];
  username?: string;
  password?: string;
  tls?: TlsOptions;
  /** Per-call deadline in ms (streams excepted). */
  timeoutMs?: number;
}

interface Method<Req, Res> {
  path: string;
  requestSerialize: (m: Req) => Buffer;
  responseDeserialize: (b: Buffer) => unknown;
  responseStream?: boolean;
}

const textOf = (v: string | Uint8Array): Uint8Array => (typeof v === 'string' ? Buffer.from(v) : v);

/** etcd's "prefix end": the smallest key greater than every key starting with `prefix`. */
export function prefixEnd(prefix: string | Uint8Array): Buffer {
  const b = Buffer.from(textOf(prefix));
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out;
    }
  }
  return Buffer.from([0]); // all 0xff: to the end of the keyspace
}

/** Answers meaning "no leader yet": a read retried after them may succeed once one is elected. */
const ELECTING = new Set<EtcdError>([Errors.NoLeader, Errors.LeaderChanged, Errors.TimeoutDueToLeaderFail]);
const ELECTION_RETRY_MS = 100;

export class EtcdClient {
  private readonly endpoints: Endpoint[];
  private readonly channels = new Map<string, grpc.Client>();
  private current = 0;
  private token: string | null = null;
  private authing: Promise<void> | null = null;
  private closed = false;
  private readonly streams = new Set<{ close(): void }>();

  constructor(readonly options: ClientOptions) {
    if (!options.endpoints.length) throw new EtcdError(grpc.status.INVALID_ARGUMENT, 'no endpoints given');
    const forceTls = !!(options.tls && (options.tls.ca || options.tls.cert));
    this.endpoints = options.endpoints.map((e) => parseEndpoint(e, forceTls));
  }

  get endpointUrls(): string[] {
    return this.endpoints.map((e) => e.url);
  }

  get activeEndpoint(): string {
    return this.endpoints[this.current].url;
  }

  /** A client bound to one endpoint only (per-member status, defragment, ...). */
  forEndpoint(url: string): EtcdClient {
    return new EtcdClient({ ...this.options, endpoints: [url] });
  }

  channel(i = this.current): grpc.Client {
    const ep = this.endpoints[i];
    let ch = this.channels.get(ep.target);
    if (!ch) {
      ch = makeChannel(ep, this.options.tls);
      this.channels.set(ep.target, ch);
    }
    return ch;
  }

  close(): void {
    this.closed = true;
    for (const s of this.streams) s.close();
    this.streams.clear();
    for (const ch of this.channels.values()) ch.close();
    this.channels.clear();
  }

  async metadata(): Promise<grpc.Metadata> {
    const md = new grpc.Metadata();
    if (this.options.username) {
      if (!this.token) await this.authenticate();
      if (this.token) md.set('token', this.token);
    }
    return md;
  }

  private authenticate(): Promise<void> {
    if (!this.authing) {
      this.authing = this.rawUnary<pb.AuthenticateRequestInit, pb.AuthenticateResponse>(
        pb.AuthService.Authenticate,
        { name: this.options.username, password: this.options.password ?? '' },
        new grpc.Metadata(),
      )
        .then(
          (r) => {
            this.token = r.token;
          },
          (e: unknown) => {
            // With auth off etcd refuses Authenticate but serves everyone: carry on without a token.
            if (toEtcdError(e) === Errors.AuthNotEnabled) this.token = null;
            else throw e;
          },
        )
        .finally(() => {
          this.authing = null;
        });
    }
    return this.authing;
  }

  /** Streams call this when their endpoint died: the next stream opens on the next one. */
  failover(): void {
    this.current = (this.current + 1) % this.endpoints.length;
  }

  /** Forget the token: the next call authenticates again (after a password change, auth enable). */
  resetToken(): void {
    this.token = null;
  }

  /**
   * Resolves true once endpoint idx's channel is connected, false when it
   * cannot be (connection refused, TLS failed, no answer by the deadline):
   * a call not yet sent then demonstrably never reached that member.
   */
  private connected(idx: number, deadline: number): Promise<boolean> {
    const ch = this.channel(idx).getChannel();
    return new Promise<boolean>((resolve) => {
      const check = (): void => {
        const state = ch.getConnectivityState(true);
        if (state === grpc.connectivityState.READY) return resolve(true);
        if (state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.SHUTDOWN || this.closed || Date.now() >= deadline) return resolve(false);
        ch.watchConnectivityState(state, deadline, (err) => (err ? resolve(false) : check()));
      };
      check();
    });
  }

  private callAt<Req, Res>(idx: number, m: Method<Req, Res>, req: Req, md: grpc.Metadata, deadline: number): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.closed) return reject(new EtcdError(grpc.status.CANCELLED, 'client closed'));
      this.channel(idx).makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => Res, req, md, { deadline }, (err, value) => {
        if (err) return reject(toEtcdError(err));
        resolve(value as Res);
      });
    });
  }

  /**
   * Each endpoint at most once, starting with the one that last worked. A
   * read (retry-policy.ts) goes on to the next endpoint after any
   * Unavailable-class failure. A write is sent to an endpoint only once its
   * channel is connected, and moves on only past endpoints that could not be
   * connected to: once sent, its failure (request timed out, leader changed,
   * connection lost, deadline) is the caller's, since it may have been
   * applied (clientv3's isSafeRetryMutableRPC).
   */
  private async rawUnary<Req, Res>(m: Method<Req, Res>, req: Req, md: grpc.Metadata): Promise<Res> {
    const repeatable = isRepeatable(m.path, req);
    const n = this.endpoints.length;
    const start = this.current;
    const started = Date.now();
    let electing = false;
    for (let attempt = 0; ; attempt++) {
      const idx = (start + attempt) % n;
      const last = attempt + 1 >= n;
      const deadline = Date.now() + (this.options.timeoutMs ?? 10_000);
      // The last endpoint is sent to regardless: grpc-js itself refuses a call it cannot send, with its own Unavailable.
      if (!repeatable && !last && !(await this.connected(idx, deadline))) continue;
      try {
        const res = await this.callAt(idx, m, req, md, deadline);
        this.current = idx;
        return res;
      } catch (e) {
        const err = toEtcdError(e);
        if (!isFailoverError(err)) throw err;
        if (repeatable && ELECTING.has(err)) electing = true;
        if (repeatable && !last) continue;
        // Every endpoint tried, and a member answered that the cluster is electing a leader: as clientv3
        // retries an immutable call with a backoff, the round is tried again until the call's time is up
        // (a read during a failover waits for the new leader instead of failing).
        if (repeatable && electing && Date.now() - started + ELECTION_RETRY_MS < (this.options.timeoutMs ?? 10_000)) {
          electing = false;
          attempt = -1;
          await new Promise((r) => setTimeout(r, ELECTION_RETRY_MS));
          continue;
        }
        // Not sent again, but the next call starts at another member.
        if (!repeatable && n > 1 && this.current === idx) this.current = (idx + 1) % n;
        throw err;
      }
    }
  }

  async unary<Req, Res>(m: Method<Req, Res>, req: Req): Promise<Res> {
    try {
      return await this.rawUnary(m, req, await this.metadata());
    } catch (e) {
      const err = toEtcdError(e);
      if (this.options.username && isInvalidToken(err)) {
        this.token = null;
        return this.rawUnary(m, req, await this.metadata());
      }
      throw err;
    }
  }

  // ---- KV
  range(req: pb.RangeRequestInit): Promise<pb.RangeResponse> {
    return this.unary(pb.KVService.Range, req);
  }
  put(req: pb.PutRequestInit): Promise<pb.PutResponse> {
    return this.unary(pb.KVService.Put, req);
  }
  deleteRange(req: pb.DeleteRangeRequestInit): Promise<pb.DeleteRangeResponse> {
    return this.unary(pb.KVService.DeleteRange, req);
  }
  txn(req: pb.TxnRequestInit): Promise<pb.TxnResponse> {
    return this.unary(pb.KVService.Txn, req);
  }
  compact(revision: number, physical = false): Promise<pb.CompactionResponse> {
    return this.unary(pb.KVService.Compact, { revision, physical });
  }
  /** Convenience: one key's value, or null. */
  async get(key: string | Uint8Array, revision?: number): Promise<pb.RangeResponse['kvs'][number] | null> {
    const r = await this.range({ key: textOf(key), revision });
    return r.kvs[0] ?? null;
  }

  // ---- Lease
  leaseGrant(ttl: number, id?: bigint): Promise<pb.LeaseGrantResponse> {
    return this.unary(pb.LeaseService.LeaseGrant, { TTL: ttl, ID: id });
  }
  leaseRevoke(id: bigint): Promise<pb.LeaseRevokeResponse> {
    return this.unary(pb.LeaseService.LeaseRevoke, { ID: id });
  }
  leaseTimeToLive(id: bigint, keys = false): Promise<pb.LeaseTimeToLiveResponse> {
    return this.unary(pb.LeaseService.LeaseTimeToLive, { ID: id, keys });
  }
  leaseLeases(): Promise<pb.LeaseLeasesResponse> {
    return this.unary(pb.LeaseService.LeaseLeases, {});
  }
  /** Opens a keep-alive stream; refreshes every ttl/3 until closed. */
  leaseKeepAlive(id: bigint, onResponse?: (r: pb.LeaseKeepAliveResponse) => void, onError?: (e: EtcdError) => void): LeaseKeepAlive {
    const ka = new LeaseKeepAlive(this, id, onResponse, onError, () => this.streams.delete(ka));
    this.streams.add(ka);
    return ka;
  }
  /** One refresh; resolves with the new TTL (etcd reports TTL 0 for an unknown lease: we turn that into LeaseNotFound). */
  async leaseKeepAliveOnce(id: bigint): Promise<pb.LeaseKeepAliveResponse> {
    return LeaseKeepAlive.once(this, id);
  }

  // ---- Watch
  watch(opts: WatchOptions, listener: WatchListener): Watch {
    const w = new Watch(this, opts, listener, () => this.streams.delete(w));
    this.streams.add(w);
    return w;
  }

  // ---- Auth
  authEnable(): Promise<pb.AuthEnableResponse> {
    return this.unary(pb.AuthService.AuthEnable, {});
  }
  authDisable(): Promise<pb.AuthDisableResponse> {
    return this.unary(pb.AuthService.AuthDisable, {});
  }
  /** Authenticate without storing the token (a probe: "is auth on?", "is this password right?"). */
  authenticateProbe(name: string, password: string): Promise<pb.AuthenticateResponse> {
    return this.rawUnary(pb.AuthService.Authenticate, { name, password }, new grpc.Metadata());
  }
  userAdd(name: string, password: string, noPassword = false): Promise<pb.AuthUserAddResponse> {
    return this.unary(pb.AuthService.UserAdd, { name, password, options: noPassword ? { no_password: true } : undefined });
  }
  userGet(name: string): Promise<pb.AuthUserGetResponse> {
    return this.unary(pb.AuthService.UserGet, { name });
  }
  userList(): Promise<pb.AuthUserListResponse> {
    return this.unary(pb.AuthService.UserList, {});
  }
  userDelete(name: string): Promise<pb.AuthUserDeleteResponse> {
    return this.unary(pb.AuthService.UserDelete, { name });
  }
  userChangePassword(name: string, password: string): Promise<pb.AuthUserChangePasswordResponse> {
    return this.unary(pb.AuthService.UserChangePassword, { name, password });
  }
  userGrantRole(user: string, role: string): Promise<pb.AuthUserGrantRoleResponse> {
    return this.unary(pb.AuthService.UserGrantRole, { user, role });
  }
  userRevokeRole(name: string, role: string): Promise<pb.AuthUserRevokeRoleResponse> {
    return this.unary(pb.AuthService.UserRevokeRole, { name, role });
  }
  roleAdd(name: string): Promise<pb.AuthRoleAddResponse> {
    return this.unary(pb.AuthService.RoleAdd, { name });
  }
  roleGet(role: string): Promise<pb.AuthRoleGetResponse> {
    return this.unary(pb.AuthService.RoleGet, { role });
  }
  roleList(): Promise<pb.AuthRoleListResponse> {
    return this.unary(pb.AuthService.RoleList, {});
  }
  roleDelete(role: string): Promise<pb.AuthRoleDeleteResponse> {
    return this.unary(pb.AuthService.RoleDelete, { role });
  }
  roleGrantPermission(name: string, perm: authpb.PermissionInit): Promise<pb.AuthRoleGrantPermissionResponse> {
    return this.unary(pb.AuthService.RoleGrantPermission, { name, perm });
  }
  roleRevokePermission(role: string, key: Uint8Array, rangeEnd?: Uint8Array): Promise<pb.AuthRoleRevokePermissionResponse> {
    return this.unary(pb.AuthService.RoleRevokePermission, { role, key, range_end: rangeEnd });
  }

  // ---- Cluster
  memberList(): Promise<pb.MemberListResponse> {
    return this.unary(pb.ClusterService.MemberList, {});
  }
  memberAdd(peerURLs: string[], isLearner = false): Promise<pb.MemberAddResponse> {
    return this.unary(pb.ClusterService.MemberAdd, { peerURLs, isLearner });
  }
  memberRemove(id: bigint): Promise<pb.MemberRemoveResponse> {
    return this.unary(pb.ClusterService.MemberRemove, { ID: id });
  }
  memberUpdate(id: bigint, peerURLs: string[]): Promise<pb.MemberUpdateResponse> {
    return this.unary(pb.ClusterService.MemberUpdate, { ID: id, peerURLs });
  }
  memberPromote(id: bigint): Promise<pb.MemberPromoteResponse> {
    return this.unary(pb.ClusterService.MemberPromote, { ID: id });
  }

  // ---- Maintenance
  status(): Promise<pb.StatusResponse> {
    return this.unary(pb.MaintenanceService.Status, {});
  }
  alarm(req: pb.AlarmRequestInit): Promise<pb.AlarmResponse> {
    return this.unary(pb.MaintenanceService.Alarm, req);
  }
  defragment(): Promise<pb.DefragmentResponse> {
    return this.unary(pb.MaintenanceService.Defragment, {});
  }
  hashKV(revision = 0): Promise<pb.HashKVResponse> {
    return this.unary(pb.MaintenanceService.HashKV, { revision });
  }
  moveLeader(targetID: bigint): Promise<pb.MoveLeaderResponse> {
    return this.unary(pb.MaintenanceService.MoveLeader, { targetID });
  }
  /**
   * Streams the backend snapshot; `onChunk` sees each blob and the bytes
   * remaining. A stale token (refused before any data) is renewed and the
   * stream opened once more, as unary calls do.
   */
  async snapshot(onChunk: (blob: Buffer, remaining: number) => void): Promise<void> {
    let received = false;
    const open = async (): Promise<void> => {
      const md = await this.metadata();
      const m = pb.MaintenanceService.Snapshot;
      await new Promise<void>((resolve, reject) => {
        const call = this.channel().makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => pb.SnapshotResponse, {}, md, {});
        call.on('data', (r: pb.SnapshotResponse) => {
          received = true;
          onChunk(Buffer.from(r.blob), r.remaining_bytes);
        });
        call.on('error', (e) => reject(toEtcdError(e)));
        call.on('end', () => resolve());
      });
    };
    try {
      await open();
    } catch (e) {
      const err = toEtcdError(e);
      if (!this.options.username || received || !isInvalidToken(err)) throw err;
      this.token = null;
      await open();
    }
  }
}
