// A write load that knows which puts were acknowledged, for crash and power-loss
// tests: unique keys under ack/, each recorded once its put answered OK.
import { EtcdClient, prefixEnd } from '../client/client';
import type { ServerProc } from './processes';

export interface AckLoad {
  /** Keys whose put was acknowledged. */
  acked: Set<string>;
  /** Resolves once n puts were acknowledged. */
  reached(n: number): Promise<void>;
  /** Ends the loops (each also ends at its first failed put) and closes the client. */
  stop(): Promise<void>;
}

/** Unique puts from `workers` loops; a loop ends at its first error (its member is gone). */
export function ackLoad(endpoints: string[], tag: string, opts: { workers?: number; valueBytes?: number } = {}): AckLoad {
  const acked = new Set<string>();
  const c = new EtcdClient({ endpoints, timeoutMs: 5000 });
  let stopped = false;
  const waiters: { n: number; resolve: () => void }[] = [];
  // values spanning several sectors by default, so an unsynced batch can be torn in the middle
  const value = Buffer.alloc(opts.valueBytes ?? 700, tag);
  const loops = Array.from({ length: opts.workers ?? 16 }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const key = `ack/${tag}/${w}/${i}`;
      try {
        await c.put({ key: Buffer.from(key), value });
      } catch {
        return; // never acknowledged
      }
      acked.add(key);
      for (const x of waiters) if (acked.size >= x.n) x.resolve();
    }
  });
  return {
    acked,
    reached: (n) => (acked.size >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    async stop() {
      stopped = true;
      await Promise.all(loops);
      c.close();
    },
  };
}

/** The ack/ keys a member holds (a linearizable read: it answers once the member caught up). */
export async function presentKeys(endpoint: string): Promise<Set<string>> {
  const c = new EtcdClient({ endpoints: [endpoint], timeoutMs: 30_000 });
  try {
    const r = await c.range({ key: Buffer.from('ack/'), range_end: prefixEnd('ack/'), keys_only: true });
    return new Set(r.kvs.map((kv) => kv.key.toString()));
  } finally {
    c.close();
  }
}

/** The acknowledged keys missing from `present`. */
export function lostKeys(acked: Iterable<string>, present: Set<string>): string[] {
  return [...acked].filter((k) => !present.has(k));
}

/** Resolves when the member's process has exited (e.g. killed itself at its ETCDESK_FAULT_KILL_AT point). */
export function exited(m: ServerProc): Promise<void> {
  if (m.proc.exitCode !== null || m.proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => m.proc.once('exit', () => r()));
}

/** True once every member answers HashKV with the same revision and hash (a member not answering yet counts as different). */
export async function membersConverged(members: ServerProc[]): Promise<boolean> {
  const hs = await Promise.all(
    members.map(async (m) => {
      const cl = new EtcdClient({ endpoints: [m.endpoint], timeoutMs: 5000 });
      try {
        const h = await cl.hashKV();
        return `${h.header?.revision}:${h.hash}`;
      } catch {
        return 'unanswered';
      } finally {
        cl.close();
      }
    }),
  );
  return hs[0] !== 'unanswered' && hs.every((h) => h === hs[0]);
}
