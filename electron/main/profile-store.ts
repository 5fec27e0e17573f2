// Saved connections, one JSON file in the app's data folder: remote profiles,
// and the name and user given to the built-in ones. Passwords never go in it:
// they live in a SecretStore (OS keychain, a 0600 file, or memory) or, when
// the user did not ask to remember them, in memory for this session.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ContractError, type ConnectionProfile, type ExportedProfile, type ProfilesExport, type SshTunnelConfig } from '../contract/index';
import type { SecretStore } from './secrets';

type StoredProfile = Omit<ConnectionProfile, 'password' | 'hasPassword' | 'passwordStore' | 'sshSecret' | 'hasSshSecret'>;

/** The SSH secret (password or key passphrase) is kept beside the etcd password, under its own key. */
const sshKey = (id: string): string => `ssh:${id}`;

interface BuiltinOverride {
  name?: string;
  username?: string;
}

interface FileShape {
  profiles?: StoredProfile[];
  builtins?: Record<string, BuiltinOverride>;
}

export const BUILTIN_EMBEDDED = 'embedded';
export const BUILTIN_CLUSTER = 'local-cluster';

const BUILTIN_NAMES: Record<string, string> = { [BUILTIN_EMBEDDED]: 'Embedded node', [BUILTIN_CLUSTER]: 'Local 3-node cluster' };

export class ProfileStore {
  private profiles: StoredProfile[] = [];
  private builtinOverrides: Record<string, BuiltinOverride> = {};
  /** Passwords given with "remember" off: this session only. */
  private readonly sessionPasswords = new Map<string, string>();
  /** Connections that live for this session only (nodes started on restored backups). */
  private readonly sessionProfiles: StoredProfile[] = [];

  constructor(
    private readonly file: string,
    private readonly secrets: SecretStore,
    private readonly withCluster: boolean,
  ) {
    try {
      const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as FileShape;
      this.profiles = (raw.profiles ?? []).filter((p) => p.kind === 'remote').map(({ ...p }) => {
        delete (p as { secret?: unknown }).secret; // an older format kept encrypted passwords here
        return p;
      });
      this.builtinOverrides = raw.builtins ?? {};
    } catch {
      this.profiles = [];
    }
  }

  private builtinIds(): string[] {
    return this.withCluster ? [BUILTIN_EMBEDDED, BUILTIN_CLUSTER] : [BUILTIN_EMBEDDED];
  }

  static isBuiltin(id: string): boolean {
    return id === BUILTIN_EMBEDDED || id === BUILTIN_CLUSTER;
  }

  private withSecretInfo(p: StoredProfile): ConnectionProfile {
    const session = this.sessionPasswords.has(p.id);
    const saved = !session && this.secrets.get(p.id) !== undefined;
    const hasSshSecret = p.ssh ? this.sshSecret(p.id) !== undefined : undefined;
    return { ...p, hasPassword: session || saved, passwordStore: session || !saved ? (session ? 'session' : undefined) : this.secrets.kind, hasSshSecret };
  }

  list(): ConnectionProfile[] {
    const builtins: StoredProfile[] = this.builtinIds().map((id) => {
      const o = this.builtinOverrides[id] ?? {};
      return { id, name: o.name || BUILTIN_NAMES[id], kind: id === BUILTIN_EMBEDDED ? 'embedded' : 'local-cluster', endpoints: [], username: o.username || undefined };
    });
    return [...builtins, ...this.sessionProfiles, ...this.profiles].map((p) => this.withSecretInfo(p));
  }

  get(id: string): ConnectionProfile | null {
    return this.list().find((p) => p.id === id) ?? null;
  }

  password(id: string): string | undefined {
    return this.sessionPasswords.get(id) ?? this.secrets.get(id);
  }

  /** The SSH password or key passphrase of a profile's tunnel. */
  sshSecret(id: string): string | undefined {
    return this.sessionPasswords.get(sshKey(id)) ?? this.secrets.get(sshKey(id));
  }

