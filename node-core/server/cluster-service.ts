// The Cluster service: membership changes through raft conf changes, with
// etcd's checks (--strict-reconfig-check quorum protection, one learner at
// most, promotion only of a learner that has caught up).
import * as grpc from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { ConfChangeType, type ClusterNode, computeMemberId, type Member } from '../cluster';
import { Errors, EtcdError } from '../errors';
import { ClusterService, decodeMemberPromoteResponse } from '../proto/gen/etcdserverpb';
import type {
  ClusterHandlers,
  MemberAddRequest,
  MemberAddResponseInit,
  MemberInit,
  MemberListRequest,
  MemberListResponseInit,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberPromoteResponseInit,
  MemberRemoveRequest,
  MemberRemoveResponseInit,
  MemberUpdateRequest,
  MemberUpdateResponseInit,
} from '../proto/gen/etcdserverpb';
import { toServiceError } from './grpc-status';
import type { RequestGuard } from './request-guard';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

const MAX_LEARNERS = 1;

function toPb(m: Member): MemberInit {
  return { ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
}

function validUrls(urls: string[]): boolean {
  if (!urls.length) return false;
  return urls.every((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'http:' || p.protocol === 'https:' || p.protocol === 'unix:' || p.protocol === 'unixs:') && !!p.host;
    } catch {
      return false;
    }
  });
}

const isStarted = (m: Member): boolean => m.name !== '';

/** etcd's HealthInterval: peers must have been connected this long before a reconfiguration. */
const HEALTH_INTERVAL_MS = 5000;

function connectedSince(node: ClusterNode, id: bigint, since: number): boolean {
  if (id === node.memberId) return true;
  const t = node.peerActiveSince(id);
  return t !== undefined && t <= since;
}

/** Calls MemberPromote on the leader's client URL; etcd's errors come back unchanged. */
function forwardPromote(node: ClusterNode, req: MemberPromoteRequest): Promise<MemberPromoteResponse> {
  const lead = node.member(node.leaderId);
  const url = lead?.clientURLs[0];
  if (!url) return Promise.reject(Errors.NoLeader);
  const Client = grpc.makeGenericClientConstructor(ClusterService, 'Cluster');
  const u = new URL(url);
  const client = new Client(u.host, u.protocol === 'https:' ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      ClusterService.MemberPromote.path,
      ClusterService.MemberPromote.requestSerialize,
      decodeMemberPromoteResponse,
      req,
      { deadline: Date.now() + 5000 + 2 * node.config.electionTimeout },
      (err: grpc.ServiceError | null, res?: MemberPromoteResponse) => {
        client.close();
        if (err) reject(new EtcdError(err.code, err.details));
        else resolve(res!);
      },
    );
  });
}

