// The Maintenance service, as etcd's v3rpc/maintenance.go: status, alarms
// (through the log), hashes, snapshots in etcd's file format, defragment and
// leader transfer.
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { alarmString, type ClusterNode } from '../cluster';
import { exportEtcdSnapshot, ETCD_BUCKETS } from '../backup/index';
import { crc32cUpdate } from '../backend/crc32c';
import type {
  AlarmRequest,
  AlarmResponseInit,
  DefragmentRequest,
  DefragmentResponseInit,
  HashKVRequest,
  HashKVResponseInit,
  HashRequest,
  HashResponseInit,
  MaintenanceHandlers,
  MoveLeaderRequest,
  MoveLeaderResponseInit,
  SnapshotRequest,
  SnapshotResponseInit,
  StatusRequest,
  StatusResponseInit,
} from '../proto/gen/etcdserverpb';
import { Errors, EtcdError, untranslatedAuthError } from '../errors';
import { toServiceError } from './grpc-status';
import { refuseWithoutLeader } from './leader-monitor';
import type { RequestGuard } from './request-guard';
import { SERVER_VERSION } from './http-endpoints';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

const CONSISTENT_INDEX = 'consistent_index';
/** Bytes per Snapshot message (etcd sends 32 KiB; fewer, larger messages cost less here). */
const SNAPSHOT_CHUNK = 1024 * 1024;
/** etcd's snapshotSendBufferSize: the size of every Snapshot blob but the last two. */
const SNAPSHOT_SEND_BUFFER = 32 * 1024;

/**
 * etcd's backend.Hash(DefaultIgnores): CRC-32C over every etcd bucket in
 * name order (bolt's root cursor), each bucket's name then its keys and
 * values, leaving out meta.consistent_index, and our own per-member meta
 * records (etcdesk_*), which etcd does not have and which differ by member.
 */
