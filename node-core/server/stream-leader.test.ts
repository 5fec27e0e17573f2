// clientv3.WithRequireLeader on every stream, as etcd 3.4's stream
// interceptor: on a follower of a three-member cluster (real etcd and ours
// side by side) a LeaseKeepAlive stream and an Election Observe stream that
// carry `hasleader` end with UNAVAILABLE `etcdserver: no leader` once the
// other two members are killed; afterwards new require-leader streams
// (keep-alive, Snapshot) are refused at once with the same status, and so are
// unary calls carrying it (etcd's unary interceptor), while the same calls
// without it are still served or fail for their own reasons.
import assert from 'node:assert/strict';
import { Metadata, type ClientDuplexStream, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { after, describe, it } from 'node:test';
import { EtcdClient } from '../client/client';
import { ClusterService, KVService, LeaseService, MaintenanceService, type LeaseKeepAliveRequestInit, type LeaseKeepAliveResponse, type SnapshotResponse } from '../proto/gen/etcdserverpb';
import { ElectionService, type LeaderResponse } from '../proto/gen/v3electionpb';
import { findLeader, hasEtcd, startCluster, type ClusterProcs } from '../testing/processes';

interface Ended {
  code: number;
  details: string;
}

function requireLeader(): Metadata {
  const md = new Metadata();
  md.set('hasleader', 'true');
  return md;
}

/** The status a stream ends with (never resolves if the server keeps it open: the test's timeout fails it). */
function endOf(call: { on(ev: 'error', f: (e: ServiceError) => void): unknown; on(ev: 'end', f: () => void): unknown }): Promise<Ended> {
  return new Promise((resolve) => {
    call.on('error', (e: ServiceError) => resolve({ code: e.code, details: e.details }));
    call.on('end', () => resolve({ code: 0, details: 'ended without error' }));
  });
}

function keepAliveStream(c: EtcdClient): ClientDuplexStream<LeaseKeepAliveRequestInit, LeaseKeepAliveResponse> {
  const m = LeaseService.LeaseKeepAlive;
  return c.channel().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => LeaseKeepAliveResponse, requireLeader(), {});
}

function snapshotStream(c: EtcdClient): ClientReadableStream<SnapshotResponse> {
  const m = MaintenanceService.Snapshot;
  return c.channel().makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => SnapshotResponse, {}, requireLeader(), {});
}

function observeStream(c: EtcdClient, name: string): ClientReadableStream<LeaderResponse> {
  const m = ElectionService.Observe;
  return c.channel().makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => LeaderResponse, { name: Buffer.from(name) }, requireLeader(), {});
}

/** How a unary call ends: its status, or 'ok'. */
function unary(c: EtcdClient, m: { path: string; requestSerialize: (r: never) => Buffer; responseDeserialize: (b: Buffer) => unknown }, req: object, md: Metadata): Promise<Ended | 'ok'> {
  return new Promise((resolve) => {
    c.channel().makeUnaryRequest(m.path, m.requestSerialize as (r: object) => Buffer, m.responseDeserialize, req, md, { deadline: Date.now() + 3000 }, (e: ServiceError | null) =>
      resolve(e ? { code: e.code, details: e.details } : 'ok'),
    );
  });
}

interface Outcome {
  keepAlive: Ended;
  observe: Ended;
  newKeepAlive: Ended;
  snapshot: Ended;
  unary: Record<string, Ended | 'ok'>;
}

async function throughLeaderLoss(c: ClusterProcs): Promise<Outcome> {
  let leader = -1;
  while (leader < 0) leader = await findLeader(c);
  const follower = c.members.findIndex((_, i) => i !== leader);
  const client = new EtcdClient({ endpoints: [c.members[follower].clientUrl], timeoutMs: 20_000 });
  try {
    const { ID } = await client.leaseGrant(600);
    const ka = keepAliveStream(client);
    const kaEnd = endOf(ka);
    // one answered keep-alive proves the stream is live before the leader goes
    const first = new Promise<void>((resolve) => ka.once('data', () => resolve()));
    ka.write({ ID });
    await first;
    const obs = observeStream(client, 'stream-leader-election');
    const obsEnd = endOf(obs);
    // a proclaimed leader key makes Observe send one response: the stream is live
    const seen = new Promise<void>((resolve) => obs.once('data', () => resolve()));
    await client.put({ key: Buffer.from('stream-leader-election/1'), value: Buffer.from('v'), lease: ID });
    await seen;
    await Promise.all(c.members.map((m, i) => (i === follower ? undefined : m.kill())));
    const [keepAlive, observe] = await Promise.all([kaEnd, obsEnd]);
    // the member has been leaderless for 3 election timeouts now: new streams are refused at once
    const again = keepAliveStream(client);
    const newKeepAlive = endOf(again);
    again.write({ ID });
    const snapshot = await endOf(snapshotStream(client));
    const serializable = { key: Buffer.from('k'), serializable: true };
    const u: Record<string, Ended | 'ok'> = {
      rangeRequireLeader: await unary(client, KVService.Range, serializable, requireLeader()),
      statusRequireLeader: await unary(client, MaintenanceService.Status, {}, requireLeader()),
      memberListRequireLeader: await unary(client, ClusterService.MemberList, {}, requireLeader()),
      range: await unary(client, KVService.Range, serializable, new Metadata()),
      status: await unary(client, MaintenanceService.Status, {}, new Metadata()),
    };
    return { keepAlive, observe, newKeepAlive: await newKeepAlive, snapshot, unary: u };
  } finally {
    client.close();
  }
}

const clusters: ClusterProcs[] = [];
after(async () => {
  await Promise.all(clusters.map((c) => c.stop().catch(() => undefined)));
});

describe('streams requiring a leader', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  // etcd cancels after 3 election timeouts without a leader (~1.5 s here); a stream never cancelled fails by timeout
  it('keep-alive and Observe end with etcdserver: no leader once the member lost its leader; new ones are refused, as etcd', { timeout: 60_000 }, async () => {
    const args = ['--heartbeat-interval', '50', '--election-timeout', '500'];
    const [etcd, ours] = await Promise.all([startCluster('etcd', 3, args), startCluster('etcdesk', 3, ['--log-level', 'warn', ...args])]);
    clusters.push(etcd, ours);
    const [want, got] = await Promise.all([throughLeaderLoss(etcd), throughLeaderLoss(ours)]);
    const noLeader: Ended = { code: 14, details: 'etcdserver: no leader' };
    assert.deepEqual(want.keepAlive, noLeader, 'etcd itself ends the keep-alive for want of a leader');
    assert.deepEqual(want.unary.rangeRequireLeader, noLeader, 'etcd refuses a require-leader unary call without a leader');
    assert.equal(want.unary.range, 'ok', 'and serves the same serializable read without it');
    assert.deepEqual(got, want);
  });
});
