// Snapshots exchanged with a real etcd 3.4 (/usr/bin/etcd, /usr/bin/etcdctl):
// ours → `etcdctl snapshot status/restore` → etcd serves every key, revision,
// version and lease; etcd's `snapshot save` → our import → the same state in
// our backend, and back out through the streaming export into etcd again.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../testing/processes';
import { Backend } from '../backend/backend';
import { decodeLease, encodeLease } from '../proto/gen/leasepb';
import { decodeKeyValue, encodeKeyValue } from '../proto/gen/mvccpb';
import { readBoltFile } from './bolt-reader';
import { ETCD_BUCKETS, exportEtcdSnapshot, importEtcdSnapshot, saveEtcdSnapshot, snapshotStatus } from './etcd-snapshot';

const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const skip = !fs.existsSync(ETCD) || !fs.existsSync(ETCDCTL) ? 'etcd/etcdctl not installed' : false;

let dir: string;
const procs: ChildProcess[] = [];
const backends: Backend[] = [];

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-backup-interop-'));
});
after(async () => {
  for (const p of procs) await stop(p);
  for (const b of backends) await b.close();
  // BACKUP_TEST_KEEP=1 leaves snapshots, data dirs and etcd logs behind for a look
  if (process.env.BACKUP_TEST_KEEP) console.log(`kept ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
});

function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

interface Etcd {
  endpoint: string;
  peerUrl: string;
  proc: ChildProcess;
}

async function peerPorts(): Promise<{ client: number; peer: number }> {
  let client = await freePort();
  let peer = await freePort();
  while (peer === client) peer = await freePort();
  return { client, peer };
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 500 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Starts etcd on `dataDir` (fresh, or as left by `snapshot restore` with the same name and peer URL). */
async function startEtcd(name: string, dataDir: string, ports: { client: number; peer: number }): Promise<Etcd> {
  const clientUrl = `http://127.0.0.1:${ports.client}`;
  const peerUrl = `http://127.0.0.1:${ports.peer}`;
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const proc = spawn(
    ETCD,
    [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${name}=${peerUrl}`,
      '--initial-cluster-token=backup-test',
      '--heartbeat-interval=20',
      '--election-timeout=200',
    ],
    // a file, not a pipe: nobody drains a pipe while the test blocks in etcdctl
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  procs.push(proc);
  const deadline = Date.now() + 15_000;
  while (!(await healthy(`${clientUrl}/health`))) {
    if (proc.exitCode !== null) throw new Error(`etcd ${name} exited:\n${fs.readFileSync(path.join(dir, `${name}.log`), 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`etcd ${name} not healthy in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { endpoint: `127.0.0.1:${ports.client}`, peerUrl, proc };
}

function ctl(args: string[], endpoint?: string): string {
  const r = spawnSync(ETCDCTL, endpoint ? [`--endpoints=${endpoint}`, ...args] : args, {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, `etcdctl ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** etcdctl prints 64-bit ids as JSON numbers; keep them exact. */
function parseJson<T>(text: string): T {
  return JSON.parse(text.replace(/(:\s*)(-?\d{16,})/g, '$1"$2"')) as T;
}

interface JsonKv {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: number | string;
}
interface GetJson {
  header: { revision: number };
  kvs?: JsonKv[];
}

/** What the tests compare: every live key with its revisions, version, value and lease. */
interface KvState {
  key: string; // base64
  value: string; // base64
  create: number;
  mod: number;
  version: number;
  lease: bigint;
}

function fromJson(kvs: JsonKv[] | undefined): KvState[] {
  return (kvs ?? []).map((kv) => ({
    key: kv.key,
    value: kv.value ?? '',
    create: kv.create_revision,
    mod: kv.mod_revision,
    version: kv.version,
    lease: BigInt(kv.lease ?? 0),
  }));
}

function getAll(endpoint: string, extra: string[] = []): { revision: number; kvs: KvState[] } {
  const r = parseJson<GetJson>(ctl(['get', '', '--prefix', '-w', 'json', ...extra], endpoint));
  return { revision: r.header.revision, kvs: fromJson(r.kvs) };
}

function revKey(main: number, sub: number, tombstone = false): Buffer {
  const b = Buffer.alloc(tombstone ? 18 : 17);
  b.writeBigInt64BE(BigInt(main), 0);
  b[8] = 0x5f;
  b.writeBigInt64BE(BigInt(sub), 9);
  if (tombstone) b[17] = 0x74;
  return b;
}

function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Latest state of every live key, replayed from a `key` bucket. */
function stateFromKeyBucket(backend: Backend): { revision: number; kvs: KvState[] } {
  const live = new Map<string, KvState>();
  let revision = 0;
  for (const [k, v] of backend.range('key')) {
    revision = Math.max(revision, Number(k.readBigInt64BE(0)));
    const kv = decodeKeyValue(v);
    const id = kv.key.toString('base64');
    if (k.length === 18) live.delete(id);
    else live.set(id, { key: id, value: kv.value.toString('base64'), create: kv.create_revision, mod: kv.mod_revision, version: kv.version, lease: kv.lease });
  }
  const kvs = [...live.values()].sort((a, b) => Buffer.compare(Buffer.from(a.key, 'base64'), Buffer.from(b.key, 'base64')));
  return { revision, kvs };
}

describe('etcd 3.4 snapshot interop', { skip, timeout: 90_000 }, () => {
  test('our snapshot: etcdctl status and restore accept it, etcd serves every key, revision and lease', async () => {
    const backend = Backend.open(path.join(dir, 'ours'), { sync: false });
    backends.push(backend);
    const LEASE = 0x7a11_0000_0000_0123n;
    const live = new Map<string, KvState>();
    const history: { rev: number; key: Buffer; value: Buffer }[] = [];
    let rev = 1;
    // one write txn = one main revision; its changes take sub revisions 0, 1, ...
    const txn = (ops: { key: Buffer; value?: Buffer; lease?: bigint; del?: boolean }[]): void => {
      rev++;
      ops.forEach((op, sub) => {
        const id = op.key.toString('base64');
        if (op.del) {
          backend.put('key', revKey(rev, sub, true), encodeKeyValue({ key: op.key }));
          live.delete(id);
          return;
        }
        const prev = live.get(id);
        const st: KvState = {
          key: id,
          value: op.value!.toString('base64'),
          create: prev?.create ?? rev,
          mod: rev,
          version: (prev?.version ?? 0) + 1,
          lease: op.lease ?? 0n,
        };
        backend.put(
          'key',
          revKey(rev, sub),
          encodeKeyValue({ key: op.key, value: op.value, create_revision: st.create, mod_revision: rev, version: st.version, lease: st.lease }),
        );
        live.set(id, st);
        history.push({ rev, key: op.key, value: op.value! });
      });
    };
    const name = (i: number): Buffer => Buffer.from(`k/${String(i).padStart(4, '0')}`);
    for (let i = 0; i < 400; i++) txn([{ key: name(i), value: Buffer.from(`v1-${i}`) }]);
    for (let i = 0; i < 400; i += 2) txn([{ key: name(i), value: Buffer.from(`v2-${i}`.repeat(i % 9)) }]);
    for (let i = 0; i < 400; i += 7) txn([{ key: name(i), del: true }]);
    txn([{ key: name(7), value: Buffer.from('recreated') }]); // new generation: create revision restarts
    txn([
      { key: Buffer.from('txn/a'), value: Buffer.from('1') },
      { key: Buffer.from('txn/b'), value: Buffer.from('2') },
      { key: Buffer.from('txn/c'), value: Buffer.from('3') },
    ]);
    txn([{ key: Buffer.from([0x00, 0xff, 0x10, 0x80]), value: Buffer.from([0, 1, 2, 255]) }]);
    txn([{ key: Buffer.from('big'), value: Buffer.alloc(300_000, 0x5a) }]);
    txn([{ key: Buffer.from('leased/1'), value: Buffer.from('l1'), lease: LEASE }]);
    txn([{ key: Buffer.from('leased/2'), value: Buffer.from('l2'), lease: LEASE }]);
    txn([{ key: Buffer.from('empty-value'), value: Buffer.alloc(0) }]);
    const maxRev = rev;
    backend.put('meta', Buffer.from('consistent_index'), u64(4242));
    backend.put('lease', u64(LEASE), encodeLease({ ID: LEASE, TTL: 3600 }));
    backend.put('cluster', Buffer.from('clusterVersion'), Buffer.from('3.4.0'));
    backend.put('keyChecksum', u64(1), Buffer.from('not exported'));
    await backend.commit();

    const file = path.join(dir, 'ours.snapshot.db');
    const res = await saveEtcdSnapshot(backend, file);
    assert.equal(fs.statSync(file).size, res.dbSize + 32);

    const status = JSON.parse(ctl(['snapshot', 'status', file, '-w', 'json'])) as { revision: number; totalKey: number; totalSize: number };
    assert.deepEqual(await snapshotStatus(file), status);
    const keyRecords = [...backend.range('key')].length;
    assert.equal(status.revision, maxRev);
    assert.equal(status.totalKey, keyRecords + 3, 'key records + consistent_index + lease + clusterVersion, not raftLog');
    assert.equal(status.totalSize, res.dbSize);

    const ports = await peerPorts();
    const restored = path.join(dir, 'restored-ours');
    ctl([
      'snapshot',
      'restore',
      file,
      `--data-dir=${restored}`,
      '--name=r1',
      `--initial-cluster=r1=http://127.0.0.1:${ports.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports.peer}`,
      '--initial-cluster-token=backup-test',
    ]);
    const etcd = await startEtcd('r1', restored, ports);

    const got = getAll(etcd.endpoint);
    assert.equal(got.revision, maxRev);
    const want = [...live.values()].sort((a, b) => Buffer.compare(Buffer.from(a.key, 'base64'), Buffer.from(b.key, 'base64')));
    assert.equal(got.kvs.length, want.length);
    assert.deepEqual(got.kvs, want);

    // history survives too: every put is readable at its own revision
    for (const h of history.filter((_, i) => i % 97 === 0)) {
      const old = parseJson<GetJson>(ctl(['get', h.key.toString('latin1'), `--rev=${h.rev}`, '-w', 'json'], etcd.endpoint));
      assert.equal(old.kvs?.[0]?.value ?? '', h.value.toString('base64'), `${h.key.toString()} at ${h.rev}`);
    }

    const leases = parseJson<{ leases?: { id: string | number }[] }>(ctl(['lease', 'list', '-w', 'json'], etcd.endpoint));
    assert.deepEqual(
      (leases.leases ?? []).map((l) => BigInt(l.id)),
      [LEASE],
    );
    const ttl = parseJson<{ 'granted-ttl': number; ttl: number; keys?: string[] }>(
      ctl(['lease', 'timetolive', LEASE.toString(16), '--keys', '-w', 'json'], etcd.endpoint),
    );
    assert.equal(ttl['granted-ttl'], 3600);
    assert.ok(ttl.ttl > 3000, `ttl ${ttl.ttl}`);
    assert.deepEqual(
      (ttl.keys ?? []).map((k) => Buffer.from(k, 'base64').toString()).sort(),
      ['leased/1', 'leased/2'],
    );

    // the restored store keeps counting from our last revision
    const put = parseJson<{ header: { revision: number } }>(ctl(['put', 'after-restore', 'x', '-w', 'json'], etcd.endpoint));
    assert.equal(put.header.revision, maxRev + 1);
    await stop(etcd.proc);
    const log = fs.readFileSync(path.join(dir, 'r1.log'), 'utf8');
    assert.doesNotMatch(log, /failed to attach|panic|corrupt|unexpected/i);
    assert.match(log, /restore compact to|recovered store from snapshot|ready to serve client requests/);
  });

  test("etcd's snapshot: import fills our backend; export streams it back into etcd unchanged", async () => {
    const ports = await peerPorts();
    const src = await startEtcd('src', path.join(dir, 'src'), ports);
    const e = src.endpoint;
    for (let i = 0; i < 30; i++) ctl(['put', `app/${String(i).padStart(2, '0')}`, `value-${i}`], e);
    for (let i = 0; i < 30; i += 3) ctl(['put', `app/${String(i).padStart(2, '0')}`, `second-${i}`], e);
    ctl(['del', 'app/05'], e);
    ctl(['del', 'app/1', '--prefix'], e);
    const grant = ctl(['lease', 'grant', '600'], e);
    const leaseHex = /lease ([0-9a-f]+) granted/.exec(grant)?.[1];
    assert.ok(leaseHex, grant);
    const lease = BigInt(`0x${leaseHex}`);
    ctl(['put', 'session/x', 'alive', `--lease=${leaseHex}`], e);
    const mid = getAll(e).revision;
    ctl(['put', 'app/00', 'third'], e);
    ctl(['compaction', String(mid)], e);
    ctl(['put', 'last', 'one'], e);
    const before = getAll(e);
    // users, roles and the auth switch travel in their own buckets (they do not move the revision)
    ctl(['user', 'add', 'root:rootpw'], e);
    ctl(['role', 'add', 'reader'], e);
    ctl(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix'], e);
    ctl(['user', 'add', 'alice:alicepw'], e);
    ctl(['user', 'grant-role', 'alice', 'reader'], e);
    ctl(['auth', 'enable'], e);
    const root = '--user=root:rootpw';

    const snap = path.join(dir, 'etcd.snapshot.db');
    ctl([root, 'snapshot', 'save', snap], e);
    await stop(src.proc);

    assert.deepEqual(await snapshotStatus(snap), JSON.parse(ctl(['snapshot', 'status', snap, '-w', 'json'])));

    const backend = Backend.open(path.join(dir, 'imported'), { sync: false });
    backends.push(backend);
    backend.put('key', revKey(999, 0), Buffer.from('stale data the import must replace'));
    backend.put('members', Buffer.from('abc'), Buffer.from('{"id":1}'));
    const result = await importEtcdSnapshot(snap, backend);
    assert.equal(result.hashVerified, true);
    assert.equal(result.revision, before.revision);
    assert.equal(result.compactRevision, mid);
    assert.equal(result.leases, 1);
    assert.ok(result.snapshotConsistentIndex > 0n);
    assert.deepEqual(result.skippedBuckets, []);

    // the key bucket replays to exactly what etcd served
    const state = stateFromKeyBucket(backend);
    assert.deepEqual(state.kvs, before.kvs);
    assert.equal(state.revision, before.revision);
    // compaction removed superseded revisions below `mid`; what is left matches etcd's file record for record
    const bolt = await readBoltFile(snap);
    try {
      for (const b of ETCD_BUCKETS.filter((x) => x !== 'members' && x !== 'members_removed' && x !== 'meta')) {
        assert.deepEqual([...backend.range(b)], [...bolt.entries([b])], `bucket ${b}`);
      }
    } finally {
      bolt.close();
    }
    const leaseRec = backend.get('lease', u64(lease));
    assert.ok(leaseRec, 'lease record imported');
    assert.equal(decodeLease(leaseRec).TTL, 600);
    assert.deepEqual(backend.get('meta', Buffer.from('consistent_index')), u64(0));
    assert.deepEqual(backend.get('meta', Buffer.from('finishedCompactRev'))?.subarray(0, 8), u64(mid));
    assert.deepEqual(backend.get('members', Buffer.from('abc')), Buffer.from('{"id":1}'), 'our membership is kept');
    assert.deepEqual(
      [...backend.range('authUsers')].map(([k]) => k.toString()),
      ['alice', 'root'],
    );
    assert.deepEqual(backend.get('auth', Buffer.from('authEnabled')), Buffer.from([1]));

    // a data dir's bolt file carries no hash: refused unless asked, as etcdctl's --skip-hash-check
    const dataFile = path.join(dir, 'src', 'member', 'snap', 'db');
    const fromDataDir = Backend.open(path.join(dir, 'imported-data-dir'), { sync: false });
    backends.push(fromDataDir);
    await assert.rejects(importEtcdSnapshot(dataFile, fromDataDir), /missing hash/);
    const direct = await importEtcdSnapshot(dataFile, fromDataDir, { skipHashCheck: true, includeMembership: true, consistentIndex: 7 });
    assert.equal(direct.hashVerified, false);
    assert.deepEqual(stateFromKeyBucket(fromDataDir), { revision: before.revision, kvs: before.kvs });
    assert.ok((direct.buckets.members ?? 0) >= 1, 'membership copied on request');
    assert.deepEqual(fromDataDir.get('meta', Buffer.from('consistent_index')), u64(7));

    // and out again through the streaming export
    const image = await exportEtcdSnapshot(backend, { tmpDir: dir, chunkSize: 32 * 1024 });
    const out = path.join(dir, 'reexported.snapshot.db');
    const fh = await fs.promises.open(out, 'w');
    for await (const chunk of image) {
      assert.ok(chunk.length <= 32 * 1024);
      await fh.write(chunk);
    }
    await fh.close();
    assert.equal(fs.statSync(out).size, image.dbSize + 32);
    assert.deepEqual(fs.readFileSync(out).subarray(image.dbSize), image.sha256);

    const ports2 = await peerPorts();
    const restored = path.join(dir, 'restored-etcd');
    ctl([
      'snapshot',
      'restore',
      out,
      `--data-dir=${restored}`,
      '--name=back',
      `--initial-cluster=back=http://127.0.0.1:${ports2.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${ports2.peer}`,
    ]);
    const back = await startEtcd('back', restored, ports2);
    const after = getAll(back.endpoint, [root]);
    assert.equal(after.revision, before.revision);
    assert.deepEqual(after.kvs, before.kvs);
    const leases = parseJson<{ leases?: { id: string | number }[] }>(ctl([root, 'lease', 'list', '-w', 'json'], back.endpoint));
    assert.deepEqual(
      (leases.leases ?? []).map((l) => BigInt(l.id)),
      [lease],
    );
    // auth came along: alice may read app/ but not write it, and anonymous requests are refused
    assert.match(ctl(['--user=alice:alicepw', 'get', 'app/00', '--print-value-only'], back.endpoint), /third/);
    const denied = spawnSync(ETCDCTL, [`--endpoints=${back.endpoint}`, '--user=alice:alicepw', 'put', 'app/00', 'x'], { encoding: 'utf8' });
    assert.match(denied.stderr, /permission denied/);
    const anonymous = spawnSync(ETCDCTL, [`--endpoints=${back.endpoint}`, 'get', 'app/00'], { encoding: 'utf8' });
    assert.notEqual(anonymous.status, 0);
    // the compaction point travelled with meta: older revisions stay compacted
    const r = spawnSync(ETCDCTL, [`--endpoints=${back.endpoint}`, root, 'get', 'app/00', `--rev=${mid - 1}`], { encoding: 'utf8' });
    assert.match(r.stderr, /required revision has been compacted/);
    await stop(back.proc);
  });
});
