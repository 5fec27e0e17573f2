// The Maintenance service: status, alarms and hashes of this member.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EtcdNode } from '../cluster/node';
import type {
  AlarmRequest,
  AlarmResponseInit,
  HashKVRequest,
  HashKVResponseInit,
  MaintenanceHandlers,
  StatusRequest,
  StatusResponseInit,
} from '../proto/gen/etcdserverpb';
import { toServiceError } from './grpc-status';
import { SERVER_VERSION } from './http-endpoints';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

export function createMaintenanceHandlers(node: EtcdNode): Partial<MaintenanceHandlers> {
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
        isLearner: false,
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

  return { Status: status, HashKV: hashKV, Alarm: alarm };
}
