// Conversions between our backend and etcd 3.4 snapshot files.
//
// Our backend's buckets mirror etcd's bolt buckets byte for byte (see
// ARCHITECTURE.md), so both directions copy buckets; what is etcd-specific is
// which buckets travel and what a restore rewrites. What etcd 3.4 keeps in
// each bucket (and what the other layers must therefore store):
//   key              revision bytes (8-byte BE main, '_', 8-byte BE sub, 't' if tombstone) → mvccpb.KeyValue
//   meta             consistent_index (u64 BE), scheduledCompactRev / finishedCompactRev (revision bytes)
//   lease            lease id (int64 BE) → leasepb.Lease {ID, TTL, RemainingTTL}
//   auth             authEnabled ([1] or [0]), authRevision (u64 BE)
//   authUsers        user name → authpb.User
//   authRoles        role name → authpb.Role
//   members          member id (lower-case hex, no padding) → JSON of the member
//   members_removed  member id (hex) → "removed"
//   cluster          clusterVersion → "3.4.0"
//   alarm            etcdserverpb.AlarmMember bytes → empty
// `etcdctl snapshot restore` keeps every bucket, sets meta.consistent_index
// to the new cluster's member count (the index its fresh WAL starts from) and
// takes membership from its flags; etcd then rebuilds its key index from
// `key` and its lessor from `lease` at start.
import fs from 'node:fs';
import type { Backend, BucketName } from '../backend/backend';
import { decodeLease } from '../proto/gen/leasepb';
import { decodeKeyValue } from '../proto/gen/mvccpb';
import { BoltFormatError } from './bolt-format';
import { BoltFile, type OpenBoltOptions } from './bolt-reader';
import { crc32cUpdate } from '../backend/crc32c';
import { ETCD_BUCKETS } from '../backend/backend';
import { type BoltBucketSource, buildBoltImage, type BoltImage, writeBoltFile, type BoltFileResult } from './bolt-writer';

export { ETCD_BUCKETS } from '../backend/backend';

const MEMBERSHIP_BUCKETS: ReadonlySet<string> = new Set(['members', 'members_removed']);
const CONSISTENT_INDEX = Buffer.from('consistent_index');
const FINISHED_COMPACT = Buffer.from('finishedCompactRev');
/** 8-byte main revision, '_', 8-byte sub revision (mvcc/revision.go). */
const REV_BYTES = 17;
const TOMBSTONE = 0x74; // 't'
const IMPORT_BATCH = 10_000;

/**
 * What an export reads from. `Backend` satisfies it; so may a view over one
 * explicit read transaction, should the backend offer one.
 */
export interface SnapshotSource {
  range(bucket: BucketName): Iterable<[Buffer, Buffer]>;
}

/**
 * Opens every bucket's range before anything awaits. lmdb-js serves reads
 * outside an explicit transaction from one shared read transaction that is
 * only renewed from the event loop after a commit, and a range iterator keeps
 * the transaction it started in; so ranges started in the same synchronous
 * stretch read the same committed state, and key data, leases and
 * meta.consistent_index agree even while the apply loop keeps committing
 * during the (asynchronous) export. Ranges opened lazily, bucket by bucket,
 * would each see a later state.
 */
function openSources(src: SnapshotSource): { buckets: BoltBucketSource[]; close(): void } {
  const its: Iterator<[Buffer, Buffer]>[] = [];
  // every bucket is written even when empty, as a running etcd has them all
  const buckets = ETCD_BUCKETS.map((name): BoltBucketSource => {
    const it = src.range(name)[Symbol.iterator]();
    its.push(it);
    // pulling the first entry is what makes the range open its snapshot
    const first = it.next();
    return { name, entries: resume(first, it) };
  });
  return {
    buckets,
    close: () => {
      for (const it of its) it.return?.();
    },
  };
}

function* resume(first: IteratorResult<[Buffer, Buffer]>, it: Iterator<[Buffer, Buffer]>): Generator<[Buffer, Buffer]> {
  for (let r = first; !r.done; r = it.next()) yield r.value;
}

export interface ExportOptions {
  /** Directory for the spool file the stream is laid out in (default: the OS temp dir). */
  tmpDir?: string;
  /** Bytes per chunk (default 1 MiB; etcd's Snapshot RPC sends 32 KiB messages). */
  chunkSize?: number;
}

async function settle(src: SnapshotSource | Backend): Promise<void> {
  // Backend.range() reads committed data only: let queued writes land first
  if ('commit' in src && typeof src.commit === 'function') await src.commit();
}

