// HPACK against RFC 7541 Appendix C: the decoder on every request and response example
// (with and without Huffman, evictions from a 256-octet table), the encoder on C.2's
// single-field forms and in round trips through the decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeHeaders, HpackDecoder, HpackError, huffmanDecode } from './hpack';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const pairs = (flat: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
};

interface Step {
  wire: string;
  headers: [string, string][];
  table: [string, string][];
  size: number;
}

function series(tableSize: number, steps: Step[]): void {
  const d = new HpackDecoder(tableSize);
  for (const [i, s] of steps.entries()) {
    assert.deepEqual(pairs(d.decode(hex(s.wire))), s.headers, `step ${i + 1} headers`);
    assert.deepEqual(d.table(), s.table, `step ${i + 1} dynamic table`);
    assert.equal(d.tableSize, s.size, `step ${i + 1} table size`);
  }
}

const REQ1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const REQ_TABLES: [string, string][][] = [
  [[':authority', 'www.example.com']],
  [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
  [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
];

test('C.3: requests without Huffman share one dynamic table', () => {
  series(4096, [
    { wire: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: REQ1, table: REQ_TABLES[0], size: 57 },
    { wire: '8286 84be 5808 6e6f 2d63 6163 6865', headers: REQ2, table: REQ_TABLES[1], size: 110 },
    { wire: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', headers: REQ3, table: REQ_TABLES[2], size: 164 },
  ]);
});

test('C.4: requests with Huffman-coded strings', () => {
  series(4096, [
    { wire: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: REQ1, table: REQ_TABLES[0], size: 57 },
    { wire: '8286 84be 5886 a8eb 1064 9cbf', headers: REQ2, table: REQ_TABLES[1], size: 110 },
    { wire: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', headers: REQ3, table: REQ_TABLES[2], size: 164 },
  ]);
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RESP1: [string, string][] = [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RESP2: [string, string][] = [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RESP3: [string, string][] = [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOC], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];
const RESP_TABLES: [string, string][][] = [
  [['location', LOC], ['date', DATE1], ['cache-control', 'private'], [':status', '302']],
  [[':status', '307'], ['location', LOC], ['date', DATE1], ['cache-control', 'private']],
  [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]],
];

test('C.5: responses without Huffman evict from a 256-octet table', () => {
  series(256, [
    {
      wire: `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      headers: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { wire: '4803 3330 37c1 c0bf', headers: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      wire: `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      headers: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

test('C.6: responses with Huffman evict the same entries', () => {
  series(256, [
    {
      wire: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      headers: RESP1,
      table: RESP_TABLES[0],
      size: 222,
    },
    { wire: '4883 640e ffc1 c0bf', headers: RESP2, table: RESP_TABLES[1], size: 222 },
    {
      wire: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      headers: RESP3,
      table: RESP_TABLES[2],
      size: 215,
    },
  ]);
});

test('encoder: C.2.2 literal without indexing and C.2.4 indexed field, byte for byte', () => {
  assert.equal(encodeHeaders([':path', '/sample/path']).toString('hex'), '040c2f73616d706c652f70617468');
  assert.equal(encodeHeaders([':method', 'GET']).toString('hex'), '82');
});

test('encoder: the C.5 responses (and gRPC trailers) round-trip through a decoder, leaving its table empty', () => {
  const d = new HpackDecoder(256);
  for (const list of [RESP1, RESP2, RESP3, [['grpc-status', '0'], ['grpc-message', 'a%20b']] as [string, string][]]) {
    const block = encodeHeaders(list.flat());
    assert.deepEqual(pairs(d.decode(block)), list);
    assert.equal(d.tableSize, 0, 'the encoder never indexes: no peer table size can be exceeded');
  }
  // a record input, names lowercased as HTTP/2 requires
  assert.deepEqual(pairs(new HpackDecoder().decode(encodeHeaders({ 'Content-Type': 'application/grpc', ':status': 200 }))), [
    ['content-type', 'application/grpc'],
    [':status', '200'],
  ]);
});

test('Huffman: every byte value round-trips through the RFC code table; bad padding and EOS are refused', () => {
  // encode all 256 octets with the table itself, then decode
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const enc = huffmanEncodeForTest(all);
  assert.equal(huffmanDecode(enc, 0, enc.length), all.toString('latin1'));
  for (const bad of [[0xff], [0x1f, 0xff], [0x1f, 0xff, 0xff, 0xff], [0xff, 0x9f, 0xff, 0xff, 0xff], [0x52, 0xbc, 0x30, 0xff, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xff]]) {
    const b = Buffer.from(bad);
    assert.throws(() => huffmanDecode(b, 0, b.length), HpackError, `refused: ${b.toString('hex')}`);
  }
  // padding of zeros instead of ones ("a" is 00011, then 000 padding)
  assert.throws(() => huffmanDecode(Buffer.from([0x18]), 0, 1), HpackError);
});

test('decoder: malformed blocks throw HpackError (the connection answers COMPRESSION_ERROR)', () => {
  const cases = ['80', 'be', '3fe21f', '0f', '040c2f73', '7fffffffffffff7f'];
  for (const c of cases) assert.throws(() => new HpackDecoder().decode(hex(c)), HpackError, c);
  // a size update is allowed only before the first field
  assert.throws(() => new HpackDecoder().decode(hex('82 20')), HpackError);
  assert.deepEqual(new HpackDecoder().decode(hex('20 82')), [':method', 'GET']);
});

/** The test's own Huffman encoder (the server never Huffman-encodes): BigInt bit packing, EOS-prefix padding. */
function huffmanEncodeForTest(src: Buffer): Buffer {
  let bits = 0n;
  let n = 0;
  for (const c of src) {
    bits = (bits << BigInt(HUFFMAN_LENGTHS[c])) | BigInt(HUFFMAN_CODES[c]);
    n += HUFFMAN_LENGTHS[c];
  }
  const pad = (8 - (n % 8)) % 8;
  bits = (bits << BigInt(pad)) | ((1n << BigInt(pad)) - 1n);
  n += pad;
  const out = Buffer.alloc(n / 8);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(bits & 0xffn);
    bits >>= 8n;
  }
  return out;
}
