// Raw protobuf requests, well-formed and not, sent as gRPC frames to real etcd 3.4 and to
// etcdesk-node side by side: the same status code and message for every byte string (unknown
// fields of every wire type, wrong wire types, truncations, oversized lengths and varints,
// 64-bit values beyond 2^53). Each case's bytes are hex; comments say what they hold.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { unmarshalStatus } from './grpc-status';
import { decodeLeaseGrantResponse, decodeRangeResponse, decodeTxnResponse, KVService, LeaseService, MaintenanceService, WatchService } from '../proto/gen/etcdserverpb';
import { ProtoDecodeError } from '../proto/wire';
import { hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';

interface Answer {
  code: number;
  message: string;
  body: Buffer;
}

const frame = (b: Buffer): Buffer => {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(b.length, 1);
  return Buffer.concat([h, b]);
};

/**
 * One request message on a fresh connection. A stream's request side stays open: the answer is
 * the status the server ends it with, or code 0 once a first response message arrives.
 */
function call(url: string, path: string, msg: Buffer, stream: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(url);
    c.on('error', reject);
    const s = c.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let code = -1;
    let message = '';
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
    };
    s.on('response', take);
    s.on('trailers', take);
    const done = (): void => {
      c.destroy();
      const all = Buffer.concat(chunks);
      resolve({ code, message: code === 0 && message === 'OK' ? '' : message, body: all.subarray(5) });
    };
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (stream && all.length >= 5 && all.length >= 5 + all.readUInt32BE(1)) {
        code = 0;
        done();
      }
    });
    s.on('end', done);
    s.on('error', reject);
    if (stream) s.write(frame(msg));
    else s.end(frame(msg));
  });
}

