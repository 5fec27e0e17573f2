// The Cluster service: membership as this member knows it.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import type { EtcdNode } from '../cluster/node';
import type { ClusterHandlers, MemberListRequest, MemberListResponseInit } from '../proto/gen/etcdserverpb';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

export function createClusterHandlers(node: EtcdNode): Partial<ClusterHandlers> {
  const memberList: Unary<MemberListRequest, MemberListResponseInit> = (_call, cb) => {
    cb(null, {
      header: node.header(),
      members: node.members.map((m) => ({ ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner })),
    });
  };
  return { MemberList: memberList };
}
