// CRC-32C (Castagnoli), as Go's crc32.New(crc32.MakeTable(crc32.Castagnoli)),
// which etcd's HashKV, Hash and `snapshot status` use (node's zlib has only IEEE). Slicing-by-8 tables: hashKV runs over the whole
// key bucket, so byte-at-a-time would dominate it.

const POLY = 0x82f63b78;
const T = new Int32Array(8 * 256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) {
    const prev = T[(s - 1) * 256 + i];
    T[s * 256 + i] = (prev >>> 8) ^ T[prev & 0xff];
  }
}

/** Streaming CRC-32C: update() with each chunk, sum() for the value. */
export class Crc32c {
  private crc: number;

  /** `start`: a previous sum to continue from (Go's crc32.Update), 0 for a new one. */
  constructor(start = 0) {
    this.crc = ~start;
  }

  update(b: Uint8Array): void {
    let c = this.crc;
    let i = 0;
    const n = b.length;
    const n8 = n - (n & 7);
    for (; i < n8; i += 8) {
      const lo = c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
      c =
        T[7 * 256 + (lo & 0xff)] ^
        T[6 * 256 + ((lo >>> 8) & 0xff)] ^
        T[5 * 256 + ((lo >>> 16) & 0xff)] ^
        T[4 * 256 + (lo >>> 24)] ^
        T[3 * 256 + b[i + 4]] ^
        T[2 * 256 + b[i + 5]] ^
        T[256 + b[i + 6]] ^
        T[b[i + 7]];
    }
    for (; i < n; i++) c = (c >>> 8) ^ T[(c ^ b[i]) & 0xff];
    this.crc = c;
  }

  sum(): number {
    return ~this.crc >>> 0;
  }
}

export function crc32c(b: Uint8Array): number {
  return crc32cUpdate(0, b);
}

/** Continues `crc` (0 to start) over `b`, like Go's crc32.Update with the Castagnoli table. */
export function crc32cUpdate(crc: number, b: Uint8Array): number {
  const h = new Crc32c(crc);
  h.update(b);
  return h.sum();
}
