// Appliers for lease requests (grant, revoke, checkpoint). Owned by the lease work.
import type { ApplierTable } from './apply-types';

export const leaseAppliers: ApplierTable = {};
