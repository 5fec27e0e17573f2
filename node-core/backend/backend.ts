// The storage backend: one LMDB environment per member, with named buckets
// mirroring etcd's bolt buckets. Writes are queued into lmdb-js's batched
// async transactions (committed and fsynced on lmdb's worker thread) and are
// visible to reads at once through an overlay, as etcd's backend read buffer
// does. `commit()` is the group-commit point: everything written before it
// is durable when it resolves, and every caller that awaited it shares one
// fsync.
import { open, type Database, type RootDatabase } from 'lmdb';
import fs from 'node:fs';
import path from 'node:path';

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
  | 'raftLog'
  | 'raftState';

export const BUCKETS: readonly BucketName[] = [
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
  'raftLog',
  'raftState',
];

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

const DEFAULT_MAP_SIZE = 16 * 1024 * 1024 * 1024;

export class Backend {
  readonly dir: string;
  private readonly env: RootDatabase<Buffer, Buffer>;
  private readonly dbs = new Map<BucketName, Database<Buffer, Buffer>>();
  private readonly overlay = new Map<BucketName, Map<string, Pending>>();
  private seq = 0;
  private lastWrite: Promise<unknown> = Promise.resolve(true);
  private committedSeq = 0;
  private closed = false;

  private constructor(dir: string, opts: BackendOptions) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true });
    this.env = open<Buffer, Buffer>({
      path: path.join(dir, 'db'),
      encoding: 'binary',
      keyEncoding: 'binary',
      compression: false,
      mapSize: opts.mapSize ?? DEFAULT_MAP_SIZE,
      maxDbs: 32,
      noSync: opts.sync === false,
      cache: false,
    });
    for (const b of BUCKETS) {
      this.dbs.set(b, this.env.openDB<Buffer, Buffer>({ name: b, encoding: 'binary', keyEncoding: 'binary', cache: false }));
      this.overlay.set(b, new Map());
    }
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
    return this.db(bucket).getBinary(key) as Buffer | undefined;
  }

  put(bucket: BucketName, key: Buffer, value: Buffer): void {
    const seq = ++this.seq;
    this.overlay.get(bucket)!.set(key.toString('latin1'), { value, seq });
    this.track(this.db(bucket).put(key, value), bucket, key, seq);
  }

  del(bucket: BucketName, key: Buffer): void {
    const seq = ++this.seq;
    this.overlay.get(bucket)!.set(key.toString('latin1'), { value: null, seq });
    this.track(this.db(bucket).remove(key), bucket, key, seq);
  }

  private track(p: Promise<unknown>, bucket: BucketName, key: Buffer, seq: number): void {
    this.lastWrite = p;
    void p.then(
      () => {
        if (seq > this.committedSeq) this.committedSeq = seq;
        const ov = this.overlay.get(bucket)!;
        const k = key.toString('latin1');
        const cur = ov.get(k);
        if (cur && cur.seq <= seq) ov.delete(k);
      },
      () => {
        // the commit promise below reports the failure to the waiting caller
      },
    );
  }

  /** True when writes are queued that commit() has not yet made durable. */
  hasPending(): boolean {
    return this.committedSeq < this.seq;
  }

  /** Resolves when every write issued so far is committed and flushed to disk. */
  async commit(): Promise<void> {
    const last = this.lastWrite;
    await last;
    await this.env.flushed;
  }

  /**
   * Ordered scan over committed data only (writes still in flight are not
   * merged). Used for start-up loading and snapshots, where nothing is in
   * flight; keys are compared bytewise.
   */
  *range(bucket: BucketName, start?: Buffer, end?: Buffer, opts: RangeOptions = {}): Generator<[Buffer, Buffer]> {
    const it = this.db(bucket).getRange({ start, end, reverse: opts.reverse, limit: opts.limit });
    for (const { key, value } of it) yield [key as Buffer, value as Buffer];
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

  /** Copies a consistent snapshot of the environment to `file` (compacting). */
  async backupTo(file: string): Promise<void> {
    await this.commit();
    await this.env.backup(file, true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.commit().catch(() => undefined);
    await this.env.close();
  }
}
