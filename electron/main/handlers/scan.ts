// Search beyond prefixes and the keyspace analyzer: scans pinned to one
// revision (keyspace-scan.ts), run in the background and streamed to the
// window that asked as scan:progress events; scan:cancel stops one between pages.
import type { EtcdClient } from '../../../node-core/index';
import type { ScanProgressEvent, SearchHit } from '../../contract/index';
import { fromB64 } from '../convert';
import { serializeError } from '../errors';
import { decodeValue } from '../k8s-value';
import { KeyspaceAnalyzer, findCompactRevision, matcher, pages, pinRange, prefixRange, searchPrefix, type PinnedRange, type RunningScan } from '../keyspace-scan';
import type { HandlerContext, HandlerDeps, HandlersFor } from './context';

/** The most hits one search sends (and the renderer keeps); matches past it are only counted. */
export const SEARCH_HIT_CAP = 10_000;
/** Progress goes out at most this often (a 1,000,000-key scan must not flood the window). */
const PROGRESS_MS = 150;

export function scanHandlers(deps: HandlerDeps): HandlersFor<'scan:search' | 'scan:analyze' | 'scan:cancel' | 'scan:decode'> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();

  /** Pins the range (the answer carries revision and total); a failure ends the scan before it started. */
  const begin = async (ctx: HandlerContext, kind: RunningScan['kind'], prefix: string): Promise<{ id: string; scan: RunningScan; pin: PinnedRange; client: EtcdClient }> => {
    const client = c();
    const { id, scan } = m.scans.start(ctx.clientId, kind);
    try {
      const { key, end } = prefixRange(prefix);
      return { id, scan, pin: await pinRange(client, key, end), client };
    } catch (e) {
      m.scans.finish(id);
      throw e;
    }
  };

  async function runSearch(ctx: HandlerContext, id: string, scan: RunningScan, pin: PinnedRange, client: EtcdClient, match: ReturnType<typeof matcher> | null, keysOnly: boolean): Promise<void> {
    let hits: SearchHit[] = [];
    let sent = 0;
    let matched = 0;
    let scanned = 0;
    let last = Date.now();
    const emit = (end: Partial<ScanProgressEvent>): void => {
      ctx.emit('scan:progress', { scanId: id, kind: 'search', revision: pin.revision, scanned, total: pin.total, hits, matched, cap: SEARCH_HIT_CAP, ...end });
      hits = [];
    };
    try {
      if (match) {
        for await (const page of pages(client, pin, { keysOnly })) {
          if (scan.cancelled) break;
          for (const kv of page) {
            scanned++;
            const h = match(kv);
            if (!h) continue;
            matched++;
            if (sent < SEARCH_HIT_CAP) {
              hits.push(h);
              sent++;
            }
          }
          if (Date.now() - last >= PROGRESS_MS) {
            emit({});
            last = Date.now();
          }
        }
      }
      emit({ done: true, cancelled: scan.cancelled || undefined });
    } catch (e) {
      emit({ done: true, error: serializeError(e) });
    } finally {
      m.scans.finish(id);
    }
  }

  async function runAnalysis(ctx: HandlerContext, id: string, scan: RunningScan, pin: PinnedRange, client: EtcdClient, opts: { prefix: string; delimiter: string; kubernetes: boolean }): Promise<void> {
    let scanned = 0;
    const emit = (end: Partial<ScanProgressEvent>): void => ctx.emit('scan:progress', { scanId: id, kind: 'analyze', revision: pin.revision, scanned, total: pin.total, ...end });
    try {
      // Before the scan: live keys modified after it are not history (the estimate needs their count).
      const compactRevision = await findCompactRevision(client, pin.revision);
      const a = new KeyspaceAnalyzer(opts.prefix, opts.delimiter, opts.kubernetes, compactRevision);
      let last = Date.now();
      for await (const page of pages(client, pin, { keysOnly: false })) {
        if (scan.cancelled) break;
        for (const kv of page) a.add(kv);
        scanned += page.length;
        if (Date.now() - last >= PROGRESS_MS) {
          emit({});
          last = Date.now();
        }
      }
      const storage = await client.status().then(
        (s) => a.storageEstimate(s, pin.revision),
        (e: unknown) => ({ error: serializeError(e).message }),
      );
      emit({ done: true, cancelled: scan.cancelled || undefined, report: a.report(pin.revision, storage, scan.cancelled) });
    } catch (e) {
      emit({ done: true, error: serializeError(e) });
    } finally {
      m.scans.finish(id);
    }
  }

  return {
    'scan:search': async (req, ctx) => {
      // A glob's literal head narrows the range; a head outside the prefix matches nothing.
      const narrowed = searchPrefix(req);
      const { id, scan, pin, client } = await begin(ctx, 'search', narrowed ?? req.prefix);
      const total = narrowed === null ? 0 : pin.total;
      const keysOnly = req.mode !== 'value';
      void runSearch(ctx, id, scan, { ...pin, total }, client, narrowed === null ? null : matcher(req), keysOnly);
      return { scanId: id, revision: pin.revision, total };
    },
    'scan:analyze': async (req, ctx) => {
      const { id, scan, pin, client } = await begin(ctx, 'analyze', req.prefix);
      void runAnalysis(ctx, id, scan, pin, client, { prefix: req.prefix, delimiter: req.delimiter ?? '/', kubernetes: !!req.kubernetes });
      return { scanId: id, revision: pin.revision, total: pin.total };
    },
    'scan:cancel': async ({ scanId }) => {
      m.scans.cancel(scanId);
      return { ok: true };
    },
    'scan:decode': async ({ key, revision }) => {
      const k = fromB64(key);
      const r = await c().range({ key: k, revision });
      const kv = r.kvs[0];
      return decodeValue(k.toString('utf8'), kv ? Buffer.from(kv.value) : null, r.header?.revision ?? 0);
    },
  };
}
