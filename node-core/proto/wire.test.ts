// The protobuf reader and writer (wire.ts and the generated codecs): every input gets etcd's
// answer — the value its gogoproto Unmarshal reads, or its error text — and nothing else ever
// escapes (no RangeError, no stack overflow). The error texts here are etcd 3.4's own, checked
// against a running etcd by server/wire-compat.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeCompare,
  decodeLeaseGrantRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeRequestOp,
  decodeTxnRequest,
  decodeWatchCreateRequest,
  decodeAuthRoleGrantPermissionRequest,
  encodeLeaseGrantRequest,
  encodeRangeRequest,
  encodeTxnRequest,
  encodeWatchCreateRequest,
  decodeLeaseKeepAliveRequest,
  RangeRequest_SortOrder,
  WatchCreateRequest_FilterType,
  type TxnRequestInit,
} from './gen/etcdserverpb';
import { decodeConfState, encodeConfState } from './gen/raftpb';
import { decodeKeyValue, encodeKeyValue } from './gen/mvccpb';
import { ProtoDecodeError, Reader, Writer } from './wire';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** The decoder's error text, or null when it decodes. Anything but a ProtoDecodeError fails the test. */
function refusal(decode: (b: Buffer) => unknown, bytes: Buffer): string | null {
  try {
    decode(bytes);
    return null;
  } catch (e) {
    if (!(e instanceof ProtoDecodeError)) throw new Error(`not a ProtoDecodeError for ${bytes.toString('hex')}: ${String(e)}`);
    return e.message;
  }
}

describe('protobuf reader: unknown fields', () => {
  // RangeRequest{key: "foo"} followed by field 100 of each wire type
  const cases: [string, string][] = [
    ['varint', 'a006 01'],
    ['10-byte negative varint', 'a006 ffffffffffffffffff01'],
    ['fixed64', 'a106 0102030405060708'],
    ['length-delimited', '9a06 03 78797a'],
    ['empty length-delimited', '9a06 00'],
    ['fixed32', 'a506 01020304'],
    ['group with fields inside', 'a306 a806 0a 9a06 01 78 a406'],
    ['nested groups', 'a306 a306 a406 a406'],
    ['group closed by another field number (gogoproto does not match them)', 'a306 ac06'],
    ['field number 2^29 - 1', 'f8ffffff0f 01'],
  ];
  for (const [what, unknown] of cases) {
    it(`skips ${what}, before and after the known fields`, () => {
      const want = decodeRangeRequest(hex('0a03666f6f 1805'));
      assert.equal(want.key.toString(), 'foo');
      assert.equal(want.limit, 5);
      assert.deepEqual(decodeRangeRequest(hex(`0a03666f6f ${unknown} 1805`)), want);
      assert.deepEqual(decodeRangeRequest(hex(`${unknown} 0a03666f6f 1805`)), want);
      assert.deepEqual(decodeRangeRequest(hex(`0a03666f6f 1805 ${unknown}`)), want);
    });
  }

  it('skips unknown fields inside sub-messages, and sub-messages inside unknown fields', () => {
    // Txn{compare: [{key "a", unknown 100 = 1, version 3}], success: [{request_range {key "a"}}]}
    const t = decodeTxnRequest(hex('0a08 1a0161 a00601 2003  1205 0a03 0a0161'));
    assert.equal(t.compare.length, 1);
    assert.equal(t.compare[0].key.toString(), 'a');
    assert.equal(t.compare[0].version, 3);
    assert.equal(t.success[0].request_range?.key.toString(), 'a');
    // a whole TxnRequest carried in an unknown field of a RangeRequest
    const inner = encodeTxnRequest({ compare: [{ key: Buffer.from('k'), version: 1 }] });
    const w = new Writer();
    w.uint32((100 << 3) | 2);
    w.bytes(inner);
    assert.equal(decodeRangeRequest(Buffer.concat([hex('0a0161'), w.finish()])).key.toString(), 'a');
  });

  it('a deep nest of unknown groups neither overflows the stack nor is refused', () => {
    const depth = 200_000;
    const open = Buffer.alloc(depth * 2, hex('a306'));
    const close = Buffer.alloc(depth * 2, hex('a406'));
    assert.equal(decodeRangeRequest(Buffer.concat([hex('0a0161'), open, close])).key.toString(), 'a');
    assert.equal(refusal(decodeRangeRequest, Buffer.concat([hex('0a0161'), open])), 'unexpected EOF');
  });
});

