// A write that may have reached a member is never sent to another one (it may
// already be applied: a second apply bumps the revision, fires watchers, turns
// a guarded txn's own write into a conflict); a read is; a write whose first
// endpoint could not be connected to goes to the next (it never left).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EtcdClient } from './client';
import { isRepeatable } from './retry-policy';
import { Code, type EtcdError, Errors } from '../errors/index';
import * as pb from '../proto/gen/etcdserverpb';
import { hasEtcd, startEtcd, startEtcdesk, waitFor, type ServerProc } from '../testing/processes';

const B = (s: string): Buffer => Buffer.from(s);
const SERVICES = [pb.KVService, pb.LeaseService, pb.ClusterService, pb.MaintenanceService, pb.AuthService];

interface FakeMember {
  endpoint: string;
  /** Calls that reached this member, by method path. */
  arrivals: Map<string, number>;
  stop(): Promise<void>;
}

/** A member that answers the first `failures` unary calls it receives with `fail` (after counting them), the others with an empty success. */
async function fakeMember(fail: EtcdError | null, failures = Infinity): Promise<FakeMember> {
  let failed = 0;
  const arrivals = new Map<string, number>();
  const server = new grpc.Server();
  for (const svc of SERVICES) {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(svc)) {
      if (def.requestStream || def.responseStream) continue;
      impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        arrivals.set(def.path, (arrivals.get(def.path) ?? 0) + 1);
        if (fail && failed++ < failures) cb({ code: fail.code, details: fail.message });
        else cb(null, {});
      };
    }
    server.addService(svc as unknown as grpc.ServiceDefinition, impl);
  }
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { endpoint: `127.0.0.1:${port}`, arrivals, stop: () => new Promise((r) => server.tryShutdown(() => r())) };
}

