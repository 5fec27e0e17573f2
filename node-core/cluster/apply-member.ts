// Appliers for membership attributes published through the log (a member's
// name and client URLs, as etcd's publish), kept in the member store.
import type { ApplierTable } from './apply-types';
import type { MemberStore } from './members';

export const memberAppliers: ApplierTable = {
  member_attr: (ctx, req) => {
    const members = ctx.services.members as MemberStore;
    const a = req.member_attr!;
    const m = members.get(a.ID);
    if (m) members.put({ ...m, name: a.name, clientURLs: a.clientURLs });
    return {};
  },
};
