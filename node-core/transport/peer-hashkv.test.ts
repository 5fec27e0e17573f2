// The members' HashKV over the peer network (etcd's /members/hashkv): what the
// corruption checks use, so they work whatever client auth or client TLS says.
// A peer of another cluster, or a call meant for another member, is refused;
// a hash at a compacted revision comes back as etcd's error.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Errors, EtcdError } from '../errors/index';
import type { HashKVResponseInit } from '../proto/gen/etcdserverpb';
import { silentLogger } from '../support/logger';
import { PeerTransport, type TransportHandler } from './transport';

const open: PeerTransport[] = [];
after(async () => {
  await Promise.all(open.map((t) => t.stop()));
});

function handler(hashKV?: (rev: number) => Promise<HashKVResponseInit>): TransportHandler {
  return {
    receive: () => undefined,
    receiveSnapshot: () => undefined,
    openSnapshotData: () => Promise.reject(new Error('no snapshots here')),
    reportUnreachable: () => undefined,
    reportSnapshot: () => undefined,
    hashKV,
  };
}

async function member(id: bigint, clusterId: bigint, h: TransportHandler): Promise<{ t: PeerTransport; url: string }> {
  const t = new PeerTransport({ memberId: id, clusterId, listenPeerUrls: ['http://127.0.0.1:0'], handler: h, log: silentLogger });
  await t.start();
  open.push(t);
  return { t, url: t.listenUrls()[0] };
}

test('a member answers its HashKV to a peer of its cluster, and refuses others', async () => {
  const asked: number[] = [];
  const b = await member(0xbn, 0xc1n, handler(async (rev) => {
    asked.push(rev);
    if (rev === 3) throw Errors.Compacted;
    return { header: { revision: 42 }, hash: 0xdeadbeef, compact_revision: 7 };
  }));
  const a = await member(0xan, 0xc1n, handler());
  const r = await a.t.peerHashKV(0xbn, [b.url], 40, 5000);
  assert.equal(r.hash, 0xdeadbeef);
  assert.equal(r.compact_revision, 7);
  assert.equal(r.header?.revision, 42);
  assert.deepEqual(asked, [40]);

  // etcd's error comes back as itself (code and message)
  await assert.rejects(a.t.peerHashKV(0xbn, [b.url], 3, 5000), (e: unknown) => e instanceof EtcdError && e.code === Errors.Compacted.code && e.message === Errors.Compacted.message);

  // addressed to another member id: refused before the handler runs
  await assert.rejects(a.t.peerHashKV(0xcn, [b.url], 40, 5000), /member ID mismatch/);
  // a member of another cluster: refused
  const stranger = await member(0xdn, 0xc2n, handler());
  await assert.rejects(stranger.t.peerHashKV(0xbn, [b.url], 40, 5000), /cluster ID mismatch/);
  assert.deepEqual(asked, [40, 3]);
});

test('an unreachable peer URL is skipped for the next one', async () => {
  const b = await member(0xbn, 0xc1n, handler(async () => ({ hash: 1, compact_revision: -1 })));
  const a = await member(0xan, 0xc1n, handler());
  const r = await a.t.peerHashKV(0xbn, ['http://127.0.0.1:1', b.url], 0, 5000);
  assert.equal(r.hash, 1);
});