describe('protobuf reader: malformed input gets etcd 3.4 text', () => {
  const cases: [string, (b: Buffer) => unknown, string, string][] = [
    ['end group at top level', decodeRangeRequest, '0a03666f6f a406', 'proto: RangeRequest: wiretype end group for non-group'],
    ['end group of field 0', decodeRangeRequest, '04', 'proto: RangeRequest: wiretype end group for non-group'],
    ['illegal wire type 6 (unknown field)', decodeRangeRequest, '0a03666f6f a606', 'proto: illegal wireType 6'],
    ['illegal wire type 7 inside a group', decodeRangeRequest, 'a306 a706', 'proto: illegal wireType 7'],
    ['field 0', decodeRangeRequest, '0001', 'proto: RangeRequest: illegal tag 0 (wire type 0)'],
    ['field 0, wire type 7', decodeRangeRequest, '07', 'proto: RangeRequest: illegal tag 0 (wire type 7)'],
    ['field number negative as Go int32', decodeRangeRequest, 'f8ffffff7f 01', 'proto: RangeRequest: illegal tag -1 (wire type 34359738360)'],
    ['known bytes field as fixed64', decodePutRequest, '09 0000000000000000', 'proto: wrong wireType = 1 for field Key'],
    ['known bytes field as varint', decodePutRequest, '0801', 'proto: wrong wireType = 0 for field Key'],
    ['known bytes field as a group', decodeRangeRequest, '0b', 'proto: wrong wireType = 3 for field Key'],
    ['known bytes field with wire type 6', decodeRangeRequest, '0e', 'proto: wrong wireType = 6 for field Key'],
    ['known int64 as length-delimited', decodeRangeRequest, '1a00', 'proto: wrong wireType = 2 for field Limit'],
    ['known int64 as fixed32', decodeLeaseGrantRequest, '0d00000000', 'proto: wrong wireType = 5 for field TTL'],
    ['known sub-message as varint', decodeRequestOp, '0801', 'proto: wrong wireType = 0 for field RequestRange'],
    ['known repeated enum as fixed64', decodeWatchCreateRequest, '29 0000000000000000', 'proto: wrong wireType = 1 for field Filters'],
    ['error inside a sub-message names it', decodeTxnRequest, '1204 1202 0000', 'proto: PutRequest: illegal tag 0 (wire type 0)'],
    ['end group inside a sub-message', decodeTxnRequest, '0a02 0c00', 'proto: Compare: wiretype end group for non-group'],
    ['length past the end', decodeRangeRequest, '0a05 666f6f', 'unexpected EOF'],
    ['length 2^32 + 3 (not read as 3)', decodeRangeRequest, '0a8380808010 666f6f', 'unexpected EOF'],
    ['length 2^32 - 1', decodeRangeRequest, '0affffffff0f 666f6f', 'unexpected EOF'],
    ['length negative', decodeRangeRequest, '0affffffffffffffffff01', 'proto: negative length found during unmarshaling'],
    ['length 2^63 - 1 (etcd 3.4 panics; 3.5 answers this)', decodeRangeRequest, '0affffffffffffffff7f', 'proto: negative length found during unmarshaling'],
    ['unknown field length past the end', decodeRangeRequest, '9a06 05 787a', 'unexpected EOF'],
    ['unknown field length negative', decodeRangeRequest, '9a06 ffffffffffffffffff01', 'proto: negative length found during unmarshaling'],
    ['unknown field length 2^32', decodeRangeRequest, '9a06 8080808010 78', 'unexpected EOF'],
    ['unknown fixed64 truncated', decodeRangeRequest, 'a106 01020304', 'unexpected EOF'],
    ['unknown fixed32 truncated', decodeRangeRequest, 'a506 0102', 'unexpected EOF'],
    ['unknown group never closed', decodeRangeRequest, 'a306 a00601', 'unexpected EOF'],
    ['bytes past the sub-message end (though inside the buffer)', decodeTxnRequest, '0a04 1a05 666f6f 666f6f', 'unexpected EOF'],
    ['varint past the sub-message end', decodeTxnRequest, '0a01 20 01', 'unexpected EOF'],
    ['sub-message length past the end', decodeTxnRequest, '0a05 1a01', 'unexpected EOF'],
    ['varint of 11 bytes', decodeRangeRequest, '20 ffffffffffffffffffff01', 'proto: integer overflow'],
    ['10 continuation bytes, then the end (overflow is checked first)', decodeRangeRequest, '20 ffffffffffffffffffff', 'proto: integer overflow'],
    ['unknown varint of 11 bytes', decodeRangeRequest, 'a006 ffffffffffffffffffff01', 'proto: integer overflow'],
    ['tag of 11 bytes', decodeRangeRequest, '8a80808080808080808001', 'proto: integer overflow'],
    ['length of 11 bytes', decodeRangeRequest, '0a ffffffffffffffffffff01', 'proto: integer overflow'],
    ['truncated varint', decodeRangeRequest, '20ff', 'unexpected EOF'],
    ['truncated tag', decodeRangeRequest, 'ff', 'unexpected EOF'],
    ['truncated packed run', decodeWatchCreateRequest, '2a03 0001', 'unexpected EOF'],
    ['bigint field truncated', decodeLeaseKeepAliveRequest, '08ff', 'unexpected EOF'],
  ];
  for (const [what, decode, bytes, text] of cases) {
    it(what, () => assert.equal(refusal(decode, hex(bytes)), text));
  }

  it('a cut anywhere in a nested message is refused with etcd text, or is a shorter valid message', () => {
    const full = encodeTxnRequest({
      compare: [{ key: Buffer.from('key'), range_end: Buffer.from('kez'), target: 3, mod_revision: 1234567, result: 2 }],
      success: [
        { request_put: { key: Buffer.from('k'), value: Buffer.alloc(300, 1), lease: -5n, prev_kv: true } },
        { request_txn: { success: [{ request_delete_range: { key: Buffer.from('d'), range_end: Buffer.from('e') } }] } },
      ],
      failure: [{ request_range: { key: Buffer.from('r'), limit: -1, revision: 2 ** 60, sort_order: RangeRequest_SortOrder.DESCEND } }],
    });
    let refused = 0;
    for (let n = 0; n < full.length; n++) {
      const text = refusal(decodeTxnRequest, full.subarray(0, n));
      if (text !== null) {
        refused++;
        assert.match(text, /^(unexpected EOF|proto: .*)$/);
      }
    }
    assert.ok(refused > full.length - 10, `${refused} of ${full.length} cuts refused`);
  });

  it('random bytes never throw anything but a ProtoDecodeError', () => {
    let seed = 0x2545f491;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const decoders = [decodeTxnRequest, decodeRangeRequest, decodeWatchCreateRequest, decodeAuthRoleGrantPermissionRequest, decodeConfState, decodeKeyValue];
    for (let i = 0; i < 5_000; i++) {
      const b = Buffer.alloc(1 + Math.floor(rnd() * 40));
      for (let j = 0; j < b.length; j++) b[j] = rnd() < 0.3 ? [0x0a, 0x12, 0x1a, 0xa3, 0xa4, 0xff, 0x80][Math.floor(rnd() * 7)] : Math.floor(rnd() * 256);
      for (const d of decoders) refusal(d, b);
    }
  });
});

