// Where saved passwords live. Electron: encrypted with the OS keychain
// (safeStorage) in secrets.json. The browser shell has no keychain: a 0600
// file in the data folder, as etcdctl users keep credentials in a private
// file. Neither available: memory, for this session only. connections.json
// never holds a password.
import fs from 'node:fs';
import path from 'node:path';

export type SecretStoreKind = 'keychain' | 'file' | 'session';

export interface SecretStore {
  /** Where a password saved now would go. */
  readonly kind: SecretStoreKind;
  get(id: string): string | undefined;
  set(id: string, secret: string): void;
  delete(id: string): void;
}

/** The part of Electron's safeStorage used here (injected: tests pass a fake). */
export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plain: string): Buffer;
  decryptString(encrypted: Buffer): string;
}

function readJson(file: string): Record<string, string> {
  try {
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (!raw || typeof raw !== 'object') return {};
    return Object.fromEntries(Object.entries(raw as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

/** Written whole to a 0600 temp file and renamed over: never a moment where others can read it. */
function writePrivate(file: string, data: Record<string, string>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(data, null, 2), { mode: 0o600 });
  fs.chmodSync(tmp, 0o600); // an old tmp file keeps its mode through writeFileSync
  fs.renameSync(tmp, file);
}

export class SessionSecrets implements SecretStore {
  readonly kind: SecretStoreKind = 'session';
  private readonly map = new Map<string, string>();
  get(id: string): string | undefined {
    return this.map.get(id);
  }
  set(id: string, secret: string): void {
    this.map.set(id, secret);
  }
  delete(id: string): void {
    this.map.delete(id);
  }
}

/** Electron: each secret encrypted by safeStorage, stored base64 in a 0600 file. */
export class KeychainSecrets implements SecretStore {
  private readonly fallback = new SessionSecrets();

  constructor(
    private readonly file: string,
    private readonly safe: SafeStorageLike,
  ) {}

  get kind(): SecretStoreKind {
    return this.safe.isEncryptionAvailable() ? 'keychain' : 'session';
  }

  get(id: string): string | undefined {
    const mem = this.fallback.get(id);
    if (mem !== undefined) return mem;
    const stored = readJson(this.file)[id];
    if (stored === undefined || !this.safe.isEncryptionAvailable()) return undefined;
    try {
      return this.safe.decryptString(Buffer.from(stored, 'base64'));
    } catch {
      return undefined; // another user's or machine's keychain: as if none were saved
    }
  }

  set(id: string, secret: string): void {
    if (!this.safe.isEncryptionAvailable()) {
      this.fallback.set(id, secret);
      return;
    }
    this.fallback.delete(id);
    writePrivate(this.file, { ...readJson(this.file), [id]: this.safe.encryptString(secret).toString('base64') });
  }

  delete(id: string): void {
    this.fallback.delete(id);
    const all = readJson(this.file);
    if (!(id in all)) return;
    delete all[id];
    writePrivate(this.file, all);
  }
}

/** The browser shell: plain text in a file only its owner can read (0600). */
export class FileSecrets implements SecretStore {
  readonly kind: SecretStoreKind = 'file';

  constructor(private readonly file: string) {}

  get(id: string): string | undefined {
    return readJson(this.file)[id];
  }

  set(id: string, secret: string): void {
    writePrivate(this.file, { ...readJson(this.file), [id]: secret });
  }

  delete(id: string): void {
    const all = readJson(this.file);
    if (!(id in all)) return;
    delete all[id];
    writePrivate(this.file, all);
  }
}
