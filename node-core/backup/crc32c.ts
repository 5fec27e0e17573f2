// CRC-32C (Castagnoli), the checksum `etcdctl snapshot status` reports as a
// snapshot's hash; node's zlib only offers the IEEE polynomial.
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** Continues `crc` (0 to start) over `buf`, like Go's crc32.Update with the Castagnoli table. */
export function crc32c(crc: number, buf: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
