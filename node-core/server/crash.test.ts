// kill -9 during a write load: after a restart every acknowledged write is
// there and the store opens. Uses the shared Go load generator (official
// clientv3), which records each key whose put was acknowledged.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ensureEtcdload, etcdctl, freePort, hasEtcd, startEtcdesk, tempDir } from '../testing/processes';

describe('crash safety (single member)', { skip: !hasEtcd() && 'etcdctl not installed' }, () => {
  it('loses no acknowledged put when killed with SIGKILL under load, three times over', { timeout: 120_000 }, async () => {
    const LOAD = await ensureEtcdload();
    const dataDir = tempDir('crash');
    const clientPort = await freePort();
    const peerPort = await freePort();
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const node = await startEtcdesk({ dataDir, clientPort, peerPort, extraArgs: ['--log-level', 'warn'] });
      // everything acknowledged in earlier rounds must have survived the kill
      if (acked.size) {
        const r = await etcdctl(node.endpoint, ['get', 'ack/', '--prefix', '--keys-only'], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        const present = new Set(r.stdout.split('\n').filter((l) => l.startsWith('ack/')));
        const lost = [...acked].filter((k) => !present.has(k));
        assert.deepEqual(lost.slice(0, 10), [], `round ${round}: ${lost.length} acknowledged keys lost`);
      }
      const ackFile = path.join(dataDir, `..`, `acked-${path.basename(dataDir)}-${round}`);
      const load = spawn(LOAD, ['-endpoints', node.endpoint, '-op', 'unique-put', '-clients', '32', '-total', '200000', '-acked-file', ackFile, '-timeout', '3s'], { stdio: 'ignore' });
      // the generator stops 3 s after it starts; kill the node well inside that window
      await new Promise((r) => setTimeout(r, 900 + round * 400));
      await node.kill();
      await new Promise<void>((r) => load.on('close', () => r()));
      const keys = fs.readFileSync(ackFile, 'utf8').split('\n').filter(Boolean);
      // every run numbers its keys from 0, so rounds overlap: a key acknowledged in any round must exist
      for (const k of keys) acked.add(k);
      assert.ok(keys.length > 100, `round ${round}: only ${keys.length} puts were acknowledged before the kill`);
    }
    const node = await startEtcdesk({ dataDir, clientPort, peerPort, extraArgs: ['--log-level', 'warn'] });
    try {
      const r = await etcdctl(node.endpoint, ['get', 'ack/', '--prefix', '--keys-only'], { timeoutMs: 60_000 });
      const present = new Set(r.stdout.split('\n').filter((l) => l.startsWith('ack/')));
      const lost = [...acked].filter((k) => !present.has(k));
      assert.equal(lost.length, 0, `lost ${lost.length} of ${acked.size} acknowledged keys, e.g. ${lost.slice(0, 5).join(' ')}`);
    } finally {
      await node.stop();
    }
  });
});
