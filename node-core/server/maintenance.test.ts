// Maintenance service on in-process members: snapshot → restore keeps every
// key, revision and lease (HashKV equal), defragment shrinks the file and
// keeps the data, alarms through the log, quota, /metrics parses.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, test } from 'node:test';
import { EtcdClient } from '../client/client';
import { silentLogger } from '../support/logger';
import { freePort, tempDir } from '../testing/processes';
import { AlarmRequest_AlarmAction, AlarmType } from '../proto/gen/etcdserverpb';
import { hashBackend } from './maintenance-service';
import { restoreSnapshot, snapshotCommand } from './snapshot-restore';
import { startNode, type RunningNode } from './start';

const running: RunningNode[] = [];
after(async () => {
  for (const r of running) await r.stop().catch(() => undefined);
});

async function start(dataDir: string, extra: Record<string, unknown> = {}): Promise<{ r: RunningNode; c: EtcdClient }> {
  const peer = `http://127.0.0.1:${await freePort()}`;
  const r = await startNode(
    { dataDir, name: 'm', listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [peer], initialAdvertisePeerUrls: [peer], initialCluster: `m=${peer}`, ...extra },
    { logger: silentLogger },
  );
  running.push(r);
  return { r, c: new EtcdClient({ endpoints: [r.clientUrls[0]], timeoutMs: 10_000 }) };
}

const b = (s: string): Buffer => Buffer.from(s);

async function snapshotTo(c: EtcdClient, file: string): Promise<{ remaining: number[] }> {
  const chunks: Buffer[] = [];
  const remaining: number[] = [];
  await c.snapshot((blob, rem) => {
    chunks.push(blob);
    remaining.push(rem);
  });
  fs.writeFileSync(file, Buffer.concat(chunks));
  return { remaining };
}

test('snapshot then restore keeps every key, revision and lease (HashKV equal)', async () => {
  const dir = tempDir('maint-src');
  const { r, c } = await start(dir);
  const lease = await c.leaseGrant(600);
  for (let i = 0; i < 300; i++) await c.put({ key: b(`k/${i % 50}`), value: b(`v${i}`), lease: i % 7 === 0 ? lease.ID : 0n });
  await c.deleteRange({ key: b('k/3') });
  await c.compact(100);
  const before = await c.hashKV(0);
  const beforeKeys = await c.range({ key: b('k/'), range_end: b('k0') });
  const file = path.join(tempDir('maint-snap'), 'snap.db');
  const { remaining } = await snapshotTo(c, file);
  // etcd's stream: remaining bytes count down to 0, then the 32-byte sha256 (remaining 0)
  assert.equal(remaining.at(-1), 0);
  assert.equal(remaining.at(-2), 0);
  for (let i = 1; i < remaining.length - 1; i++) assert.ok(remaining[i] < remaining[i - 1]);

  const target = path.join(tempDir('maint-dst'), 'data');
  const res = await restoreSnapshot(file, { dataDir: target, name: 'm', initialCluster: 'm=http://127.0.0.1:1', initialAdvertisePeerUrls: ['http://127.0.0.1:1'], initialClusterToken: 'restored' });
  assert.equal(res.revision, before.header!.revision);
  // the source's member id cannot come back: a new cluster gets new ids
  assert.notEqual(res.memberId, r.node.memberId);
  c.close();
  await r.stop();

  const peer = `http://127.0.0.1:${await freePort()}`;
  const r2 = await startNode({ dataDir: target, name: 'm', listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [peer] }, { logger: silentLogger });
  running.push(r2);
  const c2 = new EtcdClient({ endpoints: [r2.clientUrls[0]] });
  const afterHash = await c2.hashKV(0);
  assert.equal(afterHash.hash, before.hash);
  assert.equal(afterHash.compact_revision, before.compact_revision);
  assert.equal(afterHash.header!.revision, before.header!.revision);
  assert.equal(r2.node.memberId, res.memberId);
  const afterKeys = await c2.range({ key: b('k/'), range_end: b('k0') });
  assert.deepEqual(afterKeys.kvs, beforeKeys.kvs);
  const ttl = await c2.leaseTimeToLive(lease.ID, true);
  assert.ok(ttl.TTL > 0, 'lease survives the restore');
  assert.equal(ttl.keys.length, beforeKeys.kvs.filter((kv) => kv.lease === lease.ID).length);
  // the restored member writes on from the old revision
  const put = await c2.put({ key: b('new'), value: b('x') });
  assert.equal(put.header!.revision, before.header!.revision + 1);
  // the status subcommand reads the same file
  let out = '';
  assert.equal(await snapshotCommand(['status', file, '-w', 'json'], (s) => (out += s)), 0);
  assert.equal(JSON.parse(out).revision, before.header!.revision);
  // a restore refuses an existing data dir, as etcdctl
  await assert.rejects(restoreSnapshot(file, { dataDir: target }), /exists/);
  c2.close();
  await r2.stop();
});

