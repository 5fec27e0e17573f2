// Allocation of the small buffers every write hands to the backend (the
// encoded KeyValue and its revision key). Node's own pool makes a fresh 8 KiB
// ArrayBuffer every few writes, which showed up as a large share of a put;
// carving from bigger slabs makes that rare. A slab is never written twice:
// lmdb-js keeps a pointer to the value until its batch commits, so handed-out
// bytes must stay untouched, and they are only ever appended after.
// Watch events keep views into a slab (their key and value), so a slab is
// as large as it is worth and no larger: one retained event pins all of it.

const SLAB_SIZE = 64 * 1024;
const MAX_CARVED = 4096;

let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let used = 0;

export function slabAlloc(n: number): Buffer {
  if (n > MAX_CARVED) return Buffer.allocUnsafeSlow(n);
  if (used + n > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    used = 0;
  }
  const b = slab.subarray(used, used + n);
  used += n;
  return b;
}
