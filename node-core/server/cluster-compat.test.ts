// etcdctl's cluster commands against a real three-member etcd 3.4 cluster and
// a three-member etcdesk cluster, side by side: member list/add/promote/
// update/remove, endpoint status/health, move-leader, and their errors must
// read the same once the inherently different parts are replaced by labels
// (member ids → the member's name, ports → which member and which port,
// cluster id, sizes, raft indexes, timings).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctl, findLeader, hasEtcd, startCluster, type ClusterProcs, type CtlResult } from '../testing/processes';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Side {
  name: 'etcd' | 'etcdesk';
  c: ClusterProcs;
  /** hex member id / cluster id / port → stable label */
  labels: Map<string, string>;
  ids: Map<string, string>;
}

interface MemberJson {
  ID: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

/** uint64 ids do not survive JSON.parse as numbers: quote them first. */
function parseJsonIds<T>(s: string): T {
  return JSON.parse(s.replace(/"(ID|cluster_id|member_id|leader)":(\d+)/g, '"$1":"$2"')) as T;
}

const hex = (dec: string): string => BigInt(dec).toString(16);

async function learnLabels(s: Side): Promise<void> {
  const r = await etcdctl(s.c.endpoints, ['member', 'list', '-w', 'json'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  const j = parseJsonIds<{ header: { cluster_id: string }; members: MemberJson[] }>(r.stdout);
  s.labels.set(hex(j.header.cluster_id), '<cluster>');
  for (const m of j.members) {
    const label = m.name || 'learner';
    s.labels.set(hex(m.ID), `<${label}>`);
    s.ids.set(label, hex(m.ID));
    for (const u of m.clientURLs ?? []) s.labels.set(new URL(u).port, `${label}-client`);
    for (const u of m.peerURLs ?? []) if (u !== 'http://127.0.0.1:1' && u !== 'http://127.0.0.1:2') s.labels.set(new URL(u).port, `${label}-peer`);
  }
}

function normalize(s: Side, text: string): string {
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":T')
    .replace(/client-[0-9a-f-]{36}/g, 'client-UUID')
    .replace(/took = [\d.]+[µmn]?s/g, 'took = T')
    // "%16x" pads short ids with spaces; the label replaces the id, so drop the padding too
    .replace(/\b(Member|cluster) +([0-9a-f]{1,16})\b/g, (_all, word: string, h: string) => `${word} ${s.labels.get(h) ?? '<id>'}`)
    .replace(/127\.0\.0\.1:(\d+)/g, (all, port: string) => (s.labels.has(port) ? `127.0.0.1:${s.labels.get(port)}` : all))
    .replace(/\b\d{15,20}\b/g, (dec) => s.labels.get(hex(dec)) ?? '<id>')
    .replace(/\b[0-9a-f]{12,16}\b/g, (h) => s.labels.get(h) ?? (/[a-f]/.test(h) ? '<id>' : h));
}

const collapse = (line: string): string => line.replace(/-+/g, '-').replace(/ +/g, ' ');

/** A label for whichever member a role points at, so both clusters are addressed the same way. */
type Target = 'all' | 'leader' | 'follower' | number;

describe('etcdctl compatibility: three-member clusters', { skip: !hasEtcd() && 'etcd/etcdctl not installed' }, () => {
  let etcd: Side;
  let ours: Side;
  const sides = (): Side[] => [etcd, ours];

  before(async () => {
    const args = ['--heartbeat-interval', '50', '--election-timeout', '500'];
    const [a, b] = await Promise.all([startCluster('etcd', 3, args), startCluster('etcdesk', 3, ['--log-level', 'warn', ...args])]);
    etcd = { name: 'etcd', c: a, labels: new Map(), ids: new Map() };
    ours = { name: 'etcdesk', c: b, labels: new Map(), ids: new Map() };
    for (const s of sides()) {
      await leaderOf(s);
      await learnLabels(s);
    }
  });
  after(async () => {
    await Promise.all([etcd?.c.stop(), ours?.c.stop()]);
  });

  async function leaderOf(s: Side): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const l = await findLeader(s.c);
      if (l >= 0) return l;
      if (Date.now() - t0 > 15_000) throw new Error(`${s.name}: no leader`);
      await sleep(100);
    }
  }

  async function endpointOf(s: Side, t: Target): Promise<string> {
    if (t === 'all') return s.c.endpoints;
    if (typeof t === 'number') return s.c.members[t].endpoint;
    const l = await leaderOf(s);
    return s.c.members[t === 'leader' ? l : (l + 1) % s.c.members.length].endpoint;
  }

  interface Opts {
    at?: Target;
    /** Order-insensitive output (rows sorted by member id). */
    sortLines?: boolean;
    /** Per-side arguments, for ids. */
    argsFor?: (s: Side) => string[];
  }

  const norm = (s: Side, r: CtlResult, sortLines: boolean): { code: number; stdout: string; stderr: string } => {
    let stdout = normalize(s, r.stdout);
    // Labels are shorter than ids and ports: tables pad differently, and rows follow the ids.
    if (sortLines) stdout = stdout.split('\n').map(collapse).sort().join('\n');
    // Which endpoint etcdctl's retry log names depends on who leads: not part of the contract.
    return { code: r.code, stdout, stderr: normalize(s, r.stderr).replace(/127\.0\.0\.1:m\d-client/g, '127.0.0.1:mX-client') };
  };

  async function removeExtraMembers(s: Side): Promise<void> {
    const r = await run(s, ['member', 'list', '-w', 'json']);
    const j = parseJsonIds<{ members: MemberJson[] }>(r.stdout);
    for (const m of j.members) if (!/^m\d$/.test(m.name ?? '')) await run(s, ['member', 'remove', hex(m.ID)]);
  }

  async function run(s: Side, args: string[], at: Target = 'all'): Promise<CtlResult> {
    return etcdctl(await endpointOf(s, at), args, { timeoutMs: 20_000 });
  }

  async function same(args: string[], opts: Opts = {}): Promise<CtlResult> {
    const [a, b] = await Promise.all(sides().map(async (s) => run(s, opts.argsFor ? opts.argsFor(s) : args, opts.at)));
    assert.deepEqual(norm(ours, b, !!opts.sortLines), norm(etcd, a, !!opts.sortLines), `etcdctl ${args.join(' ')}\n--- etcd:\n${a.stdout}${a.stderr}\n--- etcdesk:\n${b.stdout}${b.stderr}`);
    return b;
  }

  it('member list: simple and table forms, and the members in json', async () => {
    await same(['member', 'list'], { sortLines: true });
    await same(['member', 'list', '-w', 'table'], { sortLines: true });
    const lists = await Promise.all(
      sides().map(async (s) => {
        const r = await run(s, ['member', 'list', '-w', 'json']);
        assert.equal(r.code, 0, r.stderr);
        const j = parseJsonIds<{ header: Record<string, string | number>; members: MemberJson[] }>(r.stdout);
        return {
          headerFields: Object.keys(j.header).filter((k) => k !== 'revision').sort(),
          members: JSON.parse(normalize(s, JSON.stringify(j.members.sort((x, y) => String(x.name).localeCompare(String(y.name)))))) as unknown,
        };
      }),
    );
    assert.deepEqual(lists[1], lists[0]);
  });

  it('member list -w json prints the same header as etcd', async () => {
    // member order follows the ids, which differ between clusters: compare the header alone
    const [a, b] = await Promise.all(sides().map((s) => run(s, ['member', 'list', '-w', 'json'])));
    // (member_id: whichever member etcdctl's balancer picked)
    const header = (s: Side, r: CtlResult): string => normalize(s, r.stdout.replace(/,"members":.*$/s, '')).replace(/"member_id":<m\d>/, '"member_id":<m>');
    assert.equal(header(ours, b), header(etcd, a));
  });

  it('endpoint status (table and json) and endpoint health --cluster', async () => {
    const rows = await Promise.all(
      sides().map(async (s) => {
        const r = await run(s, ['endpoint', 'status', '-w', 'json']);
        assert.equal(r.code, 0, `${s.name}: ${r.stderr}`);
        const st = parseJsonIds<{ Endpoint: string; Status: { header: { member_id: string }; version: string; leader: string; isLearner?: boolean; raftIndex: number; raftTerm: number; raftAppliedIndex: number; dbSize: number } }[]>(r.stdout);
        assert.equal(st.length, 3);
        for (const e of st) {
          assert.ok(e.Status.raftIndex > 0 && e.Status.raftTerm > 0 && e.Status.dbSize > 0, `${s.name}: ${JSON.stringify(e)}`);
          assert.ok(e.Status.raftAppliedIndex <= e.Status.raftIndex + 0, `${s.name}: applied beyond index ${JSON.stringify(e)}`);
        }
        return {
          keys: Object.keys(st[0].Status).filter((k) => !['dbSizeInUse'].includes(k)).sort(),
          versions: st.map((e) => e.Status.version),
          leaders: st.filter((e) => e.Status.leader === e.Status.header.member_id).length,
          sameLeader: new Set(st.map((e) => e.Status.leader)).size,
          learners: st.map((e) => !!e.Status.isLearner),
          endpoints: st.map((e) => normalize(s, e.Endpoint)),
        };
      }),
    );
    assert.deepEqual(rows[1], rows[0]);
    assert.equal(rows[0].leaders, 1);
    // The table, with the columns that differ by nature (size, id, term, index) blanked.
    const blank = (out: string): string =>
      out
        .split('\n')
        .map((l) => {
          const cells = l.split('|');
          if (cells.length < 11 || /ENDPOINT/.test(l)) return collapse(l);
          // | endpoint | id | version | db size | leader | learner | term | index | applied | errors |
          // (who leads differs by cluster; the json above counts the leaders)
          for (const i of [4, 5, 7, 8, 9]) cells[i] = 'X';
          return cells.join('|').replace(/ +/g, ' ');
        })
        .sort()
        .join('\n');
    const tables = await Promise.all(sides().map(async (s) => run(s, ['endpoint', 'status', '-w', 'table'])));
    assert.equal(blank(normalize(ours, tables[1].stdout)), blank(normalize(etcd, tables[0].stdout)), `${tables[0].stdout}\n${tables[1].stdout}`);
    // health prints one line per endpoint, to stderr, in completion order: compare them sorted
    const hs = await Promise.all(sides().map(async (s) => ({ s, r: await run(s, ['endpoint', 'health', '--cluster']) })));
    const health = hs.map(({ s, r }) => ({ code: r.code, stdout: r.stdout, stderr: normalize(s, r.stderr).replace(/took = T/g, 'took').split('\n').filter(Boolean).sort() }));
    assert.deepEqual(health[1], health[0]);
    assert.equal(health[0].stderr.length, 3, hs[0].r.stderr);
  });

  it('endpoint status --cluster, hashkv and defrag on the members\' http:// client URLs', async () => {
    const rows = await Promise.all(sides().map(async (s) => ({ s, r: await run(s, ['endpoint', 'status', '--cluster', '-w', 'json']) })));
    for (const { s, r } of rows) assert.equal(r.code, 0, `${s.name}: ${r.stderr}`);
    for (const s of sides()) {
      const url = s.c.members[0].clientUrl;
      for (const args of [['endpoint', 'hashkv'], ['defrag'], ['endpoint', 'status']]) {
        const r = await etcdctl(url, args, { timeoutMs: 20_000 });
        assert.equal(r.code, 0, `${s.name}: etcdctl --endpoints=${url} ${args.join(' ')}: ${r.stderr}`);
      }
    }
  });

  it('member add --learner, promote (refused), update, remove, and bad input', { timeout: 60_000 }, async () => {
    // etcd refuses membership changes until its peers have been connected for 5 s (strict reconfig check).
    const added = await Promise.all(
      sides().map(async (s) => {
        for (let i = 0; ; i++) {
          const r = await run(s, ['member', 'add', 'learner', '--learner', '--peer-urls', 'http://127.0.0.1:1']);
          if (r.code === 0 || i > 40 || !/unhealthy cluster/.test(r.stderr)) return r;
          await sleep(250);
        }
      }),
    );
    for (const s of sides()) await learnLabels(s);
    const normAdd = (s: Side, r: CtlResult): string =>
      normalize(s, r.stdout).replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/, (_all, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
    assert.equal(added[0].code, 0, added[0].stderr);
    assert.equal(added[1].code, 0, added[1].stderr);
    assert.equal(normAdd(ours, added[1]), normAdd(etcd, added[0]));
    assert.match(normAdd(ours, added[1]), /^Member <learner> added to cluster <cluster>\n/);

    await same(['member', 'list'], { sortLines: true });
    await same(['member', 'list', '-w', 'table'], { sortLines: true });
    const learnerId = (s: Side): string => s.ids.get('learner')!;
    // a second learner: etcd allows one
    await same(['member', 'add', 'learner2', '--learner', '--peer-urls', 'http://127.0.0.1:3']);
    // a peer URL a member already has (not the learner's own URL: re-adding that within the same
    // second collides on the member id first, which depends on the clock)
    await same([], { argsFor: (s) => ['member', 'add', 'dup', `--peer-urls=${s.c.members[1].peerUrl}`] });
    // a learner that never started has no log: not in sync, on the leader and through a follower alike
    await same([], { argsFor: (s) => ['member', 'promote', learnerId(s)], at: 'leader' });
    await same([], { argsFor: (s) => ['member', 'promote', learnerId(s)], at: 'follower' });
    // promoting a voting member, or nobody
    await same([], { argsFor: (s) => ['member', 'promote', s.ids.get('m1')!] });
    await same(['member', 'promote', '1234']);
    // a learner cannot lead
    await same([], { argsFor: (s) => ['move-leader', learnerId(s)] });
    // update: a new URL, a URL another member has, an unknown member
    await same([], { argsFor: (s) => ['member', 'update', learnerId(s), '--peer-urls', 'http://127.0.0.1:2'] });
    // etcd 3.4 builds the updated member without its learner flag, so the learner is listed as a
    // voter afterwards (an etcd bug, fixed in 3.5; raft still counts it as a learner). etcdesk keeps
    // the flag: compare the list without that one cell, and hold etcdesk to the right answer.
    const lists = await Promise.all(sides().map(async (s) => ({ s, r: await run(s, ['member', 'list']) })));
    const [el, ol] = lists.map(({ s, r }) => normalize(s, r.stdout).split('\n').sort());
    assert.deepEqual(ol.map((l) => l.replace(/^(<learner>.*), (true|false)$/, '$1, ?')), el.map((l) => l.replace(/^(<learner>.*), (true|false)$/, '$1, ?')));
    assert.ok(ol.includes('<learner>, unstarted, , http://127.0.0.1:2, , true'), ol.join('\n'));
    // an update to the URL a voting member already has
    await same([], { argsFor: (s) => ['member', 'update', s.ids.get('m2')!, `--peer-urls=${s.c.members[1].peerUrl}`] });
    await same([], { argsFor: (s) => ['member', 'update', learnerId(s), `--peer-urls=${s.c.members[0].peerUrl}`] });
    await same(['member', 'update', '1234', '--peer-urls', 'http://127.0.0.1:4']);
    // bad URLs are refused by etcdctl itself, or by the server
    await same(['member', 'add', 'bad', '--peer-urls', 'foo://x']);
    await same(['member', 'add', 'bad', '--peer-urls', '127.0.0.1:5']);
    await same(['member', 'add', 'bad', '--peer-urls', 'http://127.0.0.1:6/path']);
    await same([], { argsFor: (s) => ['member', 'update', learnerId(s), '--peer-urls', 'http://127.0.0.1:7?q=1'] });
    // remove: the learner, then again, then someone unknown
    await same([], { argsFor: (s) => ['member', 'remove', learnerId(s)] });
    await same([], { argsFor: (s) => ['member', 'remove', learnerId(s)] });
    await same(['member', 'remove', '1234']);
    await same(['member', 'remove', 'zz']);
    await same(['member', 'list'], { sortLines: true });
  });

  it('move-leader: to a follower, from a follower endpoint, to an unknown id, to the leader itself', { timeout: 60_000 }, async () => {
    const moved = await Promise.all(
      sides().map(async (s) => {
        const l = await leaderOf(s);
        const to = (l + 1) % 3;
        const r = await run(s, ['move-leader', s.ids.get(`m${to + 1}`)!]);
        return { s, r, from: `<m${l + 1}>`, to: `<m${to + 1}>`, toIndex: to };
      }),
    );
    for (const { s, r, from, to, toIndex } of moved) {
      assert.equal(r.code, 0, `${s.name}: ${r.stderr}`);
      // which member leads differs between clusters: compare the sentence with the names it must contain
      assert.equal(normalize(s, r.stdout), `Leadership transferred from ${from} to ${to}\n`, s.name);
      assert.equal(await leaderOf(s), toIndex, `${s.name}: leader after move-leader`);
    }
    // etcdctl looks for the leader among the given endpoints only
    // (which member is the follower differs by cluster: its label is left out)
    const rs = await Promise.all(sides().map(async (s) => ({ s, r: await run(s, ['move-leader', s.ids.get('m1')!], 'follower') })));
    const text = rs.map(({ s, r }) => ({ code: r.code, stdout: normalize(s, r.stdout), stderr: normalize(s, r.stderr).replace(/m\d-client/g, 'mX-client') }));
    assert.deepEqual(text[1], text[0]);
    assert.notEqual(text[0].code, 0, 'etcd refuses a move-leader sent to a follower');
    await same(['move-leader', '1234']);
    await same(['move-leader', 'zz']);
    const self = await Promise.all(sides().map(async (s) => ({ s, r: await run(s, ['move-leader', s.ids.get(`m${(await leaderOf(s)) + 1}`)!]) })));
    const selfText = self.map(({ s, r }) => ({ code: r.code, stdout: normalize(s, r.stdout).replace(/<m\d>/g, '<m>'), stderr: normalize(s, r.stderr) }));
    assert.deepEqual(selfText[1], selfText[0]);
  });

  it('strict reconfig: member add while a peer is down is refused as unhealthy, as etcd does', { timeout: 60_000 }, async () => {
    const results = await Promise.all(
      sides().map(async (s) => {
        // a learner left behind by a failed test above would turn this into "too many learners"
        await removeExtraMembers(s);
        const l = await leaderOf(s);
        const f = (l + 1) % 3;
        await s.c.members[f].kill();
        try {
          const r = await run(s, ['member', 'add', 'late', '--learner', '--peer-urls', 'http://127.0.0.1:9'], 'leader');
          const id = /^Member\s+([0-9a-f]+) added/.exec(r.stdout)?.[1];
          if (id) await run(s, ['member', 'remove', id]);
          return { s, r };
        } finally {
          await s.c.restart(f);
        }
      }),
    );
    const [a, b] = results.map(({ s, r }) => ({ code: r.code, stdout: normalize(s, r.stdout), stderr: normalize(s, r.stderr).replace(/127\.0\.0\.1:m\d-client/g, '127.0.0.1:mX-client') }));
    assert.match(a.stderr, /unhealthy cluster/, 'etcd refuses the add');
    assert.deepEqual(b, a);
  });
});