/** A loopback port nothing listens on: connecting is refused. */
async function refusedEndpoint(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

type Call = [name: string, path: string, run: (c: EtcdClient) => Promise<unknown>];

const WRITES: Call[] = [
  ['Put', pb.KVService.Put.path, (c) => c.put({ key: B('k'), value: B('v') })],
  ['DeleteRange', pb.KVService.DeleteRange.path, (c) => c.deleteRange({ key: B('k') })],
  ['Txn with a put', pb.KVService.Txn.path, (c) => c.txn({ compare: [{ key: B('k'), target: pb.Compare_CompareTarget.MOD, mod_revision: 5 }], success: [{ request_put: { key: B('k'), value: B('v') } }] })],
  ['Txn with a delete in a nested txn of its else branch', pb.KVService.Txn.path, (c) => c.txn({ failure: [{ request_txn: { success: [{ request_delete_range: { key: B('k') } }] } }] })],
  ['Compact', pb.KVService.Compact.path, (c) => c.compact(3)],
  ['LeaseGrant', pb.LeaseService.LeaseGrant.path, (c) => c.leaseGrant(10)],
  ['LeaseRevoke', pb.LeaseService.LeaseRevoke.path, (c) => c.leaseRevoke(7n)],
  ['MemberAdd', pb.ClusterService.MemberAdd.path, (c) => c.memberAdd(['http://127.0.0.1:1'])],
  ['UserAdd', pb.AuthService.UserAdd.path, (c) => c.userAdd('u', 'p')],
  ['AuthEnable', pb.AuthService.AuthEnable.path, (c) => c.authEnable()],
  ['Alarm deactivate', pb.MaintenanceService.Alarm.path, (c) => c.alarm({ action: pb.AlarmRequest_AlarmAction.DEACTIVATE, alarm: pb.AlarmType.NOSPACE })],
  ['Defragment', pb.MaintenanceService.Defragment.path, (c) => c.defragment()],
];

const READS: Call[] = [
  ['Range', pb.KVService.Range.path, (c) => c.range({ key: B('k') })],
  ['serializable Range', pb.KVService.Range.path, (c) => c.range({ key: B('k'), serializable: true })],
  ['read-only Txn', pb.KVService.Txn.path, (c) => c.txn({ success: [{ request_range: { key: B('k') } }], failure: [{ request_txn: { success: [{ request_range: { key: B('j') } }] } }] })],
  ['Status', pb.MaintenanceService.Status.path, (c) => c.status()],
  ['MemberList', pb.ClusterService.MemberList.path, (c) => c.memberList()],
  ['HashKV', pb.MaintenanceService.HashKV.path, (c) => c.hashKV()],
  ['Alarm list', pb.MaintenanceService.Alarm.path, (c) => c.alarm({ action: pb.AlarmRequest_AlarmAction.GET })],
  ['LeaseTimeToLive', pb.LeaseService.LeaseTimeToLive.path, (c) => c.leaseTimeToLive(7n)],
  ['LeaseLeases', pb.LeaseService.LeaseLeases.path, (c) => c.leaseLeases()],
  ['UserList', pb.AuthService.UserList.path, (c) => c.userList()],
  ['RoleGet', pb.AuthService.RoleGet.path, (c) => c.roleGet('r')],
];

describe('client retry policy: which calls go to the next endpoint', () => {
  const members: FakeMember[] = [];
  const clients: EtcdClient[] = [];
  const client = (endpoints: string[]): EtcdClient => {
    const c = new EtcdClient({ endpoints, timeoutMs: 5000 });
    clients.push(c);
    return c;
  };
  let timedOut: FakeMember;
  let leaderChanged: FakeMember;
  let healthy: FakeMember;
  before(async () => {
    timedOut = await fakeMember(Errors.Timeout);
    leaderChanged = await fakeMember(Errors.LeaderChanged);
    healthy = await fakeMember(null);
    members.push(timedOut, leaderChanged, healthy);
  });
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(members.map((m) => m.stop()));
  });

  it('a txn is a read only when no branch, nested txns included, puts or deletes; an alarm request without an action lists alarms', () => {
    assert.equal(isRepeatable(pb.KVService.Txn.path, { success: [{ request_range: {} }], failure: [{ request_txn: { success: [{ request_range: {} }] } }] }), true);
    assert.equal(isRepeatable(pb.KVService.Txn.path, { failure: [{ request_txn: { success: [{ request_delete_range: {} }] } }] }), false);
    assert.equal(isRepeatable(pb.KVService.Txn.path, { success: [{ request_put: {} }] }), false);
    assert.equal(isRepeatable(pb.MaintenanceService.Alarm.path, {}), true);
    assert.equal(isRepeatable(pb.MaintenanceService.Alarm.path, { action: pb.AlarmRequest_AlarmAction.ACTIVATE }), false);
    assert.equal(isRepeatable('/v3lockpb.Lock/Lock', {}), false, 'a method not known to read is a write');
  });

  for (const [name, path, run] of WRITES) {
    it(`${name} answered "request timed out" is surfaced, not re-sent to the next endpoint`, async () => {
      const before0 = healthy.arrivals.get(path) ?? 0;
      const before1 = timedOut.arrivals.get(path) ?? 0;
      await assert.rejects(run(client([timedOut.endpoint, healthy.endpoint])), (e) => e === Errors.Timeout);
      assert.equal((timedOut.arrivals.get(path) ?? 0) - before1, 1, 'the write reached the first member once');
      assert.equal((healthy.arrivals.get(path) ?? 0) - before0, 0, 'and never the second');
    });
  }

  it('a Put answered "leader changed" is surfaced, not re-sent; the next call starts at the next endpoint', async () => {
    const c = client([leaderChanged.endpoint, healthy.endpoint]);
    const before0 = healthy.arrivals.get(pb.KVService.Put.path) ?? 0;
    await assert.rejects(c.put({ key: B('k'), value: B('v') }), (e) => e === Errors.LeaderChanged);
    assert.equal((healthy.arrivals.get(pb.KVService.Put.path) ?? 0) - before0, 0);
    assert.equal(c.activeEndpoint, `http://${healthy.endpoint}`);
    await c.put({ key: B('k'), value: B('v') });
    assert.equal((healthy.arrivals.get(pb.KVService.Put.path) ?? 0) - before0, 1);
  });

  for (const [name, path, run] of READS) {
    it(`${name} answered "request timed out" is read again from the next endpoint`, async () => {
      const before0 = healthy.arrivals.get(path) ?? 0;
      await run(client([timedOut.endpoint, healthy.endpoint]));
      assert.equal((healthy.arrivals.get(path) ?? 0) - before0, 1);
    });
  }

  it('a read answered "leader changed" by every endpoint is tried again until a leader is elected, within the call\'s time', async () => {
    const electing = await fakeMember(Errors.LeaderChanged, 3);
    members.push(electing);
    const dead = await refusedEndpoint();
    await client([electing.endpoint, dead]).range({ key: B('k') });
    assert.equal(electing.arrivals.get(pb.KVService.Range.path), 4, 'three answers of "leader changed", then the read');
    // never longer than the call's time: a member that never elects one fails the read with its answer
    const c = new EtcdClient({ endpoints: [leaderChanged.endpoint], timeoutMs: 600 });
    clients.push(c);
    const t0 = Date.now();
    await assert.rejects(c.range({ key: B('k') }), (e) => e === Errors.LeaderChanged);
    assert.ok(Date.now() - t0 < 5000, 'bounded by the call\'s time');
    // a write is still not sent again
    const writes = leaderChanged.arrivals.get(pb.KVService.Put.path) ?? 0;
    await assert.rejects(client([leaderChanged.endpoint]).put({ key: B('k'), value: B('v') }), (e) => e === Errors.LeaderChanged);
    assert.equal((leaderChanged.arrivals.get(pb.KVService.Put.path) ?? 0) - writes, 1);
  });

  it('a write whose first endpoint refuses the connection goes to the next one (it never left)', async () => {
    const dead = await refusedEndpoint();
    for (const [name, path, run] of WRITES) {
      const before0 = healthy.arrivals.get(path) ?? 0;
      await run(client([dead, healthy.endpoint]));
      assert.equal((healthy.arrivals.get(path) ?? 0) - before0, 1, name);
    }
  });

  it('a write to endpoints that all refuse fails with Unavailable', async () => {
    const c = client([await refusedEndpoint(), await refusedEndpoint()]);
    await assert.rejects(c.put({ key: B('k'), value: B('v') }), (e: EtcdError) => e.code === Code.Unavailable);
  });
});

