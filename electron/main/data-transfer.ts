// Moving data in and out of a cluster: export a prefix (JSON, YAML, or a shell
// script of etcdctl puts that replays it), import with a preview and a dry-run
// diff, copy or rename a prefix, delete many keys. Every write is guarded by a
// compare on mod_revision (as read for the preview or the selection), so a key
// written by someone else meanwhile is reported as a conflict, never
// overwritten. Writes go as one txn where they fit etcd's txn limits
// (--max-txn-ops, 128 by default; the request limit, 1.5 MiB), else in batches,
// each batch a txn of its own, and the result is read back to verify it.
import * as yaml from 'js-yaml';
import { EtcdPb, type EtcdClient, type MvccPb } from '../../node-core/index';
import { ContractError, type DataExportFormat, type ImportPreview, type ImportRow, type TransferResult } from '../contract/index';
import { isEtcdError } from './errors';
import { prefixEndOf } from './convert';

const { Compare_CompareResult: CR, Compare_CompareTarget: CT } = EtcdPb;

/** Keys per page when reading a prefix (values included): large enough to be quick, small enough for 2 MiB replies. */
const PAGE = 500;
/** etcd's default --max-txn-ops. A server with a lower limit makes batches halve (TooManyOps). */
export const MAX_TXN_OPS = 128;
/** Bytes of keys and values per txn: under etcd's 1.5 MiB request limit with room for framing. */
export const MAX_TXN_BYTES = 1024 * 1024;
/** Kept in the preview sent to the window; the plan in main keeps every row. */
const PREVIEW_ROWS = 5000;

export interface Progress {
  (done: number, total: number): void;
}

/**
 * The txn size this server takes: etcd's default until a TooManyOps answer
 * says less (a remote cluster may run with a lower --max-txn-ops); halved then.
 */
export class TxnLimit {
  maxOps = MAX_TXN_OPS;
  /** Runs fn on chunks of items, shrinking the chunk while the server refuses its size. */
  async chunks<T, R>(items: T[], fn: (chunk: T[]) => Promise<R>, each?: (r: R, chunk: T[]) => void): Promise<void> {
    let i = 0;
    while (i < items.length) {
      const chunk = items.slice(i, i + this.maxOps);
      try {
        each?.(await fn(chunk), chunk);
        i += chunk.length;
      } catch (e) {
        if (!isEtcdError(e, 'TooManyOps') || chunk.length === 1) throw e;
        this.maxOps = Math.max(1, Math.floor(chunk.length / 2));
      }
    }
  }
}

/** Cancellation: checked between pages and batches (a txn in flight completes). */
export class Cancel {
  cancelled = false;
  check(): void {
    if (this.cancelled) throw new ContractError(-1, 'cancelled: nothing after the last completed batch was written');
  }
}

export interface ExportedKey {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
}

/** Every key under a prefix with its value, pinned to one revision, page by page. */
export async function readPrefix(client: EtcdClient, prefix: Buffer, onPage?: (done: number, total: number) => void, cancel?: Cancel): Promise<{ kvs: ExportedKey[]; revision: number }> {
  const end = prefix.length ? prefixEndOf(prefix) : Buffer.from([0]);
  const start = prefix.length ? prefix : Buffer.from([0]);
  const head = await client.range({ key: start, range_end: end, count_only: true });
  const revision = head.header?.revision ?? 0;
  const total = head.count;
  const kvs: ExportedKey[] = [];
  let from = start;
  for (;;) {
    cancel?.check();
    const r = await client.range({ key: from, range_end: end, limit: PAGE, revision });
    for (const kv of r.kvs) kvs.push(toExported(kv));
    onPage?.(kvs.length, total);
    if (!r.more || !r.kvs.length) break;
    from = Buffer.concat([Buffer.from(r.kvs[r.kvs.length - 1].key), Buffer.from([0])]);
  }
  return { kvs, revision };
}

function toExported(kv: MvccPb.KeyValue): ExportedKey {
  return { key: Buffer.from(kv.key), value: Buffer.from(kv.value), createRevision: kv.create_revision, modRevision: kv.mod_revision, version: kv.version, lease: kv.lease };
}

