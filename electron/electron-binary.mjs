// Where Electron's binary is, or null when the package was installed without
// it (ELECTRON_SKIP_BINARY_DOWNLOAD=1): `npm start` and the e2e runner decide
// between the desktop app and the browser shell with this.
import fs from 'node:fs';
import { createRequire } from 'node:module';

export function electronBinary() {
  try {
    const p = createRequire(import.meta.url)('electron');
    return typeof p === 'string' && fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}
