// Value views: the same bytes as text, pretty JSON, YAML, hex dump or base64,
// each with its own parse/validate so the editor saves exactly what it shows.
import { load as yamlLoad } from 'js-yaml';
import { b64ToBytes, bytesToB64, fromHex, isBinary, toHex } from '../../../electron/contract/index';

export type ValueMode = 'text' | 'json' | 'yaml' | 'hex' | 'base64';
export const VALUE_MODES: ValueMode[] = ['text', 'json', 'yaml', 'hex', 'base64'];

const dec = new TextDecoder();
const enc = new TextEncoder();

export function guessMode(bytes: Uint8Array): ValueMode {
  if (isBinary(bytes)) return 'hex';
  const s = dec.decode(bytes).trim();
  if ((s.startsWith('{') || s.startsWith('[')) && validJson(s)) return 'json';
  if (looksLikeYaml(s)) return 'yaml';
  return 'text';
}

/** YAML only when it has structure: a mapping or list over several lines (a bare "a: b" stays text). */
export function looksLikeYaml(s: string): boolean {
  const lines = s.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  if (lines.length < 2 && !s.startsWith('---')) return false;
  if (!lines.every((l) => /^\s*(- |-$|[^\s:#][^:]*:(\s|$)|\s+\S|---|\.\.\.)/.test(l))) return false;
  try {
    const v: unknown = yamlLoad(s);
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
}

function validJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

export function render(bytes: Uint8Array, mode: ValueMode): string {
  switch (mode) {
    case 'text':
    case 'yaml':
      return dec.decode(bytes);
    case 'json': {
      const s = dec.decode(bytes);
      try {
        return JSON.stringify(JSON.parse(s), null, 2);
      } catch {
        return s;
      }
    }
    case 'hex':
      return toHex(bytes, Number.MAX_SAFE_INTEGER);
    case 'base64':
      return bytesToB64(bytes);
  }
}

/** null when the text is valid for the mode, else why not. */
export function validate(text: string, mode: ValueMode): string | null {
  try {
    parse(text, mode);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export function parse(text: string, mode: ValueMode): Uint8Array {
  switch (mode) {
    case 'text':
      return enc.encode(text);
    case 'json':
      JSON.parse(text);
      return enc.encode(text);
    case 'yaml':
      yamlLoad(text);
      return enc.encode(text);
    case 'hex':
      return fromHex(text);
    case 'base64': {
      const clean = text.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) throw new Error('not valid base64');
      return b64ToBytes(clean);
    }
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
