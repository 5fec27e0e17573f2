// Power loss for a member's data directory, after its process was killed:
// kill -9 keeps everything the process wrote (the page cache survives), a
// power cut keeps only what was synced. The member runs with
// ETCDESK_FAULT_FS=<journal> (node-core/backend/fault-hooks.ts), so every
// fdatasync of its write-ahead log is journalled with the length of the file
// it made durable; powerLoss() then puts the disk in a state a power cut at
// the moment of the kill could have left:
//  - WAL segments: every 512-byte sector written after the last journalled
//    sync of its file either reached the disk or did not (seeded choice per
//    sector; 'drop-all' drops every one), i.e. it is back to the zeros that
//    were synced before. A torn, never-synced batch is what that makes.
//  - LMDB (the state machine): the node opens it with noMetaSync, so each
//    commit syncs its data pages but not its meta page: a power cut may undo
//    the last commit (LMDB's documented guarantee; the commit before it was
//    flushed by the next commit's data sync), unless the journal shows it was
//    synced whole (Backend.commitDurable). 'lose-last-commit' reopens the
//    environment on its previous snapshot (LMDB's MDB_PREVSNAPSHOT), which is
//    exactly that state.
// Not covered: directory entries (a created, renamed or deleted file whose
// directory was not synced: WAL segments are created with a directory sync,
// deletions may come back, which replay tolerates), lost unsynced LMDB data
// pages beyond the meta page (LMDB never points a synced meta at them), and
// files other than the WAL and data.mdb (received snapshot files).
import fs from 'node:fs';
import path from 'node:path';
import { open } from 'lmdb';
import { seededRandom } from '../verify/history-recorder';

const SECTOR = 512;

export interface PowerLossOptions {
  /** Which unsynced WAL sectors survive: a seeded half of them (default), or none. */
  wal?: { seed: number } | 'drop-all';
  /** Undo LMDB's last commit (default), or keep the data file as the kill left it. */
  lmdb?: 'lose-last-commit' | 'keep';
}

export interface PowerLossReport {
  /** Per WAL segment written after its last sync: the synced length and the unsynced bytes that were written. */
  wal: { file: string; synced: number; written: number; sectorsDropped: number }[];
  /** Per member: LMDB's last transaction id before and after (equal when nothing was undone). */
  lmdb: { dataDir: string; before: number; after: number }[];
  /** Fault points that fired (ETCDESK_FAULT_KILL_AT). */
  fired: string[];
}

/** The journal's view: the last synced length of every file, and the fault points that fired. */
export function readJournal(journal: string): { synced: Map<string, number>; lmdbSynced: Map<string, number>; fired: string[] } {
  const synced = new Map<string, number>();
  const lmdbSynced = new Map<string, number>();
  const fired: string[] = [];
  const text = fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8') : '';
  for (const line of text.split('\n')) {
    const m = /^synced (.+) (\d+)$/.exec(line);
    if (m) synced.set(m[1], Number(m[2]));
    const l = /^lmdb-synced (.+) (\d+)$/.exec(line);
    if (l) lmdbSynced.set(l[1], Number(l[2]));
    const f = /^fired (.+)$/.exec(line);
    if (f) fired.push(f[1]);
  }
  return { synced, lmdbSynced, fired };
}

function lastNonZero(b: Buffer, from: number): number {
  for (let i = b.length - 1; i >= from; i--) if (b[i] !== 0) return i + 1;
  return from;
}

async function lmdbTxnId(envDir: string, previous: boolean): Promise<number> {
  // usePreviousSnapshot: lmdb-js's option for LMDB's MDB_PREVSNAPSHOT (not in its typings)
  const env = open({ path: envDir, overlappingSync: false, noMetaSync: true, maxDbs: 32, ...{ usePreviousSnapshot: previous } });
  try {
    return (env.getStats() as { lastTxnId: number }).lastTxnId;
  } finally {
    await env.close();
  }
}

/**
 * Applies a power cut to `dataDirs` (members' --data-dir) whose processes
 * are dead. `journal` is the file they ran with as ETCDESK_FAULT_FS (one may
 * serve several members: it names files by path); it is emptied, so the next
 * runs journal afresh.
 */
export async function powerLoss(dataDirs: string | string[], journal: string, opts: PowerLossOptions = {}): Promise<PowerLossReport> {
  const { synced, lmdbSynced, fired } = readJournal(journal);
  const walMode = opts.wal ?? { seed: 1 };
  const random = walMode === 'drop-all' ? () => 0 : seededRandom(walMode.seed);
  const report: PowerLossReport = { wal: [], lmdb: [], fired };
  for (const dataDir of typeof dataDirs === 'string' ? [dataDirs] : dataDirs) await cutMember(dataDir, synced, lmdbSynced, random, opts, report);
  fs.writeFileSync(journal, '');
  return report;
}

async function cutMember(dataDir: string, synced: Map<string, number>, lmdbSynced: Map<string, number>, random: () => number, opts: PowerLossOptions, report: PowerLossReport): Promise<void> {
  const walDir = path.join(dataDir, 'member', 'wal');
  for (const name of fs.existsSync(walDir) ? fs.readdirSync(walDir).sort() : []) {
    if (!name.endsWith('.wal')) continue;
    const file = path.join(walDir, name);
    const from = synced.get(file);
    // a segment this run never touched was already durable when it started
    if (from === undefined) continue;
    const buf = fs.readFileSync(file);
    const end = lastNonZero(buf, from);
    if (end <= from) continue;
    let dropped = 0;
    for (let pos = from; pos < end; ) {
      const next = Math.min(end, (Math.floor(pos / SECTOR) + 1) * SECTOR);
      if (random() < 0.5) {
        buf.fill(0, pos, next);
        dropped++;
      }
      pos = next;
    }
    fs.writeFileSync(file, buf);
    report.wal.push({ file, synced: from, written: end - from, sectorsDropped: dropped });
  }
  const envDir = path.join(dataDir, 'member', 'db');
  if ((opts.lmdb ?? 'lose-last-commit') === 'lose-last-commit' && fs.existsSync(path.join(envDir, 'data.mdb'))) {
    const before = await lmdbTxnId(envDir, false);
    // a commit whose meta page was synced (Backend.commitDurable) stays; any later one may go
    // (the one before the newest is always on disk: the newest one's data sync flushed it)
    const after = lmdbSynced.get(envDir) === before ? before : await lmdbTxnId(envDir, true);
    report.lmdb.push({ dataDir, before, after });
  }
}