const isText = (b: Buffer): boolean => {
  const s = b.toString('utf8');
  // Round-trips and has no control bytes other than tab/CR/LF: safe as a JSON/YAML string.
  return Buffer.from(s, 'utf8').equals(b) && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s);
};

interface DocKey {
  key: string;
  value: string;
  /** Present for bytes that are not plain text: key and/or value are base64. */
  encoding?: 'base64';
  keyEncoding?: 'base64';
  create_revision?: number;
  mod_revision?: number;
  version?: number;
  lease?: string;
}

export interface ExportDoc {
  etcdeskExport: 1;
  prefix: string;
  revision: number;
  keys: DocKey[];
}

function docKey(k: ExportedKey): DocKey {
  const d: DocKey = { key: isText(k.key) ? k.key.toString('utf8') : k.key.toString('base64'), value: isText(k.value) ? k.value.toString('utf8') : k.value.toString('base64') };
  if (!isText(k.key)) d.keyEncoding = 'base64';
  if (!isText(k.value)) d.encoding = 'base64';
  d.create_revision = k.createRevision;
  d.mod_revision = k.modRevision;
  d.version = k.version;
  if (k.lease) d.lease = k.lease.toString();
  return d;
}

/** A printf format in sh single quotes printing exactly these bytes (octal escapes for the rest; a leading '-' too, or printf takes it for an option). */
function printfArg(b: Buffer): string {
  let s = '';
  for (const [i, c] of b.entries()) {
    if (c === 0x2d && i === 0) s += '\\055';
    else if (c === 0x27) s += "'\\''";
    else if (c === 0x5c) s += '\\\\';
    else if (c === 0x25) s += '%%';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${c.toString(8).padStart(3, '0')}`;
  }
  return `'${s}'`;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/**
 * The export as text. `etcdctl`: a POSIX shell script; each key is written by
 * `etcdctl put` with the value on standard input (exact bytes, binary too, no
 * argument length limit). Leases are not carried: a lease belongs to the
 * cluster that granted it.
 */
export function formatExport(format: DataExportFormat, prefix: string, revision: number, kvs: ExportedKey[]): string {
  if (format === 'etcdctl') {
    const lines = [
      '#!/bin/sh',
      `# Etcdesk export of prefix ${JSON.stringify(prefix)} at revision ${revision}: ${kvs.length} key${kvs.length === 1 ? '' : 's'}.`,
      '# Replay: ETCDCTL_API=3 ETCDCTL_ENDPOINTS=http://host:2379 sh this-file   (leases are not carried over)',
      'set -e',
    ];
    for (const k of kvs) {
      if (k.key.includes(0)) {
        lines.push(`# skipped: a key with a NUL byte cannot be an etcdctl argument (base64 ${k.key.toString('base64')})`);
        continue;
      }
      // An empty value: etcdctl refuses empty standard input, so it goes as an argument.
      if (!k.value.length && isText(k.key)) lines.push(`etcdctl put -- ${shellQuote(k.key.toString('utf8'))} ''`);
      else if (isText(k.key)) lines.push(`printf ${printfArg(k.value)} | etcdctl put -- ${shellQuote(k.key.toString('utf8'))}`);
      else if (!k.value.length) lines.push(`k="$(printf ${printfArg(Buffer.concat([k.key, Buffer.from('x')]))})"; etcdctl put -- "\${k%x}" ''`);
      // Other bytes: rebuilt by printf; the trailing x keeps trailing newlines that $(...) would strip.
      else lines.push(`k="$(printf ${printfArg(Buffer.concat([k.key, Buffer.from('x')]))})"; printf ${printfArg(k.value)} | etcdctl put -- "\${k%x}"`);
    }
    return `${lines.join('\n')}\n`;
  }
  const doc: ExportDoc = { etcdeskExport: 1, prefix, revision, keys: kvs.map(docKey) };
  return format === 'yaml' ? yaml.dump(doc, { lineWidth: -1, noRefs: true }) : `${JSON.stringify(doc, null, 2)}\n`;
}