export function createClusterHandlers(node: ClusterNode, guard: RequestGuard): ClusterHandlers {
  const fail = <R>(cb: sendUnaryData<R>, e: unknown): void => cb(toServiceError(e) as Parameters<sendUnaryData<R>>[0]);
  const voting = (): Member[] => node.members.filter((m) => !m.isLearner);

  const memberList: Unary<MemberListRequest, MemberListResponseInit> = (_call, cb) => {
    cb(null, { header: node.header(0), members: node.members.map(toPb) });
  };

  const memberAdd: Unary<MemberAddRequest, MemberAddResponseInit> = (call, cb) => {
    const req = call.request;
    guard
      .forAdmin(call)
      .then(async () => {
        if (!validUrls(req.peerURLs)) throw Errors.MemberBadURLs;
        const m: Member = {
          id: computeMemberId(req.peerURLs, node.config.initialClusterToken, Math.floor(Date.now() / 1000)),
          name: '',
          peerURLs: [...req.peerURLs],
          clientURLs: [],
          isLearner: req.isLearner,
        };
        node.validateMemberAdd(m);
        if (m.isLearner && node.members.filter((x) => x.isLearner).length >= MAX_LEARNERS) throw Errors.TooManyLearners;
        if (node.config.strictReconfigCheck && !m.isLearner) {
          const vs = voting();
          const nmembers = vs.length + 1;
          const nstarted = vs.filter(isStarted).length;
          if (!(nstarted === 1 && nmembers === 2) && nstarted < Math.floor(nmembers / 2) + 1) throw Errors.MemberNotEnoughStarted;
        }
        // etcd's isConnectedFullySince: this member must have been connected to every voter for a while
        if (node.config.strictReconfigCheck) {
          const since = Date.now() - HEALTH_INTERVAL_MS;
          if (!voting().every((v) => connectedSince(node, v.id, since))) throw Errors.Unhealthy;
        }
        await node.changeMembership(m.isLearner ? ConfChangeType.ConfChangeAddLearnerNode : ConfChangeType.ConfChangeAddNode, m.id, m);
        cb(null, { header: node.header(0), member: toPb(m), members: node.members.map(toPb) });
      })
      .catch((e: unknown) => fail(cb, e));
  };

  const memberRemove: Unary<MemberRemoveRequest, MemberRemoveResponseInit> = (call, cb) => {
    const id = call.request.ID;
    guard
      .forAdmin(call)
      .then(async () => {
        const m = node.member(id);
        if (!m) throw node.isRemovedMember(id) ? Errors.MemberNotFound : Errors.MemberNotFound;
        if (node.config.strictReconfigCheck && !m.isLearner) {
          const rest = voting().filter((x) => x.id !== id);
          const nstarted = rest.filter(isStarted).length;
          if (nstarted < Math.floor(rest.length / 2) + 1) throw Errors.MemberNotEnoughStarted;
          // a member that is down is not part of the active quorum: removing it is safe
          const downed = id !== node.memberId && node.peerActiveSince(id) === undefined;
          if (!downed) {
            const vs = voting();
            const since = Date.now() - HEALTH_INTERVAL_MS;
            const active = vs.filter((v) => connectedSince(node, v.id, since)).length;
            if (active - 1 < 1 + Math.floor((vs.length - 1) / 2)) throw Errors.Unhealthy;
          }
        }
        await node.changeMembership(ConfChangeType.ConfChangeRemoveNode, id);
        cb(null, { header: node.header(0), members: node.members.map(toPb) });
      })
      .catch((e: unknown) => fail(cb, e));
  };

  const memberUpdate: Unary<MemberUpdateRequest, MemberUpdateResponseInit> = (call, cb) => {
    const req = call.request;
    guard
      .forAdmin(call)
      .then(async () => {
        if (!validUrls(req.peerURLs)) throw Errors.MemberBadURLs;
        node.validateMemberUpdate(req.ID, req.peerURLs);
        const m = node.member(req.ID)!;
        await node.changeMembership(ConfChangeType.ConfChangeUpdateNode, req.ID, { ...m, peerURLs: [...req.peerURLs] });
        cb(null, { header: node.header(0), members: node.members.map(toPb) });
      })
      .catch((e: unknown) => fail(cb, e));
  };

  const memberPromote: Unary<MemberPromoteRequest, MemberPromoteResponseInit> = (call, cb) => {
    const id = call.request.ID;
    guard
      .forAdmin(call)
      .then(async () => {
        const m = node.member(id);
        if (!m) throw Errors.MemberNotFound;
        if (!m.isLearner) throw Errors.MemberNotLearner;
        // only the leader knows how far the learner got: a follower asks it, as etcd does
        if (!node.isLeader()) {
          const res = await forwardPromote(node, call.request);
          cb(null, { ...res, header: node.header(0) });
          return;
        }
        // as etcd's isLearnerReady: the learner's log must be within 90% of the leader's
        const match = node.matchIndex(id);
        const leaderMatch = node.matchIndex(node.memberId) ?? 0;
        if (match === undefined || match < leaderMatch * 0.9) throw Errors.LearnerNotReady;
        await node.changeMembership(ConfChangeType.ConfChangeAddNode, id, { ...m, isLearner: false });
        cb(null, { header: node.header(0), members: node.members.map(toPb) });
      })
      .catch((e: unknown) => fail(cb, e));
  };

  return { MemberAdd: memberAdd, MemberRemove: memberRemove, MemberUpdate: memberUpdate, MemberList: memberList, MemberPromote: memberPromote };
}
