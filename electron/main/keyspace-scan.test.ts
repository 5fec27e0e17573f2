// The keyspace scanner (search beyond prefixes, the analyzer) against the
// embedded node (node-core's startNode through the app's own engine): pages
// continue at the last key, a scan is pinned to its revision, cancel stops it
// between pages, globs match as documented, and Kubernetes values decode.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EtcdClient, EtcdPb } from '../../node-core/index';
import { utf8ToB64, type Channel, type EventChannel, type EventMap, type Req, type Res, type ScanProgressEvent } from '../contract/index';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { decodeValue, decodeEnvelope, peekKind } from './k8s-value';
import { k8sPod } from './testing/kubernetes-pod';
import { findCompactRevision, globLiteralPrefix, globToRegExp, pages, pinRange, prefixRange, searchPrefix, type ScanClient } from './keyspace-scan';
import { nodeCoreEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { SessionSecrets } from './secrets';

const b = (s: string): Buffer => Buffer.from(s);

describe('glob and search ranges', () => {
  it('globs match whole keys: * spans segments, ? one character, classes, escapes', () => {
    const m = (g: string, k: string, cs = true): boolean => globToRegExp(g, cs).test(k);
    assert.equal(m('/app/*', '/app/a/b/c'), true);
    assert.equal(m('/app/*', '/apps/a'), false);
    assert.equal(m('*/config', '/svc/a/config'), true);
    assert.equal(m('*/config', '/svc/a/config.bak'), false);
    assert.equal(m('/k?', '/k1'), true);
    assert.equal(m('/k?', '/k12'), false);
    assert.equal(m('/k[0-4]', '/k3'), true);
    assert.equal(m('/k[0-4]', '/k7'), false);
    assert.equal(m('/k[!0-4]', '/k7'), true);
    assert.equal(m('/a\\*b', '/a*b'), true);
    assert.equal(m('/a\\*b', '/axb'), false);
    assert.equal(m('/a.b', '/axb'), false, 'regex characters are literal');
    assert.equal(m('/web-1/(x)|{y}+^$', '/web-1/(x)|{y}+^$'), true);
    assert.equal(m('/pod-?', '/pod-7'), true);
    assert.equal(m('/APP/*', '/app/x', false), true);
    assert.equal(m('/APP/*', '/app/x', true), false);
  });

  it('a glob\'s literal head narrows the range, and one outside the prefix matches nothing', () => {
    assert.equal(globLiteralPrefix('/registry/pods/*/web-?'), '/registry/pods/');
    assert.equal(globLiteralPrefix('/a\\*b*'), '/a*b');
    assert.equal(searchPrefix({ mode: 'glob', pattern: '/registry/pods/*', prefix: '/registry/' }), '/registry/pods/');
    assert.equal(searchPrefix({ mode: 'glob', pattern: '*', prefix: '/registry/' }), '/registry/');
    assert.equal(searchPrefix({ mode: 'glob', pattern: '/other/*', prefix: '/registry/' }), null);
    assert.equal(searchPrefix({ mode: 'glob', pattern: '/Other/*', prefix: '/registry/', caseSensitive: false }), '/registry/');
    assert.equal(searchPrefix({ mode: 'contains', pattern: '/other/', prefix: '/registry/' }), '/registry/');
  });
});

describe('paging against a fake server', () => {
  it('a page too large for a message (ResourceExhausted) is asked again in halves; nothing is skipped', async () => {
    const all = Array.from({ length: 40 }, (_, i) => `/k${String(i).padStart(2, '0')}`);
    const limits: number[] = [];
    const fake: ScanClient = {
      async range(req) {
        limits.push(Number(req.limit));
        if (Number(req.limit) > 6) throw Object.assign(new Error('grpc: received message larger than max'), { code: 8 });
        const from = Buffer.from(req.key!).toString();
        const rest = all.filter((k) => k >= from);
        const kvs = rest.slice(0, Number(req.limit)).map((k) => ({ key: Buffer.from(k), value: Buffer.alloc(0), create_revision: 1, mod_revision: 1, version: 1, lease: 0n }));
        return { header: { cluster_id: 0n, member_id: 0n, revision: 5, raft_term: 1 }, kvs, more: rest.length > kvs.length, count: rest.length };
      },
    };
    const seen: string[] = [];
    for await (const page of pages(fake, { key: Buffer.from('/'), end: Buffer.from('0'), revision: 5, total: 40 }, { keysOnly: true, pageSize: 50 })) for (const kv of page) seen.push(Buffer.from(kv.key).toString());
    assert.deepEqual(seen, all);
    assert.deepEqual(limits.slice(0, 5), [50, 25, 12, 6, 6]);
  });
});

describe('Kubernetes values', () => {
  it('decodes the k8s\\0 envelope: apiVersion, kind, and the object\'s fields (metadata named)', () => {
    const v = k8sPod('web-1', 'prod', { app: 'web', tier: 'front' });
    const env = decodeEnvelope(v);
    assert.deepEqual({ apiVersion: env?.apiVersion, kind: env?.kind }, { apiVersion: 'v1', kind: 'Pod' });
    const d = decodeValue('/registry/pods/prod/web-1', v, 7);
    assert.equal(d.format, 'kubernetes-protobuf');
    const obj = JSON.parse(d.json) as { apiVersion: string; kind: string; metadata: { name: string; namespace: string; uid: string; labels: Record<string, string>; creationTimestamp: string }; '#2': { '#2': { '#1': string; '#2': string }; '#4': number }; '#3': { '#2': string } };
    assert.equal(obj.apiVersion, 'v1');
    assert.equal(obj.kind, 'Pod');
    assert.deepEqual(obj.metadata.labels, { app: 'web', tier: 'front' });
    assert.equal(obj.metadata.name, 'web-1');
    assert.equal(obj.metadata.namespace, 'prod');
    assert.equal(obj.metadata.creationTimestamp, '2023-11-14T22:13:20Z');
    assert.deepEqual(obj['#2'], { '#2': { '#1': 'app', '#2': 'nginx:1.25' }, '#4': 30 }, 'spec: nested messages by field number');
    assert.deepEqual(obj['#3'], { '#2': 'Running' });
    assert.deepEqual(Object.keys(obj), ['apiVersion', 'kind', 'metadata', '#2', '#3'], 'read top-down as kubectl shows an object');
    assert.deepEqual(peekKind(v), { apiVersion: 'v1', kind: 'Pod' });
  });

  it('JSON values (CRDs) and plain text are shown as they are; a truncated envelope is not misread', () => {
    const j = decodeValue('/registry/x', b('{"apiVersion":"example.com/v1","kind":"Widget","spec":{"n":1}}'), 1);
    assert.equal(j.format, 'json');
    assert.equal(j.kind, 'Widget');
    assert.equal(decodeValue('/k', b('hello'), 1).format, 'text');
    const cut = k8sPod('a', 'b', {}).subarray(0, 20);
    assert.notEqual(decodeValue('/k', cut, 1).format, 'kubernetes-protobuf');
    assert.equal(decodeValue('/k', null, 1).format, 'missing');
  });
});

describe('scans against the embedded node', { timeout: 90_000 }, () => {
  let dir: string;
  let manager: ConnectionManager;
  let h: Handlers;
  let client: EtcdClient;
  const events: ScanProgressEvent[] = [];
  const ctx: HandlerContext = { clientId: 'scan-test', emit: (event, payload) => event === 'scan:progress' && events.push(payload as ScanProgressEvent) };
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw new Error(env.error.message);
    return env.value as Res<C>;
  };
  /** The scan's last event: waits for it (each scan ends with exactly one done event). */
  const finished = (scanId: string): Promise<ScanProgressEvent> =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`scan ${scanId} never finished`)), 30_000);
      const check = (): void => {
        const e = events.find((x) => x.scanId === scanId && x.done);
        if (e) {
          clearTimeout(deadline);
          resolve(e);
        } else setImmediate(check);
      };
      check();
    });
  const hitsOf = (scanId: string): string[] => events.filter((e) => e.scanId === scanId).flatMap((e) => (e.hits ?? []).map((x) => x.row.keyText));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-scan-'));
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), false);
    manager = new ConnectionManager({ dataDir: dir, engine: nodeCoreEngine(), profiles, onStatus: () => undefined });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'node-core' } },
      broadcast: <E extends EventChannel>(_e: E, _p: EventMap[E]) => undefined,
      chooseSnapshotPath: async () => null,
    });
    const s = await call('conn:connect', { id: 'embedded' });
    assert.equal(s.state, 'connected', s.error?.message);
    client = manager.requireClient();
    const ops: EtcdPb.RequestOpInit[] = [];
    for (let i = 0; i < 250; i++) ops.push({ request_put: { key: b(`/p/k${String(i).padStart(3, '0')}`), value: b(i % 10 === 0 ? `needle-${i} in a haystack` : `hay ${i}`) } });
    for (let i = 0; i < ops.length; i += 100) await client.txn({ success: ops.slice(i, i + 100) });
    await client.put({ key: b('/q/outside'), value: b('needle outside the prefix') });
  });
  after(async () => {
    await manager?.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pages continue just after the last key: every key once, in order, at the pinned revision', async () => {
    const asked: EtcdPb.RangeRequestInit[] = [];
    const counting: ScanClient = { range: (req) => (asked.push(req), client.range(req)) };
    const { key, end } = prefixRange('/p/');
    const pin = await pinRange(counting, key, end);
    assert.equal(pin.total, 250);
    const seen: string[] = [];
    for await (const page of pages(counting, pin, { keysOnly: true, pageSize: 7 })) for (const kv of page) seen.push(Buffer.from(kv.key).toString());
    assert.equal(seen.length, 250);
    assert.deepEqual(seen, [...seen].sort());
    assert.equal(new Set(seen).size, 250);
    const reads = asked.slice(1);
    assert.equal(reads.length, Math.ceil(250 / 7));
    for (const r of reads) {
      assert.equal(r.revision, pin.revision);
      assert.equal(r.keys_only, true);
      assert.equal(r.limit, 7);
    }
    // The second page starts at the first page's last key + \0.
    assert.equal(Buffer.from(reads[1].key!).toString('latin1'), '/p/k006\u0000');
  });

  it('a key written after the scan starts is not seen, and values are those of the pinned revision', async () => {
    const { key, end } = prefixRange('/p/');
    const pin = await pinRange(client, key, end);
    await client.put({ key: b('/p/k000a-late'), value: b('late') });
    await client.put({ key: b('/p/k001'), value: b('changed after the pin') });
    const seen = new Map<string, string>();
    for await (const page of pages(client, pin, { keysOnly: false, pageSize: 50 })) for (const kv of page) seen.set(Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString());
    assert.equal(seen.size, 250);
    assert.equal(seen.has('/p/k000a-late'), false);
    assert.equal(seen.get('/p/k001'), 'hay 1');
    await client.deleteRange({ key: b('/p/k000a-late') });
    await client.put({ key: b('/p/k001'), value: b('hay 1') });
  });

  it('search: contains, glob and value, within the prefix, streamed as scan:progress', async () => {
    const contains = await call('scan:search', { mode: 'contains', pattern: 'k12', prefix: '/p/' });
    assert.equal(contains.total, 250);
    const c = await finished(contains.scanId);
    assert.equal(c.scanned, 250);
    assert.deepEqual(hitsOf(contains.scanId).sort(), ['/p/k120', '/p/k121', '/p/k122', '/p/k123', '/p/k124', '/p/k125', '/p/k126', '/p/k127', '/p/k128', '/p/k129']);

    const glob = await call('scan:search', { mode: 'glob', pattern: '/p/k2?5', prefix: '' });
    assert.equal(glob.total, 50, 'the glob\'s literal head /p/k2 narrowed the whole-keyspace range to /p/k200../p/k249');
    await finished(glob.scanId);
    assert.deepEqual(hitsOf(glob.scanId), ['/p/k205', '/p/k215', '/p/k225', '/p/k235', '/p/k245']);

    const value = await call('scan:search', { mode: 'value', pattern: 'NEEDLE', prefix: '/p/', caseSensitive: false });
    const v = await finished(value.scanId);
    assert.equal(v.matched, 25);
    const hits = events.filter((e) => e.scanId === value.scanId).flatMap((e) => e.hits ?? []);
    assert.equal(hits.length, 25);
    assert.ok(!hits.some((x) => x.row.keyText === '/q/outside'));
    assert.equal(hits.find((x) => x.row.keyText === '/p/k100')?.snippet, 'needle-100 in a haystack');
  });

  it('cancel stops a scan between pages: its last event says cancelled, before every key was read', async () => {
    const s = await call('scan:search', { mode: 'value', pattern: 'needle', prefix: '' });
    await call('scan:cancel', { scanId: s.scanId });
    const last = await finished(s.scanId);
    assert.equal(last.cancelled, true);
    assert.ok(last.scanned < s.total, `scanned ${last.scanned} of ${s.total}`);
    assert.equal(manager.scans.size, 0);
  });

  it('a new search of the same window cancels the one still running', async () => {
    const first = await call('scan:search', { mode: 'value', pattern: 'needle', prefix: '' });
    const second = await call('scan:search', { mode: 'contains', pattern: 'k00', prefix: '/p/' });
    assert.equal((await finished(first.scanId)).cancelled, true);
    assert.equal((await finished(second.scanId)).cancelled, undefined);
  });

  it('the analyzer: counts and bytes per prefix, biggest and most revised keys, leases, Kubernetes kinds', async () => {
    const lease = await client.leaseGrant(600);
    for (let i = 0; i < 6; i++) await client.put({ key: b(`/registry/pods/prod/web-${i}`), value: k8sPod(`web-${i}`, 'prod', { app: 'web' }), lease: i < 4 ? lease.ID : undefined });
    await client.put({ key: b('/registry/widgets/w1'), value: b('{"apiVersion":"example.com/v1","kind":"Widget"}') });
    for (let i = 0; i < 5; i++) await client.put({ key: b('/registry/configmaps/hot'), value: b(`v${i}`) });
    await client.put({ key: b('/registry/big'), value: Buffer.alloc(20_000, 0x61) });
    const s = await call('scan:analyze', { prefix: '/registry/', kubernetes: true });
    const last = await finished(s.scanId);
    const r = last.report!;
    assert.ok(r, last.error?.message);
    assert.equal(r.keys, 9);
    assert.equal(r.tree.count, 9);
    const pods = r.tree.children.find((n) => n.name === 'pods/');
    assert.equal(pods?.count, 6);
    assert.equal(pods?.children[0].path, '/registry/pods/prod/');
    assert.equal(r.tree.ownKeys, 1, '/registry/big sits directly under the prefix');
    assert.equal(r.biggest[0].keyText, '/registry/big');
    assert.equal(r.biggest[0].size, 20_000);
    assert.deepEqual(r.mostRevised.map((k) => [k.keyText, k.version]), [['/registry/configmaps/hot', 5]]);
    assert.deepEqual(r.leases.map((l) => [l.lease, l.keys]), [[lease.ID.toString(), 4]]);
    assert.equal(r.noLease, 5);
    assert.deepEqual(r.kinds?.map((k) => [k.apiVersion, k.kind, k.count]), [['v1', 'Pod', 6], ['example.com/v1', 'Widget', 1]]);
    assert.ok(!('error' in r.storage), 'Status answered');
    if (!('error' in r.storage)) {
      assert.equal(r.storage.revision, s.revision);
      assert.ok(r.storage.dbSize > 0 && r.storage.dbSizeInUse > 0);
      assert.equal(r.storage.historyRevisions, s.revision, 'never compacted: all revisions are history');
    }
    const decoded = await call('scan:decode', { key: utf8ToB64('/registry/pods/prod/web-2') });
    assert.equal(decoded.kind, 'Pod');
    assert.match(decoded.json, /"name": "web-2"/);
    await client.leaseRevoke(lease.ID);
  });

  it('finds the compact revision by bisection, and the analyzer counts history only after it', async () => {
    const before = (await client.range({ key: b('/x'), count_only: true })).header!.revision;
    assert.equal(await findCompactRevision(client, before), 0);
    await client.compact(before - 3);
    const now = (await client.range({ key: b('/x'), count_only: true })).header!.revision;
    assert.equal(await findCompactRevision(client, now), before - 3);
    const s = await call('scan:analyze', { prefix: '' });
    const r = (await finished(s.scanId)).report!;
    assert.ok(r && !('error' in r.storage));
    if (!('error' in r.storage)) {
      assert.equal(r.storage.compactRevision, before - 3);
      assert.equal(r.storage.historyRevisions, s.revision - (before - 3));
    }
  });
});
