// Disaster recovery into the local three-member cluster: a backup of the
// embedded node is restored into every member (etcd's procedure), the cluster
// forms on it, holds exactly the backup's keys (the local cluster's own keys
// are replaced), and all three members agree (HashKV at one revision).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EtcdClient } from '../../node-core/index';
import { ConnectionManager } from './connection-manager';
import { nodeCoreEngine } from './node-host';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';
import { writeSnapshot } from './snapshot-file';

describe('a backup restored into the local three-member cluster', { timeout: 120_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-restore3-'));
  const profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'secrets.json')), true);
  const manager = new ConnectionManager({ dataDir: dir, engine: nodeCoreEngine(), profiles, clusterBasePort: 0, onStatus: () => undefined });
  after(async () => {
    await manager.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replaces the local cluster\'s keys with the backup\'s on all three members', async () => {
    // The local cluster has keys of its own, which the restore replaces.
    assert.equal((await manager.connect('local-cluster')).state, 'connected');
    await manager.requireClient().put({ key: Buffer.from('/local/only'), value: Buffer.from('x') });

    assert.equal((await manager.connect('embedded')).state, 'connected');
    const c = manager.requireClient();
    for (let i = 0; i < 30; i++) await c.put({ key: Buffer.from(`/dr/k${i}`), value: Buffer.from(`v${i}`) });
    const file = path.join(dir, 'backup.db');
    await writeSnapshot(c, file);
    const sourceRev = (await c.status()).header!.revision;

    const r = await manager.restoreIntoLocalCluster(file);
    assert.equal(r.status.state, 'connected', r.status.error?.message);
    assert.equal(r.status.kind, 'local-cluster');
    assert.equal(r.revision, sourceRev);
    const lc = manager.requireClient();
    const members = (await lc.memberList()).members;
    assert.equal(members.length, 3);
    const all = await lc.range({ key: Buffer.from([0]), range_end: Buffer.from([0]) });
    assert.deepEqual(all.kvs.map((kv) => Buffer.from(kv.key).toString()).sort(), Array.from({ length: 30 }, (_, i) => `/dr/k${i}`).sort());
    // Every member holds the same data: HashKV at the backup's revision, asked of each member directly.
    const hashes = await Promise.all(
      members.map(async (m) => {
        const mc = new EtcdClient({ endpoints: m.clientURLs, timeoutMs: 15_000 });
        try {
          return (await mc.hashKV(r.revision)).hash;
        } finally {
          mc.close();
        }
      }),
    );
    assert.equal(new Set(hashes).size, 1, `members disagree: ${hashes.join(', ')}`);
    // A write reaches quorum on the restored cluster.
    await lc.put({ key: Buffer.from('/dr/after'), value: Buffer.from('ok') });
  });
});
