// Byte helpers that run in node and in the browser alike (no Buffer): the
// renderer needs them to turn typed text into the base64 the contract carries.

export function utf8ToB64(s: string): string {
  return bytesToB64(new TextEncoder().encode(s));
}

export function bytesToB64(b: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin);
}

export function b64ToBytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64ToUtf8(s: string): string {
  return new TextDecoder().decode(b64ToBytes(s));
}

/** Heuristic as in hex editors: invalid UTF-8 or control bytes other than tab/CR/LF mean binary. */
export function isBinary(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return true;
  }
  for (const c of b) if (c < 9 || (c > 13 && c < 32) || c === 127) return true;
  return false;
}

export function toHex(b: Uint8Array, max = 64 * 1024): string {
  const lines: string[] = [];
  const n = Math.min(b.length, max);
  for (let off = 0; off < n; off += 16) {
    const row = b.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (b.length > n) lines.push(`… ${b.length - n} more bytes`);
  return lines.join('\n');
}

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/^[0-9a-f]{8}  /gim, '').replace(/  .*$/gm, '').replace(/[^0-9a-f]/gi, '');
  if (clean.length % 2) throw new Error('odd number of hex digits');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}
