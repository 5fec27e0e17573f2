// The v3election Election service, as etcd's v3election server: a
// clientv3/concurrency Election run inside the member. A candidate's key is
// <name>/<lease in hex>, bound to its lease; the leader is the key with the
// lowest create revision under the prefix. Campaign returns once every key
// created before the candidate's is gone; Proclaim and Resign act only while
// the key still has the create revision the campaign got (etcd's
// ResumeElection); Observe streams the leader's value changes and
// successions.
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { ClusterNode } from '../cluster';
import type { ResponseHeaderInit } from '../proto/gen/etcdserverpb';
import { Event_EventType, type KeyValue } from '../proto/gen/mvccpb';
import type {
  CampaignRequest,
  CampaignResponseInit,
  ElectionHandlers,
  LeaderKey,
  LeaderRequest,
  LeaderResponseInit,
  ProclaimRequest,
  ProclaimResponseInit,
  ResignRequest,
  ResignResponseInit,
} from '../proto/gen/v3electionpb';
import { Errors } from '../errors';
import { toServiceError } from './grpc-status';
import { leaderBoundStream } from './leader-monitor';
import type { ServerContext } from './server-context';
import { callSignal, createRevEquals, recipeError, firstCreate, fullRange, get, prefixEnd, sessionLease, txn, waitDeletes, watchUntil } from './lock-service';
import type { RequestUserHeader } from './kv-service';
import type { RequestGuard } from './request-guard';

// Plain Go errors in etcd: gRPC answers them as Unknown with the text.
export const ErrElectionNotLeader = new Error('election: not leader');
export const ErrElectionNoLeader = new Error('election: no leader');
export const ErrMissingLeaderKey = new Error('"leader" field must be provided');

/** concurrency.Election.Proclaim on a resumed election. */
async function proclaim(node: ClusterNode, key: Buffer, rev: number, lease: bigint, value: Buffer, user: RequestUserHeader): Promise<ResponseHeaderInit> {
  const { header, resp } = await txn(node, { compare: createRevEquals(key, rev), success: [{ request_put: { key, value, lease } }] }, user);
  if (!resp.succeeded) throw ErrElectionNotLeader;
  return header;
}

/** concurrency.Election.Resign on a resumed election. */
async function resign(node: ClusterNode, key: Buffer, rev: number, user: RequestUserHeader): Promise<ResponseHeaderInit> {
  const { header } = await txn(node, { compare: createRevEquals(key, rev), success: [{ request_delete_range: { key } }] }, user);
  return header;
}

async function campaign(ctx: ServerContext, req: CampaignRequest, signal: AbortSignal, user: RequestUserHeader): Promise<CampaignResponseInit> {
  const { node } = ctx;
  const lease = await sessionLease(ctx, req.lease, user);
  const pfx = Buffer.concat([req.name, Buffer.from('/')]);
  const key = Buffer.concat([pfx, Buffer.from(lease.toString(16))]);
  const value = Buffer.from(req.value);
  const { header, resp } = await txn(node, {
    compare: createRevEquals(key, 0),
    success: [{ request_put: { key, value, lease } }],
    failure: [{ request_range: fullRange({ key }) }],
  }, user);
  let rev = header.revision ?? 0;
  if (!resp.succeeded) {
    const kv = resp.responses![0].response_range!.kvs![0];
    rev = kv.create_revision ?? 0;
    if (!Buffer.from(kv.value ?? []).equals(value)) {
      try {
        await proclaim(node, key, rev, lease, value, user);
      } catch (e) {
        await resign(node, key, rev, user).catch(() => undefined);
        throw e;
      }
    }
  }
  try {
    await waitDeletes(ctx, pfx, rev - 1, signal);
  } catch (e) {
    // a canceled campaign withdraws, as the Election does on context cancel
    if (signal.aborted) await resign(node, key, rev, user).catch(() => undefined);
    throw e;
  }
  return { header, leader: { name: Buffer.from(req.name), key, rev, lease } };
}

async function leader(node: ClusterNode, name: Buffer): Promise<LeaderResponseInit> {
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  const r = await get(node, firstCreate(pfx));
  if (r.kvs.length === 0) throw ErrElectionNoLeader;
  return { header: r.header, kv: r.kvs[0] };
}

