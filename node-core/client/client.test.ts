import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { EtcdClient, prefixEnd } from './client';
import { toEtcdError } from './connection';
import { Code, Errors, UntranslatedAuthErrors } from '../errors/index';
import { Compare_CompareResult, Compare_CompareTarget } from '../proto/gen/etcdserverpb';
import { Permission_Type } from '../proto/gen/authpb';
import { Event_EventType } from '../proto/gen/mvccpb';
import { startEtcd, type ServerProc } from '../testing/processes';

const B = (s: string): Buffer => Buffer.from(s);

describe('EtcdClient against etcd 3.4', () => {
  let etcd: ServerProc;
  let c: EtcdClient;
  before(async () => {
    etcd = await startEtcd({ extraArgs: ['--log-level', 'error'] });
    // A dead endpoint first: the client must fail over to the live one.
    c = new EtcdClient({ endpoints: ['127.0.0.1:1', etcd.clientUrl], timeoutMs: 3000 });
  });
  after(async () => {
    c?.close();
    await etcd?.stop();
  });

  it('put/range/delete with failover from a dead endpoint', async () => {
    const p = await c.put({ key: B('a/1'), value: B('one') });
    assert.ok(p.header!.revision > 1);
    await c.put({ key: B('a/2'), value: B('two') });
    const r = await c.range({ key: B('a/'), range_end: prefixEnd('a/') });
    assert.deepEqual(r.kvs.map((kv) => kv.value.toString()), ['one', 'two']);
    assert.equal(r.count, 2);
    assert.equal(c.activeEndpoint, etcd.clientUrl);
    const d = await c.deleteRange({ key: B('a/1') });
    assert.equal(d.deleted, 1);
    assert.equal(execFileSync('etcdctl', ['--endpoints', etcd.clientUrl, 'get', 'a/2', '--print-value-only']).toString().trim(), 'two');
  });

  it('txn compares mod_revision and takes the else branch on mismatch', async () => {
    const p = await c.put({ key: B('t'), value: B('v1') });
    const rev = p.header!.revision;
    const ok = await c.txn({
      compare: [{ key: B('t'), target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, mod_revision: rev }],
      success: [{ request_put: { key: B('t'), value: B('v2') } }],
      failure: [{ request_range: { key: B('t') } }],
    });
    assert.equal(ok.succeeded, true);
    const bad = await c.txn({
      compare: [{ key: B('t'), target: Compare_CompareTarget.MOD, result: Compare_CompareResult.EQUAL, mod_revision: rev }],
      success: [{ request_put: { key: B('t'), value: B('v3') } }],
      failure: [{ request_range: { key: B('t') } }],
    });
    assert.equal(bad.succeeded, false);
    assert.equal(bad.responses[0].response_range!.kvs[0].value.toString(), 'v2');
  });

  it('errors carry etcd messages', async () => {
    await assert.rejects(c.range({ key: B('x'), revision: 1_000_000 }), /required revision is a future revision/);
    await assert.rejects(c.leaseRevoke(12345n), /requested lease not found/);
  });

  it('leases: grant, ttl with keys, keepalive once and continuous, revoke', async () => {
    const g = await c.leaseGrant(30);
    await c.put({ key: B('l/k'), value: B('x'), lease: g.ID });
    const ttl = await c.leaseTimeToLive(g.ID, true);
    assert.equal(ttl.grantedTTL, 30);
    assert.deepEqual(ttl.keys.map((k) => k.toString()), ['l/k']);
    const once = await c.leaseKeepAliveOnce(g.ID);
    assert.equal(once.TTL, 30);
    // the stream's first answer is the event waited for (no fixed window)
    const seen = await new Promise<number>((resolve, reject) => {
      const ka = c.leaseKeepAlive(
        g.ID,
        (r) => {
          ka.close();
          resolve(r.TTL);
        },
        reject,
      );
    });
    assert.equal(seen, 30);
    const list = await c.leaseLeases();
    assert.ok(list.leases.some((l) => l.ID === g.ID));
    await c.leaseRevoke(g.ID);
    assert.equal(await c.get('l/k'), null);
    await assert.rejects(c.leaseKeepAliveOnce(g.ID), /lease not found/);
  });

  it('watch delivers events in order and cancels', async () => {
    const got: string[] = [];
    const w = c.watch({ key: B('w/'), rangeEnd: prefixEnd('w/') }, {
      onEvents: (u) => {
        for (const e of u.events) got.push(`${e.type === Event_EventType.PUT ? 'PUT' : 'DEL'} ${e.kv!.key.toString()}`);
      },
    });
    await w.ready;
    await c.put({ key: B('w/1'), value: B('a') });
    await c.deleteRange({ key: B('w/1') });
    const deadline = Date.now() + 3000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    w.close();
    assert.deepEqual(got, ['PUT w/1', 'DEL w/1']);
  });

  it('cluster and maintenance', async () => {
    const ml = await c.memberList();
    assert.equal(ml.members.length, 1);
    const st = await c.status();
    assert.match(st.version, /^3\.4/);
    assert.equal(st.leader, ml.members[0].ID);
    const h = await c.hashKV();
    assert.ok(h.hash > 0);
    await c.defragment();
    const al = await c.alarm({ action: 0 });
    assert.deepEqual(al.alarms, []);
    let bytes = 0;
    await c.snapshot((blob) => (bytes += blob.length));
    assert.ok(bytes > 0);
  });

  it('auth: users, roles, enable, token, re-auth, denied access', async () => {
    await c.roleAdd('root');
    await c.userAdd('root', 'rootpw');
    await c.userGrantRole('root', 'root');
    await c.roleAdd('reader');
    await c.roleGrantPermission('reader', { permType: Permission_Type.READ, key: B('pub/'), range_end: prefixEnd('pub/') });
    await c.userAdd('alice', 'alicepw');
    await c.userGrantRole('alice', 'reader');
    const role = await c.roleGet('reader');
    assert.equal(role.perm[0].key.toString(), 'pub/');
    assert.deepEqual((await c.userList()).users.sort(), ['alice', 'root']);
    await assert.rejects(c.authenticateProbe('x', 'y'), /authentication is not enabled/);
    await c.authEnable();
    const root = new EtcdClient({ endpoints: [etcd.clientUrl], username: 'root', password: 'rootpw' });
    const alice = new EtcdClient({ endpoints: [etcd.clientUrl], username: 'alice', password: 'alicepw' });
    try {
      await assert.rejects(c.put({ key: B('x'), value: B('y') }), /user name is empty|permission denied|invalid auth token/);
      await root.put({ key: B('pub/a'), value: B('1') });
      assert.equal((await alice.get('pub/a'))!.value.toString(), '1');
      await assert.rejects(alice.put({ key: B('pub/a'), value: B('2') }), /permission denied/);
      await assert.rejects(alice.get('secret'), /permission denied/);
      await assert.rejects(root.authenticateProbe('x', 'y'), /authentication failed/);
      // A password change invalidates nothing in simple tokens, but a forgotten token must re-auth.
      root.resetToken();
      await root.authDisable();
    } finally {
      root.close();
      alice.close();
    }
  });
});

