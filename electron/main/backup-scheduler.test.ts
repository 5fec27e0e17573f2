// Scheduled, verified backups. A remote etcd 3.4 is backed up on its schedule
// while the app is connected elsewhere; every run is verified (appended sha256,
// a restore into a scratch node, HashKV at the snapshot's revision equal to the
// cluster's) and recorded; retention keeps the newest N files; a backup whose
// restored copy differs from the cluster is reported failed, not verified.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../node-core/index';
import { startEtcd, type ServerProc } from '../../node-core/testing/processes';
import { BackupScheduler } from './backup-scheduler';
import { writeSnapshot } from './snapshot-file';
import { ConnectionManager } from './connection-manager';
import { nodeCoreEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';

describe('scheduled backups, each verified by a restore', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-sched-'));
  let etcd: ServerProc;
  let client: EtcdClient;
  let manager: ConnectionManager;
  let profiles: ProfileStore;
  let clock = Date.parse('2026-12-03T10:00:00Z');
  let sched: BackupScheduler;
  let remoteId = '';

  before(async () => {
    etcd = await startEtcd({ dataDir: path.join(dir, 'etcd') });
    client = new EtcdClient({ endpoints: [etcd.clientUrl] });
    for (let i = 0; i < 50; i++) await client.put({ key: Buffer.from(`/b/k${i}`), value: Buffer.from(`v${i}`) });
    profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'secrets.json')), false);
    manager = new ConnectionManager({ dataDir: dir, engine: nodeCoreEngine(), profiles, onStatus: () => undefined });
    remoteId = profiles.save({ id: '', name: 'prod etcd', kind: 'remote', endpoints: [etcd.clientUrl] }).id;
    sched = new BackupScheduler({ dataDir: dir, backupsDir: path.join(dir, 'backups'), manager, profiles, now: () => clock });
  });
  after(async () => {
    client?.close();
    await manager?.shutdown();
    await etcd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a due schedule backs up a remote etcd (not the active connection) and verifies it three ways', async () => {
    sched.setSchedule({ profileId: remoteId, everyMinutes: 60, keep: 2, enabled: true });
    const [run] = await sched.runDue();
    assert.equal(run.status, 'verified', run.error);
    assert.deepEqual(run.checks, { sha256: true, restored: true, hashKV: true });
    assert.equal(run.trigger, 'schedule');
    const st = await client.status();
    assert.equal(run.revision, st.header!.revision, 'the snapshot holds the cluster at its revision');
    assert.equal(run.hashKV, (await client.hashKV(run.revision)).hash);
    assert.ok(fs.existsSync(run.file!));
    assert.deepEqual(await sched.runDue(), [], 'not due again within the hour');
    assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('scratch-')).length, 0, 'the scratch node and its folder are gone');
  });

  it('retention keeps the newest verified files; the history survives a restart of the app', async () => {
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock += 61 * 60_000;
      await client.put({ key: Buffer.from('/b/tick'), value: Buffer.from(String(i)) });
      const [run] = await sched.runDue();
      assert.equal(run.status, 'verified', run.error);
      files.push(run.file!);
    }
    const kept = sched.history(remoteId).filter((r) => r.status === 'verified' && !r.removed);
    assert.deepEqual(kept.map((r) => r.file), [files[2], files[1]]);
    assert.ok(!fs.existsSync(sched.history(remoteId).find((r) => r.removed)!.file!));
    const again = new BackupScheduler({ dataDir: dir, backupsDir: path.join(dir, 'backups'), manager, profiles, now: () => clock });
    assert.equal(again.history(remoteId).length, 4);
    assert.equal(again.list()[0].lastRunAt, clock);
  });

  it('a backup whose restored copy does not match the cluster is failed, not verified', async () => {
    // An impostor: another cluster's snapshot at the very same revision (a mixed-up or stale file
    // restores fine and passes its sha256; only the HashKV comparison can tell).
    const rev = (await client.status()).header!.revision;
    const other = await startEtcd({ dataDir: path.join(dir, 'other') });
    const oc = new EtcdClient({ endpoints: [other.clientUrl] });
    for (let i = 1; i < rev; i++) await oc.put({ key: Buffer.from(`/other/${i}`), value: Buffer.from('y') });
    const impostor = path.join(dir, 'impostor.db');
    await writeSnapshot(oc, impostor);
    oc.close();
    await other.stop();
    const realRestore = manager.scratchRestore.bind(manager);
    manager.scratchRestore = () => realRestore(impostor);
    try {
      const run = await sched.runNow(remoteId);
      assert.equal(run.status, 'failed');
      assert.equal(run.checks.hashKV, false);
      assert.match(run.error!, /HashKV at revision \d+ is \d+, the cluster's is \d+/);
    } finally {
      manager.scratchRestore = realRestore;
    }
  });

  it('a connection that cannot be reached from here is skipped, saying why', async () => {
    const ssh = profiles.save({ id: '', name: 'behind bastion', kind: 'remote', endpoints: ['http://10.9.9.9:2379'], ssh: { host: 'bastion', username: 'ops' } });
    const run = await sched.runNow(ssh.id);
    assert.equal(run.status, 'skipped');
    assert.match(run.error!, /not the active connection \(its SSH tunnel opens only while connected\)/);
  });
});
