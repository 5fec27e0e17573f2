// Readiness as etcd's: a fresh three-member cluster of real etcd 3.4 and one
// of ours, side by side. The moment each member has logged `ready to serve
// client requests` (nothing awaited but those three lines), a tool acting at
// once must get etcd's answers: member list with every member's name and
// client URLs, /health true, member add and update through the log,
// move-leader finding the leader, a watch that requires a leader. Then a
// watch on a follower that requires a leader is cancelled as etcd cancels it
// once the member is left without a leader.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ETCD_BIN, ETCDCTL_BIN, etcdctl, findLeader, freePort, hasEtcd, httpGet, REPO_ROOT, startCluster, tempDir, type ClusterProcs } from '../testing/processes';

type Kind = 'etcd' | 'etcdesk';

interface Member {
  name: string;
  proc: ChildProcess;
  endpoint: string;
  clientUrl: string;
  peerUrl: string;
  output(): string;
}

interface Cluster {
  kind: Kind;
  members: Member[];
  endpoints: string;
  /** port / hex id → label */
  labels: Map<string, string>;
  stop(): Promise<void>;
}

const READY = /ready to serve client requests/;

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => p.once('exit', () => r()));
}

/**
 * Starts three members and resolves the moment all three logged the ready
 * line (etcd's default logger prints it once ReadyNotify fired; ours once
 * published). Nothing else is waited for.
 */
async function startReadyCluster(kind: Kind, extraArgs: string[]): Promise<Cluster> {
  const ports = await Promise.all([0, 1, 2].map(async () => ({ client: await freePort(), peer: await freePort() })));
  const initial = ports.map((p, i) => `m${i + 1}=http://127.0.0.1:${p.peer}`).join(',');
  const token = `ready-${process.pid}-${ports[0].client}`;
  const readies: Promise<void>[] = [];
  const members = ports.map((p, i): Member => {
    const clientUrl = `http://127.0.0.1:${p.client}`;
    const peerUrl = `http://127.0.0.1:${p.peer}`;
    const args = [
      '--name', `m${i + 1}`,
      '--data-dir', tempDir(`ready-${kind}-m${i + 1}`),
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initial,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
      ...extraArgs,
    ];
    const proc =
      kind === 'etcd'
        ? spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCD_UNSUPPORTED_ARCH: '' } })
        : spawn(process.execPath, [path.join(REPO_ROOT, 'bin/etcdesk-node.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    readies.push(
      new Promise<void>((resolve, reject) => {
        const on = (c: Buffer): void => {
          out += c.toString();
          if (READY.test(out)) resolve();
        };
        proc.stdout!.on('data', on);
        proc.stderr!.on('data', on);
        proc.once('exit', (code) => reject(new Error(`${kind} m${i + 1} exited with ${code} before it was ready:\n${out.slice(-3000)}`)));
      }),
    );
    return { name: `m${i + 1}`, proc, endpoint: `127.0.0.1:${p.client}`, clientUrl, peerUrl, output: () => out };
  });
  const c: Cluster = {
    kind,
    members,
    endpoints: members.map((m) => m.endpoint).join(','),
    labels: new Map(),
    async stop() {
      for (const m of members) m.proc.kill('SIGKILL');
      await Promise.all(members.map((m) => exited(m.proc)));
    },
  };
  for (const m of members) {
    c.labels.set(new URL(m.clientUrl).port, `${m.name}-client`);
    c.labels.set(new URL(m.peerUrl).port, `${m.name}-peer`);
  }
  try {
    await Promise.all(readies);
  } catch (e) {
    await c.stop();
    throw e;
  }
  return c;
}

const hex = (dec: string): string => BigInt(dec).toString(16);

function normalize(c: Cluster, text: string): string {
  return text
    .replace(/127\.0\.0\.1:(\d+)/g, (all, port: string) => (c.labels.has(port) ? `127.0.0.1:<${c.labels.get(port)}>` : all))
    // etcdctl prints ids with "%16x": an id with leading zero digits is shorter and padded with spaces
    .replace(/\b(Member|cluster) +([0-9a-f]{1,16})\b/g, (_all, word: string, h: string) => `${word} ${c.labels.get(h) ?? '<id>'}`)
    .replace(/\b[0-9a-f]{12,16}\b/g, (h) => c.labels.get(h) ?? (/[a-f]/.test(h) ? '<id>' : h))
    // the new member's initial cluster lists the members in id order, which differs between the clusters
    .replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_all, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
}

