// Appliers for key-value requests: the MVCC store does the work.
import type { ApplierTable, CompactionApplied } from './apply-types';

export type { CompactionApplied } from './apply-types';

export const kvAppliers: ApplierTable = {
  put: (ctx, req) => ctx.mvcc.put(req.put!),
  delete_range: (ctx, req) => ctx.mvcc.deleteRange(req.delete_range!),
  txn: (ctx, req) => ctx.mvcc.txn(req.txn!),
  range: (ctx, req) => ctx.mvcc.range(req.range!),
  compaction: (ctx, req): CompactionApplied => ctx.mvcc.compact(req.compaction!),
};