test('defragment shrinks the data file and keeps every key; Hash and HashKV unchanged', async () => {
  const { r, c } = await start(tempDir('maint-defrag'));
  const big = Buffer.alloc(4096, 7);
  for (let i = 0; i < 400; i++) await c.put({ key: b(`d/${i}`), value: big });
  for (let i = 0; i < 400; i++) if (i % 10) await c.deleteRange({ key: b(`d/${i}`) });
  const st = await c.status();
  await c.compact(st.header!.revision - 1, true);
  const keysBefore = await c.range({ key: b('d/'), range_end: b('d0') });
  const hashBefore = await hashBackend(r.node);
  const kvBefore = await c.hashKV(0);
  const sizeBefore = (await c.status()).dbSize;
  await c.defragment();
  const sizeAfter = (await c.status()).dbSize;
  assert.ok(sizeAfter < sizeBefore / 2, `db shrinks: ${sizeBefore} → ${sizeAfter}`);
  // the same contents: the whole-backend Hash and HashKV do not change
  assert.equal((await hashBackend(r.node)).hash, hashBefore.hash);
  assert.equal((await c.hashKV(0)).hash, kvBefore.hash);
  assert.deepEqual((await c.range({ key: b('d/'), range_end: b('d0') })).kvs, keysBefore.kvs);
  // writes during a defrag wait for it and land afterwards
  const [, w] = await Promise.all([c.defragment(), c.put({ key: b('during'), value: b('1') })]);
  assert.equal((await c.range({ key: b('during') })).kvs.length, 1);
  assert.equal(w.header!.revision, kvBefore.header!.revision + 1);
  assert.equal((await c.hashKV(kvBefore.header!.revision)).hash, kvBefore.hash);
  c.close();
  await r.stop();
  // it opens again with everything, and no defrag leftovers
  const { r: r2, c: c2 } = await start(r.config.dataDir);
  assert.deepEqual((await c2.range({ key: b('d/'), range_end: b('d0') })).kvs, keysBefore.kvs);
  assert.deepEqual(fs.readdirSync(path.join(r.config.dataDir, 'member')).filter((e) => e.startsWith('db-defrag')), []);
  c2.close();
  await r2.stop();
});

test('alarms go through the log and persist; NOSPACE refuses puts and lease grants, not reads, deletes or compaction', async () => {
  const { r, c } = await start(tempDir('maint-alarm'));
  await c.put({ key: b('a'), value: b('1') });
  const act = await c.alarm({ action: AlarmRequest_AlarmAction.ACTIVATE, memberID: r.node.memberId, alarm: AlarmType.NOSPACE });
  assert.deepEqual(act.alarms, [{ memberID: r.node.memberId, alarm: AlarmType.NOSPACE }]);
  await assert.rejects(c.put({ key: b('b'), value: b('2') }), /etcdserver: mvcc: database space exceeded/);
  await assert.rejects(c.leaseGrant(60), /etcdserver: mvcc: database space exceeded/);
  await assert.rejects(c.txn({ success: [{ request_put: { key: b('t'), value: b('v') } }] }), /database space exceeded/);
  assert.equal((await c.range({ key: b('a') })).kvs.length, 1);
  await c.deleteRange({ key: b('a') });
  await c.compact((await c.status()).header!.revision);
  assert.deepEqual((await c.status()).errors, [`memberID:${r.node.memberId} alarm:NOSPACE `]);
  const health = await httpGet(`${r.clientUrls[0]}/health`);
  assert.equal(health.status, 503);
  c.close();
  await r.stop();
  // persisted in the alarm bucket: still raised after a restart
  const { r: r2, c: c2 } = await start(r.config.dataDir);
  assert.equal((await c2.alarm({ action: AlarmRequest_AlarmAction.GET })).alarms.length, 1);
  await assert.rejects(c2.put({ key: b('b'), value: b('2') }), /database space exceeded/);
  await c2.alarm({ action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: r2.node.memberId, alarm: AlarmType.NOSPACE });
  await c2.put({ key: b('b'), value: b('2') });
  // CORRUPT stops every write
  await c2.alarm({ action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
  await assert.rejects(c2.deleteRange({ key: b('b') }), /etcdserver: corrupt cluster/);
  c2.close();
  await r2.stop();
});

test('quota: a write over --quota-backend-bytes raises NOSPACE through the log', async () => {
  const { r, c } = await start(tempDir('maint-quota'), { quotaBackendBytes: 256 * 1024 });
  const v = Buffer.alloc(8 * 1024, 1);
  let err: Error | undefined;
  for (let i = 0; i < 200 && !err; i++) {
    try {
      await c.put({ key: b(`q/${i}`), value: v });
    } catch (e) {
      err = e as Error;
    }
  }
  assert.match(String(err?.message), /^etcdserver: mvcc: database space exceeded$/);
  for (let i = 0; i < 50 && !r.node.activeAlarms().length; i++) await new Promise((res) => setTimeout(res, 20));
  assert.deepEqual(r.node.alarmList(), [{ memberId: r.node.memberId, alarm: AlarmType.NOSPACE }]);
  c.close();
  await r.stop();
});

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** A strict reader of the Prometheus text format (0.0.4): returns samples by name; throws on anything malformed. */
export function parsePrometheus(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  const types = new Map<string, string>();
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      assert.match(line.split(' ')[2], nameRe);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.match(name, nameRe);
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type), `type ${type}`);
      assert.ok(!types.has(name), `TYPE given twice for ${name}`);
      types.set(name, type);
      continue;
    }
    assert.ok(!line.startsWith('#') && line.trim() !== '', `unexpected line ${JSON.stringify(line)}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed sample ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const lre = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < m[3].length) {
        lre.lastIndex = pos;
        const l = lre.exec(m[3]);
        assert.ok(l, `malformed labels in ${line}`);
        labels[l[1]] = l[2];
        pos = lre.lastIndex;
      }
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    assert.ok(!Number.isNaN(value) || m[4] === 'NaN', `bad value in ${line}`);
    const base = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(m[1]) || types.get(base) === 'histogram', `sample ${m[1]} without TYPE`);
    const list = out.get(m[1]) ?? [];
    list.push({ labels, value });
    out.set(m[1], list);
  }
  return out;
}

test('/metrics parses as Prometheus text with etcd names, on the client port and --listen-metrics-urls', async () => {
  const mport = await freePort();
  const { r, c } = await start(tempDir('maint-metrics'), { listenMetricsUrls: [`http://127.0.0.1:${mport}`] });
  await c.put({ key: b('m'), value: b('1') });
  await c.range({ key: b('m') });
  await assert.rejects(c.range({ key: b('') }));
  for (const url of [`${r.clientUrls[0]}/metrics`, `http://127.0.0.1:${mport}/metrics`]) {
    const res = await httpGet(url);
    assert.equal(res.status, 200);
    const m = parsePrometheus(res.body);
    assert.equal(m.get('etcd_server_has_leader')?.[0].value, 1);
    assert.ok((m.get('etcd_server_leader_changes_seen_total')?.[0].value ?? 0) >= 1);
    assert.ok((m.get('etcd_mvcc_db_total_size_in_bytes')?.[0].value ?? 0) > 0);
    assert.ok((m.get('etcd_disk_wal_fsync_duration_seconds_count')?.[0].value ?? 0) > 0);
    const handled = m.get('grpc_server_handled_total') ?? [];
    const find = (method: string, code: string): number | undefined =>
      handled.find((s) => s.labels.grpc_method === method && s.labels.grpc_code === code && s.labels.grpc_service === 'etcdserverpb.KV' && s.labels.grpc_type === 'unary')?.value;
    assert.equal(find('Put', 'OK'), 1);
    assert.equal(find('Range', 'OK'), 1);
    assert.equal(find('Range', 'InvalidArgument'), 1);
  }
  assert.equal((await httpGet(`http://127.0.0.1:${mport}/health`)).status, 200);
  assert.equal((await httpGet(`http://127.0.0.1:${mport}/v3/kv/range`)).status, 404);
  c.close();
  await r.stop();
  // the metrics listener goes away with the member
  await assert.rejects(httpGet(`http://127.0.0.1:${mport}/metrics`));
});

