// The Maintenance service: status, alarms and hashes of this member.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EtcdNode } from '../cluster/node';
import type {
  AlarmRequest,
  AlarmResponseInit,
  HashKVRequest,
  HashKVResponseInit,
  MaintenanceHandlers,
  MoveLeaderRequest,
  MoveLeaderResponseInit,
  StatusRequest,
  StatusResponseInit,
} from '../proto/gen/etcdserverpb';
import { Errors, EtcdError } from '../errors';
import { toServiceError } from './grpc-status';
import type { RequestGuard } from './request-guard';
import { SERVER_VERSION } from './http-endpoints';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

export function createMaintenanceHandlers(node: EtcdNode, guard: RequestGuard): Partial<MaintenanceHandlers> {
  const status: Unary<StatusRequest, StatusResponseInit> = (_call, cb) => {
    try {
      const size = node.backend.size();
      cb(null, {
        header: node.header(),
        version: SERVER_VERSION,
        dbSize: size.total,
        dbSizeInUse: size.inUse,
        leader: node.leaderId,
        raftIndex: node.raftIndex,
        raftTerm: node.raftTerm,
        raftAppliedIndex: node.appliedIndex,
        isLearner: node.isLearner(),
        errors: node.alarmList().map((a) => `memberID:${a.memberId} alarm:${['NONE', 'NOSPACE', 'CORRUPT'][a.alarm]} `),
      });
    } catch (e) {
      cb(toServiceError(e) as Parameters<sendUnaryData<StatusResponseInit>>[0]);
    }
  };

  const hashKV: Unary<HashKVRequest, HashKVResponseInit> = (call, cb) => {
    try {
      const h = node.mvcc.hashKV(call.request.revision);
      cb(null, { header: node.header(h.rev), hash: h.hash, compact_revision: h.compactRev });
    } catch (e) {
      cb(toServiceError(e) as Parameters<sendUnaryData<HashKVResponseInit>>[0]);
    }
  };

  const alarm: Unary<AlarmRequest, AlarmResponseInit> = (_call, cb) => {
    cb(null, { header: node.header(), alarms: node.alarmList().map((a) => ({ memberID: a.memberId, alarm: a.alarm })) });
  };

  // etcd's MoveLeader: only the leader transfers, only to a voting member, and
  // waits (up to the request timeout) until the transferee leads.
  const moveLeader: Unary<MoveLeaderRequest, MoveLeaderResponseInit> = (call, cb) => {
    const target = call.request.targetID;
    guard
      .forAdmin(call)
      .then(async () => {
        if (!node.isLeader()) throw Errors.NotLeader;
        const m = node.memberStore.get(target);
        if (!m || m.isLearner) throw Errors.BadLeaderTransferee;
        if (target === node.memberId) return;
        node.raft.transferLeader(target);
        const deadline = Date.now() + 5000 + 2 * node.config.electionTimeout;
        while (node.leaderId !== target) {
          if (Date.now() > deadline) throw new EtcdError(2, 'etcdserver: request timed out, leader transfer took too long');
          await new Promise((r) => setTimeout(r, 20));
        }
      })
      .then(() => cb(null, { header: node.header() }))
      .catch((e: unknown) => cb(toServiceError(e) as Parameters<sendUnaryData<MoveLeaderResponseInit>>[0]));
  };

  return { Status: status, HashKV: hashKV, Alarm: alarm, MoveLeader: moveLeader };
}
