// Saved connections, one JSON file in the app's data folder. Passwords are
// stored only when a SecretBox can encrypt them (Electron's safeStorage); the
// file never holds a plain-text password: without encryption a password lives
// in memory for the session only.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ConnectionProfile } from '../contract/index';

export interface SecretBox {
  available(): boolean;
  encrypt(plain: string): string;
  decrypt(stored: string): string;
}

interface StoredProfile extends Omit<ConnectionProfile, 'password' | 'hasPassword'> {
  secret?: string;
}

export const BUILTIN_EMBEDDED = 'embedded';
export const BUILTIN_CLUSTER = 'local-cluster';

export class ProfileStore {
  private profiles: StoredProfile[] = [];
  private readonly sessionPasswords = new Map<string, string>();
  /** Connections that live for this session only (nodes started on restored backups). */
  private readonly sessionProfiles: ConnectionProfile[] = [];

  constructor(
    private readonly file: string,
    private readonly box: SecretBox | null,
    private readonly withCluster: boolean,
  ) {
    try {
      const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { profiles?: StoredProfile[] };
      this.profiles = (raw.profiles ?? []).filter((p) => p.kind === 'remote');
    } catch {
      this.profiles = [];
    }
  }

  private builtins(): ConnectionProfile[] {
    const out: ConnectionProfile[] = [{ id: BUILTIN_EMBEDDED, name: 'Embedded node', kind: 'embedded', endpoints: [] }];
    if (this.withCluster) out.push({ id: BUILTIN_CLUSTER, name: 'Local 3-node cluster', kind: 'local-cluster', endpoints: [] });
    return out;
  }

  list(): ConnectionProfile[] {
    return [
      ...this.builtins(),
      ...this.sessionProfiles,
      ...this.profiles.map(({ secret, ...p }) => ({ ...p, hasPassword: !!secret || this.sessionPasswords.has(p.id) })),
    ];
  }

  get(id: string): ConnectionProfile | null {
    return this.list().find((p) => p.id === id) ?? null;
  }

  password(id: string): string | undefined {
    const session = this.sessionPasswords.get(id);
    if (session !== undefined) return session;
    const p = this.profiles.find((x) => x.id === id);
    if (p?.secret && this.box?.available()) return this.box.decrypt(p.secret);
    return undefined;
  }

  /** A session-only connection (never written to the file). */
  addSession(p: ConnectionProfile): ConnectionProfile {
    this.sessionProfiles.push(p);
    return p;
  }

  save(input: ConnectionProfile): ConnectionProfile {
    if (input.kind !== 'remote') throw new Error('only remote connections can be saved');
    const id = input.id && this.profiles.some((p) => p.id === input.id) ? input.id : randomUUID();
    const prev = this.profiles.find((p) => p.id === id);
    const stored: StoredProfile = {
      id,
      name: input.name.trim() || input.endpoints[0] || 'etcd',
      kind: 'remote',
      endpoints: input.endpoints.map((e) => e.trim()).filter(Boolean),
      username: input.username?.trim() || undefined,
      tls: input.tls,
      secret: prev?.secret,
    };
    if (!stored.endpoints.length) throw new Error('at least one endpoint is required');
    if (input.password !== undefined && input.password !== '') {
      if (this.box?.available()) {
        stored.secret = this.box.encrypt(input.password);
        this.sessionPasswords.delete(id);
      } else {
        stored.secret = undefined;
        this.sessionPasswords.set(id, input.password);
      }
    }
    if (!stored.username) {
      stored.secret = undefined;
      this.sessionPasswords.delete(id);
    }
    this.profiles = [...this.profiles.filter((p) => p.id !== id), stored];
    this.flush();
    return this.get(id)!;
  }

  delete(id: string): void {
    const i = this.sessionProfiles.findIndex((p) => p.id === id);
    if (i >= 0) this.sessionProfiles.splice(i, 1);
    this.profiles = this.profiles.filter((p) => p.id !== id);
    this.sessionPasswords.delete(id);
    this.flush();
  }

  private flush(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ profiles: this.profiles }, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}