test('a three-member cluster restored from one snapshot (etcd disaster recovery) serves the same HashKV on every member', async () => {
  const { r, c } = await start(tempDir('maint-3src'));
  for (let i = 0; i < 50; i++) await c.put({ key: b(`r/${i % 9}`), value: b(`v${i}`) });
  const want = await c.hashKV(0);
  const file = path.join(tempDir('maint-3snap'), 'snap.db');
  await snapshotTo(c, file);
  c.close();
  await r.stop();
  const peers = await Promise.all([0, 1, 2].map(async () => `http://127.0.0.1:${await freePort()}`));
  const initialCluster = peers.map((p, i) => `n${i}=${p}`).join(',');
  const dirs = peers.map(() => path.join(tempDir('maint-3dst'), 'd'));
  const restored = await Promise.all(
    peers.map((p, i) => restoreSnapshot(file, { dataDir: dirs[i], name: `n${i}`, initialCluster, initialAdvertisePeerUrls: [p], initialClusterToken: 'dr' })),
  );
  assert.equal(new Set(restored.map((x) => x.clusterId)).size, 1, 'one cluster id');
  assert.equal(new Set(restored.map((x) => x.memberId)).size, 3, 'three member ids');
  const nodes = await Promise.all(
    peers.map((p, i) => startNode({ dataDir: dirs[i], name: `n${i}`, listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: [p], electionTimeout: 500, heartbeatInterval: 50 }, { logger: silentLogger })),
  );
  running.push(...nodes);
  const clients = nodes.map((n) => new EtcdClient({ endpoints: [n.clientUrls[0]], timeoutMs: 10_000 }));
  for (const cl of clients) {
    const h = await cl.hashKV(want.header!.revision);
    assert.equal(h.hash, want.hash);
  }
  await clients[0].put({ key: b('after'), value: b('dr') });
  assert.equal((await clients[2].range({ key: b('after') })).kvs.length, 1);
  assert.equal((await clients[1].memberList()).members.length, 3);
  for (const cl of clients) cl.close();
  await Promise.all(nodes.map((n) => n.stop()));
});
