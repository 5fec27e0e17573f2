// The key browser: windows over main's key list, single keys, history, and the watches the renderer opens.
import { EtcdPb, MvccPb, type EtcdClient } from '../../../node-core/index';
import type { HistoryEntry, WatchEvent } from '../../contract/index';
import { fromB64, kvToContract, prefixEndOf, text } from '../convert';
import { isEtcdError, serializeError } from '../errors';
import type { KeyList } from '../key-list';
import type { HandlerContext, HandlerDeps, HandlersFor } from './context';

const { Compare_CompareResult: CR, Compare_CompareTarget: CT } = EtcdPb;
const TREE_LIMIT = 5000;
const WATCH_FLUSH_MS = 100;
const WATCH_MAX_EVENTS = 200;

type KeyChannels = 'kv:window' | 'kv:tree' | 'kv:get' | 'kv:count' | 'kv:put' | 'kv:delete' | 'kv:history' | 'kv:compact' | 'watch:start' | 'watch:stop';

export function keyHandlers(deps: HandlerDeps): HandlersFor<KeyChannels> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();

  /** The caller's list for the prefix, read (count) on first use; main follows it from then on. */
  const listFor = async (prefix: string, refresh: boolean, ctx: HandlerContext): Promise<KeyList> => {
    const { list, fresh } = m.keyList(ctx.clientId, prefix, refresh, (e) => ctx.emit('keys:changed', e));
    if (fresh) {
      try {
        await list.init();
      } catch (e) {
        m.dropKeyList(ctx.clientId);
        throw e;
      }
    }
    return list;
  };

  return {
    'kv:window': async (req, ctx) => {
      const list = await listFor(req.prefix, !!req.refresh, ctx);
      const big = req.offset + req.limit - list.rows.length > 20_000;
      const opId = `keys-${Date.now()}`;
      if (big) {
        await list.ensure(req.offset + req.limit, (done, total) => ctx.emit('progress', { opId, label: 'Loading keys', done, total }));
        ctx.emit('progress', { opId, label: 'Loading keys', done: list.rows.length, total: list.total, finished: true });
      }
      return list.window(req.offset, Math.min(req.limit, 1000));
    },
    'kv:tree': async ({ prefix, delimiter }, ctx) => {
      // The caller's key list for the prefix: main applies watch events to it, so it is never stale.
      const list = await listFor(prefix, false, ctx);
      const nodes = await list.tree(delimiter);
      return { nodes: nodes.slice(0, TREE_LIMIT), revision: list.revision };
    },
    'kv:get': async ({ key, revision }) => {
      const r = await c().range({ key: fromB64(key), revision });
      return { kv: r.kvs[0] ? kvToContract(r.kvs[0]) : null, revision: r.header?.revision ?? 0 };
    },
    'kv:count': async ({ prefix }) => {
      const key = prefix ? text(prefix) : Buffer.from([0]);
      const r = await c().range({ key, range_end: prefix ? prefixEndOf(key) : Buffer.from([0]), count_only: true });
      return { count: r.count, revision: r.header?.revision ?? 0 };
    },
    'kv:put': async (req) => {
      const key = fromB64(req.key);
      const lease = req.lease && req.lease !== '0' ? BigInt(req.lease) : undefined;
      const put: EtcdPb.RequestOpInit = { request_put: { key, value: fromB64(req.value), lease } };
      if (req.expectModRevision === undefined) {
        const r = await c().txn({ success: [put, { request_range: { key } }] });
        const kv = r.responses[1]?.response_range?.kvs[0];
        return { ok: true, revision: r.header?.revision ?? 0, kv: kv ? kvToContract(kv) : null };
      }
      // Compare-and-swap on mod_revision: a concurrent writer makes this a conflict, never a silent overwrite.
      const r = await c().txn({
        compare: [{ key, target: CT.MOD, result: CR.EQUAL, mod_revision: req.expectModRevision }],
        success: [put, { request_range: { key } }],
        failure: [{ request_range: { key } }],
      });
      const ops = r.responses;
      const kv = (r.succeeded ? ops[1] : ops[0])?.response_range?.kvs[0];
      if (r.succeeded) return { ok: true, revision: r.header?.revision ?? 0, kv: kv ? kvToContract(kv) : null };
      return { ok: false, conflict: true, current: kv ? kvToContract(kv) : null, revision: r.header?.revision ?? 0 };
    },
    'kv:delete': async (req, ctx) => {
      const key = fromB64(req.key);
      const range_end = req.prefix ? (key.length ? prefixEndOf(key) : Buffer.from([0])) : undefined;
      if (req.expectModRevision !== undefined && !req.prefix) {
        const r = await c().txn({
          compare: [{ key, target: CT.MOD, result: CR.EQUAL, mod_revision: req.expectModRevision }],
          success: [{ request_delete_range: { key } }],
          failure: [{ request_range: { key } }],
        });
        if (r.succeeded) return { ok: true, deleted: r.responses[0]?.response_delete_range?.deleted ?? 0, revision: r.header?.revision ?? 0 };
        const kv = r.responses[0]?.response_range?.kvs[0];
        return { ok: false, conflict: true, current: kv ? kvToContract(kv) : null, revision: r.header?.revision ?? 0 };
      }
      const opId = `delete-${Date.now()}`;
      if (req.prefix) ctx.emit('progress', { opId, label: 'Deleting prefix', done: 0, total: 1 });
      const r = await c().deleteRange({ key, range_end });
      if (req.prefix) ctx.emit('progress', { opId, label: 'Deleting prefix', done: 1, total: 1, finished: true });
      return { ok: true, deleted: r.deleted, revision: r.header?.revision ?? 0 };
    },
    'kv:history': async ({ key, limit }) => {
      // Walk back version by version: each read at (mod_revision - 1) yields the previous
      // version; at (create_revision - 1) the previous generation's last version, if any.
      const k = fromB64(key);
      const entries: HistoryEntry[] = [];
      let compacted = false;
      const max = limit ?? 50;
      const first = await c().range({ key: k });
      let kv: MvccPb.KeyValue | undefined = first.kvs[0];
      if (!kv) {
        entries.push({ kv: null, revision: first.header?.revision ?? 0, deleted: true });
        return { entries, compacted };
      }
      while (kv && entries.length < max) {
        entries.push({ kv: kvToContract(kv), revision: kv.mod_revision, deleted: false });
        const at: number = kv.version > 1 ? kv.mod_revision - 1 : kv.create_revision - 1;
        if (at < 1) break;
        try {
          const r = await c().range({ key: k, revision: at });
          kv = r.kvs[0];
        } catch (e) {
          if (!isEtcdError(e, 'Compacted')) throw e;
          compacted = true;
          break;
        }
      }
      return { entries, compacted };
    },
    'kv:compact': async ({ revision, physical }) => {
      const r = await c().compact(revision, physical ?? false);
      return { revision: r.header?.revision ?? 0 };
    },

    'watch:start': async ({ prefix, fromKey, startRevision }, ctx) => {
      const id = m.watches.nextId();
      const key = prefix ? text(prefix) : Buffer.from([0]);
      const rangeEnd = fromKey || !prefix ? Buffer.from([0]) : prefixEndOf(key);
      // Bulk writes (a 100k-key import) must not stream every event to the renderer:
      // events are batched per WATCH_FLUSH_MS and capped; the rest is only counted.
      let pending: WatchEvent[] = [];
      let dropped = 0;
      let revision = 0;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const flush = (): void => {
        timer = null;
        ctx.emit('watch:update', { watchId: id, revision, events: pending, dropped });
        pending = [];
        dropped = 0;
      };
      const watch = c().watch(
        { key, rangeEnd, prevKv: false, startRevision: startRevision && startRevision > 0 ? startRevision : undefined },
        {
          onEvents: (u) => {
            revision = u.revision;
            for (const e of u.events) {
              if (pending.length >= WATCH_MAX_EVENTS) {
                dropped++;
                continue;
              }
              const kv = e.kv ?? { key: Buffer.alloc(0), value: Buffer.alloc(0), create_revision: 0, mod_revision: 0, version: 0, lease: 0n };
              pending.push({ type: e.type === MvccPb.Event_EventType.DELETE ? 'delete' : 'put', kv: kvToContract(kv) });
            }
            if (!timer) timer = setTimeout(flush, WATCH_FLUSH_MS);
          },
          onError: (e) => {
            if (timer) clearTimeout(timer);
            m.watches.forget(id);
            ctx.emit('watch:error', { watchId: id, error: serializeError(e) });
          },
        },
      );
      m.watches.add(id, ctx.clientId, watch);
      const rev = await watch.ready;
      return { watchId: id, revision: rev };
    },
    'watch:stop': async ({ watchId }) => {
      m.watches.stop(watchId);
      return { ok: true };
    },
  };
}