interface MemberJson {
  ID: string;
  name: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

/** What a tool sees when it acts the moment the ready lines appeared; ids and ports as labels. */
async function actAtOnce(c: Cluster): Promise<Record<string, unknown>> {
  const seen: Record<string, unknown> = {};
  const list = await etcdctl(c.endpoints, ['member', 'list', '-w', 'json']);
  assert.equal(list.code, 0, `${c.kind} member list: ${list.stderr}`);
  const j = JSON.parse(list.stdout.replace(/"(ID|cluster_id|member_id)":(\d+)/g, '"$1":"$2"')) as { header: { cluster_id: string }; members: MemberJson[] };
  c.labels.set(hex(j.header.cluster_id), '<cluster>');
  for (const m of j.members) c.labels.set(hex(m.ID), `<${m.name || 'unnamed'}>`);
  seen.memberList = j.members
    .map((m) => ({ name: m.name, clientURLs: (m.clientURLs ?? []).map((u) => normalize(c, u)), peerURLs: (m.peerURLs ?? []).map((u) => normalize(c, u)) }))
    .sort((a, b) => a.name.localeCompare(b.name));
  seen.health = await Promise.all(c.members.map(async (m) => (await httpGet(`${m.clientUrl}/health`, 5000)).body.trim()));
  // a watch that requires a leader (etcdctl's) sees a put made at once
  const watch = spawn(ETCDCTL_BIN, [`--endpoints=${c.members[0].endpoint}`, 'watch', 'ready-key', '--rev', '1'], { env: { ...process.env, ETCDCTL_API: '3' } });
  let watchOut = '';
  const gotEvent = new Promise<string>((resolve) => {
    watch.stdout.on('data', (b: Buffer) => {
      watchOut += b.toString();
      if (watchOut.includes('ready-value')) resolve(watchOut);
    });
    watch.stderr.on('data', (b: Buffer) => (watchOut += b.toString()));
    watch.once('exit', (code) => resolve(`exited ${code}: ${watchOut}`));
  });
  const put = await etcdctl(c.members[1].endpoint, ['put', 'ready-key', 'ready-value']);
  seen.put = `${put.code} ${put.stdout.trim()}${put.stderr.trim()}`;
  seen.watch = await gotEvent;
  watch.kill('SIGKILL');
  const add = await etcdctl(c.members[0].endpoint, ['member', 'add', 'newcomer', '--learner', '--peer-urls=http://127.0.0.1:1']);
  seen.memberAdd = `${add.code} ${normalize(c, add.stdout + add.stderr).trim()}`;
  const m2 = c.members[1];
  const m2Id = [...c.labels].find(([, v]) => v === '<m2>')![0];
  const upd = await etcdctl(c.members[0].endpoint, ['member', 'update', m2Id, `--peer-urls=${m2.peerUrl}`]);
  seen.memberUpdate = `${upd.code} ${normalize(c, upd.stdout + upd.stderr).trim()}`;
  // move-leader needs the leader among the endpoints: there is one once everyone is ready
  const st = await etcdctl(c.endpoints, ['endpoint', 'status', '-w', 'json']);
  assert.equal(st.code, 0, `${c.kind} endpoint status: ${st.stderr}`);
  const statuses = JSON.parse(st.stdout.replace(/"(member_id|leader)":(\d+)/g, '"$1":"$2"')) as { Status: { header: { member_id: string }; leader: string } }[];
  const leaders = new Set(statuses.map((s) => s.Status.leader));
  seen.oneLeader = leaders.size === 1 && !leaders.has('0');
  const leader = [...leaders][0];
  const target = statuses.find((s) => s.Status.header.member_id !== leader)!.Status.header.member_id;
  const mv = await etcdctl(c.endpoints, ['move-leader', hex(target)]);
  // which members lead differs between the clusters: only the shape is compared
  seen.moveLeader = `${mv.code} ${normalize(c, mv.stdout + mv.stderr).trim().replace(/<m\d>/g, '<member>')}`;
  return seen;
}

describe('readiness as etcd: acting at once on the ready lines', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  const clusters: Cluster[] = [];
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('member list, /health, put and watch, member add/update and move-leader answer as etcd right after the three ready lines', { timeout: 120_000 }, async () => {
    // no strict reconfiguration check: its 5 s "connected for a while" rule would time the add, not readiness
    const args = ['--heartbeat-interval', '50', '--election-timeout', '500', '--strict-reconfig-check=false'];
    const [etcd, ours] = await Promise.all([startReadyCluster('etcd', args), startReadyCluster('etcdesk', [...args, '--log-level', 'info'])]);
    clusters.push(etcd, ours);
    const [want, got] = await Promise.all([actAtOnce(etcd), actAtOnce(ours)]);
    // the harness itself must see what etcd shows: every member named, with its client URL
    assert.deepEqual(want.memberList, [
      { name: 'm1', clientURLs: ['http://127.0.0.1:<m1-client>'], peerURLs: ['http://127.0.0.1:<m1-peer>'] },
      { name: 'm2', clientURLs: ['http://127.0.0.1:<m2-client>'], peerURLs: ['http://127.0.0.1:<m2-peer>'] },
      { name: 'm3', clientURLs: ['http://127.0.0.1:<m3-client>'], peerURLs: ['http://127.0.0.1:<m3-peer>'] },
    ]);
    assert.deepEqual(got, want);
  });

  // etcd cancels after 3 election timeouts without a leader (~2 s here); a watch never cancelled fails by timeout
  it('a watch that requires a leader is cancelled with etcdserver: no leader once its member has lost the leader, as etcd', { timeout: 60_000 }, async () => {
    const args = ['--heartbeat-interval', '50', '--election-timeout', '500'];
    const [etcd, ours] = await Promise.all([startCluster('etcd', 3, args), startCluster('etcdesk', 3, ['--log-level', 'warn', ...args])]);
    procClusters.push(etcd, ours);
    const [want, got] = await Promise.all([watchThroughLeaderLoss(etcd), watchThroughLeaderLoss(ours)]);
    assert.match(want.output, /no leader/, 'etcd itself cancels the watch for want of a leader');
    assert.deepEqual(got, want);
  });
});

