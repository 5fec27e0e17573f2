// Shared by the watch/lease/lock/election etcdctl compatibility suites (a
// .test.ts file so it may live next to them; it defines no tests itself).
import { spawn } from 'node:child_process';
import { ETCDCTL_BIN, type CtlResult } from '../testing/processes';

/**
 * What differs between two single-member servers by nature: cluster and member ids, ports,
 * timestamps, client UUIDs. The raft term is kept: a single member's is the same as etcd's.
 */
export function normalize(s: string): string {
  return s
    .replace(/"cluster_id":\d+/g, '"cluster_id":X')
    .replace(/"member_id":\d+/g, '"member_id":X')
    .replace(/127\.0\.0\.1:\d+/g, 'ENDPOINT')
    .replace(/"ts":"[^"]*"/g, '"ts":T')
    .replace(/client-[0-9a-f-]{36}/g, 'client-UUID');
}

/**
 * Lease ids differ between servers: each side maps its ids, in order of first appearance, to
 * LEASE1, LEASE2, ... (%016x in lease output, %x in lock/election keys, decimal in json). The same
 * mapper must see one side's whole output, so an id that is the wrong one (another lease of the
 * same side) reads as a different label and the comparison fails.
 */
export class LeaseIds {
  private readonly labels = new Map<bigint, string>();

  label(id: bigint): string {
    let l = this.labels.get(id);
    if (!l) {
      l = `LEASE${this.labels.size + 1}`;
      this.labels.set(id, l);
    }
    return l;
  }

  /** Registers an id (e.g. one just granted) so it gets the next label. */
  see(hexOrDec: string, radix: 16 | 10 = 16): string {
    return this.label(BigInt(radix === 16 ? `0x${hexOrDec}` : hexOrDec));
  }

  normalize(s: string): string {
    return normalize(s)
      .replace(/\b([0-9a-f]{16})\b/g, (_m, h: string) => this.see(h))
      .replace(/\/([0-9a-f]{8,16})\b/g, (_m, h: string) => `/${this.see(h)}`)
      .replace(/"(ID|id|lease)":(\d+)/g, (m, k: string, d: string) => (d === '0' ? m : `"${k}":${this.see(d, 10)}`));
  }
}

export interface Background {
  write(line: string): void;
  /** Settles when the process exits (its exit code; -1 when killed by a signal). */
  exited: Promise<number>;
  /** Kills it (SIGKILL, or the given signal: etcdctl lock/elect release on SIGINT), then the output. */
  stop(signal?: NodeJS.Signals): Promise<CtlResult>;
  output(): string;
}

/** Starts etcdctl in the background (watch, keep-alive, lock, elect). */
export function background(endpoint: string, args: string[], env: NodeJS.ProcessEnv = {}): Background {
  const p = spawn(ETCDCTL_BIN, [`--endpoints=${endpoint}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
  const closed = new Promise<number>((resolve) => p.on('close', (code, sig) => resolve(code ?? (sig ? -1 : 0))));
  return {
    write: (line) => p.stdin.write(line),
    exited: closed,
    output: () => stdout,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (p.exitCode === null && p.signalCode === null) p.kill(signal);
      const code = await closed;
      return { stdout, stderr, code };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until cond() holds (polling); throws when the timeout passes, naming what it waited for
 * and what it saw, so a condition that never comes fails the test instead of letting it compare
 * whatever arrived.
 */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'a condition', seen: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen() ? `; saw:\n${seen()}` : ''}`);
    await sleep(20);
  }
}

/** Output lines, the last one only once it is complete. */
export const lines = (s: string): string[] => s.split('\n').slice(0, -1);