/**
 * A TCP proxy to `target` that passes everything until a client request
 * contains `marker`; that request still goes to the member (it will be
 * applied), then the client's connection is reset ('reset'), or the client
 * hears nothing more, as from a paused member ('stall').
 */
async function cuttingProxy(target: string, marker: string, mode: 'reset' | 'stall'): Promise<{ endpoint: string; cuts: number; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0 };
  const needle = Buffer.from(marker);
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    sockets.add(down).add(up);
    let cut = false;
    let tail = Buffer.alloc(0);
    up.on('data', (d) => {
      if (!cut) down.write(d);
    });
    down.on('data', (d) => {
      if (cut) return;
      up.write(d);
      tail = Buffer.concat([tail, d]).subarray(-4096);
      if (!tail.includes(needle)) return;
      cut = true;
      state.cuts++;
      if (mode === 'reset') down.resetAndDestroy();
    });
    for (const s of [down, up]) s.on('error', () => undefined);
    down.on('close', () => {
      // the member keeps its side until the test ends, so the request it got is applied as any other
      if (!cut) up.destroy();
    });
    up.on('close', () => down.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port: own } = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${own}`,
    get cuts() {
      return state.cuts;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

for (const kind of ['etcd', 'etcdesk'] as const) {
  describe(`a write cut off after it reached ${kind === 'etcd' ? 'etcd 3.4' : 'an etcdesk node'} is applied once`, { skip: kind === 'etcd' && !hasEtcd() && 'etcd not installed' }, () => {
    let member: ServerProc;
    let direct: EtcdClient;
    before(async () => {
      member = await (kind === 'etcd' ? startEtcd({ extraArgs: ['--log-level', 'error'] }) : startEtcdesk());
      direct = new EtcdClient({ endpoints: [member.endpoint] });
    });
    after(async () => {
      direct?.close();
      await member?.stop();
    });

    for (const mode of ['reset', 'stall'] as const) {
      it(`connection ${mode === 'reset' ? 'reset' : 'silent (member paused)'} after sending: the put fails, is applied once, and a read of the key fails over`, { timeout: 30_000 }, async () => {
        const key = `cut/${mode}`;
        const proxy = await cuttingProxy(member.endpoint, key, mode);
        const c = new EtcdClient({ endpoints: [proxy.endpoint, member.endpoint], timeoutMs: 1500 });
        const reader = new EtcdClient({ endpoints: [proxy.endpoint, member.endpoint], timeoutMs: 1500 });
        try {
          await assert.rejects(c.put({ key: B(key), value: B('once') }), (e: EtcdError) => (mode === 'reset' ? e.code === Code.Unavailable : e.code === Code.DeadlineExceeded));
          assert.equal(proxy.cuts, 1);
          // the member got the put: wait for it to be applied, then see it applied once
          await waitFor(`${key} applied`, async () => (await direct.get(key)) !== null);
          const kv = (await direct.get(key))!;
          assert.equal(kv.version, 1, 'the put was applied once');
          assert.equal(kv.create_revision, kv.mod_revision);
          // a read of the same key through the proxy fails the same way (grpc-js shares the stalled
          // connection, or the reset one is cut again) and is read again from the member
          const r = await reader.range({ key: B(key) });
          assert.equal(r.kvs[0].value.toString(), 'once');
          assert.equal(reader.activeEndpoint, `http://${member.endpoint}`, 'the read went on to the member');
        } finally {
          c.close();
          reader.close();
          await proxy.close();
        }
      });
    }
  });
}
