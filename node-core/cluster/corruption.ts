// Corruption detection, as etcd's corrupt.go, plus a local integrity check.
//
// - At start (always): every record of the `key`, `lease` and `alarm` buckets
//   must decode and `key` records must carry their own revision; and the
//   store must still hash to what it hashed to when the member last closed
//   (a checkpoint kept beside the data, see INTEGRITY_FILE). LMDB keeps no
//   checksums of its own, so this is what finds a byte flipped on disk while
//   the member was down; a failure refuses to start, so nothing is served.
// - --experimental-initial-corrupt-check: before serving, HashKV of this
//   member is compared with every peer's at the same revision (through their
//   client URLs); a mismatch with the same compact revision refuses to start.
// - --experimental-corrupt-check-time: the leader periodically compares its
//   hashes with the members'; a mismatch raises CORRUPT through the log
//   (member id 0, as etcd 3.4), which stops every write cluster-wide.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Errors } from '../errors';
import { AlarmRequest_AlarmAction, AlarmType, decodeAlarmMember, type HashKVResponse } from '../proto/gen/etcdserverpb';
import { decodeLease } from '../proto/gen/leasepb';
import type { Backend } from '../backend/backend';
import type { KVStore } from '../mvcc/types';
import type { InternalRaftRequestInit } from '../proto/gen/etcdserverpb';
import type { NodeConfig } from './config';
import type { Logger } from '../support/logger';
import type { Member } from './membership';
import type { PeerTransportLike } from './raft-loop';

/**
 * What the corruption checks need of their member (EtcdNode implements it):
 * narrow, so this module does not depend on the node that starts it.
 */
export interface CorruptionHost {
  readonly config: Pick<NodeConfig, 'electionTimeout' | 'experimentalCorruptCheckTime' | 'experimentalInitialCorruptCheck'>;
  readonly backend: Pick<Backend, 'dir' | 'commit' | 'range' | 'scanKeyRecords' | 'verifyChecksum'>;
  readonly mvcc: Pick<KVStore, 'hashKV' | 'rev' | 'compactRev'>;
  readonly memberId: bigint;
  readonly members: Member[];
  readonly log: Logger;
  /** The peer network (its HashKV), absent for a single member. */
  readonly peers: Pick<PeerTransportLike, 'peerHashKV'> | undefined;
  readonly closed: Promise<void>;
  isLeader(): boolean;
  readBarrier(): Promise<void>;
  propose(req: InternalRaftRequestInit): Promise<unknown>;
}

/** The member's last hash of its store, written when it closes cleanly. */
export const INTEGRITY_FILE = 'integrity.json';

interface Checkpoint {
  rev: number;
  compactRev: number;
  /**
   * zlib's crc32 of every record of the `key` bucket (revision key, then
   * value, in bucket order) up to rev: the start recomputes it within the
   * index rebuild's own scan.
   */
  crc32?: number;
  /** HashKV at rev, in checkpoints written before crc32 (compared by a pass of its own). */
  hash?: number;
}

export class CorruptionError extends Error {}

function readCheckpoint(file: string): Checkpoint | undefined {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Checkpoint>;
    if (typeof c.rev === 'number' && typeof c.compactRev === 'number' && (typeof c.crc32 === 'number' || typeof c.hash === 'number')) return c as Checkpoint;
  } catch {
    // none yet, or unreadable: there is nothing to compare with
  }
  return undefined;
}

/**
 * Records the store's current hash (call with every write committed, e.g. at
 * close). The scan verifies every record's checksum, so the records a later
 * start finds hashing the same need no checksum check of their own.
 */
export async function writeIntegrityCheckpoint(node: CorruptionHost): Promise<void> {
  await node.backend.commit();
  let crc = 0;
  for (const [k, v] of node.backend.range('key')) crc = zlib.crc32(v, zlib.crc32(k, crc));
  const file = path.join(node.backend.dir, INTEGRITY_FILE);
  const tmp = `${file}.tmp`;
  const c: Checkpoint = { rev: node.mvcc.rev, compactRev: node.mvcc.compactRev, crc32: crc };
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(c));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Removes the checkpoint (its store was replaced, e.g. by a restore). */
export function dropIntegrityCheckpoint(memberDir: string): void {
  fs.rmSync(path.join(memberDir, INTEGRITY_FILE), { force: true });
}

