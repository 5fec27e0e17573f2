// Backup export/restore, the local cluster's member control and HashKV at one
// revision, through the handlers on node-core (the app's default engine).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { utf8ToB64, type Channel, type EventChannel, type EventMap, type ProgressEvent, type Req, type Res } from '../contract/index';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, SnapshotDigest, type HandlerContext, type Handlers } from './handlers';
import { pickEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { SessionSecrets } from './secrets';

describe('SnapshotDigest', () => {
  it('hashes all but the last 32 bytes whatever the chunking, and checks the appended sha256', () => {
    const db = Buffer.from('x'.repeat(1000));
    const file = Buffer.concat([db, createHash('sha256').update(db).digest()]);
    for (const size of [1, 7, 31, 32, 33, 500, 5000]) {
      const d = new SnapshotDigest();
      for (let i = 0; i < file.length; i += size) d.update(file.subarray(i, i + size));
      assert.deepEqual(d.finish(), { sha256: createHash('sha256').update(db).digest('hex'), verified: true }, `chunk ${size}`);
      assert.equal(d.bytes, file.length);
    }
    const bad = new SnapshotDigest();
    bad.update(Buffer.concat([db, Buffer.alloc(32)]));
    assert.equal(bad.finish().verified, false);
  });
});

describe('backup and local cluster handlers on node-core', { timeout: 90_000 }, () => {
  let dir: string;
  let manager: ConnectionManager;
  let h: Handlers;
  const progress: ProgressEvent[] = [];
  const ctx: HandlerContext = { clientId: 't', emit: (e, p) => e === 'progress' && progress.push(p as ProgressEvent) };
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(h, c, req, ctx);
    if (!env.ok) throw new Error(env.error.message);
    return env.value as Res<C>;
  };

  before(async () => {
    process.env.ETCDESK_ENGINE = 'node-core';
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-backup-'));
    const engine = pickEngine();
    const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), !!engine?.startCluster);
    manager = new ConnectionManager({ dataDir: dir, engine, profiles, onStatus: () => undefined, clusterBasePort: 0 });
    h = createHandlers({
      manager,
      profiles,
      info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: true, embeddedEngine: 'node-core' } },
      broadcast: <E extends EventChannel>(_e: E, _p: EventMap[E]) => undefined,
      chooseSnapshotPath: async () => path.join(dir, 'snapshots', 'chosen.db'),
      backupsDir: path.join(dir, 'snapshots'),
    });
    const s = await call('conn:connect', { id: 'embedded' });
    assert.equal(s.state, 'connected', s.error?.message);
  });
  after(async () => {
    await manager?.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exports with progress, a verified sha256, and restores into a new node that has the keys', async () => {
    for (let i = 0; i < 10; i++) await call('kv:put', { key: utf8ToB64(`/b/${i}`), value: utf8ToB64(`v${i}`) });
    const r = await call('maint:snapshot', { opId: 'x' });
    assert.equal(r.path, path.join(dir, 'snapshots', 'chosen.db'));
    const data = fs.readFileSync(r.path!);
    assert.equal(r.bytes, data.length);
    assert.equal(r.verified, true);
    assert.equal(r.sha256, data.subarray(-32).toString('hex'));
    assert.ok(progress.some((p) => p.opId === 'x' && p.finished));
    assert.ok(!fs.existsSync(`${r.path}.part`));
    const list = await call('backup:list', {});
    assert.deepEqual(list.files.map((f) => f.path), [r.path]);
    // The renderer names a file from the list, never a path: a path is refused before any handler runs.
    const byPath = await dispatch(h, 'backup:restore', { opId: 'y', path: r.path }, ctx);
    assert.deepEqual(byPath, { ok: false, error: { code: -2, message: 'invalid request: backup:restore.path takes an opId and at most a file name from backup:list: main chooses the file' } });
    assert.match((await dispatch(h, 'backup:restore', { opId: 'y', name: '../../etc/passwd' }, ctx)).ok ? '' : 'refused', /refused/);

    const embedded = manager.status().endpoints[0];
    const restored = await call('backup:restore', { opId: 'y', name: list.files[0].name });
    assert.equal(restored.status.state, 'connected');
    assert.equal(restored.status.kind, 'restored');
    assert.notEqual(restored.status.endpoints[0], embedded);
    const got = await call('kv:get', { key: utf8ToB64('/b/7') });
    assert.equal(Buffer.from(got.kv!.value, 'base64').toString(), 'v7');
    assert.ok((await call('conn:list', {})).some((p) => p.id === restored.profileId));
    await assert.rejects(call('cluster:local-stop', { index: 0 }), /local cluster/);

    // A restored connection can be removed: its node stops, its data folder goes, the backup file stays.
    assert.ok(fs.existsSync(restored.dataDir));
    await call('conn:delete', { id: restored.profileId });
    assert.equal(manager.status().state, 'disconnected');
    assert.ok(!fs.existsSync(restored.dataDir));
    assert.ok(fs.existsSync(r.path!));
    assert.ok(!(await call('conn:list', {})).some((p) => p.id === restored.profileId));
  });

  it('local cluster: stop the leader, a new one is elected; restart; HashKV agrees at one revision', async () => {
    const s = await call('conn:connect', { id: 'local-cluster' });
    assert.equal(s.state, 'connected', s.error?.message);
    let info = await call('cluster:info', {});
    assert.equal(info.local?.length, 3);
    const deadline = Date.now() + 15_000;
    while (!info.members.some((m) => m.isLeader) && Date.now() < deadline) info = await call('cluster:info', {});
    const leader = info.members.find((m) => m.isLeader)!;
    const idx = info.local!.find((l) => l.clientUrl === leader.clientUrls[0])!.index;
    info = await call('cluster:local-stop', { index: idx });
    assert.equal(info.local![idx].running, false);
    let next = info.members.find((m) => m.isLeader && m.id !== leader.id);
    while (!next && Date.now() < deadline + 10_000) next = (await call('cluster:info', {})).members.find((m) => m.isLeader && m.id !== leader.id);
    assert.ok(next, 'a new leader');
    info = await call('cluster:local-restart', { index: idx });
    assert.equal(info.local![idx].running, true);
    await call('kv:put', { key: utf8ToB64('/after'), value: utf8ToB64('1') });
    let check = await call('maint:hashkv', {});
    for (let i = 0; i < 50 && new Set(check.hashes.map((x) => x.hash)).size !== 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      check = await call('maint:hashkv', {});
    }
    assert.equal(check.hashes.length, 3);
    assert.equal(new Set(check.hashes.map((x) => x.hash)).size, 1, JSON.stringify(check));
    assert.ok(check.revision > 0);

    // A learner that never starts: added (etcd's strict reconfig may refuse while a peer was just restarted), listed, removed.
    let added: Res<'cluster:member-add'> | null = null;
    for (let i = 0; i < 40 && !added; i++) {
      try {
        added = await call('cluster:member-add', { peerUrls: ['http://127.0.0.1:1'], learner: true });
      } catch (e) {
        if (!/unhealthy/.test((e as Error).message)) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const learner = added!.members.find((m) => m.peerUrls.includes('http://127.0.0.1:1'));
    assert.equal(learner?.isLearner, true);
    await assert.rejects(call('cluster:member-promote', { id: learner!.id }), /learner/);
    const left = await call('cluster:member-remove', { id: learner!.id });
    assert.equal(left.members.length, 3);
  });
});
