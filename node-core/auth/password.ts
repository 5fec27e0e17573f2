// bcrypt hashing and checking off the main thread. A bcrypt at etcd's default
// cost takes tens of milliseconds of CPU; done on the event loop, a client
// looping over wrong passwords would stall every other client. One worker
// thread (the node shares few cores) runs them in order; callers await.
// Passwords cross to the worker by message and are never logged or kept.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import bcrypt from 'bcryptjs';
import { Errors } from '../errors/index';

/** etcd's default (bcrypt.DefaultCost) and the bounds it accepts for --bcrypt-cost. */
export const DEFAULT_BCRYPT_COST = 10;
export const MIN_BCRYPT_COST = 4;
export const MAX_BCRYPT_COST = 31;

/** etcd falls back to the default cost for an out-of-range --bcrypt-cost. */
export function normalizeBcryptCost(cost: number | undefined): number {
  if (cost === undefined || !Number.isInteger(cost) || cost < MIN_BCRYPT_COST || cost > MAX_BCRYPT_COST) return DEFAULT_BCRYPT_COST;
  return cost;
}

// Go's bcrypt writes "$2a$" hashes; keeping that prefix keeps our auth buckets
// byte-compatible in spirit with etcd's (both accept either prefix).
function goSalt(cost: number): string {
  return bcrypt.genSaltSync(cost).replace(/^\$2b\$/, '$2a$');
}

/** Synchronous hash, for the rare apply of a request proposed without hashed_password. */
export function hashPasswordSync(password: string, cost: number): Buffer {
  return Buffer.from(bcrypt.hashSync(password, goSalt(cost)), 'latin1');
}

type JobBody = { op: 'hash'; password: string; salt: string } | { op: 'compare'; password: string; hash: string };
type Job = JobBody & { id: number };

interface Reply {
  id: number;
  ok: boolean;
  value?: string | boolean;
  error?: string;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', (job) => {
  try {
    const value = job.op === 'hash' ? bcrypt.hashSync(job.password, job.salt) : bcrypt.compareSync(job.password, job.hash);
    parentPort.postMessage({ id: job.id, ok: true, value });
  } catch (e) {
    parentPort.postMessage({ id: job.id, ok: false, error: String(e && e.message || e) });
  }
});
`;

export interface PasswordHasher {
  hash(password: string): Promise<Buffer>;
  /** false for a wrong password or a malformed hash. */
  compare(password: string, hash: Buffer): Promise<boolean>;
  close(): Promise<void>;
}

export interface PasswordHasherOptions {
  cost?: number;
  /**
   * Jobs allowed to wait for the worker; beyond it requests fail at once with
   * Errors.RequestTooManyRequests instead of queueing memory and latency
   * without bound under a password-guessing flood.
   */
  maxPending?: number;
  /** false runs bcryptjs's chunked async API on the main thread instead of a worker. */
  useWorker?: boolean;
}

/** A bcrypt runner on one lazily started worker thread (unref'd: it never keeps the process alive). */
export class BcryptHasher implements PasswordHasher {
  readonly cost: number;
  private worker: Worker | undefined;
  private readonly useWorker: boolean;
  private readonly maxPending: number;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: string | boolean) => void; reject: (e: Error) => void }>();

  constructor(opts: PasswordHasherOptions = {}) {
    this.cost = normalizeBcryptCost(opts.cost);
    this.useWorker = opts.useWorker !== false;
    this.maxPending = opts.maxPending ?? 1024;
  }

  private start(): Worker | undefined {
    if (!this.useWorker) return undefined;
    if (this.worker) return this.worker;
    try {
      const bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath } });
      w.unref();
      w.on('message', (r: Reply) => {
        const p = this.pending.get(r.id);
        if (!p) return;
        this.pending.delete(r.id);
        if (r.ok && r.value !== undefined) p.resolve(r.value);
        else p.reject(new Error(r.error ?? 'bcrypt failed'));
      });
      w.on('error', (e) => this.failAll(e));
      w.on('exit', () => {
        this.worker = undefined;
        this.failAll(new Error('bcrypt worker exited'));
      });
      this.worker = w;
      return w;
    } catch {
      return undefined;
    }
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private run(job: JobBody): Promise<string | boolean> {
    const w = this.start();
    if (!w) {
      return job.op === 'hash' ? bcrypt.hash(job.password, job.salt) : bcrypt.compare(job.password, job.hash);
    }
    if (this.pending.size >= this.maxPending) return Promise.reject(Errors.RequestTooManyRequests);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // the worker only runs while jobs are pending, so idle nodes exit cleanly
      w.ref();
      w.postMessage({ ...job, id } as Job);
    }).finally(() => {
      if (this.pending.size === 0) this.worker?.unref();
    }) as Promise<string | boolean>;
  }

  async hash(password: string): Promise<Buffer> {
    const v = await this.run({ op: 'hash', password, salt: goSalt(this.cost) });
    return Buffer.from(String(v), 'latin1');
  }

  async compare(password: string, hash: Buffer): Promise<boolean> {
    if (hash.length === 0) return false;
    try {
      return (await this.run({ op: 'compare', password, hash: hash.toString('latin1') })) === true;
    } catch (e) {
      if (e === Errors.RequestTooManyRequests) throw e;
      return false;
    }
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