export async function hashBackend(node: ClusterNode): Promise<{ hash: number; rev: number }> {
  await node.backend.commit();
  const rev = node.mvcc.rev;
  const names = [...ETCD_BUCKETS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let h = 0;
  for (const name of names) {
    h = crc32cUpdate(h, Buffer.from(name));
    const isMeta = name === 'meta';
    for (const [k, v] of node.backend.range(name)) {
      if (isMeta) {
        const ks = k.toString('latin1');
        if (ks === CONSISTENT_INDEX || ks.startsWith('etcdesk_')) continue;
      }
      h = crc32cUpdate(h, k);
      h = crc32cUpdate(h, v);
    }
  }
  return { hash: h >>> 0, rev };
}

/** Runs one export or defrag at a time: a defrag swaps the environment an export reads from. */
class Exclusive {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export function createMaintenanceHandlers(node: ClusterNode, guard: RequestGuard): MaintenanceHandlers {
  const exclusive = new Exclusive();
  // etcd's authMaintenanceServer.isAuthenticated: root only, its errors untranslated (code Unknown, "auth: ...")
  const forAdmin = (call: Parameters<RequestGuard['forAdmin']>[0]): Promise<unknown> =>
    guard.forAdmin(call).catch((e: unknown) => {
      throw untranslatedAuthError(e);
    });

  const status: Unary<StatusRequest, StatusResponseInit> = (_call, cb) => {
    try {
      const size = node.backend.size();
      const errors: string[] = [];
      if (node.leaderId === 0n) errors.push(Errors.NoLeader.message);
      for (const a of node.activeAlarms()) errors.push(alarmString(a));
      cb(null, {
        header: node.header(),
        version: SERVER_VERSION,
        dbSize: size.total,
        dbSizeInUse: size.inUse,
        leader: node.leaderId,
        raftIndex: node.raftIndex,
        raftTerm: node.raftTerm,
        raftAppliedIndex: node.appliedIndex,
        isLearner: node.isLearner(),
        errors,
      });
    } catch (e) {
      cb(toServiceError(e) as Parameters<sendUnaryData<StatusResponseInit>>[0]);
    }
  };

  // root only, as etcd; members' corruption checks ask each other over the peer URL instead
  const hashKV: Unary<HashKVRequest, HashKVResponseInit> = (call, cb) => {
    forAdmin(call)
      .then(async () => {
        const h = await node.mvcc.hashKV(call.request.revision);
        cb(null, { header: node.header(h.rev), hash: h.hash, compact_revision: h.compactRev });
      })
      .catch((e: unknown) => cb(toServiceError(e) as Parameters<sendUnaryData<HashKVResponseInit>>[0]));
  };

  const hash: Unary<HashRequest, HashResponseInit> = (call, cb) => {
    forAdmin(call)
      .then(() => hashBackend(node))
      .then((h) => cb(null, { header: node.header(h.rev), hash: h.hash }))
      .catch((e: unknown) => cb(toServiceError(e) as Parameters<sendUnaryData<HashResponseInit>>[0]));
  };

  // etcd sends every alarm request, GET included, through the log (raftRequestOnce):
  // any user may, but a token that is sent must be valid (its error untranslated)
  const alarm: Unary<AlarmRequest, AlarmResponseInit> = (call, cb) => {
    guard
      .forWrite(call)
      .catch((e: unknown) => {
        throw untranslatedAuthError(e);
      })
      .then((h) => node.propose({ header: h, alarm: call.request }))
      .then((a) => {
        // etcd's AlarmResponse carries no header (its applier never sets one)
        cb(null, { alarms: a.result.alarms });
      })
      .catch((e: unknown) => cb(toServiceError(e) as Parameters<sendUnaryData<AlarmResponseInit>>[0]));
  };

  const defragment: Unary<DefragmentRequest, DefragmentResponseInit> = (call, cb) => {
    forAdmin(call)
      .then(() =>
        exclusive.run(async () => {
          node.log.info('starting defragment');
          const before = node.backend.size().total;
          // a compaction just requested is still deleting history in batches: finish it so the copy leaves it out
          await (node.mvcc as { compactionDone?: () => Promise<void> }).compactionDone?.();
          await node.backend.defrag();
          node.log.info('finished defragment', { 'current-db-size-bytes-diff': node.backend.size().total - before });
        }),
      )
      // etcd's DefragmentResponse carries no header
      .then(() => cb(null, {}))
      .catch((e: unknown) => {
        node.log.warn('failed to defragment', { error: (e as Error).message });
        cb(toServiceError(e) as Parameters<sendUnaryData<DefragmentResponseInit>>[0]);
      });
  };

  // etcd's Snapshot: the bolt database in chunks counting down remaining_bytes, then its sha256
  const snapshot = (call: ServerWritableStream<SnapshotRequest, SnapshotResponseInit>): void => {
    // clientv3.WithRequireLeader: refused without a leader (etcd's stream interceptor). A
    // transfer already running is not cut when the leader goes: etcd's Snapshot never
    // looks at the context the leader monitor cancels, so it sends to the end.
    if (refuseWithoutLeader(node, call)) {
      call.emit('error', toServiceError(Errors.NoLeader));
      return;
    }
    let cancelled = false;
    call.on('cancelled', () => (cancelled = true));
    const send = (m: SnapshotResponseInit): Promise<void> =>
      new Promise((resolve) => {
        if (call.write(m)) resolve();
        else call.once('drain', () => resolve());
      });
    const run = async (): Promise<void> => {
      await forAdmin(call);
      const image = await exclusive.run(() => exportEtcdSnapshot(node.backend, { chunkSize: SNAPSHOT_CHUNK }));
      const total = image.dbSize;
      node.log.info('sending database snapshot to client', { 'total-bytes': total });
      let sent = 0;
      const tail: Buffer[] = [];
      // as etcd: 32 KiB blobs (its send buffer), no header, remaining_bytes counting down
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (all: boolean): Promise<void> => {
        let buf = pending.length === 1 ? pending[0] : Buffer.concat(pending);
        while (buf.length >= SNAPSHOT_SEND_BUFFER || (all && buf.length > 0)) {
          const blob = buf.subarray(0, SNAPSHOT_SEND_BUFFER);
          buf = buf.subarray(blob.length);
          sent += blob.length;
          await send({ remaining_bytes: total - sent, blob });
        }
        pending = buf.length ? [buf] : [];
        pendingBytes = buf.length;
      };
      try {
        for await (const chunk of image) {
          if (cancelled) break;
          let body = chunk;
          const room = total - sent - pendingBytes;
          if (body.length > room) {
            tail.push(body.subarray(room));
            body = body.subarray(0, room);
          }
          if (body.length) {
            pending.push(body);
            pendingBytes += body.length;
            if (pendingBytes >= SNAPSHOT_SEND_BUFFER) await flush(false);
          }
        }
        if (!cancelled) await flush(true);
      } finally {
        await image.close();
      }
      if (cancelled) return;
      const sha = image.sha256 ?? Buffer.concat(tail);
      await send({ remaining_bytes: 0, blob: sha });
      node.log.info('successfully sent database snapshot to client', { 'total-bytes': total });
      call.end();
    };
    run().catch((e: unknown) => {
      if (!cancelled) call.emit('error', toServiceError(e));
    });
  };

  // etcd's MoveLeader: only the leader transfers, only to a voting member, and
  // waits (up to the request timeout) until the transferee leads. etcd 3.4
  // makes no auth check here (authMaintenanceServer passes it through).
  const moveLeader: Unary<MoveLeaderRequest, MoveLeaderResponseInit> = (call, cb) => {
    const target = call.request.targetID;
    Promise.resolve()
      .then(async () => {
        if (!node.isLeader()) throw Errors.NotLeader;
        const m = node.member(target);
        if (!m || m.isLearner) throw Errors.BadLeaderTransferee;
        if (target === node.memberId) return;
        node.transferLeader(target);
        const deadline = Date.now() + 5000 + 2 * node.config.electionTimeout;
        while (node.leaderId !== target) {
          if (Date.now() > deadline) throw new EtcdError(2, 'etcdserver: request timed out, leader transfer took too long');
          await new Promise((r) => setTimeout(r, 20));
        }
      })
      .then(() => cb(null, { header: node.header() }))
      .catch((e: unknown) => cb(toServiceError(e) as Parameters<sendUnaryData<MoveLeaderResponseInit>>[0]));
  };

  return { Status: status, HashKV: hashKV, Hash: hash, Alarm: alarm, Defragment: defragment, Snapshot: snapshot, MoveLeader: moveLeader };
}