  /** The tunnel's host key, pinned on first connect (trust on first use). */
  pinHostKey(id: string, hostKey: string): void {
    const p = this.profiles.find((x) => x.id === id);
    if (!p?.ssh || p.ssh.hostKeySha256 === hostKey) return;
    p.ssh = { ...p.ssh, hostKeySha256: hostKey };
    this.flush();
  }

  /** Where a remembered password goes on this machine. */
  get secretKind(): SecretStore['kind'] {
    return this.secrets.kind;
  }

  /** A session-only connection (never written to the file). */
  addSession(p: ConnectionProfile): ConnectionProfile {
    this.sessionProfiles.push({ id: p.id, name: p.name, kind: p.kind, endpoints: p.endpoints, dataDir: p.dataDir });
    return this.get(p.id)!;
  }

  isSession(id: string): boolean {
    return this.sessionProfiles.some((p) => p.id === id);
  }

  /**
   * Saves a profile. Remote: everything (a new id when it has none). Built-in
   * and restored: the name and the credentials (their endpoints are the app's).
   */
  save(input: ConnectionProfile): ConnectionProfile {
    const username = input.username?.trim() || undefined;
    let id = input.id;
    if (ProfileStore.isBuiltin(id)) {
      if (!this.builtinIds().includes(id)) throw new ContractError(-1, `unknown connection ${id}`);
      this.builtinOverrides = { ...this.builtinOverrides, [id]: { name: input.name.trim() || undefined, username } };
    } else if (this.isSession(id)) {
      const p = this.sessionProfiles.find((x) => x.id === id)!;
      p.name = input.name.trim() || p.name;
      p.username = username;
    } else {
      if (input.kind !== 'remote') throw new ContractError(-1, `unknown connection ${input.id}`);
      id = input.id && this.profiles.some((p) => p.id === input.id) ? input.id : randomUUID();
      const stored: StoredProfile = {
        id,
        name: input.name.trim() || input.endpoints[0] || 'etcd',
        kind: 'remote',
        endpoints: input.endpoints.map((e) => e.trim()).filter(Boolean),
        username,
        tls: input.tls,
        ssh: input.ssh ? cleanSsh(input.ssh) : undefined,
      };
      if (!stored.endpoints.length) throw new ContractError(-1, 'at least one endpoint is required');
      this.profiles = [...this.profiles.filter((p) => p.id !== id), stored];
    }
    if (!username) this.forgetPassword(id);
    else if (input.password) this.setPassword(id, input.password, !this.isSession(id));
    if (!input.ssh) this.forgetPassword(sshKey(id));
    else if (input.sshSecret) this.setPassword(sshKey(id), input.sshSecret, true);
    this.flush();
    return this.get(id)!;
  }

  /** Sign-in: the user (and password) for any profile; remember keeps the password past this session. */
  setCredentials(id: string, username: string, password: string, remember: boolean): ConnectionProfile {
    const p = this.get(id);
    if (!p) throw new ContractError(-1, `unknown connection ${id}`);
    this.save({ ...p, username, password: undefined });
    this.forgetPassword(id);
    this.setPassword(id, password, remember && !this.isSession(id));
    return this.get(id)!;
  }

  private setPassword(id: string, password: string, remember: boolean): void {
    if (remember) {
      this.sessionPasswords.delete(id);
      this.secrets.set(id, password);
    } else {
      this.secrets.delete(id);
      this.sessionPasswords.set(id, password);
    }
  }

  private forgetPassword(id: string): void {
    this.sessionPasswords.delete(id);
    this.secrets.delete(id);
  }

  /** Remote and restored: gone. Built-in: back to its default name, no credentials. */
  delete(id: string): void {
    const i = this.sessionProfiles.findIndex((p) => p.id === id);
    if (i >= 0) this.sessionProfiles.splice(i, 1);
    this.profiles = this.profiles.filter((p) => p.id !== id);
    if (this.builtinOverrides[id]) {
      const { [id]: _gone, ...rest } = this.builtinOverrides;
      this.builtinOverrides = rest;
    }
    this.forgetPassword(id);
    this.forgetPassword(sshKey(id));
    this.flush();
  }