/**
 * etcd's Maintenance.Snapshot stream: the bolt database bytes followed by
 * their 32-byte sha256. `dbSize` is known before the first chunk (etcd
 * reports remaining bytes); `sha256` is set once the database bytes have
 * been yielded. Iterate it once; `close()` it if it is never iterated.
 */
export async function exportEtcdSnapshot(src: SnapshotSource | Backend, opts: ExportOptions = {}): Promise<BoltImage> {
  await settle(src);
  const open = openSources(src);
  try {
    return await buildBoltImage(open.buckets, { tmpDir: opts.tmpDir, chunkSize: opts.chunkSize, appendSha256: true });
  } finally {
    open.close();
  }
}

/**
 * Writes an etcd snapshot file (what `etcdctl snapshot save` writes: the bolt
 * file, then its sha256), through `<file>.part` and a rename as etcdctl does,
 * so `file` never holds a partial snapshot.
 */
export async function saveEtcdSnapshot(src: SnapshotSource | Backend, file: string): Promise<BoltFileResult> {
  await settle(src);
  const part = `${file}.part`;
  const open = openSources(src);
  let res: BoltFileResult;
  try {
    res = await writeBoltFile(open.buckets, part, { appendSha256: true });
  } finally {
    open.close();
  }
  await fs.promises.rename(part, file);
  return res;
}

export interface ImportOptions {
  /**
   * Accept a file without a trailing sha256, such as an etcd data dir's
   * member/snap/db (etcdctl's --skip-hash-check). A sha256 that is present
   * is still verified.
   */
  skipHashCheck?: boolean;
  /**
   * Also copy `members` and `members_removed`. Off by default: they describe
   * the cluster the snapshot came from, which `etcdctl snapshot restore`
   * replaces with the one given on its command line; ours are kept.
   */
  includeMembership?: boolean;
  /**
   * The meta.consistent_index to store (default 0). The snapshot's value
   * counts entries of a raft log that is not imported; the applier skips
   * every entry at or below it, so it must match the raft log this backend
   * is used with, as etcd's restore sets it for the WAL it creates.
   */
  consistentIndex?: number | bigint;
}

export interface ImportResult {
  /** True when the file's trailing sha256 was checked. */
  hashVerified: boolean;
  /** Key/values copied per bucket. */
  buckets: Partial<Record<BucketName, number>>;
  /** Buckets in the file that are not etcd 3.4's (left out). */
  skippedBuckets: string[];
  /** The store's revision as etcd computes it at start: the highest main revision in `key`, or the compaction revision if higher. */
  revision: number;
  /** meta.finishedCompactRev's main revision (0 if never compacted). */
  compactRevision: number;
  /** meta.consistent_index as the snapshot had it. */
  snapshotConsistentIndex: bigint;
  leases: number;
}

function checkKeyRecord(k: Buffer, v: Buffer): number {
  if ((k.length !== REV_BYTES && !(k.length === REV_BYTES + 1 && k[REV_BYTES] === TOMBSTONE)) || k[8] !== 0x5f) {
    throw new BoltFormatError(`key bucket: ${k.toString('hex')} is not a revision`);
  }
  const main = Number(k.readBigInt64BE(0));
  let kv;
  try {
    kv = decodeKeyValue(v);
  } catch (e) {
    throw new BoltFormatError(`key bucket: revision ${main}: value is not a KeyValue (${(e as Error).message})`);
  }
  // a tombstone stores only the key; a live record carries its own revision
  if (k.length === REV_BYTES && kv.mod_revision !== main) {
    throw new BoltFormatError(`key bucket: revision ${main} holds a KeyValue of revision ${kv.mod_revision}`);
  }
  return main;
}

/**
 * Fills `backend` from an etcd snapshot (or bolt data file): verifies the
 * trailing sha256, then replaces the contents of every etcd bucket with the
 * file's (membership and consistent_index as `opts` says). Revision records
 * and leases are checked to decode. Raft buckets are not touched. Run it on
 * a backend no node is using; it is not atomic (a failure part-way through
 * the copy leaves a mix: import again), but a bad file is refused before
 * anything is written.
 */
