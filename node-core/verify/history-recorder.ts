// Records a KV history for the linearizability checker from real clients:
// get (Range), put, and compare-and-set (a Txn comparing the value, or the
// create revision for "absent", then putting). Timestamps are
// performance.now(), taken just before the call is sent and just after its
// answer arrives, so every recorded interval contains the real one.
//
// A write whose call failed is recorded as pending (no output, no return):
// a timeout or a dropped connection says nothing about whether it was
// applied. A failed read is recorded the same way and the checker drops it.
import { performance } from 'node:perf_hooks';
import { EtcdClient, EtcdPb } from '../client/index';
import type { KvInput, KvOperation, KvOutput } from './linearizability';

export class HistoryRecorder {
  readonly ops: KvOperation[] = [];

  /** Runs fn as one operation of clientId and records it; rethrows nothing. */
  async record(clientId: number, input: KvInput, fn: () => Promise<KvOutput>): Promise<{ ok: true; output: KvOutput } | { ok: false; error: Error }> {
    const op: KvOperation = { clientId, input, output: undefined, call: performance.now(), return: undefined };
    this.ops.push(op);
    try {
      const output = await fn();
      op.return = performance.now();
      op.output = output;
      return { ok: true, output };
    } catch (e) {
      return { ok: false, error: e as Error };
    }
  }

  counts(): { total: number; completed: number; pending: number; byOp: Record<string, number> } {
    const byOp: Record<string, number> = {};
    let completed = 0;
    for (const op of this.ops) {
      const k = op.output === undefined ? `${op.input.op}:pending` : op.input.op === 'cas' && op.output.op === 'cas' ? `cas:${op.output.ok ? 'ok' : 'fail'}` : op.input.op;
      byOp[k] = (byOp[k] ?? 0) + 1;
      if (op.output !== undefined) completed++;
    }
    return { total: this.ops.length, completed, pending: this.ops.length - completed, byOp };
  }
}

const enc = (s: string): Buffer => Buffer.from(s);

export async function kvGet(c: EtcdClient, key: string, serializable = false): Promise<KvOutput> {
  const r = await c.range({ key: enc(key), serializable });
  return { op: 'get', value: r.kvs.length ? Buffer.from(r.kvs[0].value).toString() : undefined };
}

export async function kvPut(c: EtcdClient, key: string, value: string): Promise<KvOutput> {
  await c.put({ key: enc(key), value: enc(value) });
  return { op: 'put' };
}

/** expected undefined: create-if-absent (create_revision = 0), as the model's cas defines it. */
export async function kvCas(c: EtcdClient, key: string, expected: string | undefined, value: string): Promise<KvOutput> {
  const compare: EtcdPb.CompareInit =
    expected === undefined
      ? { key: enc(key), target: EtcdPb.Compare_CompareTarget.CREATE, result: EtcdPb.Compare_CompareResult.EQUAL, create_revision: 0 }
      : { key: enc(key), target: EtcdPb.Compare_CompareTarget.VALUE, result: EtcdPb.Compare_CompareResult.EQUAL, value: enc(expected) };
  const r = await c.txn({ compare: [compare], success: [{ request_put: { key: enc(key), value: enc(value) } }] });
  return { op: 'cas', ok: r.succeeded };
}

export interface WorkloadOptions {
  recorder: HistoryRecorder;
  /** One per logical client; a client is bound to one endpoint so a failed call is never silently retried elsewhere. */
  endpoints: string[];
  keys: string[];
  /** Stop issuing new operations once this resolves. */
  until: Promise<void>;
  /** Per-call deadline. */
  timeoutMs: number;
  /** Serializable (member-local) reads for all clients, or for the clients (by index) it returns true for. */
  serializableReads?: boolean | ((clientIndex: number) => boolean);
  /** Deterministic choices per client (seeded), so a failing run can be read back. */
  seed?: number;
}

/** A small deterministic PRNG (mulberry32): a workload or fault pattern must not depend on Math.random to be replayable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs one client per endpoint entry until `until` resolves. Each client
 * reads, puts unique values, and compare-and-sets from the value it last saw
 * (so CAS succeeds often enough to matter). After a failed call the client
 * continues under a new client id: the failed call stays pending forever in
 * the history, and a client with a pending call is no longer sequential.
 */
export async function runKvWorkload(opts: WorkloadOptions): Promise<void> {
  let stopped = false;
  void opts.until.then(() => {
    stopped = true;
  });
  const clients = opts.endpoints.map((e) => new EtcdClient({ endpoints: [e], timeoutMs: opts.timeoutMs }));
  try {
    await Promise.all(
      clients.map(async (client, i) => {
        const rand = seededRandom((opts.seed ?? 1) * 1000 + i);
        const lastSeen = new Map<string, string | undefined>();
        let clientId = i;
        let seq = 0;
        const serializable = typeof opts.serializableReads === 'function' ? opts.serializableReads(i) : !!opts.serializableReads;
        while (!stopped) {
          const key = opts.keys[Math.floor(rand() * opts.keys.length)];
          const r = rand();
          let res;
          if (r < 0.45) {
            res = await opts.recorder.record(clientId, { op: 'get', key }, () => kvGet(client, key, serializable));
            if (res.ok && res.output.op === 'get') lastSeen.set(key, res.output.value);
          } else if (r < 0.7) {
            const value = `c${i}-${seq++}`;
            res = await opts.recorder.record(clientId, { op: 'put', key, value }, () => kvPut(client, key, value));
            if (res.ok) lastSeen.set(key, value);
          } else {
            const value = `c${i}-${seq++}`;
            const expected = lastSeen.get(key);
            res = await opts.recorder.record(clientId, { op: 'cas', key, expected, value }, () => kvCas(client, key, expected, value));
            if (res.ok && res.output.op === 'cas' && res.output.ok) lastSeen.set(key, value);
          }
          if (!res.ok) {
            clientId += opts.endpoints.length;
            // A member that is down answers at once: do not spin on it.
            await new Promise((r2) => setTimeout(r2, 50));
          }
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
}