describe('protobuf reader: values as Go reads them', () => {
  it('10-byte negative varints: int64, int32 and enums', () => {
    const r = decodeRangeRequest(hex('18 ffffffffffffffffff01 20 feffffffffffffffff01 28 ffffffffffffffffff01'));
    assert.equal(r.limit, -1);
    assert.equal(r.revision, -2);
    assert.equal(r.sort_order, -1);
    const bytes = encodeRangeRequest({ limit: -1, sort_order: -1 as RangeRequest_SortOrder });
    assert.equal(bytes.toString('hex'), '18ffffffffffffffffff0128ffffffffffffffffff01');
    assert.equal(decodeKeyValue(encodeKeyValue({ lease: -1n })).lease, -1n);
    assert.equal(encodeKeyValue({ lease: -1n }).toString('hex'), '30ffffffffffffffffff01');
  });

  it('bits beyond 64 in a 10th varint byte are dropped, as Go', () => {
    // 10th byte 0x7f: only its lowest bit lands (bit 63)
    assert.equal(decodeLeaseKeepAliveRequest(hex('08 808080808080808080 7f')).ID, -(1n << 63n));
    assert.equal(decodeRangeRequest(hex('38 808080808080808080 7e')).serializable, false);
    assert.equal(decodeRangeRequest(hex('38 02')).serializable, true);
  });

  it('int64 beyond 2^53 keeps its order and never wraps when written again', () => {
    const max = decodeLeaseGrantRequest(hex('08 ffffffffffffffff7f')).TTL; // 2^63 - 1
    assert.ok(max > 9_000_000_000);
    assert.equal(encodeLeaseGrantRequest({ TTL: max }).toString('hex'), '08ffffffffffffffff7f');
    const min = decodeLeaseGrantRequest(hex('08 80808080808080808001')).TTL; // -2^63
    assert.equal(min, -(2 ** 63));
    assert.equal(encodeLeaseGrantRequest({ TTL: min }).toString('hex'), '0880808080808080808001');
    const big = decodeLeaseGrantRequest(hex('08 8180808080808010')).TTL; // 2^53 + 1
    assert.ok(big >= 2 ** 53);
    assert.equal(encodeLeaseGrantRequest({ TTL: 2 ** 60 }).toString('hex'), '08808080808080808010');
    assert.equal(encodeLeaseGrantRequest({ TTL: Infinity }).toString('hex'), '08ffffffffffffffff7f');
    assert.equal(encodeLeaseGrantRequest({ TTL: -Infinity }).toString('hex'), '0880808080808080808001');
  });

  it('uint64 up to 2^64 - 1, as a number and as a bigint', () => {
    const w = new Writer();
    w.uint64(2 ** 64);
    w.uint64(2 ** 63);
    w.uint64(2 ** 63);
    const r = new Reader(w.finish());
    assert.equal(r.biguint64(), 2n ** 64n - 1n);
    assert.equal(r.biguint64(), 2n ** 63n);
    assert.equal(r.uint64(), 2 ** 63);
    assert.equal(decodeConfState(encodeConfState({ voters: [2n ** 64n - 1n, 1n] })).voters[0], 2n ** 64n - 1n);
  });

  it('repeated scalars packed and unpacked, mixed', () => {
    const F = WatchCreateRequest_FilterType;
    assert.deepEqual(decodeWatchCreateRequest(hex('2a02 0001')).filters, [F.NOPUT, F.NODELETE]);
    assert.deepEqual(decodeWatchCreateRequest(hex('2800 2801')).filters, [F.NOPUT, F.NODELETE]);
    assert.deepEqual(decodeWatchCreateRequest(hex('2801 2a02 0100 2800')).filters, [1, 1, 0, 0]);
    assert.deepEqual(decodeWatchCreateRequest(encodeWatchCreateRequest({ filters: [F.NODELETE, F.NOPUT] })).filters, [1, 0]);
    assert.deepEqual(decodeConfState(hex('08 01 08 ffffffffffffffffff01 0a02 0203')).voters, [1n, 2n ** 64n - 1n, 2n, 3n]);
    // a packed element may run past its run (gogoproto bounds it by the message): read on from there
    assert.deepEqual(decodeWatchCreateRequest(hex('2a01 80 01')).filters, [128]);
  });

  it('a oneof keeps its last member; a repeated singular sub-message merges', () => {
    const op = decodeRequestOp(hex('0a03 0a0161 1203 0a0162'));
    assert.equal(op.request_range, undefined);
    assert.equal(op.request_put?.key.toString(), 'b');
    const c = decodeCompare(hex('3a0176 2005')); // value then version: version wins
    assert.equal(c.value, undefined);
    assert.equal(c.version, 5);
    // perm {permType WRITE} then perm {key "k"}: one permission with both, as Go's Unmarshal into the same struct
    const g = decodeAuthRoleGrantPermissionRequest(hex('0a0172 1202 0801 1203 12016b'));
    assert.equal(g.perm?.permType, 1);
    assert.equal(g.perm?.key.toString(), 'k');
  });

  it('long sub-messages (length prefixes of 2 and 3 bytes) round-trip', () => {
    const t: TxnRequestInit = {
      success: [{ request_put: { key: Buffer.from('a'), value: Buffer.alloc(200, 7) } }, { request_put: { key: Buffer.from('b'), value: Buffer.alloc(20_000, 8) } }],
    };
    const d = decodeTxnRequest(encodeTxnRequest(t));
    assert.equal(d.success[0].request_put?.value.length, 200);
    assert.equal(d.success[1].request_put?.value.length, 20_000);
    assert.equal(d.success[1].request_put?.key.toString(), 'b');
  });
});
