// One hosted node in its own worker thread: the embedded node, each member of
// the local cluster, a node on a restored backup. The node's raft, storage and
// gRPC server then never share the Electron main thread with the windows' IPC,
// and stopping a member halts its thread for real. Main talks to the node over
// gRPC as to any other; the thread itself only hears start (workerData) and
// stop, and says ready, startFailed, died (the node stopped on its own: its
// fatal storage error) and stopped.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { NodeConfig, RestoreOptions } from '../../node-core/index';

/** What the thread starts (its workerData). */
export interface NodeThreadStart {
  /** The member's name, for messages ("node local2 stopped: …"). */
  name: string;
  config: Partial<NodeConfig>;
  /** Restore this snapshot file into config.dataDir first (etcdctl snapshot restore). */
  restore?: { file: string; options: RestoreOptions };
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

/** Main → thread. */
export type ToNodeThread = { type: 'stop' } | { type: 'fault'; fault: NodeThreadFault };

/**
 * The chaos lab's faults for this one member (never sent unless the lab asks):
 * pause blocks the whole thread for ms (SIGSTOP-like: peers and clients see it
 * silent, then it resumes); isolate drops its raft traffic in and out; slow
 * disk waits syncDelayMs before each WAL fdatasync.
 */
export type NodeThreadFault = { kind: 'pause'; ms: number } | { kind: 'isolate'; on: boolean } | { kind: 'slowDisk'; syncDelayMs: number };

/** Thread → main. */
export type FromNodeThread =
  | { type: 'ready'; clientUrls: string[]; revision?: number }
  | { type: 'startFailed'; message: string; code?: string }
  /** The node closed without being asked: its fatal error's message (path and cause), if any. */
  | { type: 'died'; fatal: string | null }
  | { type: 'stopped' };

export interface NodeThread {
  readonly name: string;
  readonly clientUrls: string[];
  /** The worker's thread id (never the main thread's 0). */
  readonly threadId: number;
  /** The restored revision (restore starts only). */
  readonly revision?: number;
  /**
   * Resolves once the thread has exited: undefined after stop(), else why the
   * node went ("node <name> stopped: <fatal error>", or the thread's own crash).
   */
  readonly closed: Promise<string | undefined>;
  /** The thread has exited. */
  readonly exited: boolean;
  /** Stops the node (gracefully, bounded), then ends its thread. */
  stop(): Promise<void>;
  /** Injects (or lifts) a chaos-lab fault in this member's thread. */
  fault(f: NodeThreadFault): void;
}

/** How long a graceful stop may take before the thread is terminated anyway. */
const STOP_GRACE_MS = 5000;

/**
 * The worker's entry beside this file: node-worker.js when electron-vite
 * bundled main (its own entry, see electron.vite.config.ts); node-worker.ts
 * when main runs from source under tsx (the browser shell, tests). tsx's
 * `--import` hook does not register itself in worker threads, so from source
 * the thread starts on a small ES module that registers tsx, then imports
 * the entry. The path is computed so no bundler rewrites it.
 */
export function nodeWorkerEntry(): URL {
  const here = fileURLToPath(import.meta.url);
  const fromSource = path.extname(here) === '.ts';
  const file = path.join(path.dirname(here), fromSource ? 'node-worker.ts' : 'node-worker.js');
  if (!fs.existsSync(file)) throw new Error(`the node worker's entry is missing: ${file}`);
  if (!fromSource) return pathToFileURL(file);
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};\nregister();\nawait import(${JSON.stringify(pathToFileURL(file).href)});\n`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}

function deathOf(name: string, fatal: string | null): string {
  return fatal ? `node ${name} stopped: ${fatal}` : `node ${name} stopped (it was removed from the cluster or closed)`;
}

export function startNodeThread(start: NodeThreadStart): Promise<NodeThread> {
  const worker = new Worker(nodeWorkerEntry(), { workerData: start, stdout: false, stderr: false });
  let stopAsked = false;
  let exited = false;
  /** Why it went, once known (died message, thread error, exit code). */
  let reason: string | undefined;
  let resolveClosed: (why: string | undefined) => void = () => undefined;
  const closed = new Promise<string | undefined>((r) => (resolveClosed = r));
  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (resolveStopped = r));

  return new Promise<NodeThread>((resolve, reject) => {
    let ready = false;
    worker.on('message', (m: FromNodeThread) => {
      if (m.type === 'ready') {
        ready = true;
        resolve({
          name: start.name,
          clientUrls: m.clientUrls,
          threadId: worker.threadId,
          revision: m.revision,
          closed,
          get exited() {
            return exited;
          },
          stop,
          fault: (f) => {
            if (!exited) worker.postMessage({ type: 'fault', fault: f } satisfies ToNodeThread);
          },
        });
      } else if (m.type === 'startFailed') {
        reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        void worker.terminate();
      } else if (m.type === 'died') {
        reason ??= deathOf(start.name, m.fatal);
        // The node is closed; its thread has nothing left to do.
        void worker.terminate();
      } else if (m.type === 'stopped') resolveStopped();
    });
    worker.on('error', (e) => {
      // An uncaught exception in the node's thread ends that node, never the app.
      reason ??= `node ${start.name} stopped: ${e.message}`;
      if (!ready) reject(e);
    });
    worker.on('exit', (code) => {
      exited = true;
      resolveStopped();
      if (!ready) reject(new Error(reason ?? `node ${start.name}'s thread exited (${code}) before it was ready`));
      resolveClosed(stopAsked ? undefined : (reason ?? `node ${start.name} stopped: its thread exited (${code})`));
    });
  });

  async function stop(): Promise<void> {
    if (exited) return;
    stopAsked = true;
    worker.postMessage({ type: 'stop' } satisfies ToNodeThread);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    // The node is closed (or would not close in time): the thread goes, whatever it still holds.
    await worker.terminate();
    await closed;
  }
}
