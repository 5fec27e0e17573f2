// Shared by the watch/lease/lock/election etcdctl compatibility suites (a
// .test.ts file so it may live next to them; it defines no tests itself).
import { spawn } from 'node:child_process';
import { ETCDCTL_BIN, type CtlResult } from '../testing/processes';

export function normalize(s: string): string {
  return s
    .replace(/"cluster_id":\d+/g, '"cluster_id":X')
    .replace(/"member_id":\d+/g, '"member_id":X')
    .replace(/"raft_term":\d+/g, '"raft_term":X')
    .replace(/127\.0\.0\.1:\d+/g, 'ENDPOINT')
    .replace(/"ts":"[^"]*"/g, '"ts":T')
    .replace(/client-[0-9a-f-]{36}/g, 'client-UUID');
}

/** Lease ids differ between servers: %016x in lease output, %x in lock/election keys, decimal in json. */
export function normalizeLeases(s: string): string {
  return normalize(s)
    .replace(/\b[0-9a-f]{16}\b/g, 'LEASE')
    .replace(/\/[0-9a-f]{8,16}\b/g, '/LEASE')
    .replace(/"(ID|id|lease)":\d{6,}/g, '"$1":LEASE');
}

export interface Background {
  write(line: string): void;
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
    output: () => stdout,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (p.exitCode === null && p.signalCode === null) p.kill(signal);
      const code = await closed;
      return { stdout, stderr, code };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until cond() holds (polling), or the timeout passes. */
export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await sleep(20);
}