// [what, method path, request hex]
const CASES: [string, string, string][] = [
  // unknown fields (field 100) after key "foo": etcd skips every wire type
  ['unknown length-delimited field', '/etcdserverpb.KV/Range', '0a03666f6f9a060378797a'],
  ['unknown varint field', '/etcdserverpb.KV/Range', '0a03666f6fa00601'],
  ['unknown 10-byte negative varint field', '/etcdserverpb.KV/Range', '0a03666f6fa006ffffffffffffffffff01'],
  ['unknown fixed64 field', '/etcdserverpb.KV/Range', '0a03666f6fa1060102030405060708'],
  ['unknown fixed32 field', '/etcdserverpb.KV/Range', '0a03666f6fa50601020304'],
  ['unknown group (with a field inside)', '/etcdserverpb.KV/Range', '0a03666f6fa306a8060aa406'],
  ['unknown group closed by another field number', '/etcdserverpb.KV/Range', '0a03666f6fa306ac06'],
  ['unknown nested groups', '/etcdserverpb.KV/Range', '0a03666f6fa306a306a406a406'],
  ['unknown field in a txn compare', '/etcdserverpb.KV/Txn', '0a081a03666f6fa00601' + '12050a030a0161'],
  ['unknown field beyond 2^28', '/etcdserverpb.KV/Range', '0a03666f6ff8ffffff0f01'],
  ['tag as an overlong 10-byte varint (field 1)', '/etcdserverpb.KV/Range', '8a8080808080808080010100'],
  // malformed
  ['end group at top level', '/etcdserverpb.KV/Range', '0a03666f6fa406'],
  ['end group, field 0', '/etcdserverpb.KV/Range', '04'],
  ['wire type 6', '/etcdserverpb.KV/Range', '0a03666f6fa606'],
  ['wire type 7 inside an unknown group', '/etcdserverpb.KV/Range', '0a03666f6fa306a706'],
  ['field 0', '/etcdserverpb.KV/Range', '0001'],
  ['field 0, wire type 7', '/etcdserverpb.KV/Range', '07'],
  ['field number negative as int32', '/etcdserverpb.KV/Range', '0a03666f6ff8ffffff7f01'],
  ['put key as fixed64', '/etcdserverpb.KV/Put', '090000000000000000'],
  ['put key as varint', '/etcdserverpb.KV/Put', '0801'],
  ['range key as group start', '/etcdserverpb.KV/Range', '0b'],
  ['range limit length-delimited', '/etcdserverpb.KV/Range', '1a00'],
  ['lease revoke ID length-delimited', '/etcdserverpb.Lease/LeaseRevoke', '0a00'],
  ['txn request_range as varint', '/etcdserverpb.KV/Txn', '12020801'],
  ['field 0 inside a txn put', '/etcdserverpb.KV/Txn', '120412020000'],
  ['end group inside a txn compare', '/etcdserverpb.KV/Txn', '0a020c00'],
  ['key length past the end', '/etcdserverpb.KV/Range', '0a05666f6f'],
  ['key length 2^32 + 3', '/etcdserverpb.KV/Range', '0a8380808010666f6f'],
  ['key length negative', '/etcdserverpb.KV/Range', '0affffffffffffffffff01'],
  ['key length 2^32 - 1', '/etcdserverpb.KV/Range', '0affffffff0f666f6f'],
  ['unknown field length past the end', '/etcdserverpb.KV/Range', '0a03666f6f9a0605787a'],
  ['unknown field length negative', '/etcdserverpb.KV/Range', '0a03666f6f9a06ffffffffffffffffff01'],
  ['unknown field length 2^32', '/etcdserverpb.KV/Range', '0a03666f6f9a06808080801078'],
  ['unknown fixed64 truncated', '/etcdserverpb.KV/Range', '0a03666f6fa10601020304'],
  ['unknown group never closed', '/etcdserverpb.KV/Range', '0a03666f6fa306'],
  ['compare key past its sub-message end', '/etcdserverpb.KV/Txn', '0a041a05666f6f666f6f'],
  ['varint of 11 bytes', '/etcdserverpb.KV/Range', '0a03666f6f20ffffffffffffffffffff01'],
  ['unknown varint of 11 bytes', '/etcdserverpb.KV/Range', '0a03666f6fa006ffffffffffffffffffff01'],
  ['tag of 11 bytes', '/etcdserverpb.KV/Range', '8a80808080808080808001'],
  ['truncated varint', '/etcdserverpb.KV/Range', '0a03666f6f20ff'],
  ['status request of one 0xff byte', '/etcdserverpb.Maintenance/Status', 'ff'],
  // int64 beyond 2^53 and negative
  ['range revision 2^53 + 1', '/etcdserverpb.KV/Range', '0a03666f6f208180808080808010'],
  ['range revision 2^63 - 1', '/etcdserverpb.KV/Range', '0a03666f6f20ffffffffffffffff7f'],
  ['range revision -1 (10 bytes)', '/etcdserverpb.KV/Range', '0a03666f6f20ffffffffffffffffff01'],
  ['range limit -1', '/etcdserverpb.KV/Range', '0a03666f6f18ffffffffffffffffff01'],
  ['compact revision 2^63 - 1', '/etcdserverpb.KV/Compact', '08ffffffffffffffff7f'],
  ['hash kv revision 2^63 - 1', '/etcdserverpb.Maintenance/HashKV', '08ffffffffffffffff7f'],
  ['lease grant TTL 2^63 - 1', '/etcdserverpb.Lease/LeaseGrant', '08ffffffffffffffff7f'],
  ['lease grant TTL 2^53 + 1', '/etcdserverpb.Lease/LeaseGrant', '088180808080808010'],
  ['lease grant TTL 9e9 + 1', '/etcdserverpb.Lease/LeaseGrant', '0881a2f4c321'],
  ['lease grant TTL -1', '/etcdserverpb.Lease/LeaseGrant', '08ffffffffffffffffff01'],
  ['lease grant TTL -2^63', '/etcdserverpb.Lease/LeaseGrant', '0880808080808080808001'],
  ['lease time-to-live of ID -1', '/etcdserverpb.Lease/LeaseTimeToLive', '08ffffffffffffffffff01'],
  // a txn whose compare version is 2^53 + 1: false on both
  ['txn compare version 2^53 + 1', '/etcdserverpb.KV/Txn', '0a0c1a0161208180808080808010' + '12050a030a0161'],
  // bools and enums out of range are accepted as Go reads them
  ['range bool 2', '/etcdserverpb.KV/Range', '0a03666f6f3802'],
  ['range sort order 99', '/etcdserverpb.KV/Range', '0a03666f6f2863'],
  // empty body: all defaults
  ['empty range', '/etcdserverpb.KV/Range', ''],
  // streams: a malformed request ends the stream with the unmarshal error
  ['watch request with a wrong wire type', '/etcdserverpb.Watch/Watch', '0801'],
  ['watch create with an unknown field', '/etcdserverpb.Watch/Watch', '0a080a03666f6fa00601'],
  ['keep-alive request truncated', '/etcdserverpb.Lease/LeaseKeepAlive', '08ff'],
];

