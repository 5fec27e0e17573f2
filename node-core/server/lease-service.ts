// The Lease service: etcd 3.4's v3rpc/lease.go and the lease half of
// etcdserver/v3_server.go. Grant and revoke go through the log; renew
// (keep-alive) and time-to-live are answered by the leader's lessor, which
// alone knows expiries.
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EtcdClient } from '../client/client';
import type { ClusterNode } from '../cluster';
import { EtcdError, Errors } from '../errors';
import type { Lessor } from '../lease/lessor';
import type {
  LeaseGrantRequest,
  LeaseGrantResponseInit,
  LeaseHandlers,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponseInit,
  LeaseLeasesRequest,
  LeaseLeasesResponseInit,
  LeaseRevokeRequest,
  LeaseRevokeResponseInit,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponseInit,
} from '../proto/gen/etcdserverpb';
import { toServiceError } from './grpc-status';
import { leaderBoundStream } from './leader-monitor';
import type { RequestGuard } from './request-guard';
import type { ServerContext } from './server-context';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

function fail<Res>(cb: sendUnaryData<Res>, e: unknown): void {
  cb(toServiceError(e) as Parameters<sendUnaryData<Res>>[0]);
}

export function lessorOf(node: ClusterNode): Lessor {
  return node.lessor;
}

/** Grants a lease through the log (also used by the lock and election services' sessions). */
export async function grantLease(ctx: ServerContext, ttl: number, id: bigint, header: { username?: string; auth_revision?: number } = {}): Promise<LeaseGrantResponseInit> {
  const { node } = ctx;
  // no id given: choose one, as etcd's LeaseGrant
  const ID = id === 0n ? ctx.leaseIds.next() : id;
  const a = await node.propose({ header, lease_grant: { TTL: ttl, ID } });
  const r = a.result;
  return { header: node.header(a.rev), ID: r.ID, TTL: r.TTL, error: '' };
}

/** etcd's LeaseRenew: on the leader, or forwarded to it; lease not found (or revoked while expired) gives TTL 0. */
async function renew(ctx: ServerContext, id: bigint): Promise<number> {
  const { node } = ctx;
  try {
    if (node.isLeader()) {
      try {
        return await lessorOf(node).renew(id);
      } catch (e) {
        // leadership moved while the renew waited: the new leader answers, as etcd retries on ErrNotPrimary
        if (e !== Errors.NotLeader || node.isLeader()) throw e;
      }
    }
    return (await ctx.leaderClient.get().leaseKeepAliveOnce(id)).TTL;
  } catch (e) {
    if (e === Errors.LeaseNotFound || (e instanceof EtcdError && e.message === Errors.LeaseNotFound.message)) return 0;
    throw e;
  }
}

const leaderClient2 = async (ctx: ServerContext): Promise<EtcdClient> => ctx.leaderClient.get();

export function createLeaseHandlers(ctx: ServerContext, guard: RequestGuard): LeaseHandlers {
  const { node } = ctx;
  const leaseGrant: Unary<LeaseGrantRequest, LeaseGrantResponseInit> = (call, cb) => {
    guard
      .forWrite(call)
      .then((h) => grantLease(ctx, call.request.TTL, call.request.ID, h))
      .then((res) => cb(null, res))
      .catch((e: unknown) => fail(cb, e));
  };

  const leaseRevoke: Unary<LeaseRevokeRequest, LeaseRevokeResponseInit> = (call, cb) => {
    guard
      .forWrite(call)
      .then((h) => node.propose({ header: h, lease_revoke: { ID: call.request.ID } }))
      .then((a) => cb(null, { header: node.header(a.rev) }))
      .catch((e: unknown) => fail(cb, e));
  };

  const leaseTimeToLive: Unary<LeaseTimeToLiveRequest, LeaseTimeToLiveResponseInit> = (call, cb) => {
    const req = call.request;
    if (!node.isLeader()) {
      leaderClient2(ctx)
        .then((c) => c.leaseTimeToLive(req.ID, req.keys))
        .then((r) => cb(null, { ...r, header: node.header() }))
        .catch((e: unknown) => fail(cb, e));
      return;
    }
    try {
      const l = lessorOf(node).lookup(req.ID);
      if (!l) {
        cb(null, { header: node.header(), ID: req.ID, TTL: -1 });
        return;
      }
      // Go's int64(Duration.Seconds()): truncated; "forever" is MaxInt64 ns
      const ttl = l.remainingMs === Infinity ? 9223372036 : Math.trunc(l.remainingMs / 1000);
      const res: LeaseTimeToLiveResponseInit = { header: node.header(), ID: req.ID, TTL: ttl, grantedTTL: l.ttl };
      if (req.keys) res.keys = l.keys;
      cb(null, res);
    } catch (e) {
      fail(cb, e);
    }
  };

  const leaseLeases: Unary<LeaseLeasesRequest, LeaseLeasesResponseInit> = (_call, cb) => {
    try {
      cb(null, { header: node.header(), leases: lessorOf(node).list().map((ID) => ({ ID })) });
    } catch (e) {
      fail(cb, e);
    }
  };

  const leaseKeepAlive = (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponseInit>): void => {
    let chain: Promise<void> = Promise.resolve();
    let done = false;
    // clientv3.WithRequireLeader: refused without a leader, ended with etcdserver: no leader once leaderless too long
    const untrack = leaderBoundStream(ctx.leaderMonitor, call, (e) => finish(e));
    if (!untrack) {
      call.emit('error', toServiceError(Errors.NoLeader));
      return;
    }
    const finish = (e?: unknown): void => {
      if (done) return;
      done = true;
      untrack();
      if (e) call.emit('error', toServiceError(e));
      else call.end();
    };
    call.on('data', (req: LeaseKeepAliveRequest) => {
      chain = chain.then(async () => {
        if (done) return;
        // header before the renew: its revision never runs ahead of the keep-alive (etcd)
        const header = node.header();
        try {
          const TTL = await renew(ctx, req.ID);
          if (!done) call.write({ header, ID: req.ID, TTL });
        } catch (e) {
          finish(e instanceof EtcdError ? e : Errors.NotCapable);
        }
      });
    });
    call.on('end', () => {
      void chain.then(() => finish());
    });
    call.on('cancelled', () => {
      done = true;
      untrack();
    });
    call.on('error', () => {
      done = true;
      untrack();
    });
  };

  return {
    LeaseGrant: leaseGrant,
    LeaseRevoke: leaseRevoke,
    LeaseKeepAlive: leaseKeepAlive,
    LeaseTimeToLive: leaseTimeToLive,
    LeaseLeases: leaseLeases,
  };
}