  /** The remote profiles to share: names, endpoints, user names, TLS and SSH settings; never a secret or a pinned key. */
  exportProfiles(): ProfilesExport {
    return {
      etcdeskProfiles: 1,
      profiles: this.profiles.map((p) => {
        const out: ExportedProfile = { name: p.name, endpoints: [...p.endpoints] };
        if (p.username) out.username = p.username;
        if (p.tls) out.tls = { ...p.tls };
        if (p.ssh) {
          const { hostKeySha256: _pinned, ...ssh } = p.ssh;
          out.ssh = ssh;
        }
        return out;
      }),
    };
  }

  /**
   * Adds the profiles of an exported document. A profile whose name is already
   * taken is skipped (named in the answer), so importing twice adds nothing.
   */
  importProfiles(text: string): { added: ConnectionProfile[]; skipped: string[] } {
    const doc = parseExport(text);
    const taken = new Set(this.list().map((p) => p.name));
    const added: ConnectionProfile[] = [];
    const skipped: string[] = [];
    for (const p of doc.profiles) {
      if (taken.has(p.name)) {
        skipped.push(p.name);
        continue;
      }
      taken.add(p.name);
      added.push(this.save({ id: '', name: p.name, kind: 'remote', endpoints: p.endpoints, username: p.username, tls: p.tls, ssh: p.ssh }));
    }
    return { added, skipped };
  }

  private flush(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    const data: FileShape = { profiles: this.profiles, builtins: this.builtinOverrides };
    fs.writeFileSync(tmp, JSON.stringify(data, null, 2), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
  }
}

function cleanSsh(s: SshTunnelConfig): SshTunnelConfig {
  const out: SshTunnelConfig = { host: s.host.trim(), username: s.username.trim() };
  if (s.port) out.port = s.port;
  if (s.keyFile?.trim()) out.keyFile = s.keyFile.trim();
  if (s.hostKeySha256) out.hostKeySha256 = s.hostKeySha256;
  return out;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const optStr = (v: unknown): boolean => v === undefined || isStr(v);

/** An exported document, checked field by field: a file from elsewhere is input like any other. */
export function parseExport(text: string): ProfilesExport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ContractError(-1, 'not a profiles file: it is not JSON');
  }
  const doc = raw as Partial<ProfilesExport> | null;
  if (!doc || typeof doc !== 'object' || doc.etcdeskProfiles !== 1 || !Array.isArray(doc.profiles))
    throw new ContractError(-1, 'not a profiles file: expected {"etcdeskProfiles": 1, "profiles": [...]} as Etcdesk exports it');
  doc.profiles.forEach((p: Partial<ExportedProfile> | null, i) => {
    const bad = (what: string): never => {
      throw new ContractError(-1, `profile ${i + 1}: ${what}`);
    };
    if (!p || typeof p !== 'object') bad('not an object');
    if (!isStr(p!.name) || !p!.name.trim()) bad('name is required');
    if (!Array.isArray(p!.endpoints) || !p!.endpoints.length || !p!.endpoints.every(isStr)) bad('endpoints must be a non-empty list of URLs');
    if (!optStr(p!.username)) bad('username must be a string');
    const t = p!.tls as Record<string, unknown> | undefined;
    if (t !== undefined && (typeof t !== 'object' || !['caFile', 'certFile', 'keyFile', 'serverName'].every((k) => optStr(t[k])) || !['undefined', 'boolean'].includes(typeof t.insecureSkipVerify)))
      bad('tls has a wrong field');
    const s = p!.ssh as Partial<SshTunnelConfig> | undefined;
    if (s !== undefined && (typeof s !== 'object' || !isStr(s.host) || !isStr(s.username) || !optStr(s.keyFile) || !(s.port === undefined || (Number.isInteger(s.port) && s.port > 0 && s.port < 65536))))
      bad('ssh needs host and username (port 1-65535, keyFile a path)');
    if ('password' in p! || 'sshSecret' in p!) bad('holds a secret: profiles files never carry passwords');
  });
  return doc as ProfilesExport;
}