const REV_BYTES = 17;

/** A varint of a stored record at st.p (advanced past it); throws past the record's end. */
function readVarint(b: Buffer, st: { p: number }): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (st.p >= b.length) throw new Error('unexpected EOF');
    const c = b[st.p++];
    v += (c & 127) * mul;
    if (c < 128) return v;
    mul *= 128;
  }
  throw new Error('varint overflow');
}

/**
 * Checks one stored KeyValue's wire form without decoding it (no objects per
 * record; a start-up walks every record): each field is a known one with its
 * wire type and within the record, the key is non-empty; returns the record's
 * mod_revision. Throws with what is wrong.
 */
function storedKvModRevision(b: Buffer, st: { p: number }): number {
  st.p = 0;
  let mod = 0;
  let keyLen = 0;
  while (st.p < b.length) {
    const tag = b[st.p++];
    if (tag === 10 || tag === 42) {
      const n = readVarint(b, st);
      if (st.p + n > b.length) throw new Error('unexpected EOF');
      if (tag === 10) keyLen = n;
      st.p += n;
    } else if (tag === 16 || tag === 24 || tag === 32 || tag === 48) {
      const v = readVarint(b, st);
      if (tag === 24) mod = v;
    } else throw new Error(`illegal tag ${tag >> 3} (wire type ${tag & 7})`);
  }
  if (keyLen === 0) throw new Error('no key');
  return mod;
}

/**
 * The local check's pass over the `key` bucket, fed one record at a time:
 * EtcdNode hands `record` to MvccStore.open, so the check rides on the index
 * rebuild's own scan (zero-copy views) instead of a pass of its own. Each
 * record must be a KeyValue of its own revision; records the checkpoint
 * covers are hashed for it (their checksums were verified by the scan that
 * wrote it: an equal hash means the same bytes), later ones (a kill after the
 * last clean close, or no checkpoint) have their checksum verified here.
 */
export class StartScan {
  private readonly cp: Checkpoint | undefined;
  /** Records up to this revision are hashed for the checkpoint. */
  private readonly hashTo: number;
  private crc = 0;
  private readonly problems: string[] = [];
  /** A record that failed its checksum (etcd's corrupt error, as a read of it gives). */
  private checksumError: unknown;
  private readonly st = { p: 0 };

  constructor(
    memberDir: string,
    private readonly backend: Pick<Backend, 'verifyChecksum'>,
  ) {
    this.cp = readCheckpoint(path.join(memberDir, INTEGRITY_FILE));
    this.hashTo = this.cp?.crc32 !== undefined ? this.cp.rev : 0;
  }

  readonly record = (k: Buffer, v: Buffer): void => {
    const main = k.length >= 8 ? Number(k.readBigInt64BE(0)) : 0;
    if (main <= this.hashTo) this.crc = zlib.crc32(v, zlib.crc32(k, this.crc));
    if (this.problems.length <= 10) this.checkShape(k, v, main);
    // last: it reads the database, which may reuse the buffer v views
    if (main > this.hashTo && this.checksumError === undefined) {
      try {
        this.backend.verifyChecksum(k, zlib.crc32(v) >>> 0);
      } catch (e) {
        this.checksumError = e;
      }
    }
  };

  private checkShape(k: Buffer, v: Buffer, main: number): void {
    const tomb = k.length === REV_BYTES + 1 && k[REV_BYTES] === 0x74;
    if ((k.length !== REV_BYTES && !tomb) || k[8] !== 0x5f) {
      this.problems.push(`key bucket: ${k.toString('hex')} is not a revision`);
      return;
    }
    try {
      const mod = storedKvModRevision(v, this.st);
      if (!tomb && mod !== main) this.problems.push(`key bucket: revision ${main} holds a record of revision ${mod}`);
    } catch (e) {
      const msg = (e as Error).message;
      this.problems.push(msg === 'no key' ? `key bucket: revision ${main} holds a record without a key` : `key bucket: ${k.toString('hex')}: ${msg}`);
    }
  }