export async function importEtcdSnapshot(file: string, backend: Backend, opts: ImportOptions = {}): Promise<ImportResult> {
  const bolt = await BoltFile.open(file, { requireHash: !opts.skipHashCheck });
  try {
    const present = new Set(bolt.bucketNames().map((b) => b.toString('latin1')));
    const known = new Set<string>(ETCD_BUCKETS);
    const result: ImportResult = {
      hashVerified: bolt.hashVerified,
      buckets: {},
      skippedBuckets: [...present].filter((b) => !known.has(b)),
      revision: 0,
      compactRevision: 0,
      snapshotConsistentIndex: 0n,
      leases: 0,
    };
    const targets = ETCD_BUCKETS.filter((b) => opts.includeMembership || !MEMBERSHIP_BUCKETS.has(b));
    // check the whole file (bolt's integrity check plus our records) before the first write,
    // so a bad file leaves the backend as it was
    const wanted = new Set<string>(targets);
    const problems = bolt.check((e) => {
      if (e.path.length !== 1) return;
      const b = e.path[0]!.toString('latin1');
      if (!wanted.has(b)) return;
      const { key: k, value: v } = e;
      if (b === 'key') result.revision = Math.max(result.revision, checkKeyRecord(k, v));
      else if (b === 'lease') {
        if (k.length !== 8) throw new BoltFormatError(`lease bucket: key ${k.toString('hex')} is not a lease id`);
        try {
          decodeLease(v);
        } catch (err) {
          throw new BoltFormatError(`lease bucket: lease ${k.toString('hex')} does not decode (${(err as Error).message})`);
        }
        result.leases++;
      } else if (b === 'meta') {
        if (k.equals(CONSISTENT_INDEX) && v.length === 8) result.snapshotConsistentIndex = v.readBigUInt64BE(0);
        if (k.equals(FINISHED_COMPACT) && v.length >= REV_BYTES) result.compactRevision = Number(v.readBigInt64BE(0));
      }
    });
    if (problems.length) {
      throw new BoltFormatError(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`);
    }

    await backend.commit();
    let pending = 0;
    for (const b of targets) {
      // delete in committed batches rather than across one long-lived range iterator
      for (;;) {
        const keys = [...backend.range(b, undefined, undefined, { limit: IMPORT_BATCH })].map(([k]) => Buffer.from(k));
        if (!keys.length) break;
        for (const k of keys) backend.del(b, k);
        await backend.commit();
      }
      let n = 0;
      for (const [k, v] of bolt.entries([b])) {
        if (b === 'meta' && k.equals(CONSISTENT_INDEX)) continue;
        backend.put(b, k, v);
        n++;
        // bounded batches keep the backend's write overlay small on a big import
        if (++pending >= IMPORT_BATCH) {
          pending = 0;
          await backend.commit();
        }
      }
      if (b === 'meta') {
        const ci = Buffer.alloc(8);
        ci.writeBigUInt64BE(BigInt(opts.consistentIndex ?? 0));
        backend.put('meta', CONSISTENT_INDEX, ci);
        n++;
      }
      result.buckets[b] = n;
    }
    await backend.commit();
    // etcd's store revision after a restore: compaction may have removed the newest records' keys
    result.revision = Math.max(result.revision, result.compactRevision);
    return result;
  } finally {
    bolt.close();
  }
}

export interface SnapshotStatus {
  /** CRC-32C over every top-level bucket name, key and value, as etcdctl computes it. */
  hash: number;
  /** Main revision of the last record in `key`. */
  revision: number;
  /** Entries of all top-level buckets (a nested bucket counts as one). */
  totalKey: number;
  /** Bytes in use by the bolt database (high-water mark × page size). */
  totalSize: number;
}

/**
 * `etcdctl snapshot status`: bbolt's integrity check, then the same hash,
 * revision and counts etcdctl prints, so both tools can be compared on one file.
 */
export async function snapshotStatus(file: string, opts: OpenBoltOptions = {}): Promise<SnapshotStatus> {
  const bolt = await BoltFile.open(file, opts);
  try {
    const problems = bolt.check();
    if (problems.length) {
      throw new BoltFormatError(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`);
    }
    const st: SnapshotStatus = { hash: 0, revision: 0, totalKey: 0, totalSize: bolt.meta.pgid * bolt.pageSize };
    for (const name of bolt.bucketNames()) {
      st.hash = crc32cUpdate(st.hash, name);
      const isKey = name.toString('latin1') === 'key';
      // bbolt's ForEach shows nested buckets in key order with a nil value
      for (const it of bolt.elements([name])) {
        st.hash = crc32cUpdate(st.hash, it.key);
        if (!it.bucket) st.hash = crc32cUpdate(st.hash, it.value);
        if (isKey && it.key.length >= 8) st.revision = Number(it.key.readBigInt64BE(0));
        st.totalKey++;
      }
    }
    return st;
  } finally {
    bolt.close();
  }
}
