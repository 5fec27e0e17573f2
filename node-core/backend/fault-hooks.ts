// Test-only fault injection for crash and power-loss tests (node-core/testing/power-loss.ts),
// switched on by environment variables in a child process and inert otherwise:
//   ETCDESK_FAULT_FS=/path/journal  every fdatasync of the write-ahead log appends
//     "synced <file> <bytes>" (the length of that file known durable), so the harness can
//     drop what a power cut would have lost: the page cache survives a kill -9, not a power cut
//   ETCDESK_FAULT_WAL_SEGMENT_BYTES=<n>  smaller WAL segments, so a test reaches segment
//     rotation and release in seconds
//   ETCDESK_FAULT_CATCH_UP_ENTRIES=<n>  entries kept after a raft snapshot (etcd's 5000), so
//     log compaction (and a follower's need for a state snapshot) comes after few writes
//   ETCDESK_FAULT_KILL_AT=<point>[:<n>]  the n-th time (default 1st) the process reaches
//     <point> it appends "fired <point>" to the journal and kills itself with SIGKILL, so a
//     crash lands inside a window a timed kill would rarely hit (the test asserts it fired)
import fs from 'node:fs';

const journal = process.env.ETCDESK_FAULT_FS || undefined;
const killAt = /^([a-z-]+)(?::(\d+))?$/.exec(process.env.ETCDESK_FAULT_KILL_AT ?? '');
let countdown = killAt ? Number(killAt[2] ?? 1) : 0;

export const faultSegmentBytes: number | undefined = Number(process.env.ETCDESK_FAULT_WAL_SEGMENT_BYTES) || undefined;

export const faultCatchUpEntries: number | undefined = Number(process.env.ETCDESK_FAULT_CATCH_UP_ENTRIES) || undefined;

/** The points a kill can be set to land at. */
export type FaultPoint = 'wal-sync' | 'wal-snapshot-synced' | 'wal-release' | 'snapshot-install';

/** LMDB's environment in `envDir` is on disk up to transaction `txnId`, meta page included (after a forced sync). */
export function faultLmdbSynced(envDir: string, txnId: number): void {
  if (journal) fs.appendFileSync(journal, `lmdb-synced ${envDir} ${txnId}\n`);
}

/** Whether the fault journal is on (the caller then reports what faultLmdbSynced needs). */
export const faultJournalOn = journal !== undefined;

/** `bytes` of `file` are on disk (called right after its fdatasync returned). */
export function faultSynced(file: string, bytes: number): void {
  if (journal) fs.appendFileSync(journal, `synced ${file} ${bytes}\n`);
}

export function faultPoint(point: FaultPoint): void {
  if (!killAt || killAt[1] !== point || --countdown !== 0) return;
  if (journal) fs.appendFileSync(journal, `fired ${point}\n`);
  process.kill(process.pid, 'SIGKILL');
}
