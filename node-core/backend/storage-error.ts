// A failure of the member's own storage (the write-ahead log or the LMDB data
// file) that it cannot continue after: the disk is full, an I/O error, or the
// log is damaged before its tail. etcd exits on these (lg.Fatal); we stop the
// member and report it to the host (node-core/cluster/node.ts), and the CLI
// exits non-zero with the message. Recognised by class and `kind`, never by
// message text.
import fs from 'node:fs';
import path from 'node:path';

export type StorageFailure = 'no-space' | 'io' | 'corrupt';

export class StorageError extends Error {
  constructor(
    readonly kind: StorageFailure,
    /** The file (or directory) the failure concerns. */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** MDB_MAP_FULL: the environment's map size is reached (lmdb reports its negative code). */
const MDB_MAP_FULL = -30792;
/** An EIO while the file system has less than this free is taken for a full disk (tmpfs and others report a failed page write as EIO). */
const NEARLY_FULL_BYTES = 64 * 1024 * 1024;

function freeBytes(p: string): number | undefined {
  for (let dir = p; ; dir = path.dirname(dir)) {
    try {
      const st = fs.statfsSync(dir);
      return st.bavail * st.bsize;
    } catch {
      if (path.dirname(dir) === dir) return undefined;
    }
  }
}

function errnoOf(err: unknown): { code?: string; errno?: number } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as { code?: unknown; errno?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : undefined,
    // lmdb-js puts the errno (or MDB_ code) in a numeric `code`
    errno: typeof e.code === 'number' ? e.code : typeof e.errno === 'number' ? e.errno : undefined,
  };
}

/**
 * Maps an error from a write/sync/commit of `file` to a StorageError whose
 * message reads as Go's (`write /path: no space left on device`), so the
 * fatal line says what happened and where.
 */
export function toStorageError(err: unknown, op: string, file: string): StorageError {
  if (err instanceof StorageError) return err;
  const { code, errno } = errnoOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  const noSpace =
    code === 'ENOSPC' ||
    code === 'EDQUOT' ||
    errno === 28 ||
    errno === MDB_MAP_FULL ||
    ((code === 'EIO' || errno === 5) && (freeBytes(file) ?? Infinity) < NEARLY_FULL_BYTES);
  if (noSpace) {
    const why = errno === MDB_MAP_FULL ? ' (the data file reached its map size)' : code === 'ENOSPC' || errno === 28 ? '' : ` (${detail})`;
    return new StorageError('no-space', file, `${op} ${file}: no space left on device${why}`, { cause: err });
  }
  return new StorageError('io', file, `${op} ${file}: ${detail}`, { cause: err });
}
