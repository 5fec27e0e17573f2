// Maintenance against Debian's etcd 3.4 with etcdctl: snapshots both ways
// (save from one, restore into the other, serve) and the quota alarm flow
// side by side. Skipped without /usr/bin/etcd.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { etcdctl, freePort, hasEtcd, REPO_ROOT, startEtcd, startEtcdesk, tempDir, type ServerProc } from '../testing/processes';

const skip = !hasEtcd() && 'needs /usr/bin/etcd and etcdctl';
const procs: ServerProc[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop().catch(() => undefined)));
});

async function ok(endpoint: string, args: string[]): Promise<string> {
  const r = await etcdctl(endpoint, args, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function runNode(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/etcdesk-node.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

async function fill(endpoint: string): Promise<string> {
  await ok(endpoint, ['put', 'a', '1']);
  const lease = /lease ([0-9a-f]+) granted/.exec(await ok(endpoint, ['lease', 'grant', '900']))![1];
  await ok(endpoint, ['put', 'leased', 'x', '--lease', lease]);
  for (let i = 0; i < 20; i++) await ok(endpoint, ['put', `k${i % 5}`, `v${i}`]);
  await ok(endpoint, ['del', 'k4']);
  return lease;
}

interface Seen {
  rev: number;
  kvs: string;
  hash: number;
  leased: string;
}

async function observe(endpoint: string): Promise<Seen> {
  const get = JSON.parse(await ok(endpoint, ['get', '', '--from-key', '-w', 'json'])) as { header: { revision: number }; kvs: unknown[] };
  const hkv = JSON.parse(await ok(endpoint, ['endpoint', 'hashkv', '-w', 'json'])) as { HashKV: { hash: number } }[];
  const leased = JSON.parse(await ok(endpoint, ['get', 'leased', '-w', 'json'])) as { kvs: { lease: number }[] };
  return { rev: get.header.revision, kvs: JSON.stringify(get.kvs), hash: hkv[0].HashKV.hash, leased: String(leased.kvs[0].lease) };
}

test('etcdctl snapshot save from etcdesk → etcdctl snapshot restore → etcd serves it', { skip }, async () => {
  const ours = await startEtcdesk();
  procs.push(ours);
  const lease = await fill(ours.endpoint);
  const seen = await observe(ours.endpoint);
  const file = path.join(tempDir('snap-ours'), 'ours.db');
  await ok(ours.endpoint, ['snapshot', 'save', file]);
  const status = await ok(ours.endpoint, ['snapshot', 'status', file, '-w', 'json']);
  assert.equal((JSON.parse(status) as { revision: number }).revision, seen.rev);
  const peerPort = await freePort();
  const dataDir = path.join(tempDir('snap-etcd-restore'), 'etcd');
  await ok(ours.endpoint, ['snapshot', 'restore', file, '--data-dir', dataDir, '--name', 'r', '--initial-cluster', `r=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
  await ours.stop();
  const etcd = await startEtcd({ name: 'r', dataDir, peerPort });
  procs.push(etcd);
  const got = await observe(etcd.endpoint);
  assert.equal(got.rev, seen.rev);
  assert.equal(got.kvs, seen.kvs);
  assert.equal(got.hash, seen.hash, 'HashKV equal in etcd');
  assert.equal(got.leased, seen.leased);
  assert.match(await ok(etcd.endpoint, ['lease', 'list']), new RegExp(lease));
  assert.match(await ok(etcd.endpoint, ['lease', 'timetolive', lease, '--keys']), /attached keys\(\[leased\]\)/);
  await etcd.stop();
});

test('etcdctl snapshot save from etcd → etcdesk-node snapshot restore → etcdesk serves it', { skip }, async () => {
  const etcd = await startEtcd();
  procs.push(etcd);
  await fill(etcd.endpoint);
  const seen = await observe(etcd.endpoint);
  const file = path.join(tempDir('snap-etcd'), 'etcd.db');
  await ok(etcd.endpoint, ['snapshot', 'save', file]);
  await etcd.stop();
  const st = await runNode(['snapshot', 'status', file, '-w', 'json']);
  assert.equal(st.code, 0, st.out);
  const etcdStatus = JSON.parse(await ok(etcd.endpoint, ['snapshot', 'status', file, '-w', 'json'])) as unknown;
  assert.deepEqual(JSON.parse(st.out), etcdStatus, 'our snapshot status prints what etcdctl prints');
  const peerPort = await freePort();
  const dataDir = path.join(tempDir('snap-ours-restore'), 'n');
  const rr = await runNode(['snapshot', 'restore', file, '--data-dir', dataDir, '--name', 'r', '--initial-cluster', `r=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
  assert.equal(rr.code, 0, rr.out);
  // the member id is the one etcdctl computes for the same flags
  const ectlDir = path.join(tempDir('snap-ectl-restore'), 'e');
  await ok(etcd.endpoint, ['snapshot', 'restore', file, '--data-dir', ectlDir, '--name', 'r', '--initial-cluster', `r=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
  const ours = await startEtcdesk({ name: 'r', dataDir, peerPort });
  procs.push(ours);
  const got = await observe(ours.endpoint);
  assert.equal(got.rev, seen.rev);
  assert.equal(got.kvs, seen.kvs);
  assert.equal(got.hash, seen.hash, 'HashKV equal in etcdesk');
  assert.equal(got.leased, seen.leased);
  const ids = async (endpoint: string): Promise<{ cluster: string; member: string; name: string }> => {
    const j = JSON.parse((await ok(endpoint, ['member', 'list', '-w', 'json'])).replace(/"(ID|cluster_id)":(\d+)/g, '"$1":"$2"')) as {
      header: { cluster_id: string };
      members: { ID: string; name: string }[];
    };
    assert.equal(j.members.length, 1);
    return { cluster: j.header.cluster_id, member: j.members[0].ID, name: j.members[0].name };
  };
  assert.match(rr.out, /restored snapshot/);
  const oursIds = await ids(ours.endpoint);
  await ok(ours.endpoint, ['put', 'after', 'restore']);
  await ours.stop();
  // etcdctl's restore of the same file with the same flags, served by etcd: the same member and
  // cluster ids
  const theirs = await startEtcd({ name: 'r', dataDir: ectlDir, peerPort });
  procs.push(theirs);
  assert.deepEqual(oursIds, await ids(theirs.endpoint));
  assert.equal((await observe(theirs.endpoint)).hash, seen.hash);
  await theirs.stop();
});

/** Fills a member until a put fails; returns etcdctl's error line. */
async function fillUntilNoSpace(endpoint: string): Promise<string> {
  const v = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 400; i++) {
    const r = await etcdctl(endpoint, ['put', `big${i % 64}`, v]);
    if (r.code !== 0) return r.stderr.split('\n').filter((l) => l.startsWith('Error:'))[0] ?? r.stderr;
  }
  return 'never refused';
}

async function quotaFlow(p: ServerProc): Promise<string[]> {
  const out: string[] = [];
  out.push(await fillUntilNoSpace(p.endpoint));
  out.push((await ok(p.endpoint, ['alarm', 'list'])).replace(/memberID:\d+/, 'memberID:ID'));
  out.push((await etcdctl(p.endpoint, ['put', 'small', '1'])).stderr.split('\n').filter((l) => l.startsWith('Error:'))[0]);
  out.push((await etcdctl(p.endpoint, ['lease', 'grant', '10'])).stderr.split('\n').filter((l) => l.startsWith('Error:'))[0]);
  out.push((await ok(p.endpoint, ['get', 'big1', '--keys-only'])).trim());
  out.push((await ok(p.endpoint, ['del', 'big1'])).trim());
  // two values freed, not one: where the store lands after defrag relative to the quota depends on
  // each store's page layout; the flow, not the exact boundary, is compared
  out.push((await ok(p.endpoint, ['del', 'big2'])).trim());
  const status = JSON.parse(await ok(p.endpoint, ['endpoint', 'status', '-w', 'json'])) as { Status: { header: { revision: number }; errors?: string[] } }[];
  out.push(String(status[0].Status.errors?.map((e) => e.replace(/memberID:\d+/, 'memberID:ID'))));
  out.push((await ok(p.endpoint, ['compact', String(status[0].Status.header.revision)])).replace(/\d+/, 'REV').trim());
  out.push((await ok(p.endpoint, ['defrag'])).replace(/\[.*\]/, '[EP]').trim());
  out.push((await ok(p.endpoint, ['alarm', 'disarm'])).replace(/memberID:\d+/, 'memberID:ID'));
  out.push((await ok(p.endpoint, ['put', 'small', '1'])).trim());
  out.push((await ok(p.endpoint, ['alarm', 'list'])).trim());
  return out;
}

test('quota: NOSPACE, refusals, compaction + defrag + disarm as etcd (etcdctl output compared)', { skip }, async () => {
  const quota = String(2 * 1024 * 1024);
  const [etcd, ours] = await Promise.all([startEtcd({ extraArgs: ['--quota-backend-bytes', quota] }), startEtcdesk({ extraArgs: ['--quota-backend-bytes', quota] })]);
  procs.push(etcd, ours);
  const [want, got] = await Promise.all([quotaFlow(etcd), quotaFlow(ours)]);
  assert.equal(want[0], 'Error: etcdserver: mvcc: database space exceeded');
  assert.deepEqual(got, want);
  await Promise.all([etcd.stop(), ours.stop()]);
});