  /** The rest of the check, once the store is open: the other buckets, then the comparison with the checkpoint. Throws CorruptionError. */
  async finish(node: CorruptionHost): Promise<void> {
    const problems = this.problems;
    for (const [k, v] of node.backend.range('lease')) {
      try {
        if (k.length !== 8) throw new Error('not a lease id');
        decodeLease(v);
      } catch (e) {
        problems.push(`lease bucket: ${k.toString('hex')}: ${(e as Error).message}`);
      }
    }
    for (const [k] of node.backend.range('alarm')) {
      try {
        decodeAlarmMember(k);
      } catch (e) {
        problems.push(`alarm bucket: ${k.toString('hex')}: ${(e as Error).message}`);
      }
    }
    if (this.checksumError !== undefined) throw this.checksumError;
    if (problems.length) throw new CorruptionError(`${node.memberId.toString(16)} found corrupted records in its store:\n${problems.join('\n')}`);

    const cp = this.cp;
    // a kill -9 may leave a checkpoint older than the store: it still covers the
    // revisions it hashed, unless a compaction since then removed some of them
    if (!cp || cp.compactRev !== node.mvcc.compactRev || cp.rev > node.mvcc.rev) return;
    let hash: number;
    let then: number;
    if (cp.crc32 !== undefined) {
      hash = this.crc;
      then = cp.crc32;
    } else {
      // HashKV refuses a past revision at or below the compaction; the current one it takes as 0
      const atCurrent = cp.rev === node.mvcc.rev;
      if (!atCurrent && cp.rev <= node.mvcc.compactRev) return;
      hash = (await node.mvcc.hashKV(atCurrent ? 0 : cp.rev)).hash;
      then = cp.hash!;
    }
    if (hash !== then) {
      throw new CorruptionError(
        `${node.memberId.toString(16)} found data corruption: the store hashes to ${hash} at revision ${cp.rev}, but hashed to ${then} when it was last closed`,
      );
    }
    node.log.info('local integrity check passed', { revision: cp.rev, hash: then });
  }
}

/**
 * The local check run before a member serves: every record decodes, and the
 * store hashes as it did at the last clean close (when the compaction state
 * allows the comparison). Throws CorruptionError. `scan`: the pass already
 * made within the index rebuild (EtcdNode's); without one the bucket is
 * scanned here.
 */
export async function checkLocalIntegrity(node: CorruptionHost, scan?: StartScan): Promise<void> {
  if (!scan) {
    scan = new StartScan(node.backend.dir, node.backend);
    node.backend.scanKeyRecords(scan.record);
  }
  await scan.finish(node);
}

interface PeerHash {
  id: bigint;
  urls: string[];
  resp?: HashKVResponse;
  err?: Error;
}

function requestTimeout(node: CorruptionHost): number {
  return Math.min(5000 + 2 * node.config.electionTimeout, 7000);
}

/**
 * etcd's getPeerHashKVs: each peer's HashKV over the peer network (etcd asks
 * /members/hashkv on the peer URLs), so the checks work with client auth
 * enabled and over TLS, and never need a user.
 */
export async function peerHashKVs(node: CorruptionHost, rev: number, timeoutMs = requestTimeout(node)): Promise<PeerHash[]> {
  const peers = node.members.filter((m) => m.id !== node.memberId);
  const transport = node.peers;
  return Promise.all(
    peers.map(async (m): Promise<PeerHash> => {
      const out: PeerHash = { id: m.id, urls: m.peerURLs };
      if (!transport?.peerHashKV) {
        out.err = new Error('no peer transport');
        return out;
      }
      try {
        out.resp = await transport.peerHashKV(m.id, m.peerURLs, rev, timeoutMs);
      } catch (e) {
        out.err = e as Error;
        node.log.warn('failed hash kv request', { 'local-member-id': node.memberId, 'requested-revision': rev, 'remote-peer-endpoint': m.peerURLs.join(','), error: (e as Error).message });
      }
      return out;
    }),
  );
}

