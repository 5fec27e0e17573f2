// etcd's "simple" tokens: "<16 random letters>.<raft index>", kept in memory
// on every member (the Authenticate entry is applied everywhere), valid for a
// TTL (default 5 minutes) that every successful use renews, dropped when the
// user is deleted or changes password, and all dropped when auth is disabled.
import { randomInt } from 'node:crypto';
import type { AssignParams, AuthInfo, TokenProvider } from './token-provider';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const TOKEN_PREFIX_LENGTH = 16;
export const DEFAULT_SIMPLE_TOKEN_TTL_MS = 300_000;
/** etcd sweeps expired tokens once a second. */
const SWEEP_INTERVAL_MS = 1000;

export interface SimpleTokenOptions {
  /** etcd's --auth-token-ttl, in milliseconds. */
  ttlMs?: number;
  /** Injected clock (milliseconds), for tests. */
  now?: () => number;
  /** false disables the background sweep (expiry is also checked on use). */
  sweep?: boolean;
}

interface Entry {
  username: string;
  expiresAt: number;
}

export class SimpleTokenProvider implements TokenProvider {
  readonly type = 'simple' as const;
  readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sweep: boolean;
  private tokens: Map<string, Entry> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: SimpleTokenOptions = {}) {
    this.ttlMs = opts.ttlMs && opts.ttlMs > 0 ? opts.ttlMs : DEFAULT_SIMPLE_TOKEN_TTL_MS;
    this.now = opts.now ?? Date.now;
    this.sweep = opts.sweep !== false;
  }

  genTokenPrefix(): string {
    let s = '';
    for (let i = 0; i < TOKEN_PREFIX_LENGTH; i++) s += LETTERS[randomInt(LETTERS.length)];
    return s;
  }

  enable(): void {
    if (this.tokens) return;
    this.tokens = new Map();
    if (this.sweep) {
      this.timer = setInterval(() => this.expire(), SWEEP_INTERVAL_MS);
      this.timer.unref();
    }
  }

  disable(): void {
    this.tokens = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.disable();
  }

  /** Drops expired tokens (the sweep; also callable by tests with an injected clock). */
  expire(): void {
    if (!this.tokens) return;
    const now = this.now();
    for (const [t, e] of this.tokens) if (now > e.expiresAt) this.tokens.delete(t);
  }

  assign(username: string, _revision: number, params: AssignParams): string {
    const token = `${params.simpleTokenPrefix}.${params.index}`;
    // etcd ignores the assignment while auth is disabled (no keeper)
    if (!this.tokens) return token;
    this.tokens.set(token, { username, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  tokenIndex(token: string): number | undefined {
    const parts = token.split('.');
    if (parts.length !== 2 || !/^[+-]?\d+$/.test(parts[1])) return undefined;
    return Number(parts[1]);
  }

  info(token: string, currentRevision: number): AuthInfo | undefined {
    if (this.tokenIndex(token) === undefined || !this.tokens) return undefined;
    const e = this.tokens.get(token);
    if (!e) return undefined;
    const now = this.now();
    if (now > e.expiresAt) {
      this.tokens.delete(token);
      return undefined;
    }
    e.expiresAt = now + this.ttlMs;
    // a simple token carries no revision: etcd reports the store's current one
    return { username: e.username, revision: currentRevision };
  }

  invalidateUser(username: string): void {
    if (!this.tokens) return;
    for (const [t, e] of this.tokens) if (e.username === username) this.tokens.delete(t);
  }

  /** Number of live tokens (for tests and metrics). */
  get size(): number {
    return this.tokens?.size ?? 0;
  }
}
