// Moving data: export, import (preview then apply), copy/rename a prefix, bulk
// delete. The logic is in data-transfer.ts; here: the plans between preview and
// apply, the cancel switches, and progress events to the window that asked.
import { randomUUID } from 'node:crypto';
import { ContractError, type DataExportFormat } from '../../contract/index';
import { fromB64 } from '../convert';
import { Cancel, copyPrefix, deletesOf, formatExport, parseImport, planPuts, previewOf, putsOf, readPrefix, rebase, runGuarded, type PlannedPut } from '../data-transfer';
import type { HandlerContext, HandlerDeps, HandlersFor } from './context';

type DataChannels = 'data:export' | 'data:import-preview' | 'data:import-apply' | 'data:copy-prefix' | 'data:delete-keys' | 'data:cancel';

/** A preview's plan lives this long for its Apply (and one at most per window). */
const PLAN_TTL_MS = 30 * 60_000;

const EXT: Record<DataExportFormat, string> = { json: 'json', yaml: 'yaml', etcdctl: 'sh' };

export function dataHandlers(deps: HandlerDeps): HandlersFor<DataChannels> {
  const m = deps.manager;
  const plans = new Map<string, { plan: PlannedPut[]; profileId: string | null; clientId: string; at: number }>();
  const running = new Map<string, Cancel>();

  /** Runs an operation with a cancel switch and progress events labelled for the window. */
  const op = async <T>(opId: string, label: string, ctx: HandlerContext, fn: (progress: (done: number, total: number) => void, cancel: Cancel) => Promise<T>): Promise<T> => {
    if (running.has(opId)) throw new ContractError(-1, `operation ${opId} is already running`);
    const cancel = new Cancel();
    running.set(opId, cancel);
    let last = { done: 0, total: 0 };
    try {
      return await fn((done, total) => {
        last = { done, total };
        ctx.emit('progress', { opId, label, done, total });
      }, cancel);
    } finally {
      running.delete(opId);
      ctx.emit('progress', { opId, label, ...last, finished: true });
    }
  };

  const prune = (): void => {
    const now = Date.now();
    for (const [id, p] of plans) if (now - p.at > PLAN_TTL_MS) plans.delete(id);
  };

  return {
    'data:export': async ({ prefix, format, opId }, ctx) =>
      op(opId, 'Exporting', ctx, async (progress, cancel) => {
        const { kvs, revision } = await readPrefix(m.requireClient(), Buffer.from(prefix), progress, cancel);
        const slug = prefix.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'all';
        return { text: formatExport(format, prefix, revision, kvs), count: kvs.length, revision, fileName: `etcd-${slug}-rev${revision}.${EXT[format]}` };
      }),
    'data:import-preview': async ({ text, targetPrefix, opId }, ctx) =>
      op(opId, 'Comparing', ctx, async (progress, cancel) => {
        prune();
        const parsed = parseImport(text);
        const entries = targetPrefix !== undefined && targetPrefix !== parsed.prefix ? rebase(parsed.entries, parsed.prefix, targetPrefix) : parsed.entries;
        const { plan, revision } = await planPuts(m.requireClient(), entries, progress, cancel);
        for (const [id, p] of plans) if (p.clientId === ctx.clientId) plans.delete(id);
        const planId = randomUUID();
        plans.set(planId, { plan, profileId: m.currentProfile?.id ?? null, clientId: ctx.clientId, at: Date.now() });
        return previewOf(planId, plan, revision);
      }),
    'data:import-apply': async ({ planId, opId }, ctx) => {
      const p = plans.get(planId);
      if (!p) throw new ContractError(-1, 'this import preview has expired or was replaced: preview the file again');
      if (p.profileId !== (m.currentProfile?.id ?? null)) throw new ContractError(-1, 'the preview was made on another connection: preview the file again on this one');
      plans.delete(planId);
      return op(opId, 'Importing', ctx, (progress, cancel) => runGuarded(m.requireClient(), putsOf(p.plan), progress, cancel));
    },
    'data:copy-prefix': async ({ from, to, rename, dryRun, opId }, ctx) =>
      op(opId, rename ? 'Renaming' : 'Copying', ctx, (progress, cancel) => copyPrefix(m.requireClient(), from, to, rename, dryRun, progress, cancel)),
    'data:delete-keys': async ({ keys, opId }, ctx) =>
      op(opId, 'Deleting', ctx, (progress, cancel) => runGuarded(m.requireClient(), deletesOf(keys.map((k) => ({ key: fromB64(k.key), modRevision: k.modRevision }))), progress, cancel)),
    'data:cancel': async ({ opId }) => {
      const c = running.get(opId);
      if (c) c.cancelled = true;
      return { ok: true };
    },
  };
}
