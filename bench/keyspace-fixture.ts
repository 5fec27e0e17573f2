// What the 1,000,000-key benches share (scan-bench.ts, doctor-bench.ts): the
// data set and its loader, the app's own handlers run in this process (which
// plays Electron's main), and a memory sampler of this process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EtcdClient, type EtcdPb } from '../node-core/index';
import type { Channel, Req, Res, ScanProgressEvent } from '../electron/contract/index';
import { ConnectionManager } from '../electron/main/connection-manager';
import { createHandlers, dispatch, type HandlerContext } from '../electron/main/handlers';
import { ProfileStore } from '../electron/main/profile-store';
import { SessionSecrets } from '../electron/main/secrets';

export const MB = 1024 * 1024;

/** Puts `keys` keys `/bench/ns-<i % 100>/obj-<i>` with `valSize`-byte values, 16 txns of 128 puts in flight; returns seconds. */
export async function loadKeys(c: EtcdClient, keys: number, valSize: number): Promise<number> {
  const t0 = Date.now();
  const filler = 'v'.repeat(Math.max(0, valSize - 12));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const from = next;
      if (from >= keys) return;
      next = Math.min(keys, from + 128);
      const ops: EtcdPb.RequestOpInit[] = [];
      for (let i = from; i < next; i++) {
        // One value in 100,000 holds the needle the value search looks for.
        const v = i % 100_000 === 777 ? `needle ${filler}` : `${String(i).padStart(10, '0')} ${filler}`;
        ops.push({ request_put: { key: Buffer.from(`/bench/ns-${String(i % 100).padStart(2, '0')}/obj-${String(i).padStart(7, '0')}`), value: Buffer.from(v.slice(0, valSize)) } });
      }
      await c.txn({ success: ops });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return (Date.now() - t0) / 1000;
}

export interface AppMain {
  /** One request through main's `dispatch`, as the renderer's invoke; throws the error envelope's message. */
  call<C extends Channel>(c: C, req: Req<C>): Promise<Res<C>>;
  /** Resolves with a scan's last `scan:progress` event. */
  scanDone(scanId: string): Promise<ScanProgressEvent>;
  /** Bytes of events emitted since the last reset (JSON, what Electron's IPC would copy). */
  eventBytes: { n: number };
  close(): Promise<void>;
}

/** The app's handlers in this process, connected to `endpoints` as a remote connection. */
export async function startAppMain(endpoints: string[]): Promise<AppMain> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-keyspace-bench-'));
  const profiles = new ProfileStore(path.join(dir, 'connections.json'), new SessionSecrets(), false);
  const manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
  const handlers = createHandlers({
    manager,
    profiles,
    info: { mode: 'shell', version: 'bench', platform: process.platform, features: { localCluster: false, embeddedEngine: 'none' } },
    broadcast: () => undefined,
    chooseSnapshotPath: async () => null,
  });
  const done = new Map<string, (e: ScanProgressEvent) => void>();
  const eventBytes = { n: 0 };
  // As the shell does: every event is serialized (what Electron's IPC would copy).
  const ctx: HandlerContext = {
    clientId: 'bench',
    emit: (event, payload) => {
      eventBytes.n += JSON.stringify(payload).length;
      const p = payload as ScanProgressEvent;
      if (event === 'scan:progress' && p.done) done.get(p.scanId)?.(p);
    },
  };
  const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
    const env = await dispatch(handlers, c, req, ctx);
    if (!env.ok) throw new Error(env.error.message);
    return env.value as Res<C>;
  };
  const saved = await call('conn:save', { id: '', name: 'bench', kind: 'remote', endpoints });
  const st = await call('conn:connect', { id: saved.id });
  if (st.state !== 'connected') throw new Error(st.error?.message);
  return {
    call,
    scanDone: (scanId) => new Promise<ScanProgressEvent>((resolve) => done.set(scanId, resolve)),
    eventBytes,
    async close() {
      await manager.shutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface MemorySample {
  rssBaseMb: number;
  rssPeakMb: number;
  heapBaseMb: number;
  heapPeakMb: number;
}

/** Samples this process's RSS and V8 heap every 50 ms from an idle baseline (after a GC when --expose-gc) until the returned stop(). */
export async function sampleMemory(): Promise<() => MemorySample> {
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const base = process.memoryUsage();
  let rssPeak = base.rss;
  let heapPeak = base.heapUsed;
  const sample = (): void => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    heapPeak = Math.max(heapPeak, m.heapUsed);
  };
  const timer = setInterval(sample, 50);
  return () => {
    clearInterval(timer);
    sample();
    return { rssBaseMb: base.rss / MB, rssPeakMb: rssPeak / MB, heapBaseMb: base.heapUsed / MB, heapPeakMb: heapPeak / MB };
  };
}
