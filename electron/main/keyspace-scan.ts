// Streamed scans of the keyspace for search beyond prefixes and the analyzer.
// Works the same on any connection (the embedded node, the local cluster, a
// remote etcd 3.4): a count_only Range fixes the revision and the total, then
// paged Ranges read [key, end) at that revision, each page continuing at the
// last key + \0, so a write made after the scan started is never seen and
// nothing is read twice. Memory stays bounded whatever the keyspace: only one
// page is held at a time; search hits past a cap are counted, not kept; the
// analyzer keeps aggregates (a capped prefix tree, top-N lists).
import { Code, type EtcdPb, type MvccPb } from '../../node-core/index';
import type { KeyspaceReport, KeyStat, PrefixNode, SearchHit, SearchRequest, StorageEstimate } from '../contract/index';
import { isEtcdError } from './errors';
import { peekKind } from './k8s-value';
import { b64, kvToRow, prefixEndOf, text } from './convert';

export interface ScanClient {
  range(req: EtcdPb.RangeRequestInit): Promise<EtcdPb.RangeResponse>;
}

/**
 * Keys per page (at most). Big on purpose: etcd's Range counts the whole rest
 * of the range for every page (its `count`), so n keys in pages of p cost
 * n²/2p index steps; 50,000 keeps that small beside reading the keys at
 * 1,000,000 keys, while a keys-only page stays a few MB.
 */
export const KEYS_PAGE = 50_000;
/** A value scan starts small (etcd values may be 1.5 MiB each) and sizes pages from what it has seen. */
const VALUE_FIRST_PAGE = 32;
const VALUE_PAGE_BYTES = 4 * 1024 * 1024;

export interface PinnedRange {
  key: Buffer;
  end: Buffer;
  revision: number;
  total: number;
}

/** [key, end) of a prefix; '' is the whole keyspace (etcd's [\0, \0)). */
export function prefixRange(prefix: string): { key: Buffer; end: Buffer } {
  if (!prefix) return { key: Buffer.from([0]), end: Buffer.from([0]) };
  const key = text(prefix);
  return { key, end: prefixEndOf(key) };
}

/** Fixes the scan's revision and counts the range there (count_only: no key crosses the wire). */
export async function pinRange(client: ScanClient, key: Buffer, end: Buffer): Promise<PinnedRange> {
  const r = await client.range({ key, range_end: end, count_only: true });
  return { key, end, revision: r.header?.revision ?? 0, total: r.count };
}

/**
 * The range's pages at the pinned revision. keysOnly pages are KEYS_PAGE
 * keys; value pages aim at ~4 MiB, and a page refused as too large
 * (ResourceExhausted, either side's message limit) is asked again at half the size.
 */
export async function* pages(client: ScanClient, pin: PinnedRange, opts: { keysOnly: boolean; pageSize?: number }): AsyncGenerator<MvccPb.KeyValue[]> {
  const max = opts.pageSize ?? KEYS_PAGE;
  let limit = opts.keysOnly ? max : Math.min(max, VALUE_FIRST_PAGE);
  let start = pin.key;
  for (;;) {
    let r: EtcdPb.RangeResponse;
    try {
      r = await client.range({ key: start, range_end: pin.end, revision: pin.revision, limit, keys_only: opts.keysOnly });
    } catch (e) {
      // Too big for a message (huge values, or keys of up to 1.5 MiB each): the same page in halves.
      if (limit > 1 && (e as { code?: unknown }).code === Code.ResourceExhausted) {
        limit = Math.max(1, limit >> 1);
        continue;
      }
      throw e;
    }
    const kvs = r.kvs;
    if (kvs.length) yield kvs;
    if (!r.more || !kvs.length) return;
    // The continuation: the smallest key after the last one read.
    const last = kvs[kvs.length - 1].key;
    start = Buffer.concat([Buffer.from(last), Buffer.from([0])]);
    if (!opts.keysOnly) {
      let bytes = 0;
      let biggest = 0;
      for (const kv of kvs) {
        bytes += kv.value.length + kv.key.length;
        biggest = Math.max(biggest, kv.value.length + kv.key.length);
      }
      // Sized by the average, bounded by the biggest seen so one huge value cannot blow the page up tenfold.
      const per = Math.max(bytes / kvs.length, biggest / 8, 64);
      limit = Math.max(1, Math.min(max, Math.floor(VALUE_PAGE_BYTES / per)));
    }
  }
}