const procClusters: ClusterProcs[] = [];
const watchers: ChildProcess[] = [];
after(async () => {
  for (const w of watchers) w.kill('SIGKILL');
  await Promise.all(procClusters.map((c) => c.stop().catch(() => undefined)));
});

/**
 * etcdctl watch (WithRequireLeader) on a follower: once an event proved the
 * stream live, the other two members are killed; etcdctl must end as it
 * ends against etcd. Waits for etcdctl's exit only.
 */
async function watchThroughLeaderLoss(c: ClusterProcs): Promise<{ code: number | null; output: string }> {
  let leader = -1;
  while (leader < 0) leader = await findLeader(c);
  const follower = c.members.findIndex((_, i) => i !== leader);
  const watch = spawn(ETCDCTL_BIN, [`--endpoints=${c.members[follower].endpoint}`, 'watch', 'lost-key'], { env: { ...process.env, ETCDCTL_API: '3' } });
  watchers.push(watch);
  let stdout = '';
  let stderr = '';
  const exit = new Promise<number | null>((r) => watch.once('exit', (code) => r(code)));
  const live = new Promise<void>((resolve) =>
    watch.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('live-value')) resolve();
    }),
  );
  watch.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // the put repeats until the watch (created asynchronously) has seen one
  let seen = false;
  void live.then(() => (seen = true));
  while (!seen) {
    await etcdctl(c.members[leader].endpoint, ['put', 'lost-key', 'live-value']);
    await Promise.race([live, new Promise((r) => setTimeout(r, 200))]);
  }
  await Promise.all(c.members.map((m, i) => (i === follower ? undefined : m.kill())));
  const code = await exit;
  // the event lines are as many as puts it took: keep the end of the watch only
  const lines = stdout.split('\n').filter((l) => l && l !== 'PUT' && l !== 'lost-key' && l !== 'live-value');
  return { code, output: [...lines, ...stderr.split('\n').filter((l) => l && !l.startsWith('{'))].join('\n') };
}