/** concurrency.Election.observe, writing each leader change to the stream until it is canceled. */
async function observe(ctx: ServerContext, name: Buffer, signal: AbortSignal, send: (r: LeaderResponseInit) => void): Promise<void> {
  const { node } = ctx;
  const pfx = Buffer.concat([name, Buffer.from('/')]);
  while (!signal.aborted) {
    const resp = await get(node, firstCreate(pfx));
    let kv: KeyValue | undefined;
    let hdr: ResponseHeaderInit;
    if (resp.kvs.length === 0) {
      // wait for the first put under the prefix; a delete would make this spin
      let found: { kv: KeyValue; hdr: ResponseHeaderInit } | undefined;
      await watchUntil(ctx, pfx, prefixEnd(pfx), resp.header.revision ?? 0, signal, (evs) => {
        for (const ev of evs) {
          if (ev.type === Event_EventType.PUT) {
            found = { kv: ev.kv!, hdr: node.header(ev.kv!.mod_revision) };
            return true;
          }
        }
        return false;
      });
      kv = found!.kv;
      hdr = found!.hdr;
    } else {
      kv = resp.kvs[0];
      hdr = resp.header;
    }
    send({ header: hdr, kv });
    // follow the leader's key until it is deleted
    await watchUntil(ctx, Buffer.from(kv.key), undefined, (hdr.revision ?? 0) + 1, signal, (evs, rev) => {
      for (const ev of evs) {
        if (ev.type === Event_EventType.DELETE) return true;
        send({ header: node.header(rev), kv: ev.kv! });
      }
      return false;
    });
  }
}

export function createElectionHandlers(ctx: ServerContext, guard: RequestGuard): ElectionHandlers {
  const { node } = ctx;
  const fail = <T>(cb: sendUnaryData<T>, e: unknown): void => cb(recipeError(e) as Parameters<sendUnaryData<T>>[0]);
  const leaderKey = (l: LeaderKey | undefined): LeaderKey => {
    if (!l) throw ErrMissingLeaderKey;
    return l;
  };
  return {
    Campaign: (call: ServerUnaryCall<CampaignRequest, CampaignResponseInit>, cb: sendUnaryData<CampaignResponseInit>) => {
      const signal = callSignal(call);
      guard
        .forWrite(call)
        .then((user) => campaign(ctx, call.request, signal, user))
        .then((r) => cb(null, r))
        .catch((e: unknown) => fail(cb, e));
    },
    Proclaim: (call: ServerUnaryCall<ProclaimRequest, ProclaimResponseInit>, cb: sendUnaryData<ProclaimResponseInit>) => {
      Promise.resolve()
        .then(() => leaderKey(call.request.leader))
        .then(async (l) => {
          const user = await guard.forWrite(call);
          return proclaim(node, Buffer.from(l.key), l.rev, l.lease, Buffer.from(call.request.value), user);
        })
        .then((header) => cb(null, { header }))
        .catch((e: unknown) => fail(cb, e));
    },
    Resign: (call: ServerUnaryCall<ResignRequest, ResignResponseInit>, cb: sendUnaryData<ResignResponseInit>) => {
      Promise.resolve()
        .then(() => leaderKey(call.request.leader))
        .then(async (l) => {
          const user = await guard.forWrite(call);
          return resign(node, Buffer.from(l.key), l.rev, user);
        })
        .then((header) => cb(null, { header }))
        .catch((e: unknown) => fail(cb, e));
    },
    Leader: (call: ServerUnaryCall<LeaderRequest, LeaderResponseInit>, cb: sendUnaryData<LeaderResponseInit>) => {
      const pfx = Buffer.concat([call.request.name, Buffer.from('/')]);
      guard
        .forRead(call, pfx, prefixEnd(pfx))
        .then(() => leader(node, Buffer.from(call.request.name)))
        .then((r) => cb(null, r))
        .catch((e: unknown) => fail(cb, e));
    },
    Observe: (call: ServerWritableStream<LeaderRequest, LeaderResponseInit>) => {
      // clientv3.WithRequireLeader: refused without a leader; once leaderless too long the
      // stream's context is cancelled and Observe returns etcdserver: no leader (etcd's cancel reason)
      const stop = new AbortController();
      const untrack = leaderBoundStream(ctx.leaderMonitor, call, (e) => {
        if (stop.signal.aborted) return;
        stop.abort();
        call.emit('error', toServiceError(e));
      });
      if (!untrack) {
        call.emit('error', toServiceError(Errors.NoLeader));
        return;
      }
      const signal = AbortSignal.any([callSignal(call), stop.signal]);
      const name = Buffer.from(call.request.name);
      const pfx = Buffer.concat([name, Buffer.from('/')]);
      guard
        .forRead(call, pfx, prefixEnd(pfx))
        .then(
          () => observe(ctx, name, signal, (r) => call.write(r)),
          // etcd's Observe runs clientv3's election observer with the caller's credentials: a
          // refused read just closes the observer's channel, and the stream ends OK, no message
          () => undefined,
        )
        .then(() => {
          if (!signal.aborted) call.end();
        })
        .catch((e: unknown) => {
          if (signal.aborted) return;
          call.emit('error', recipeError(e));
        })
        .finally(untrack);
    },
  };
}
