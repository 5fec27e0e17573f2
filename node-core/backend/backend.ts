// The storage backend: one LMDB environment per member, with named buckets
// mirroring etcd's bolt buckets. Writes are queued into lmdb-js's batched
// async transactions (committed and fsynced on lmdb's worker thread) and are
// visible to reads at once through an overlay, as etcd's backend read buffer
// does. `commit()` is the group-commit point: everything written before it
// is durable when it resolves, and every caller that awaited it shares one
// fsync.
import { open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { Errors } from '../errors';
import path from 'node:path';
import { type StorageError, toStorageError } from './storage-error';
import { faultJournalOn, faultLmdbSynced } from './fault-hooks';

export type BucketName =
  | 'key'
  | 'meta'
  | 'lease'
  | 'auth'
  | 'authUsers'
  | 'authRoles'
  | 'members'
  | 'members_removed'
  | 'cluster'
  | 'alarm'
  | 'keyChecksum';

/** The buckets etcd 3.4 keeps in its backend (snapshots carry exactly these). */
export const ETCD_BUCKETS: readonly BucketName[] = [
  'key',
  'meta',
  'lease',
  'auth',
  'authUsers',
  'authRoles',
  'members',
  'members_removed',
  'cluster',
  'alarm',
];

// keyChecksum: the MVCC records' checksums, kept beside etcd's byte-exact key bucket
export const BUCKETS: readonly BucketName[] = [...ETCD_BUCKETS, 'keyChecksum'];

export interface BackendOptions {
  /** LMDB map size upper bound in bytes (the file grows up to it). */
  mapSize?: number;
  /** false only for tests and throwaway data: skips fsync. */
  sync?: boolean;
}

interface Pending {
  value: Buffer | null;
  seq: number;
}

export interface RangeOptions {
  reverse?: boolean;
  limit?: number;
}

/**
 * One LMDB read transaction held across event-loop turns: every read through
 * it sees the committed data of the moment it was opened, whatever is written,
 * committed or compacted since (for long scans done in slices, as HashKV).
 * release() it when done: defrag and close wait for open snapshots.
 */
export interface BackendSnapshot {
  /** As Backend.range, over the snapshot's data (checksums verified against the snapshot's). */
  range(bucket: BucketName, start?: Buffer, end?: Buffer, opts?: RangeOptions): Generator<[Buffer, Buffer]>;
  release(): void;
}

/** Longest time a write waits in memory for a commit (etcd's backend batch interval). */
const BATCH_INTERVAL_MS = 100;
/** bolt's two meta pages: a fresh etcd database is that much larger than its pages in use. */
const BOLT_META_PAGES = 2;
const DEFAULT_MAP_SIZE = 16 * 1024 * 1024 * 1024;

export class Backend {
  readonly dir: string;
  private env: RootDatabase<Buffer, Buffer>;
  private envDir: string;
  private readonly opts: BackendOptions;
  /** Set while defrag() swaps environments: commits wait for it. */
  private defragging: Promise<void> | undefined;
  private defragSeq = 0;
  private readonly dbs = new Map<BucketName, Database<Buffer, Buffer>>();
  private keyView!: Database<Buffer, Buffer>;
  private readonly overlay = new Map<BucketName, Map<string, Pending>>();
  private seq = 0;
  private lastWrite: Promise<void> = Promise.resolve();
  private pending: { bucket: BucketName; key: Buffer; value: Buffer | null; seq: number; k: string }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pendingBytes = 0;
  private committedSeq = 0;
  private closed = false;
  /** Highest quotaSize() seen since open or the last defrag (bolt's file only grows until defrag). */
  private quotaHighWater = 0;
  /** Commits (and defrags) completed: LMDB's pages in use change only then, so quotaSize() reads them again only after one. */
  private sizeGen = 0;
  private quotaGen = -1;
  /** Open snapshots, each with the promise its release resolves. */
  private readonly snapshots = new Set<Promise<void>>();
  /** Set when a commit failed: the writes of that batch are lost to LMDB, so no later commit may claim them applied. */
  private failure: StorageError | undefined;

  /** Called once when a commit fails (no space left on device, I/O error): the member must stop, and replay its log once restarted. */
  onFatal: ((e: StorageError) => void) | undefined;
  /** Seconds each commit took to reach the disk (etcd_disk_backend_commit_duration_seconds). */
  onCommitted: ((seconds: number) => void) | undefined;

  private constructor(dir: string, opts: BackendOptions) {
    this.dir = dir;
    this.opts = opts;
    fs.mkdirSync(dir, { recursive: true });
    // (no dot in the name: lmdb-js takes a path with an extension for a file)
    // a defrag interrupted by a crash leaves its copy here: the data file in db/ is complete either way
    for (const e of fs.readdirSync(dir)) if (e.startsWith('db-defrag')) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    this.envDir = path.join(dir, 'db');
    this.env = this.openEnv(this.envDir);
  }

  private openEnv(envDir: string): RootDatabase<Buffer, Buffer> {
    const opts = this.opts;
    const env = open<Buffer, Buffer>({
      path: envDir,
      encoding: 'binary',
      keyEncoding: 'binary',
      compression: false,
      mapSize: opts.mapSize ?? DEFAULT_MAP_SIZE,
      maxDbs: 32,
      noSync: opts.sync === false,
      // each commit is synced before its promise resolves (classic LMDB
      // durability); overlapping syncs made group commit wait longer here
      overlappingSync: false,
      // the raft WAL is the durability point: a power loss may roll back the
      // last state commit (never corrupt it), and it is replayed from the WAL
      noMetaSync: true,
      cache: false,
    });
    for (const b of BUCKETS) {
      this.dbs.set(b, env.openDB<Buffer, Buffer>({ name: b, encoding: 'binary', keyEncoding: 'binary', cache: false }));
      if (!this.overlay.has(b)) this.overlay.set(b, new Map());
    }
    // the key bucket once more, with values handed over without a copy (see scanKeyRecords)
    this.keyView = env.openDB<Buffer, Buffer>({
      name: 'key',
      keyEncoding: 'binary',
      cache: false,
      encoder: { encode: (v: Buffer): Buffer => v, decode: (b: Buffer, size: number): Buffer => b.subarray(0, size) },
    } as never);
    return env;
  }

  static open(dir: string, opts: BackendOptions = {}): Backend {
    return new Backend(dir, opts);
  }

  private db(b: BucketName): Database<Buffer, Buffer> {
    return this.dbs.get(b)!;
  }

  get(bucket: BucketName, key: Buffer): Buffer | undefined {
    const p = this.overlay.get(bucket)!.get(key.toString('latin1'));
    if (p) return p.value ?? undefined;
    const v = this.db(bucket).getBinary(key) as Buffer | undefined;
    if (v && bucket === 'key') this.verify(key, v);
    return v;
  }

  /**
   * Called when a stored record fails its checksum (a byte flipped on disk).
   * The read fails with etcd's corrupt error instead of serving the data.
   */
  onCorrupt: ((bucket: BucketName, key: Buffer) => void) | undefined;

  // MVCC records keep etcd's exact bytes (snapshots convert bucket by bucket), so
  // their checksums live beside them: keyChecksum[revision] = crc32(value).
  private verify(key: Buffer, value: Buffer, transaction?: Transaction): void {
    this.verifyChecksum(key, zlib.crc32(value) >>> 0, transaction);
  }

  /**
   * Checks a `key` record whose crc32 the caller computed (a start-up scan
   * reading zero-copy views: compute it before this read, which may reuse
   * lmdb's read buffer); a mismatch is reported as get() reports it.
   * `transaction`: a snapshot's read transaction (HashKV), read within it.
   */
  verifyChecksum(key: Buffer, crc: number, transaction?: Transaction): void {
    const sum = (transaction ? this.db('keyChecksum').get(key, { transaction }) : this.db('keyChecksum').getBinary(key)) as Buffer | undefined;
    // records written before checksums existed carry none
    if (!sum || sum.length !== 4 || sum.readUInt32BE(0) === crc) return;
    this.onCorrupt?.('key', Buffer.from(key));
    throw Errors.Corrupt;
  }

  put(bucket: BucketName, key: Buffer, value: Buffer): void {
    this.queue(bucket, key, value);
  }

  del(bucket: BucketName, key: Buffer): void {
    this.queue(bucket, key, null);
  }

  // Writes wait in memory (readable through the overlay) until the next
  // commit() hands them to LMDB as one transaction, so the state-machine
  // writes of an applied batch ride along with the next log append's fsync
  // instead of paying for one of their own. A timer bounds how long they wait.
  private queue(bucket: BucketName, key: Buffer, value: Buffer | null): void {
    const seq = ++this.seq;
    const k = key.toString('latin1');
    this.overlay.get(bucket)!.set(k, { value, seq });
    this.pending.push({ bucket, key, value, seq, k });
    if (bucket === 'key') {
      let sum: Buffer | null = null;
      if (value) {
        sum = Buffer.allocUnsafe(4);
        sum.writeUInt32BE(zlib.crc32(value) >>> 0);
      }
      this.pending.push({ bucket: 'keyChecksum', key, value: sum, seq, k });
    }
    this.pendingBytes += key.length + (value ? value.length : 0);
    if (!this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.commit().catch(() => undefined);
      }, BATCH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Bytes of keys and values written but not yet handed to LMDB (the file does not show them yet). */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /** True when writes are queued that commit() has not yet made durable. */
  hasPending(): boolean {
    return this.committedSeq < this.seq;
  }

  /** Resolves when every write issued so far is committed and synced to disk. */
  commit(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.defragging) return this.defragging.then(() => this.commit());
    if (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      this.pendingBytes = 0;
      // every distinct promise lmdb hands out is awaited: an unawaited one that fails is an unhandled rejection
      const writes = new Set<Promise<unknown>>();
      for (const w of batch) writes.add(w.value ? this.db(w.bucket).put(w.key, w.value) : this.db(w.bucket).remove(w.key));
      // lmdb-js ends this event turn's batch in an immediate and may then make a commit promise nobody
      // holds (its next batch start); it rejects too when the disk is full: catch it (env.committed is it)
      const env = this.env;
      setImmediate(() => void Promise.resolve(env.committed).catch(() => undefined));
      const maxSeq = batch[batch.length - 1].seq;
      const t0 = performance.now();
      this.lastWrite = Promise.all(writes).then(() => {
        this.onCommitted?.((performance.now() - t0) / 1000);
        this.sizeGen++;
        if (maxSeq > this.committedSeq) this.committedSeq = maxSeq;
        for (const w of batch) {
          const ov = this.overlay.get(w.bucket)!;
          const cur = ov.get(w.k);
          if (cur && cur.seq <= w.seq) ov.delete(w.k);
        }
      }, (e: unknown) => this.commitFailed(e));
    }
    return this.lastWrite;
  }

  /**
   * commit(), then a forced sync of the data file: commits leave their meta
   * page unsynced (noMetaSync), so a power cut may undo the last one; after
   * this it cannot. For what the log behind it is dropped on (raft snapshots).
   */
  async commitDurable(): Promise<void> {
    await this.commit();
    if (this.opts.sync === false) return;
    const env = this.env as unknown as { sync(cb: (e?: unknown) => void): void };
    await new Promise<void>((resolve, reject) => env.sync((e) => (e ? reject(toStorageError(e, 'fsync', this.envDir)) : resolve())));
    if (faultJournalOn) faultLmdbSynced(this.envDir, (this.env.getStats() as { lastTxnId: number }).lastTxnId);
  }

  private async commitFailed(e: unknown): Promise<never> {
    // lmdb rejects with "Commit failed" and keeps the cause (e.g. EIO on a full disk) in a promise of its own
    const pending = (e as { commitError?: Promise<unknown> } | undefined)?.commitError;
    const cause = pending ? await pending.then(() => e, (c: unknown) => c) : e;
    if (!this.failure) {
      this.failure = toStorageError(cause, 'commit', path.join(this.envDir, 'data.mdb'));
      this.onFatal?.(this.failure);
    }
    throw this.failure;
  }

  /**
   * Ordered scan over committed data only (writes still in flight are not
   * merged). Used for start-up loading and snapshots, where nothing is in
   * flight; keys are compared bytewise.
   */
  *range(bucket: BucketName, start?: Buffer, end?: Buffer, opts: RangeOptions = {}): Generator<[Buffer, Buffer]> {
    const it = this.db(bucket).getRange({ start, end, reverse: opts.reverse, limit: opts.limit });
    for (const { key, value } of it) {
      if (bucket === 'key') this.verify(key as Buffer, value as Buffer);
      yield [key as Buffer, value as Buffer];
    }
  }

  /**
   * A read snapshot of the committed data (see BackendSnapshot). Writes not
   * yet committed are not in it: commit() first for a snapshot that has them.
   * Waits for a defrag in progress (it swaps the environment a snapshot reads).
   */
  async openSnapshot(): Promise<BackendSnapshot> {
    while (this.defragging) await this.defragging;
    if (this.closed) throw new Error('backend closed');
    const env = this.env;
    const dbs = new Map(this.dbs);
    const transaction = env.useReadTransaction();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.snapshots.add(released);
    let open = true;
    const backend = this;
    return {
      *range(bucket, start, end, opts = {}) {
        if (!open) throw new Error('backend snapshot released');
        if (backend.closed) throw new Error('backend closed');
        for (const { key, value } of dbs.get(bucket)!.getRange({ start, end, reverse: opts.reverse, limit: opts.limit, transaction })) {
          if (bucket === 'key') backend.verify(key as Buffer, value as Buffer, transaction);
          yield [key as Buffer, value as Buffer];
        }
      },
      release() {
        if (!open) return;
        open = false;
        transaction.done();
        backend.snapshots.delete(released);
        release();
      },
    };
  }

  /** Resolves once no snapshot is open (those opened meanwhile included). */
  private async snapshotsReleased(): Promise<void> {
    while (this.snapshots.size) await Promise.all(this.snapshots);
  }

  /**
   * Calls fn for every committed record of the `key` bucket in order, with
   * views that are valid only during the call (lmdb's shared read buffer, no
   * copy per record) and without checksum verification: for rebuilding the
   * MVCC index at open, which keeps nothing of a value; every value served
   * later is read, and verified, by get().
   */
  scanKeyRecords(fn: (key: Buffer, value: Buffer) => void): void {
    for (const { key, value } of this.keyView.getRange({})) fn(key, value);
  }

  /** Bytes of the data file, and of pages in use (etcd's dbSize and dbSizeInUse). */
  size(): { total: number; inUse: number } {
    const st = this.env.getStats() as { pageSize: number; treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number; lastPageNumber?: number };
    let total = 0;
    try {
      total = fs.statSync(path.join(this.dir, 'db', 'data.mdb')).size;
    } catch {
      total = 0;
    }
    let pages = 0;
    for (const b of BUCKETS) {
      const s = this.db(b).getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    }
    return { total, inUse: Math.min(total, pages * st.pageSize) };
  }

  /**
   * The size etcd's quota compares against, counted as bolt would: bolt's
   * file grows with the pages in use (freed pages are reused first) plus its
   * meta pages, and never shrinks before defrag. LMDB's file is allocated
   * ahead (several pages larger from the start), so its length would refuse
   * the first write under a quota of a few pages, where etcd accepts them.
   */
  quotaSize(): number {
    // a dozen LMDB stat calls: ~0.5 ms on a loaded machine, paid once per commit instead of per write
    if (this.quotaGen === this.sizeGen) return this.quotaHighWater;
    this.quotaGen = this.sizeGen;
    const { inUse } = this.size();
    const pageSize = (this.env.getStats() as { pageSize: number }).pageSize;
    this.quotaHighWater = Math.max(this.quotaHighWater, inUse + BOLT_META_PAGES * pageSize);
    return this.quotaHighWater;
  }

  /** Copies a consistent snapshot of the environment to `file` (compacting). */
  async backupTo(file: string): Promise<void> {
    await this.commit();
    await this.env.backup(file, true);
  }

  /**
   * etcd's defrag: rewrites the data file without free pages, so it shrinks
   * to what is in use. Writes keep queueing (readable through the overlay)
   * but no commit happens until the swap is done. The compacting copy is made
   * beside the data file, synced, opened, and renamed over the data file in
   * one step, so a crash at any point leaves either the old or the new file
   * complete in db/ (a leftover copy is removed at the next open). Do not
   * hold range() iterators across it.
   */
  async defrag(): Promise<void> {
    while (this.defragging) await this.defragging;
    if (this.closed) throw new Error('backend closed');
    await this.commit();
    let release!: () => void;
    this.defragging = new Promise<void>((r) => (release = r));
    try {
      await this.lastWrite;
      // a snapshot reads the environment closed below; new ones wait for this defrag
      await this.snapshotsReleased();
      const tmpDir = path.join(this.dir, `db-defrag-${process.pid}-${++this.defragSeq}`);
      fs.mkdirSync(tmpDir, { recursive: true });
      const tmpFile = path.join(tmpDir, 'data.mdb');
      // lmdb copies into a directory (its data.mdb), as the environment is one
      await this.env.backup(tmpDir, true).catch((e: unknown) => {
        fs.rmSync(tmpDir, { recursive: true, force: true });
        throw e;
      });
      const fd = fs.openSync(tmpFile, 'r+');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      const oldEnv = this.env;
      const oldDir = this.envDir;
      const oldDbs = new Map(this.dbs);
      const oldKeyView = this.keyView;
      // from here to the rename nothing awaits: every read sees one complete store
      this.env = this.openEnv(tmpDir);
      this.envDir = tmpDir;
      const dbDir = path.join(this.dir, 'db');
      try {
        fs.renameSync(tmpFile, path.join(dbDir, 'data.mdb'));
      } catch (e) {
        // e.g. Windows refuses to replace an open file: keep the old environment, which still has everything
        const fresh = this.env;
        this.env = oldEnv;
        this.envDir = oldDir;
        for (const [b, db] of oldDbs) this.dbs.set(b, db);
        this.keyView = oldKeyView;
        await fresh.close();
        fs.rmSync(tmpDir, { recursive: true, force: true });
        throw e;
      }
      const dfd = fs.openSync(dbDir, 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
      await oldEnv.close();
      if (oldDir !== dbDir) fs.rmSync(oldDir, { recursive: true, force: true });
      // bolt's defrag writes a new file of the pages in use: the quota's size falls to it
      this.quotaHighWater = 0;
      this.sizeGen++;
    } finally {
      this.defragging = undefined;
      release();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.commit().catch(() => undefined);
    // a scan holding a snapshot stops at its next read (closed), releasing it
    await this.snapshotsReleased();
    await this.env.close();
    // the live environment may still be a defrag's (its data file already moved to db/)
    if (this.envDir !== path.join(this.dir, 'db')) fs.rmSync(this.envDir, { recursive: true, force: true });
  }
}