export interface ImportEntry {
  key: Buffer;
  value: Buffer;
}

/** An export document (JSON or YAML, told apart by parsing), checked field by field. */
export function parseImport(text: string): { entries: ImportEntry[]; prefix: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    try {
      raw = yaml.load(text);
    } catch (e) {
      throw new ContractError(-1, `not an Etcdesk export: neither JSON nor YAML (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const doc = raw as Partial<ExportDoc> | null;
  if (!doc || typeof doc !== 'object' || doc.etcdeskExport !== 1 || !Array.isArray(doc.keys))
    throw new ContractError(-1, 'not an Etcdesk export: expected {"etcdeskExport": 1, "keys": [...]} (an etcdctl script export is replayed with sh, not imported)');
  const seen = new Set<string>();
  const entries = doc.keys.map((k: Partial<DocKey> | null, i): ImportEntry => {
    const bad = (what: string): never => {
      throw new ContractError(-1, `key ${i + 1}: ${what}`);
    };
    if (!k || typeof k !== 'object') bad('not an object');
    if (typeof k!.key !== 'string' || !k!.key.length) bad('key must be a non-empty string');
    if (typeof k!.value !== 'string') bad('value must be a string');
    const key = k!.keyEncoding === 'base64' ? Buffer.from(k!.key!, 'base64') : Buffer.from(k!.key!, 'utf8');
    const value = k!.encoding === 'base64' ? Buffer.from(k!.value!, 'base64') : Buffer.from(k!.value!, 'utf8');
    const id = key.toString('base64');
    if (seen.has(id)) bad(`${k!.key} appears twice`);
    seen.add(id);
    return { key, value };
  });
  return { entries, prefix: typeof doc.prefix === 'string' ? doc.prefix : '' };
}

/** Replaces `from` at the start of each key by `to` (import under another prefix). */
export function rebase(entries: ImportEntry[], from: string, to: string): ImportEntry[] {
  if (from === to) return entries;
  const f = Buffer.from(from);
  const t = Buffer.from(to);
  return entries.map((e) => {
    if (!e.key.subarray(0, f.length).equals(f)) throw new ContractError(-1, `key ${e.key.toString()} is not under ${from}: cannot move it to ${to}`);
    return { key: Buffer.concat([t, e.key.subarray(f.length)]), value: e.value };
  });
}

/** A planned write: the key as read (mod_revision 0 = absent) and what it becomes. */
export interface PlannedPut {
  key: Buffer;
  value: Buffer;
  /** mod_revision when planned; 0 = the key did not exist. The write happens only if it still is. */
  expectMod: number;
  oldSize?: number;
  action: ImportRow['action'];
}

/** Reads the current state of every key in a few txns of ranges and classifies each write. */
export async function planPuts(client: EtcdClient, entries: ImportEntry[], onProgress?: Progress, cancel?: Cancel, limit = new TxnLimit()): Promise<{ plan: PlannedPut[]; revision: number }> {
  const plan: PlannedPut[] = [];
  let revision = 0;
  // One revision for the whole read would need one txn; per chunk, each key's mod_revision is what the CAS needs.
  await limit.chunks(
    entries,
    (chunk) => {
      cancel?.check();
      return client.txn({ success: chunk.map((e) => ({ request_range: { key: e.key } })) });
    },
    (r, chunk) => {
      revision = r.header?.revision ?? revision;
      chunk.forEach((e, j) => {
        const kv = r.responses[j]?.response_range?.kvs[0];
        const action: ImportRow['action'] = !kv ? 'create' : Buffer.from(kv.value).equals(e.value) ? 'unchanged' : 'update';
        plan.push({ key: e.key, value: e.value, expectMod: kv ? kv.mod_revision : 0, oldSize: kv ? kv.value.length : undefined, action });
      });
      onProgress?.(plan.length, entries.length);
    },
  );
  return { plan, revision };
}

export function previewOf(planId: string, plan: PlannedPut[], revision: number): ImportPreview {
  const counts = { create: 0, update: 0, unchanged: 0 };
  for (const p of plan) counts[p.action === 'conflict' ? 'update' : p.action]++;
  const rows = plan.slice(0, PREVIEW_ROWS).map((p): ImportRow => ({ key: p.key.toString('base64'), keyText: p.key.toString('utf8'), action: p.action, size: p.value.length, oldSize: p.oldSize }));
  return { planId, revision, total: plan.length, counts, rows, truncated: plan.length > PREVIEW_ROWS };
}

type Op = { kind: 'put'; key: Buffer; value: Buffer; expectMod: number } | { kind: 'delete'; key: Buffer; expectMod: number };

const opBytes = (o: Op): number => o.key.length + (o.kind === 'put' ? o.value.length : 0) + 16;

/** Splits into txns under the op and byte limits. */
function batches(ops: Op[], maxOps: number): Op[][] {
  const out: Op[][] = [];
  let cur: Op[] = [];
  let bytes = 0;
  for (const o of ops) {
    const b = opBytes(o);
    if (cur.length && (cur.length >= maxOps || bytes + b > MAX_TXN_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(o);
    bytes += b;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** gRPC codes after which a write may or may not have been applied (deadline, cancelled, unknown, unavailable). */
const OUTCOME_UNKNOWN_CODES = new Set([1, 2, 4, 14]);

/**
 * A batch's error with where the transfer stopped, after etcd's own message
 * (in parentheses, so the error keeps its identity in the error table). A
 * timeout or a lost connection leaves the batch's outcome unknown (the txn may
 * still commit); a refusal means it was not written. Either way nothing was
 * overwritten (every write compares the key's revision first), so an import
 * previewed again writes exactly what is left.
 */
function batchError(e: unknown, done: number, total: number, size: number): Error {
  const code = e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : -1;
  const refused = !OUTCOME_UNKNOWN_CODES.has(code) || isEtcdError(e, 'NoLeader');
  const writes = (n: number): string => `${n.toLocaleString('en-US')} write${n === 1 ? '' : 's'}`;
  const batch = refused
    ? `the next ${writes(size)} did not happen`
    : `the next ${writes(size)} may or may not have happened: a write that timed out can still commit`;
  const message = `${e instanceof Error ? e.message : String(e)} (stopped after ${writes(done)} of ${total.toLocaleString('en-US')}; ${batch}; nothing was overwritten: each write compares the key's revision first, so a new preview shows what is left)`;
  return Object.assign(new Error(message), { code });
}

/**
 * Runs guarded writes: each txn compares every key's mod_revision with the
 * planned one and writes all or nothing. A txn whose compare fails is retried
 * key by key so the other keys still go and exactly the changed ones are
 * named as conflicts. Then every written key is read back (verify).
 */
export async function runGuarded(client: EtcdClient, ops: Op[], onProgress?: Progress, cancel?: Cancel, limit = new TxnLimit()): Promise<TransferResult> {
  return (await applyOps(client, ops, onProgress, cancel, limit)).result;
}

async function applyOps(client: EtcdClient, ops: Op[], onProgress: Progress | undefined, cancel: Cancel | undefined, limit: TxnLimit): Promise<{ result: TransferResult; puts: number }> {
  const conflicts: string[] = [];
  let written = 0;
  /** Puts applied: a rename counts its keys by these (each key is one put and one delete). */
  let puts = 0;
  let txns = 0;
  let revision = 0;
  const pending = batches(ops, limit.maxOps);
  const total = ops.length;
  let done = 0;
  while (pending.length) {
    cancel?.check();
    const batch = pending.shift()!;
    let r: EtcdPb.TxnResponse;
    try {
      r = await client.txn({
        compare: batch.map((o) => ({ key: o.key, target: CT.MOD, result: CR.EQUAL, mod_revision: o.expectMod })),
        success: batch.map((o) => (o.kind === 'put' ? { request_put: { key: o.key, value: o.value } } : { request_delete_range: { key: o.key } })),
      });
    } catch (e) {
      if (isEtcdError(e, 'TooManyOps') && batch.length > 1) {
        // The server's --max-txn-ops is lower than etcd's default: halve and go on.
        limit.maxOps = Math.max(1, Math.floor(batch.length / 2));
        pending.unshift(...batches(batch, limit.maxOps));
        continue;
      }
      throw batchError(e, done, total, batch.length);
    }
    txns++;
    revision = r.header?.revision ?? revision;
    if (r.succeeded) {
      written += batch.length;
      puts += batch.filter((o) => o.kind === 'put').length;
      done += batch.length;
    } else if (batch.length === 1) {
      conflicts.push(batch[0].key.toString('utf8'));
      done += 1;
    } else {
      // Someone wrote one of these keys since the plan: find which, key by key.
      pending.unshift(...batch.map((o) => [o]));
    }
    onProgress?.(done, total);
  }
  const verified = await verify(client, ops, conflicts, limit);
  return { result: { written, conflicts, txns, revision, verified: verified === 0, mismatches: verified }, puts };
}

/** Reads every written key back: a put must hold its value, a delete must be gone. Returns the mismatches. */
async function verify(client: EtcdClient, ops: Op[], conflicts: string[], limit: TxnLimit): Promise<number> {
  const skip = new Set(conflicts);
  const check = ops.filter((o) => !skip.has(o.key.toString('utf8')));
  let bad = 0;
  await limit.chunks(
    check,
    (chunk) => client.txn({ success: chunk.map((o) => ({ request_range: { key: o.key } })) }),
    (r, chunk) =>
      chunk.forEach((o, j) => {
        const kv = r.responses[j]?.response_range?.kvs[0];
        if (o.kind === 'put' ? !kv || !Buffer.from(kv.value).equals(o.value) : !!kv) bad++;
      }),
  );
  return bad;
}

export function putsOf(plan: PlannedPut[]): Op[] {
  return plan.filter((p) => p.action !== 'unchanged').map((p) => ({ kind: 'put', key: p.key, value: p.value, expectMod: p.expectMod }));
}

/**
 * Copy (or rename) every key under `from` to the same name under `to`. The
 * targets must not exist (nothing is overwritten); a rename also deletes each
 * source, guarded by the source's mod_revision as read.
 */
export async function copyPrefix(client: EtcdClient, from: string, to: string, rename: boolean, dryRun: boolean, onProgress?: Progress, cancel?: Cancel): Promise<TransferResult & { planned: number; existing: string[] }> {
  if (!from) throw new ContractError(-1, 'choose a source prefix: copying the whole keyspace onto itself is not a copy');
  if (from === to) throw new ContractError(-1, 'the target prefix is the source prefix');
  if (to.startsWith(from)) throw new ContractError(-1, `the target ${to} is inside the source ${from}: the copy would copy itself`);
  const { kvs } = await readPrefix(client, Buffer.from(from), undefined, cancel);
  const src = kvs.map((k) => ({ key: k.key, value: k.value }));
  const targets = rebase(src, from, to);
  const limit = new TxnLimit();
  const { plan } = await planPuts(client, targets, undefined, cancel, limit);
  const existing = plan.filter((p) => p.action !== 'create').map((p) => p.key.toString('utf8'));
  if (existing.length && !dryRun) throw new ContractError(-1, `${existing.length} key${existing.length === 1 ? '' : 's'} already exist under ${to} (first: ${existing[0]}): nothing was written; choose an empty target prefix`);
  if (dryRun) return { planned: kvs.length, existing, written: 0, conflicts: [], txns: 0, revision: 0, verified: true, mismatches: 0 };
  const ops: Op[] = plan.map((p) => ({ kind: 'put', key: p.key, value: p.value, expectMod: 0 }));
  if (rename) for (const k of kvs) ops.push({ kind: 'delete', key: k.key, expectMod: k.modRevision });
  const { result: r, puts } = await applyOps(client, ops, onProgress, cancel, limit);
  // Keys, not operations: a renamed key is one put and one delete, and counts once.
  return { ...r, written: puts, planned: kvs.length, existing };
}

/** Deletes the given keys, each only if it still has the mod_revision the user saw. */
export function deletesOf(keys: { key: Buffer; modRevision: number }[]): Op[] {
  return keys.map((k) => ({ kind: 'delete', key: k.key, expectMod: k.modRevision }));
}