const STREAMS = new Set(['/etcdserverpb.Watch/Watch', '/etcdserverpb.Lease/LeaseKeepAlive']);

// What a server can compare beyond the status: parts of the answer not chosen per server (ids, headers).
function summary(path: string, a: Answer): unknown {
  if (a.code !== 0) return null;
  if (path === '/etcdserverpb.KV/Range') {
    const r = decodeRangeResponse(a.body);
    return { count: r.count, kvs: r.kvs.length, more: r.more };
  }
  if (path === '/etcdserverpb.KV/Txn') return { succeeded: decodeTxnResponse(a.body).succeeded };
  if (path === '/etcdserverpb.Lease/LeaseGrant') return { TTL: decodeLeaseGrantResponse(a.body).TTL, error: decodeLeaseGrantResponse(a.body).error };
  return null;
}

const DESERIALIZERS: Record<string, (b: Buffer) => unknown> = {};
for (const svc of [KVService, LeaseService, WatchService, MaintenanceService] as Record<string, { path: string; requestDeserialize: (b: Buffer) => unknown }>[]) {
  for (const m of Object.values(svc)) DESERIALIZERS[m.path] = m.requestDeserialize;
}

describe('raw protobuf requests: etcd and etcdesk-node answer alike', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const answers = new Map<string, [Answer, Answer]>();

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
    // a key so that ranges and compares see data; then every case on both
    const put = Buffer.from('0a0161120178', 'hex'); // key "a", value "x"
    await Promise.all([call(etcd.clientUrl, '/etcdserverpb.KV/Put', put, false), call(ours.clientUrl, '/etcdserverpb.KV/Put', put, false)]);
    for (const [what, path, hex] of CASES) {
      const msg = Buffer.from(hex, 'hex');
      const stream = STREAMS.has(path);
      answers.set(what, await Promise.all([call(etcd.clientUrl, path, msg, stream), call(ours.clientUrl, path, msg, stream)]));
    }
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  it('the same status code and response for every case', () => {
    const diffs: string[] = [];
    for (const [what, path] of CASES) {
      const [e, o] = answers.get(what)!;
      const want = { code: e.code, summary: summary(path, e) };
      const got = { code: o.code, summary: summary(path, o) };
      if (JSON.stringify(want) !== JSON.stringify(got)) diffs.push(`${what}: etcd ${JSON.stringify(want)} (${e.message}), ours ${JSON.stringify(got)} (${o.message})`);
    }
    assert.deepEqual(diffs, []);
  });

  it('our decoders refuse exactly what etcd refuses, with its text (grpc-go status)', () => {
    const diffs: string[] = [];
    for (const [what, path, hex] of CASES) {
      const [e] = answers.get(what)!;
      let got = { code: 0, details: '' };
      try {
        DESERIALIZERS[path](Buffer.from(hex, 'hex'));
      } catch (err) {
        assert.ok(err instanceof ProtoDecodeError, `${what}: ${String(err)}`);
        got = unmarshalStatus(err, STREAMS.has(path));
      }
      const etcdRefused = /^grpc: (error unmarshalling request|failed to unmarshal the received message)/.test(e.message);
      const want = etcdRefused ? { code: e.code, details: e.message } : { code: 0, details: '' };
      if (JSON.stringify(want) !== JSON.stringify(got)) diffs.push(`${what}: etcd ${JSON.stringify(want)}, ours ${JSON.stringify(got)}`);
    }
    assert.deepEqual(diffs, []);
  });

  it('the same status message on the wire', () => {
    const diffs: string[] = [];
    for (const [what] of CASES) {
      const [e, o] = answers.get(what)!;
      if (e.message !== o.message) diffs.push(`${what}: etcd "${e.message}", ours "${o.message}"`);
    }
    assert.deepEqual(diffs, []);
  });
});
