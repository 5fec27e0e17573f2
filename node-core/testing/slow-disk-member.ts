// A single member started in this process on free loopback ports, whose WAL
// fdatasync can be slowed at will (the `syncDelayMs` fault): tests that need a
// write to be caught waiting for its fsync.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { silentLogger } from '../support/logger';
import { startNode, type RunningNode } from '../server/start';

export interface SlowDiskMember {
  running: RunningNode;
  /** Delay every following WAL fdatasync by this many ms (0: none). */
  setSyncDelay(ms: number): void;
}

/** Starts the member; the test's `after` stops it and removes its data dir. */
export async function startSlowDiskMember(t: TestContext, dirPrefix: string): Promise<SlowDiskMember> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  let syncDelay = 0;
  const running = await startNode(
    { name: 'one', dataDir, listenClientUrls: ['http://127.0.0.1:0'], listenPeerUrls: ['http://127.0.0.1:0'] },
    { logger: silentLogger, faults: { syncDelayMs: () => syncDelay } },
  );
  t.after(() => running.stop());
  return { running, setSyncDelay: (ms) => (syncDelay = ms) };
}