describe('EtcdClient errors by identity and re-auth', () => {
  it('a gRPC status that is a table entry becomes that entry; others keep code and text', () => {
    assert.equal(toEtcdError({ code: Code.Unauthenticated, details: 'etcdserver: invalid auth token' }), Errors.InvalidAuthToken);
    assert.equal(toEtcdError({ code: Code.Unknown, details: 'auth: invalid auth token' }), UntranslatedAuthErrors.InvalidAuthToken);
    assert.equal(toEtcdError({ code: Code.FailedPrecondition, details: 'etcdserver: authentication is not enabled' }), Errors.AuthNotEnabled);
    // same text, another code: not the entry
    const other = toEtcdError({ code: Code.Unknown, details: 'etcdserver: invalid auth token' });
    assert.notEqual(other, Errors.InvalidAuthToken);
    assert.equal(other.code, Code.Unknown);
  });

  it('snapshot renews a token the server no longer knows, as unary calls do', { timeout: 60_000 }, async () => {
    const etcd = await startEtcd();
    const admin = new EtcdClient({ endpoints: [etcd.endpoint] });
    let root: EtcdClient | undefined;
    let other: EtcdClient | undefined;
    try {
      await admin.roleAdd('root');
      await admin.userAdd('root', 'rootpw');
      await admin.userGrantRole('root', 'root');
      await admin.put({ key: B('snap/k'), value: B('v') });
      await admin.authEnable();
      root = new EtcdClient({ endpoints: [etcd.endpoint], username: 'root', password: 'rootpw' });
      let bytes = 0;
      await root.snapshot((blob) => (bytes += blob.length));
      assert.ok(bytes > 0);
      const stale = (await root.metadata()).get('token')[0];
      assert.ok(stale, 'root holds a token');
      // etcd forgets every simple token when auth is turned off; on again, root's token is unknown
      other = new EtcdClient({ endpoints: [etcd.endpoint], username: 'root', password: 'rootpw' });
      await other.authDisable();
      await admin.authEnable();
      bytes = 0;
      await root.snapshot((blob) => (bytes += blob.length));
      assert.ok(bytes > 0);
      assert.notEqual((await root.metadata()).get('token')[0], stale, 'the snapshot authenticated again');
    } finally {
      root?.close();
      other?.close();
      admin.close();
      await etcd.stop();
    }
  });
});
