// Shared fixtures for the auth tests: a throwaway backend and a fast hasher.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend } from '../backend/backend';
import { Permission_Type } from '../proto/gen/authpb';
import type { InternalRaftRequest } from '../proto/gen/etcdserverpb';
import { decodeInternalRaftRequest, encodeInternalRaftRequest, type InternalRaftRequestInit } from '../proto/gen/etcdserverpb';
import type { PasswordHasher } from './password';
import { AuthStore, type AuthStoreOptions } from './store';

export function tempBackend(prefix = 'auth'): { backend: Backend; dir: string; cleanup: () => Promise<void> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcdesk-${prefix}-`));
  const backend = Backend.open(dir, { sync: false });
  return {
    backend,
    dir,
    cleanup: async () => {
      await backend.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A reversible stand-in for bcrypt (tests of rules, not of hashing). */
export const plainHasher: PasswordHasher = {
  hash: async (p) => Buffer.from(`plain:${p}`),
  compare: async (p, h) => h.toString() === `plain:${p}`,
  close: async () => {},
};

export function newStore(backend: Backend, opts: AuthStoreOptions = {}): AuthStore {
  return new AuthStore(backend, { hasher: plainHasher, bcryptCost: 4, ...opts });
}

/** Encodes and decodes, so tests see requests exactly as the applier does. */
export function req(init: InternalRaftRequestInit): InternalRaftRequest {
  return decodeInternalRaftRequest(encodeInternalRaftRequest(init));
}

export const READ = Permission_Type.READ;
export const WRITE = Permission_Type.WRITE;
export const READWRITE = Permission_Type.READWRITE;

/** Adds root with the root role, so auth can be enabled. */
export function withRoot(s: AuthStore): void {
  s.userAdd(req({ auth_user_add: { name: 'root', hashed_password: Buffer.from('plain:rootpw') } }).auth_user_add!);
  s.userGrantRole(req({ auth_user_grant_role: { user: 'root', role: 'root' } }).auth_user_grant_role!);
}
