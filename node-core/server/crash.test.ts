// kill -9 during a write load: after a restart every acknowledged write is
// there and the store opens. Uses the shared Go load generator (official
// clientv3), which records each key whose put was acknowledged; the kill
// lands once the node has applied a few hundred of them, while the load runs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { EtcdClient, prefixEnd } from '../client/client';
import { currentRevision, ensureEtcdload, freePort, startEtcdesk, tempDir, type ServerProc } from '../testing/processes';

async function ackedKeysPresent(node: ServerProc): Promise<Set<string>> {
  const c = new EtcdClient({ endpoints: [node.clientUrl], timeoutMs: 60_000 });
  try {
    const r = await c.range({ key: Buffer.from('ack/'), range_end: prefixEnd('ack/'), keys_only: true });
    return new Set(r.kvs.map((kv) => kv.key.toString()));
  } finally {
    c.close();
  }
}

describe('crash safety (single member)', () => {
  it('loses no acknowledged put when killed with SIGKILL under load, three times over', { timeout: 180_000 }, async () => {
    const LOAD = await ensureEtcdload();
    const dataDir = tempDir('crash');
    const clientPort = await freePort();
    const peerPort = await freePort();
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const node = await startEtcdesk({ dataDir, clientPort, peerPort, extraArgs: ['--log-level', 'warn'] });
      // everything acknowledged in earlier rounds must have survived the kill
      if (acked.size) {
        const present = await ackedKeysPresent(node);
        const lost = [...acked].filter((k) => !present.has(k));
        assert.deepEqual(lost.slice(0, 10), [], `round ${round}: ${lost.length} acknowledged keys lost`);
      }
      const ackFile = path.join(dataDir, `..`, `acked-${path.basename(dataDir)}-${round}`);
      // the generator's whole run is bounded (its puts wait for a connection after the kill)
      const load = spawn(LOAD, ['-endpoints', node.endpoint, '-op', 'unique-put', '-clients', '32', '-total', '200000', '-acked-file', ackFile, '-timeout', '6s'], { stdio: 'ignore' });
      const loadDone = new Promise<void>((r) => load.on('close', () => r()));
      // kill once the node has applied some hundreds of puts (a different point each round)
      const start = await currentRevision(node.clientUrl);
      const target = start + 200 * (round + 1);
      while ((await currentRevision(node.clientUrl)) < target) {
        assert.equal(load.exitCode, null, `round ${round}: the load ended before the node reached revision ${target}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(load.exitCode, null, 'the kill lands while the load runs');
      await node.kill();
      await loadDone;
      const keys = fs.readFileSync(ackFile, 'utf8').split('\n').filter(Boolean);
      // every run numbers its keys from 0, so rounds overlap: a key acknowledged in any round must exist
      for (const k of keys) acked.add(k);
      assert.ok(keys.length > 0, `round ${round}: no put was acknowledged before the kill`);
    }
    const node = await startEtcdesk({ dataDir, clientPort, peerPort, extraArgs: ['--log-level', 'warn'] });
    try {
      const present = await ackedKeysPresent(node);
      const lost = [...acked].filter((k) => !present.has(k));
      assert.equal(lost.length, 0, `lost ${lost.length} of ${acked.size} acknowledged keys, e.g. ${lost.slice(0, 5).join(' ')}`);
    } finally {
      await node.stop();
    }
  });
});
