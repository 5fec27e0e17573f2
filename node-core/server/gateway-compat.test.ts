// The gRPC gateway (HTTP/JSON on the client port) side by side with real
// etcd 3.4: the same HTTP requests in the same order must get the same
// status, content type and JSON body (cluster/member ids, ports and tokens
// masked; a single member's raft term and revisions are etcd's).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTestPki } from './auth-harness.test';
import { freePort, hasEtcd, startEtcd, startEtcdesk, waitFor, type ServerProc } from '../testing/processes';

interface Answer {
  status: number;
  contentType: string;
  grpcMetadata: string;
  trailer: string;
  /** etcd's CORS headers (its default --cors is "*"), on every client-port answer. */
  cors: string;
  location: string;
  body: string;
}

interface Target {
  base: string;
  agent?: https.Agent;
}

function request(t: Target, method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(t.base + p);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(u, { method, headers, agent: t.agent, timeout: 10_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          grpcMetadata: String(res.headers['grpc-metadata-content-type'] ?? ''),
          trailer: String(res.trailers['grpc-trailer-content-type'] ?? ''),
          location: String(res.headers.location ?? ''),
          cors: ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers'].map((h) => String(res.headers[h] ?? '')).join(' | '),
          body: data,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`${p}: no answer`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** What differs by nature between the two members. */
function normalize(s: string): string {
  return s
    .replace(/"(cluster_id|member_id|ID|leader|memberID)":"\d+"/g, '"$1":"X"')
    .replace(/127\.0\.0\.1:\d+/g, 'HOST')
    .replace(/"token":"[^"]*"/g, '"token":"T"');
}

const masked = (a: Answer, extra: (s: string) => string = (s) => s): Answer => ({ ...a, body: extra(normalize(a.body)) });

/** One streamed call: resolves with its HTTP status once `n` lines arrived (or the response ended). */
interface Streamed {
  status: Promise<number>;
  lines(n: number): Promise<string[]>;
  /** Everything received so far, delimiters included. */
  text(): string;
  close(): void;
}

function stream(t: Target, p: string, body: string, headers: Record<string, string> = {}): Streamed {
  const u = new URL(t.base + p);
  const mod = u.protocol === 'https:' ? https : http;
  let buf = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  let req!: http.ClientRequest;
  const status = new Promise<number>((resolve, reject) => {
    req = mod.request(u, { method: 'POST', headers, agent: t.agent }, (res) => {
      resolve(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        wake();
      });
      res.on('end', () => {
        ended = true;
        wake();
      });
      res.on('error', () => undefined);
    });
    req.on('error', (e) => (ended ? undefined : reject(e)));
    req.end(body);
  });
  return {
    status,
    async lines(n) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const got = buf.split('\n').filter((l) => l !== '');
        if (got.length >= n || ended) return got;
        if (Date.now() > deadline) throw new Error(`${p}: ${got.length} of ${n} lines after 10 s: ${buf}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 500);
        });
      }
    },
    text: () => buf,
    close: () => req.destroy(),
  };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('gRPC gateway compatibility', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  const te = (): Target => ({ base: etcd.clientUrl });
  const to = (): Target => ({ base: ours.clientUrl });

  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  /** The same request to both; the answers must match once normalized. */
  async function same(p: string, body?: string, opts: { method?: string; headers?: Record<string, string>; mask?: (s: string) => string } = {}): Promise<Answer> {
    const a = await request(te(), opts.method ?? 'POST', p, body, opts.headers);
    const b = await request(to(), opts.method ?? 'POST', p, body, opts.headers);
    assert.deepEqual(masked(b, opts.mask), masked(a, opts.mask), `${opts.method ?? 'POST'} ${p} ${body ?? ''}`);
    return b;
  }

  it('KV: put, range, deleterange, txn, compaction, /v3beta, unknown paths and methods', async () => {
    await same('/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('bar') }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('baz'), prev_kv: true }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('foo'), value: b64('<&>\u2028'), prevKv: true }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('foo2'), value: '' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo'), range_end: b64('fop'), limit: '1', sort_order: 'DESCEND', sort_target: 'KEY' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo'), rangeEnd: b64('fop'), count_only: true }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo'), keys_only: true, bogus: 1 }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('nope') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo'), revision: '99' }));
    await same('/v3/kv/deleterange', JSON.stringify({ key: b64('foo2'), prev_kv: true }));
    const txn = JSON.stringify({
      compare: [{ key: b64('t'), result: 'EQUAL', target: 'VERSION', version: '0' }],
      success: [{ request_put: { key: b64('t'), value: b64('1') } }],
      failure: [{ request_range: { key: b64('t') } }],
    });
    await same('/v3/kv/txn', txn);
    await same('/v3/kv/txn', txn);
    await same('/v3/kv/txn', JSON.stringify({ compare: [{ key: b64('t'), target: 'VALUE', value: b64('1') }], success: [{ request_delete_range: { key: b64('t'), prev_kv: true } }] }));
    await same('/v3/kv/compaction', JSON.stringify({ revision: '3', physical: true }));
    await same('/v3/kv/compaction', JSON.stringify({ revision: 3 }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo'), revision: 2 }));
    const beta = await same('/v3beta/kv/range', JSON.stringify({ key: b64('foo') }));
    assert.equal(beta.status, 200);
    assert.match(beta.body, /"value":"PCY\+4oCo"/);
    await same('/v3alpha/kv/range', '{}');
    await same('/v3/kv/nothing', '{}');
    await same('/v3/kv/range', undefined, { method: 'GET' });
    await same('/v3/kv/range', undefined, { method: 'OPTIONS' });
    // the access controller is in front of the member's other endpoints too
    await same('/version', undefined, { method: 'GET' });
    await same('/version', undefined, { method: 'OPTIONS' });
    await same('/v3', undefined, { method: 'GET' });
    await same('/v3?x=1', '{}');
    await same('/v3beta', undefined, { method: 'GET' });
    await same('/v3//kv/./range', JSON.stringify({ key: b64('foo') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo') }), { headers: { 'Grpc-Timeout': '1x' } });
    await same('/v3/kv/range', JSON.stringify({ key: b64('foo') }), { headers: { 'Grpc-Timeout': '5S', 'Grpc-Metadata-hasleader': 'true' } });
    // a stream failing before its first message: the error chunk, with the code's HTTP status
    const snap = await same('/v3/maintenance/snapshot', '{}', { headers: { Authorization: 'bad' } });
    assert.equal(snap.status, 500);
    assert.equal(snap.body, '{"error":{"grpc_code":2,"http_code":500,"message":"auth: invalid auth token","http_status":"Internal Server Error"}}');
  });

  it('malformed bodies get grpc-gateway’s error body and status', async () => {
    const bodies = [
      '',
      'null',
      '{"key":"Zm9v',
      '{"key":"Zm9v","limit":"abc"}',
      '{"key":"Zm9v","limit":1.5}',
      '{"key":"Zm9v","limit":"99999999999999999999"}',
      '{"key":"!!!"}',
      '{"key":"Zm9"}',
      '{"key":"Zm9v-_"}',
      '{"key":123}',
      '{"key":"Zm9v","sort_order":"NOPE"}',
      '{"key":"Zm9v","sort_order":true}',
      '{"key":"Zm9v","serializable":"true"}',
      '[1]',
      '"x"',
      '{"key":"Zm9v"} {"x":1}',
      '{"key":"Zm9v","key":"YmFy"}',
      '{"key":null}',
      '{key:1}',
      '{"key":"Zm9v",}',
      '{"key" "Zm9v"}',
      '{"key":"Zm9v" "x"}',
      'tru',
      'nul!',
      '{"key":"\\x"}',
      '{"key":"a\tb"}',
      '{"key":-}',
      '{"key":"Zg="}',
      '{"key":"Zg==="}',
      '{"key":"Zm=v"}',
      '{"key":"Zm9v\\n"}',
      '{"key":"Zm9v","limit":"1e3"}',
      '{"key":"Zm9v","limit":" 1"}',
      '{"key":"Zm9v","limit":""}',
      '{"key":"Zm9v","limit":"1 2"}',
      '{"key":"Zm9v","limit":01}',
      '{"key":"Zm9v","sort_order":1.5}',
      '{"key":"Zm9v","sort_order":"1"}',
      '{"key":"Zm9v","range_end":"AA==","rangeEnd":"Zm9w"}',
      '{"key":"Zm9v","revision":"9223372036854775808"}',
      '{"a":"\\u12g4"}',
      '{"a":"x\u0001"}',
      '\u00ff',
      '{"key":[102,111,111]}',
      '{"key":[256]}',
      '{"key":[null,"a"]}',
      '{"key":{}}',
      // nesting: Go's limit (10000) is the answer, not the JS stack
      `{"key":${'['.repeat(9999)}${']'.repeat(9999)}}`,
      `{"key":${'['.repeat(10000)}${']'.repeat(10000)}}`,
      '['.repeat(100_000),
    ];
    for (const body of bodies) await same('/v3/kv/range', body);
    // a stream's first request that does not decode fails the call as UNKNOWN (grpc-gateway does not wrap it)
    for (const body of ['{"create_request":{"key":"dw=="}', '[1]', '{"create_request":{"key":"dw==","start_revision":"x"}}']) await same('/v3/watch', body);
    await same('/v3/lease/keepalive', '{"ID":"x"}');
    await same('/v3/kv/txn', '{"success":{"request_put":{}}}');
    await same('/v3/kv/txn', '{"success":[{"request_put":"x"}]}');
    const bad = await same('/v3/kv/range', '{"key":"Zm9v');
    assert.equal(bad.status, 400);
    assert.equal(bad.body, '{"error":"unexpected EOF","message":"unexpected EOF","code":3}');
  });

  it('a watch streams newline-delimited results as keys change', async () => {
    const open = (t: Target): Streamed => stream(t, '/v3/watch', JSON.stringify({ create_request: { key: b64('w'), prev_kv: true } }));
    const we = open(te());
    const wo = open(to());
    try {
      assert.equal(await we.status, 200);
      assert.equal(await wo.status, 200);
      // created first, then the changes
      await Promise.all([we.lines(1), wo.lines(1)]);
      for (const body of [{ key: b64('w'), value: b64('1') }, { key: b64('w'), value: b64('2') }]) await same('/v3/kv/put', JSON.stringify(body));
      await same('/v3/kv/deleterange', JSON.stringify({ key: b64('w') }));
      const [le, lo] = await Promise.all([we.lines(4), wo.lines(4)]);
      assert.deepEqual(lo.map(normalize), le.map(normalize));
      assert.match(lo[3], /"type":"DELETE"/);
    } finally {
      we.close();
      wo.close();
    }
    // the HTTP client going away cancels the gRPC call behind it (its watchers go with it)
    const canceled = async (): Promise<number> => {
      const m = /^grpc_server_handled_total\{grpc_code="Canceled",grpc_method="Watch"[^}]*\} (\d+)$/m.exec((await request(to(), 'GET', '/metrics')).body);
      return Number(m?.[1] ?? 0);
    };
    await waitFor('the closed watch to be cancelled', async () => (await canceled()) >= 1);
    // a deadline ends a stream with the error chunk after what it sent
    const body = JSON.stringify({ create_request: { key: b64('w') } });
    const [de, dOurs] = [stream(te(), '/v3/watch', body, { 'Grpc-Timeout': '300m' }), stream(to(), '/v3/watch', body, { 'Grpc-Timeout': '300m' })];
    const [le, lo] = await Promise.all([de.lines(2), dOurs.lines(2)]);
    assert.deepEqual(lo.slice(0, 1).map(normalize), le.slice(0, 1).map(normalize));
    // etcd's own answer races: grpc-gateway reports the deadline as DEADLINE_EXCEEDED (504) or, when the
    // stream's Recv sees the context error first, as UNKNOWN (500); both seen from etcd 3.4.23 under load.
    const deadlineChunk = /^\{"error":\{"grpc_code":(4,"http_code":504|2,"http_code":500),"message":"context deadline exceeded","http_status":"(Gateway Timeout|Internal Server Error)"\}\}$/;
    assert.match(le[1], deadlineChunk, 'etcd');
    assert.match(lo[1], /^\{"error":\{"grpc_code":4,"http_code":504,"message":"context deadline exceeded","http_status":"Gateway Timeout"\}\}$/);
  });

  it('leases: grant, keepalive (a stream), timetolive, leases, revoke, and the /v3/kv/lease aliases', async () => {
    await same('/v3/lease/grant', '{"TTL":60,"ID":7}');
    await same('/v3/lease/grant', '{"TTL":"30","ID":"8"}');
    await same('/v3/lease/grant', '{"TTL":30,"ID":8}');
    const ttl = (s: string): string => s.replace(/"TTL":"\d+"/, '"TTL":"N"');
    await same('/v3/lease/timetolive', '{"ID":7,"keys":true}', { mask: ttl });
    await same('/v3/kv/lease/timetolive', '{"ID":7}', { mask: ttl });
    await same('/v3/lease/leases', '{}');
    await same('/v3/kv/lease/leases', '');
    for (const body of ['{"ID":7}', '{"ID":9}', '']) {
      const [ke, ko] = [stream(te(), '/v3/lease/keepalive', body), stream(to(), '/v3/lease/keepalive', body)];
      assert.equal(await ko.status, await ke.status, body);
      await Promise.all([ko.lines(body ? 1 : 0), ke.lines(body ? 1 : 0)]);
      assert.equal(normalize(ko.text()), normalize(ke.text()), body);
      ke.close();
      ko.close();
    }
    await same('/v3/lease/revoke', '{"ID":7}');
    await same('/v3/kv/lease/revoke', '{"ID":7}');
    await same('/v3/lease/timetolive', '{"ID":7}');
  });

  it('cluster and maintenance', async () => {
    await same('/v3/cluster/member/list', '{}');
    const sizes = (s: string): string => s.replace(/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":"\d+"/g, '"$1":"N"');
    await same('/v3/maintenance/status', '{}', { mask: sizes });
    await same('/v3/maintenance/alarm', '{}');
    await same('/v3/maintenance/hash', '{}', { mask: (s) => s.replace(/"hash":\d+/, '"hash":N') });
    await same('/v3/cluster/member/remove', '{"ID":"1"}');
    await same('/v3/maintenance/defragment', '{}');
    // a snapshot streams etcd's shape: 32 KiB blobs without header, remaining_bytes counting down, then the sha256
    for (const t of [te(), to()]) {
      await request(t, 'POST', '/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(100_000, 7).toString('base64') }));
      const snap = stream(t, '/v3/maintenance/snapshot', '{}');
      assert.equal(await snap.status, 200);
      const lines = await snap.lines(Number.MAX_SAFE_INTEGER);
      const msgs = lines.map((l) => (JSON.parse(l) as { result: { header?: unknown; remaining_bytes?: string; blob: string } }).result);
      const sizes = msgs.map((m) => Buffer.from(m.blob, 'base64').length);
      assert.ok(msgs.length >= 4, t.base);
      assert.ok(msgs.every((m) => m.header === undefined), 'no header');
      assert.ok(sizes.slice(0, -2).every((n) => n === 32 * 1024), `blob sizes ${sizes.join(',')}`);
      assert.equal(sizes[sizes.length - 1], 32, 'the sha256 last');
      const total = sizes.slice(0, -1).reduce((a, b) => a + b, 0);
      let sent = 0;
      for (const [i, m] of msgs.slice(0, -1).entries()) {
        sent += sizes[i];
        assert.equal(Number(m.remaining_bytes ?? 0), total - sent);
      }
    }
    await same('/v3/maintenance/alarm', '{"action":"DEACTIVATE","alarm":"NONE"}');
  });

  it('lock and election', async () => {
    await same('/v3/lease/grant', '{"TTL":60,"ID":100}');
    await same('/v3/lock/lock', JSON.stringify({ name: b64('mylock'), lease: 100 }));
    const key = Buffer.from('mylock/64').toString('base64');
    await same('/v3/lock/unlock', JSON.stringify({ key }));
    await same('/v3/lock/unlock', '{}');
    await same('/v3/election/campaign', JSON.stringify({ name: b64('el'), lease: '100', value: b64('me') }));
    await same('/v3/election/leader', JSON.stringify({ name: b64('el') }));
    await same('/v3/election/proclaim', JSON.stringify({ leader: { name: b64('el'), key: b64('el/64'), rev: '99', lease: '100' }, value: b64('x') }));
    await same('/v3/election/leader', JSON.stringify({ name: b64('nobody') }));
    // a lock held by another lease blocks until the Grpc-Timeout deadline: 504, DEADLINE_EXCEEDED
    await same('/v3/lease/grant', '{"TTL":60,"ID":101}');
    await same('/v3/lock/lock', JSON.stringify({ name: b64('held'), lease: 100 }));
    const late = await same('/v3/lock/lock', JSON.stringify({ name: b64('held'), lease: 101 }), { headers: { 'Grpc-Timeout': '300m' } });
    assert.equal(late.status, 504);
  });

  it('auth: enable, authenticate, the Authorization header, permission denied', async () => {
    for (const [p, body] of [
      ['/v3/auth/user/add', { name: 'root', password: 'pw' }],
      ['/v3/auth/user/add', { name: 'bob', password: 'pw' }],
      ['/v3/auth/role/add', { name: 'root' }],
      ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
      ['/v3/auth/role/add', { name: 'r1' }],
      ['/v3/auth/role/grant', { name: 'r1', perm: { key: b64('a'), range_end: b64('b'), permType: 'READWRITE' } }],
      ['/v3/auth/role/get', { role: 'r1' }],
      ['/v3/auth/user/grant', { user: 'bob', role: 'r1' }],
      ['/v3/auth/user/get', { name: 'bob' }],
      ['/v3/auth/enable', {}],
    ] as const)
      await same(p, JSON.stringify(body));
    await same('/v3/auth/authenticate', '{"name":"root","password":"bad"}');
    await same('/v3/auth/authenticate', '{"name":"bob","password":"pw"}');
    await same('/v3/kv/range', JSON.stringify({ key: b64('a') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('a') }), { headers: { Authorization: 'bogus' } });
    const token = async (t: Target, name: string): Promise<string> => (JSON.parse((await request(t, 'POST', '/v3/auth/authenticate', JSON.stringify({ name, password: 'pw' }))).body) as { token: string }).token;
    const [be, bo] = [await token(te(), 'bob'), await token(to(), 'bob')];
    const both = async (p: string, body: string, tokens: [string, string]): Promise<Answer> => {
      const a = await request(te(), 'POST', p, body, { Authorization: tokens[0] });
      const b = await request(to(), 'POST', p, body, { Authorization: tokens[1] });
      assert.deepEqual(masked(b), masked(a), `${p} ${body}`);
      return b;
    };
    assert.equal((await both('/v3/kv/put', JSON.stringify({ key: b64('a1'), value: b64('1') }), [be, bo])).status, 200);
    const denied = await both('/v3/kv/put', JSON.stringify({ key: b64('z'), value: b64('1') }), [be, bo]);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, '{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7}');
    await both('/v3/kv/range', JSON.stringify({ key: b64('z') }), [be, bo]);
    await both('/v3/kv/range', JSON.stringify({ key: b64('a1') }), [be, bo]);
    await both('/v3/auth/user/list', '{}', [be, bo]);
    // a watch the token may not read is created and canceled in one result
    const body = JSON.stringify({ create_request: { key: b64('z') } });
    const [we, wo] = [stream(te(), '/v3/watch', body, { Authorization: be }), stream(to(), '/v3/watch', body, { Authorization: bo })];
    assert.deepEqual((await wo.lines(1)).map(normalize), (await we.lines(1)).map(normalize));
    we.close();
    wo.close();
    const [re, ro] = [await token(te(), 'root'), await token(to(), 'root')];
    await both('/v3/auth/disable', '{}', [re, ro]);
  });
});

describe('gRPC gateway over TLS', { skip: !hasEtcd() && 'etcd not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-gw-tls-'));
  const f = (n: string): string => path.join(dir, n);
  const procs: ServerProc[] = [];
  let agent: https.Agent;
  const targets: Target[] = [];

  async function startTls(start: typeof startEtcd): Promise<Target> {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const p = await start({
      waitReady: false,
      extraArgs: ['--listen-client-urls', url, '--advertise-client-urls', url, '--cert-file', f('server.pem'), '--key-file', f('server.key'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth'],
    });
    procs.push(p);
    const t = { base: url, agent };
    await waitFor(`${url}/health`, async () => {
      try {
        return (await request(t, 'GET', '/health')).status === 200;
      } catch {
        return false;
      }
    });
    return t;
  }

  before(async () => {
    makeTestPki(dir);
    agent = new https.Agent({ ca: fs.readFileSync(f('ca.pem')), cert: fs.readFileSync(f('alice.pem')), key: fs.readFileSync(f('alice.key')), keepAlive: false });
    targets.push(...(await Promise.all([startTls(startEtcd), startTls(startEtcdesk)])));
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A request over HTTP/2 with a JSON content type (curl's default on https): etcd serves it from the gateway too. */
  function h2Request(t: Target, p: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const s = http2.connect(t.base, { ca: fs.readFileSync(f('ca.pem')), cert: fs.readFileSync(f('alice.pem')), key: fs.readFileSync(f('alice.key')) });
      s.on('error', reject);
      const r = s.request({ ':method': 'POST', ':path': p, 'content-type': 'application/json' });
      let data = '';
      let status = 0;
      r.setEncoding('utf8');
      r.on('response', (h) => (status = Number(h[':status'])));
      r.on('data', (c: string) => (data += c));
      r.on('end', () => {
        s.close();
        resolve({ status, body: data });
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  it('HTTP/1.1 and HTTP/2 clients with a client certificate get the same answers as from etcd', async () => {
    const [te, to] = targets;
    for (const [p, body] of [
      ['/v3/kv/put', JSON.stringify({ key: b64('tls'), value: b64('yes') })],
      ['/v3/kv/range', JSON.stringify({ key: b64('tls') })],
      ['/v3/kv/range', '{"key":'],
    ]) {
      const a = await request(te, 'POST', p, body);
      const b = await request(to, 'POST', p, body);
      assert.deepEqual(masked(b), masked(a), `${p} ${body}`);
    }
    const a = await h2Request(te, '/v3/kv/range', JSON.stringify({ key: b64('tls') }));
    const b = await h2Request(to, '/v3/kv/range', JSON.stringify({ key: b64('tls') }));
    assert.equal(b.status, 200);
    assert.deepEqual({ ...b, body: normalize(b.body) }, { ...a, body: normalize(a.body) });
    assert.match(b.body, /"value":"eWVz"/);
    // a failed call over HTTP/2 (its content-type trailer an HTTP/2 trailer) and a streamed watch
    for (const [p, body] of [
      ['/v3/kv/range', '{}'],
      ['/v3/kv/range', '{"key":'],
    ]) {
      const [x, y] = [await h2Request(te, p, body), await h2Request(to, p, body)];
      assert.deepEqual(y, x, `${p} ${body}`);
    }
  });

  it('with --client-cert-auth and auth enabled, a certificate with a CommonName is refused at the gateway', async () => {
    const [te, to] = targets;
    for (const [p, body] of [
      ['/v3/auth/user/add', { name: 'root', password: 'pw' }],
      ['/v3/auth/role/add', { name: 'root' }],
      ['/v3/auth/user/grant', { user: 'root', role: 'root' }],
      ['/v3/auth/enable', {}],
      ['/v3/kv/range', { key: b64('tls') }],
    ] as const) {
      const a = await request(te, 'POST', p, JSON.stringify(body));
      const b = await request(to, 'POST', p, JSON.stringify(body));
      assert.deepEqual(masked(b), masked(a), `${p}`);
    }
    const refused = await request(to, 'POST', '/v3/kv/range', JSON.stringify({ key: b64('tls') }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body, 'CommonName of client sending a request against gateway will be ignored and not used as expected\n');
  });
});
