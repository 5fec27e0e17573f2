// The app's embedded node dies under it (its disk fills): the connection
// status turns to `error` with the node's own message (cause and file) on
// `conn:changed`, never "connected" with a dead node; calls say "not
// connected"; once space is freed, connecting again starts the node afresh.
// The data folder sits on a small tmpfs (as node-core/server/disk-full.test.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { ConnectionStatus, EventChannel, EventMap } from '../contract/index';
import { createAppCore, type AppCore } from './app-core';
import { dispatch } from './handlers';
import { SessionSecrets } from './secrets';

const MiB = 1024 * 1024;
const mounted: string[] = [];

after(() => {
  for (const d of mounted) execFileSync('umount', ['-l', d], { stdio: 'pipe' });
});

/** Puts 100 KiB values from 4 writers until one fails (the node stopped). */
async function fill(core: AppCore): Promise<void> {
  const client = core.manager.requireClient();
  let next = 0;
  let failed = false;
  const writer = async (): Promise<void> => {
    while (!failed && next < 1500) {
      const i = next++;
      await client.put({ key: Buffer.from(`k${i}`), value: Buffer.alloc(100 * 1024, i % 251) }).catch(() => (failed = true));
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  assert.ok(failed, 'the disk never filled');
}

/** An app core whose data folder is a tmpfs of `bytes`; `errored` resolves with the first `error` status on conn:changed. */
function coreOnTmpfs(bytes: number): { core: AppCore; dir: string; statuses: ConnectionStatus[]; errored: Promise<ConnectionStatus> } {
  process.env.ETCDESK_ENGINE = 'node-core';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-death-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounted.push(dir);
  const statuses: ConnectionStatus[] = [];
  let onError: (s: ConnectionStatus) => void = () => undefined;
  const errored = new Promise<ConnectionStatus>((resolve) => (onError = resolve));
  const core = createAppCore({
    dataDir: dir,
    mode: 'shell',
    version: 'test',
    secrets: new SessionSecrets(),
    clusterBasePort: 0,
    broadcast: <E extends EventChannel>(e: E, p: EventMap[E]) => {
      if (e !== 'conn:changed') return;
      const s = p as ConnectionStatus;
      statuses.push(s);
      if (s.state === 'error') onError(s);
    },
    chooseSnapshotPath: async () => null,
  });
  return { core, dir, statuses, errored };
}

describe('a hosted node dies', { timeout: 180_000 }, () => {
  it('embedded, disk full: conn:changed says error with the fatal message and the file; reconnecting after space is freed works', async () => {
    // 28 MiB: one 16 MiB log segment fits, then the data file or the next segment fills
    const { core, dir, statuses, errored } = coreOnTmpfs(28 * MiB);
    try {
      const connected = await core.manager.connect('embedded');
      assert.equal(connected.state, 'connected', connected.error?.message);
      await fill(core);
      const s = await errored;
      assert.equal(s.profileId, 'embedded');
      assert.ok(s.error, 'the status carries the error');
      assert.match(s.error.message, /^node etcdesk stopped: .*no space left on device/);
      // whichever file filled first: the log's new segment or the LMDB data file
      const member = path.join(dir, 'embedded', 'node', 'member');
      const file = /(\/\S+): no space left on device/.exec(s.error.message)?.[1] ?? '';
      assert.match(path.relative(member, file), /^(wal\/[0-9a-f]{16}\.wal|db\/data\.mdb)$/, s.error.message);
      // never "connected" again without a new connect, and calls say why
      assert.equal(core.manager.status().state, 'error');
      assert.equal(statuses.at(-1)?.state, 'error');
      const r = await dispatch(core.handlers, 'kv:count', { prefix: '' }, { clientId: 't', emit: () => undefined });
      assert.equal(r.ok, false);
      // space freed: connecting again starts the node on its data
      execFileSync('mount', ['-o', `remount,size=${512 * MiB}`, dir], { stdio: 'pipe' });
      const again = await core.manager.connect('embedded');
      assert.equal(again.state, 'connected', again.error?.message);
      assert.equal(again.error, undefined);
    } finally {
      await core.shutdown();
    }
  });
});
