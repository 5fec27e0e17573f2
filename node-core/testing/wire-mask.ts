// Compares marshalled etcd responses byte for byte, with only what differs by
// nature between two servers masked at its known position: the response
// header's cluster_id (field 1) and member_id (field 2), whose varints differ
// in value and so in length (the header's length prefix with them).

function readVarint(b: Buffer, at: number): { value: bigint; end: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < b.length; i++) {
    value |= BigInt(b[i] & 0x7f) << shift;
    if ((b[i] & 0x80) === 0) return { value, end: i + 1 };
    shift += 7n;
  }
  throw new Error(`truncated varint at ${at}`);
}

/** One field's raw bytes (tag included), its number and wire type. */
interface RawField {
  num: number;
  wire: number;
  start: number;
  valueStart: number;
  end: number;
}

function fields(b: Buffer): RawField[] {
  const out: RawField[] = [];
  let at = 0;
  while (at < b.length) {
    const start = at;
    const tag = readVarint(b, at);
    const num = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    at = tag.end;
    let valueStart = at;
    if (wire === 0) at = readVarint(b, at).end;
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const len = readVarint(b, at);
      valueStart = len.end;
      at = len.end + Number(len.value);
    } else throw new Error(`unexpected wire type ${wire} at ${start}`);
    if (at > b.length) throw new Error(`field ${num} runs past the end`);
    out.push({ num, wire, start, valueStart, end: at });
  }
  return out;
}

/**
 * The message as hex, field by field, with the header's (field 1's) cluster_id and member_id
 * replaced by <cluster_id>/<member_id> and its length prefix by <len>. Everything else (field
 * order, defaults written or left out, unknown fields, the raft term) stays as sent.
 */
export function maskHeaderIds(msg: Buffer): string {
  return fields(msg)
    .map((f) => {
      if (f.num !== 1 || f.wire !== 2) return msg.subarray(f.start, f.end).toString('hex');
      const inner = msg.subarray(f.valueStart, f.end);
      const masked = fields(inner)
        .map((g) => (g.wire === 0 && (g.num === 1 || g.num === 2) ? (g.num === 1 ? '08<cluster_id>' : '10<member_id>') : inner.subarray(g.start, g.end).toString('hex')))
        .join(' ');
      return `0a<len>[${masked}]`;
    })
    .join(' ');
}