/** etcd's CheckInitialHashKV: refuses (throws) when a peer's hash differs at the same revision and compact revision. */
export async function initialCorruptCheck(node: CorruptionHost): Promise<void> {
  node.log.info('starting initial corruption check', { 'local-member-id': node.memberId });
  const { hash, rev, compactRev } = await node.mvcc.hashKV(0);
  let mismatch = 0;
  for (const p of await peerHashKVs(node, rev)) {
    if (p.resp) {
      if (p.resp.hash !== hash) {
        const fields = { 'local-member-hash': hash, 'local-member-revision': rev, 'local-member-compact-revision': compactRev, 'remote-peer-id': p.id, 'remote-peer-hash': p.resp.hash, 'remote-peer-compact-revision': p.resp.compact_revision };
        if (p.resp.compact_revision === compactRev) {
          node.log.warn('found different hash values from remote peer', fields);
          mismatch++;
        } else node.log.warn('found different compact revision values from remote peer', fields);
      }
    } else if (p.err?.message === Errors.FutureRev.message) {
      node.log.warn('cannot fetch hash from slow remote peer', { 'remote-peer-id': p.id });
    } else if (p.err?.message === Errors.Compacted.message) {
      node.log.warn('cannot fetch hash from remote peer; local member is behind', { 'remote-peer-id': p.id });
    }
  }
  if (mismatch > 0) throw new CorruptionError(`${node.memberId.toString(16)} found data inconsistency with peers`);
  node.log.info('initial corruption checking passed; no corruption', { 'local-member-id': node.memberId });
}

/** etcd's checkHashKV, run by the leader: returns whether it raised CORRUPT. */
export async function checkHashKV(node: CorruptionHost): Promise<boolean> {
  const first = await node.mvcc.hashKV(0);
  const peers = await peerHashKVs(node, first.rev);
  await node.readBarrier();
  const second = await node.mvcc.hashKV(0);
  let alarmed = false;
  const mismatch = (why: string, fields: Record<string, unknown>): void => {
    node.log.warn(why, fields);
    if (alarmed) return;
    alarmed = true;
    // which member is corrupt is not known; etcd 3.4 raises it for member 0
    node.propose({ alarm: { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT } }).catch((e: unknown) => {
      node.log.warn('failed to raise the CORRUPT alarm', { error: (e as Error).message });
    });
  };
  if (second.hash !== first.hash && second.rev === first.rev && second.compactRev === first.compactRev) {
    mismatch('found hash mismatch', { 'revision-1': first.rev, 'hash-1': first.hash, 'revision-2': second.rev, 'hash-2': second.hash });
  }
  let checked = 0;
  for (const p of peers) {
    if (!p.resp) continue;
    checked++;
    const r = p.resp;
    const peerRev = r.header?.revision ?? 0;
    if (peerRev > second.rev) mismatch("revision from follower must be less than or equal to leader's", { 'leader-revision': second.rev, 'follower-revision': peerRev, 'follower-peer-id': p.id });
    if (r.compact_revision > second.compactRev) {
      mismatch("compact revision from follower must be less than or equal to leader's", { 'leader-compact-revision': second.compactRev, 'follower-compact-revision': r.compact_revision, 'follower-peer-id': p.id });
    }
    if (r.compact_revision === first.compactRev && r.hash !== first.hash) {
      mismatch('same compact revision then hashes must match', { 'leader-hash': first.hash, 'follower-hash': r.hash, revision: first.rev, 'follower-peer-id': p.id });
    }
  }
  node.log.info('finished peer corruption check', { 'number-of-peers-checked': checked });
  return alarmed;
}

/** etcd's monitorKVHash: every `intervalMs`, if leader, check. Returns a stop function. */
export function startCorruptionMonitor(node: CorruptionHost, intervalMs = node.config.experimentalCorruptCheckTime): () => void {
  if (!intervalMs) return () => undefined;
  node.log.info('enabled corruption checking', { 'local-member-id': node.memberId, interval: `${intervalMs}ms` });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = (): void => {
    timer = setTimeout(() => {
      const work = node.isLeader() ? checkHashKV(node).then(() => undefined) : Promise.resolve();
      work
        .catch((e: unknown) => node.log.warn('failed to check hash KV', { error: (e as Error).message }))
        .finally(() => {
          if (!stopped) run();
        });
    }, intervalMs);
    timer.unref();
  };
  run();
  const stop = (): void => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
  void node.closed.then(stop);
  return stop;
}

/** Everything that must pass before a member serves (see the header). */
export async function runStartChecks(node: CorruptionHost, scan?: StartScan): Promise<void> {
  await checkLocalIntegrity(node, scan);
  if (node.config.experimentalInitialCorruptCheck) await initialCorruptCheck(node);
}
