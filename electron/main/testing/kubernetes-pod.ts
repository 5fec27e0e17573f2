// Test data: Kubernetes objects in the protobuf envelope the API server writes
// to etcd, for the analyzer's decoder (unit tests and e2e).
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (no: number, v: Buffer | string): Buffer => {
  const bytes = typeof v === 'string' ? Buffer.from(v) : v;
  return Buffer.concat([varint(no * 8 + 2), varint(bytes.length), bytes]);
};
const vfield = (no: number, n: number): Buffer => Buffer.concat([varint(no * 8), varint(n)]);
const msg = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
/** A Pod as the API server stores it (protobuf in the `k8s\0` envelope); uid defaults to `uid-<name>`. */
export function k8sPod(name: string, ns: string, labels: Record<string, string>, uid = `uid-${name}`): Buffer {
  const meta = msg(
    field(1, name),
    field(3, ns),
    field(5, uid),
    ...Object.entries(labels).map(([k, v]) => field(11, msg(field(1, k), field(2, v)))),
    field(8, msg(vfield(1, 1_700_000_000))),
  );
  const spec = msg(field(2, msg(field(1, 'app'), field(2, 'nginx:1.25'))), vfield(4, 30));
  const raw = msg(field(1, meta), field(2, spec), field(3, msg(field(2, 'Running'))));
  return Buffer.concat([Buffer.from('k8s\0', 'latin1'), msg(field(1, msg(field(1, 'v1'), field(2, 'Pod'))), field(2, raw), field(3, ''), field(4, ''))]);
}
