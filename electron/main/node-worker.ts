// The worker thread that hosts one node (see node-thread.ts for the protocol).
// Its own entry in electron-vite's main build; run from source under tsx.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, restoreSnapshot, startNode, type NodeFaults, type RunningNode } from '../../node-core/index';
import type { FromNodeThread, NodeThreadStart, ToNodeThread } from './node-thread';

const port = parentPort;
if (!port) throw new Error('node-worker runs in a worker thread');
const start = workerData as NodeThreadStart;
const post = (m: FromNodeThread): void => port.postMessage(m);

let node: RunningNode | undefined;
let stopping = false;
/** This member's chaos-lab faults (one thread per member, so this is per member); all off until the lab asks. */
const lab = { syncDelayMs: 0, isolated: false };
const faults: NodeFaults = { syncDelayMs: () => lab.syncDelayMs, isolated: () => lab.isolated };

port.on('message', (m: ToNodeThread) => {
  if (m.type === 'fault') {
    const f = m.fault;
    if (f.kind === 'slowDisk') lab.syncDelayMs = Math.max(0, f.syncDelayMs);
    else if (f.kind === 'isolate') lab.isolated = f.on;
    // The whole thread stops answering (raft ticks, peers, clients), as a SIGSTOPped process, then resumes.
    else if (f.kind === 'pause') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(Math.max(0, f.ms), 60_000));
    return;
  }
  if (m.type !== 'stop') return;
  stopping = true;
  void (node ? node.stop() : Promise.resolve()).finally(() => post({ type: 'stopped' }));
});

async function run(): Promise<void> {
  let revision: number | undefined;
  try {
    if (start.restore) revision = (await restoreSnapshot(start.restore.file, start.restore.options)).revision;
    node = await startNode(start.config, { logger: createLogger(start.logLevel ?? 'error'), faults });
  } catch (e) {
    const err = e as { message?: string; code?: unknown };
    post({ type: 'startFailed', message: err.message ?? String(e), code: typeof err.code === 'string' ? err.code : undefined });
    return;
  }
  const n = node;
  // Closed without a stop from main: a fatal storage error (disk full, a damaged log) or removal.
  // Said once its listeners are closed: main then ends the thread, and a thread ended with live HTTP/2
  // sessions still reading can abort the whole process inside node:http2 (seen in CI).
  void n.closed.then(async () => {
    if (stopping) return;
    await n.stop().catch(() => undefined);
    post({ type: 'died', fatal: n.node.fatalError?.message ?? null });
  });
  post({ type: 'ready', clientUrls: n.clientUrls, revision: start.restore ? revision : undefined });
}

void run();