// ---- glob ----

/**
 * A glob over the whole key: * any run of characters (also '/'), ? one
 * character, [abc] [a-z] [!x] a class, \ escapes the next character.
 */
export function globToRegExp(glob: string, caseSensitive = true): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\' && i + 1 < glob.length) re += escapeRe(glob[++i]);
    else if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (m) => `\\${m}`)}]`;
      i = close;
    } else re += escapeRe(c);
  }
  return new RegExp(`${re}$`, caseSensitive ? 'u' : 'iu');
}

// Only syntax characters: under the u flag an escaped '-' or '/' outside a class is an error.
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The literal text before the glob's first wildcard: every match starts with it, so the scan can start there. */
export function globLiteralPrefix(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\' && i + 1 < glob.length) out += glob[++i];
    else if (c === '*' || c === '?' || c === '[') return out;
    else out += c;
  }
  return out;
}

/**
 * The range a search must read: the prefix, narrowed by a glob's literal
 * head (case-sensitive only). null: the two exclude each other (no key can match).
 */
export function searchPrefix(req: SearchRequest): string | null {
  if (req.mode !== 'glob' || req.caseSensitive === false) return req.prefix;
  const lit = globLiteralPrefix(req.pattern);
  if (lit.startsWith(req.prefix)) return lit;
  if (req.prefix.startsWith(lit)) return req.prefix;
  return null;
}

const SNIPPET_BEFORE = 30;
const SNIPPET_AFTER = 60;

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f]/g, ' ');

/** A predicate for one kv; value hits carry a snippet of the value around the match. */
export function matcher(req: SearchRequest): (kv: MvccPb.KeyValue) => SearchHit | null {
  const cs = req.caseSensitive !== false;
  const needle = text(req.pattern);
  const lower = req.pattern.toLowerCase();
  if (req.mode === 'glob') {
    const re = globToRegExp(req.pattern, cs);
    return (kv) => {
      const k = asBuffer(kv.key).toString('utf8');
      return re.test(k) ? { row: kvToRow(kv) } : null;
    };
  }
  if (req.mode === 'contains') {
    // Case-sensitive: bytes against bytes, no string made for keys that do not match.
    if (cs) return (kv) => (asBuffer(kv.key).indexOf(needle) >= 0 ? { row: kvToRow(kv) } : null);
    return (kv) => (asBuffer(kv.key).toString('utf8').toLowerCase().includes(lower) ? { row: kvToRow(kv) } : null);
  }
  return (kv) => {
    const v = asBuffer(kv.value);
    let at: number;
    let snippet: string;
    if (cs) {
      at = v.indexOf(needle);
      if (at < 0) return null;
      snippet = v.subarray(Math.max(0, at - SNIPPET_BEFORE), at + needle.length + SNIPPET_AFTER).toString('utf8');
      if (at > SNIPPET_BEFORE) snippet = `…${snippet}`;
    } else {
      const s = v.toString('utf8');
      at = s.toLowerCase().indexOf(lower);
      if (at < 0) return null;
      snippet = (at > SNIPPET_BEFORE ? '…' : '') + s.slice(Math.max(0, at - SNIPPET_BEFORE), at + lower.length + SNIPPET_AFTER);
    }
    return { row: { ...kvToRow(kv), size: v.length }, snippet: clean(snippet) };
  };
}

// ---- analyzer ----

/** Prefix-tree nodes kept; keys deeper than the cap are counted in the deepest node that exists. */
export const NODE_CAP = 5000;
const TOP_N = 50;
const LEASE_CAP = 100_000;
/** Bytes of an MVCC record besides its key and value: the 17-byte revision key and KeyValue's framing. */
const RECORD_OVERHEAD = 40;

/** A PrefixNode while it is built: children by name, created on first use. */
interface BuildNode extends Omit<PrefixNode, 'children'> {
  children: Map<string, BuildNode> | null;
}

const newNode = (name: string, path: string): BuildNode => ({ name, path, count: 0, bytes: 0, ownKeys: 0, ownBytes: 0, foldedKeys: 0, foldedBytes: 0, children: null });

/** The N largest by a score, kept sorted descending; cheap when most candidates lose to the smallest. */
class TopN {
  readonly items: (KeyStat & { score: number })[] = [];
  constructor(private readonly n: number) {}
  offer(score: number, make: () => KeyStat): void {
    const it = this.items;
    if (it.length >= this.n && score <= it[it.length - 1].score) return;
    let i = it.length;
    while (i > 0 && it[i - 1].score < score) i--;
    it.splice(i, 0, { ...make(), score });
    if (it.length > this.n) it.pop();
  }
  list(): KeyStat[] {
    return this.items.map(({ score: _s, ...k }) => k);
  }
}

export class KeyspaceAnalyzer {
  keys = 0;
  keyBytes = 0;
  valueBytes = 0;
  /** live keys modified after the compact revision (set before the scan) */
  liveSinceCompact = 0;
  private readonly root: BuildNode;
  private nodes = 1;
  private readonly biggest = new TopN(TOP_N);
  private readonly revised = new TopN(TOP_N);
  private readonly leases = new Map<bigint, { keys: number; bytes: number }>();
  private otherLeases = { keys: 0, bytes: 0 };
  private noLease = 0;
  private readonly kinds = new Map<string, { apiVersion: string; kind: string; count: number; bytes: number }>();

  constructor(
    readonly prefix: string,
    readonly delimiter: string,
    readonly kubernetes: boolean,
    readonly compactRevision = 0,
  ) {
    this.root = newNode('', prefix);
  }

  add(kv: MvccPb.KeyValue): void {
    const key = asBuffer(kv.key);
    const size = kv.value.length;
    const bytes = key.length + size;
    this.keys++;
    this.keyBytes += key.length;
    this.valueBytes += size;
    if (kv.mod_revision > this.compactRevision) this.liveSinceCompact++;
    const keyText = key.toString('utf8');
    this.place(keyText, bytes);
    this.biggest.offer(size, () => this.stat(kv, keyText));
    if (kv.version > 1) this.revised.offer(kv.version, () => this.stat(kv, keyText));
    if (kv.lease) {
      const l = this.leases.get(kv.lease);
      if (l) {
        l.keys++;
        l.bytes += bytes;
      } else if (this.leases.size < LEASE_CAP) this.leases.set(kv.lease, { keys: 1, bytes });
      else {
        this.otherLeases.keys++;
        this.otherLeases.bytes += bytes;
      }
    } else this.noLease++;
    if (this.kubernetes && keyText.startsWith('/registry/')) {
      const k = peekKind(asBuffer(kv.value));
      if (k) {
        const id = `${k.apiVersion}\u0000${k.kind}`;
        const e = this.kinds.get(id);
        if (e) {
          e.count++;
          e.bytes += bytes;
        } else this.kinds.set(id, { ...k, count: 1, bytes });
      }
    }
  }

  private stat(kv: MvccPb.KeyValue, keyText: string): KeyStat {
    return { key: b64(kv.key), keyText, size: kv.value.length, version: kv.version, modRevision: kv.mod_revision };
  }

  /** Counts the key in every node on its path (by delimiter) below the analyzed prefix. */
  private place(keyText: string, bytes: number): void {
    let node = this.root;
    node.count++;
    node.bytes += bytes;
    const rest = keyText.startsWith(this.prefix) ? keyText.slice(this.prefix.length) : keyText;
    const d = this.delimiter;
    let from = 0;
    for (;;) {
      const cut = d ? rest.indexOf(d, from) : -1;
      if (cut === -1) {
        node.ownKeys++;
        node.ownBytes += bytes;
        return;
      }
      const name = rest.slice(from, cut + d.length);
      from = cut + d.length;
      let child = node.children?.get(name);
      if (!child) {
        if (this.nodes >= NODE_CAP) {
          node.foldedKeys++;
          node.foldedBytes += bytes;
          return;
        }
        child = newNode(name, node.path + name);
        (node.children ??= new Map()).set(name, child);
        this.nodes++;
      }
      node = child;
      node.count++;
      node.bytes += bytes;
    }
  }

  report(revision: number, storage: KeyspaceReport['storage'], partial: boolean): KeyspaceReport {
    const toPlain = (n: BuildNode): PrefixNode => ({
      name: n.name,
      path: n.path,
      count: n.count,
      bytes: n.bytes,
      ownKeys: n.ownKeys,
      ownBytes: n.ownBytes,
      foldedKeys: n.foldedKeys,
      foldedBytes: n.foldedBytes,
      children: n.children ? [...n.children.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count).map(toPlain) : [],
    });
    const leases = [...this.leases.entries()].map(([id, v]) => ({ lease: id.toString(), ...v })).sort((a, b) => b.keys - a.keys || b.bytes - a.bytes).slice(0, 100);
    if (this.otherLeases.keys) leases.push({ lease: 'other', ...this.otherLeases });
    return {
      prefix: this.prefix,
      delimiter: this.delimiter,
      revision,
      keys: this.keys,
      keyBytes: this.keyBytes,
      valueBytes: this.valueBytes,
      tree: toPlain(this.root),
      nodeCap: NODE_CAP,
      biggest: this.biggest.list(),
      mostRevised: this.revised.list(),
      leases,
      leaseCount: this.leases.size,
      noLease: this.noLease,
      kinds: this.kubernetes ? [...this.kinds.values()].sort((a, b) => b.count - a.count) : undefined,
      storage,
      partial,
    };
  }

  /** What compaction at the current revision would free, from Status and the revisions (the bytes are an estimate). */
  storageEstimate(status: { dbSize: number; dbSizeInUse: number }, revision: number): StorageEstimate {
    const historyRevisions = Math.max(0, revision - this.compactRevision);
    const liveBytes = this.keyBytes + this.valueBytes;
    const avgRecord = this.keys ? liveBytes / this.keys + RECORD_OVERHEAD : RECORD_OVERHEAD;
    const superseded = Math.max(0, historyRevisions - this.liveSinceCompact);
    return {
      dbSize: status.dbSize,
      dbSizeInUse: status.dbSizeInUse,
      revision,
      compactRevision: this.compactRevision,
      historyRevisions,
      liveSinceCompact: this.liveSinceCompact,
      liveBytes,
      estimatedHistoryBytes: Math.round(superseded * avgRecord),
    };
  }
}

/**
 * The revision the store was compacted at (0: never), by bisection: a read at
 * revision r is refused as Compacted exactly when r < the compact revision.
 * ~log2(revision) single-key count_only reads, none of which touches history.
 */
export async function findCompactRevision(client: ScanClient, revision: number): Promise<number> {
  const readable = async (r: number): Promise<boolean> => {
    try {
      await client.range({ key: Buffer.from([0]), revision: r, count_only: true });
      return true;
    } catch (e) {
      if (isEtcdError(e, 'Compacted')) return false;
      throw e;
    }
  };
  if (revision <= 1 || (await readable(1))) return 0;
  let lo = 2;
  let hi = revision;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (await readable(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ---- scans owned by windows ----

export interface RunningScan {
  owner: string;
  kind: 'search' | 'analyze';
  cancelled: boolean;
}

/** Every scan running for a window: one search and one analysis at a time each, cancelled when the window or connection goes. */
export class ScanRegistry {
  private readonly scans = new Map<string, RunningScan>();
  private seq = 0;

  /** A new scan for the window; its previous scan of the same kind is cancelled. */
  start(owner: string, kind: RunningScan['kind']): { id: string; scan: RunningScan } {
    for (const [id, s] of this.scans) if (s.owner === owner && s.kind === kind) this.cancel(id);
    const id = `scan${++this.seq}`;
    const scan: RunningScan = { owner, kind, cancelled: false };
    this.scans.set(id, scan);
    return { id, scan };
  }

  finish(id: string): void {
    this.scans.delete(id);
  }

  cancel(id: string): void {
    const s = this.scans.get(id);
    if (s) s.cancelled = true;
    this.scans.delete(id);
  }

  cancelOwner(owner: string): void {
    for (const [id, s] of this.scans) if (s.owner === owner) this.cancel(id);
  }

  cancelAll(): void {
    for (const id of [...this.scans.keys()]) this.cancel(id);
  }

  get size(): number {
    return this.scans.size;
  }
}
