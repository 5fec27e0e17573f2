// Lease gRPC behaviour next to real etcd 3.4 (chosen ids, keep-alive of an
// unknown lease, headers), and leases surviving a restart of the node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../client/client';
import { LeaseService, type LeaseKeepAliveRequestInit, type LeaseKeepAliveResponse } from '../proto/gen/etcdserverpb';
import { hasEtcd, startEtcd, startEtcdesk, tempDir, type ServerProc } from '../testing/processes';
import { sleep } from './compat-helpers.test';

const clientOf = (s: ServerProc): EtcdClient => new EtcdClient({ endpoints: [s.clientUrl], timeoutMs: 20_000 });

function norm(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)).replace(/"(cluster_id|member_id)":"\d+"/g, '"$1":"X"').replace(/"raft_term":\d+/g, '"raft_term":0'));
}

async function outcome<T>(p: Promise<T>): Promise<unknown> {
  try {
    return norm({ ok: await p });
  } catch (e) {
    const err = e as { code?: number; message?: string };
    return { code: err.code, message: err.message };
  }
}

/** Raw keep-alive exchanges on one stream: the answers as sent. */
function keepAlive(c: EtcdClient, ids: bigint[]): Promise<LeaseKeepAliveResponse[]> {
  const m = LeaseService.LeaseKeepAlive;
  return new Promise((resolve, reject) => {
    const call = c.channel().makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => LeaseKeepAliveResponse, {});
    const got: LeaseKeepAliveResponse[] = [];
    call.on('data', (r: LeaseKeepAliveResponse) => {
      got.push(r);
      if (got.length === ids.length) call.end();
    });
    call.on('end', () => resolve(got));
    call.on('error', reject);
    for (const ID of ids) call.write({ ID } as LeaseKeepAliveRequestInit);
  });
}

describe('Lease service', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  let ce: EtcdClient;
  let co: EtcdClient;
  const dataDir = tempDir('lease-restart');

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk({ dataDir })]);
    ce = clientOf(etcd);
    co = clientOf(ours);
  });
  after(async () => {
    ce?.close();
    co?.close();
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  async function same<T>(f: (c: EtcdClient) => Promise<T>): Promise<unknown> {
    const a = await outcome(f(ce));
    const b = await outcome(f(co));
    assert.deepEqual(b, a);
    return b;
  }

  it('chosen ids, duplicates, keep-alive answers and time-to-live of unknown leases, as etcd', async () => {
    await same((c) => c.leaseGrant(30, 0x1234n));
    await same((c) => c.leaseGrant(30, 0x1234n));
    await same((c) => c.leaseGrant(1, 0x1235n));
    await same((c) => c.put({ key: Buffer.from('a'), value: Buffer.from('b'), lease: 0x1234n }));
    await same((c) => keepAlive(c, [0x1234n, 0x9999n, 0x1235n]));
    await same((c) => c.leaseTimeToLive(0x9999n, true));
    await same((c) => c.leaseTimeToLive(0x1234n, true));
    await same((c) => c.leaseLeases());
    await same((c) => c.leaseRevoke(0x1234n));
    await same((c) => c.leaseRevoke(0x1234n));
    await same((c) => c.leaseRevoke(0x1235n));
    await same((c) => c.leaseLeases());
  });

  it('server-chosen ids are unique and positive', async () => {
    const ids = new Set<bigint>();
    for (let i = 0; i < 20; i++) {
      const r = await co.leaseGrant(60);
      assert.ok(r.ID > 0n);
      ids.add(r.ID);
    }
    assert.equal(ids.size, 20);
  });

  it('leases and attached keys survive a restart, and still expire after it', async () => {
    const g = await co.leaseGrant(3);
    await co.put({ key: Buffer.from('survivor'), value: Buffer.from('v'), lease: g.ID });
    const keep = await co.leaseGrant(600);
    co.close();
    await ours.stop();
    ours = await startEtcdesk({ dataDir });
    co = clientOf(ours);
    const ttl = await co.leaseTimeToLive(keep.ID, true);
    assert.equal(ttl.grantedTTL, 600);
    assert.ok(ttl.TTL > 590 && ttl.TTL <= 601, `remaining ${ttl.TTL}`);
    const t2 = await co.leaseTimeToLive(g.ID, true);
    assert.deepEqual(
      t2.keys.map((k) => Buffer.from(k).toString()),
      ['survivor'],
    );
    // expiry: TTL plus the promotion grace (one election timeout), as etcd
    const deadline = Date.now() + 8000;
    while ((await co.range({ key: Buffer.from('survivor') })).count > 0 && Date.now() < deadline) await sleep(200);
    assert.equal((await co.range({ key: Buffer.from('survivor') })).count, 0);
    assert.equal((await co.leaseTimeToLive(g.ID)).TTL, -1);
  });
});
