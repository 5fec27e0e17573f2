// Membership as the log changes it, kept in the member store: a member's
// name and client URLs published through the log (etcd's publish), and the
// member records of applied raft conf changes (etcd's cluster.AddMember,
// RemoveMember, UpdateRaftAttributes, PromoteMember).
import { ConfChangeType } from '../raft';
import type { ApplierTable } from './apply-types';
import { decodeMember, type MemberStore } from './members';

export const memberAppliers: ApplierTable = {
  member_attr: (ctx, req) => {
    const members = ctx.services.members;
    const a = req.member_attr!;
    const m = members.get(a.ID);
    if (m) members.put({ ...m, name: a.name, clientURLs: a.clientURLs });
    return {};
  },
};

/** One change of an applied conf change entry; `context` is the member (JSON) it carries. */
export function applyConfChangeToMembers(members: MemberStore, type: ConfChangeType, nodeId: bigint, context?: Uint8Array): void {
  const fromContext = context && context.length ? decodeMember(context) : undefined;
  switch (type) {
    case ConfChangeType.ConfChangeAddNode:
    case ConfChangeType.ConfChangeAddLearnerNode: {
      const existing = members.get(nodeId);
      const learner = type === ConfChangeType.ConfChangeAddLearnerNode;
      // an existing learner added as a voter is a promotion
      if (existing) members.put({ ...existing, isLearner: learner ? existing.isLearner : false });
      else if (fromContext) members.put({ ...fromContext, id: nodeId, isLearner: learner });
      break;
    }
    case ConfChangeType.ConfChangeRemoveNode:
      if (members.get(nodeId)) members.remove(nodeId);
      break;
    case ConfChangeType.ConfChangeUpdateNode: {
      const existing = members.get(nodeId);
      if (existing && fromContext) members.put({ ...existing, peerURLs: fromContext.peerURLs });
      break;
    }
  }
}
