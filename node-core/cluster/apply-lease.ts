// Appliers for lease requests (grant, revoke, checkpoint): the lessor does
// the work, on every member, in log order. Timers and expiry decisions live
// in lease-driver.ts on the leader; nothing here looks at a clock.
import type { Lessor } from '../lease/lessor';
import type { LeaseRevokeResponseInit, LeaseCheckpointResponseInit } from '../proto/gen/etcdserverpb';
import type { ApplierTable, ApplyContext } from './apply-types';

function lessorOf(ctx: ApplyContext): Lessor {
  return ctx.services.lessor;
}

export const leaseAppliers: ApplierTable = {
  lease_grant: (ctx, req) => {
    const r = req.lease_grant!;
    return lessorOf(ctx).grant(r.ID, r.TTL);
  },
  lease_revoke: (ctx, req): LeaseRevokeResponseInit => {
    lessorOf(ctx).revoke(req.lease_revoke!.ID, ctx.mvcc);
    return {};
  },
  lease_checkpoint: (ctx, req): LeaseCheckpointResponseInit => {
    const lessor = lessorOf(ctx);
    for (const cp of req.lease_checkpoint!.checkpoints) lessor.checkpoint(cp.ID, cp.remaining_TTL);
    return {};
  },
};
