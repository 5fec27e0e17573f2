// With auth enabled, side by side with etcd 3.4: who may call each
// Maintenance RPC (anonymous, a bad token, a plain user, root) and with which
// code and message; a lease that expires is revoked by the server (as root,
// etcd's WithRoot) with its keys deleted, where a plain revoke request would
// be refused for lack of permission; a watch refused for permission is
// cancelled with etcd's reason text.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as pb from '../proto/gen/etcdserverpb';
import { etcdctl, hasEtcd, startEtcd, startEtcdesk, type ServerProc } from '../testing/processes';

const RPCS = ['Status', 'HashKV', 'Hash', 'Defragment', 'Snapshot', 'Alarm', 'MoveLeader'] as const;
type Rpc = (typeof RPCS)[number];
const REQUESTS: Record<Rpc, object> = {
  Status: {},
  HashKV: {},
  Hash: {},
  Defragment: {},
  Snapshot: {},
  Alarm: { action: pb.AlarmRequest_AlarmAction.GET },
  // no member has id 1: etcd answers bad leader transferee when it lets the call through
  MoveLeader: { targetID: 1n },
};

type Client = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

function client(endpoint: string): Client {
  const Ctor = grpc.makeGenericClientConstructor({ ...pb.MaintenanceService, ...pb.AuthService } as unknown as grpc.ServiceDefinition, 'Maint');
  return new Ctor(endpoint, grpc.credentials.createInsecure()) as unknown as Client;
}

/** "OK" or "code message" of one call. */
function call(c: Client, rpc: Rpc, md: grpc.Metadata): Promise<string> {
  return new Promise((resolve) => {
    const req = REQUESTS[rpc];
    if (rpc === 'Snapshot') {
      const s = c.Snapshot(req, md) as grpc.ClientReadableStream<unknown>;
      let done = false;
      s.on('data', () => {
        if (!done) resolve('OK');
        done = true;
        s.cancel();
      });
      s.on('error', (e: grpc.ServiceError) => {
        if (!done) resolve(`${e.code} ${e.details}`);
        done = true;
      });
      return;
    }
    c[rpc](req, md, (e: grpc.ServiceError | null) => resolve(e ? `${e.code} ${e.details}` : 'OK'));
  });
}

async function token(c: Client, name: string, password: string): Promise<grpc.Metadata> {
  const r = await new Promise<pb.AuthenticateResponse>((resolve, reject) =>
    c.Authenticate({ name, password }, new grpc.Metadata(), (e: grpc.ServiceError | null, res: pb.AuthenticateResponse) => (e ? reject(e) : resolve(res))),
  );
  const md = new grpc.Metadata();
  md.set('token', r.token);
  return md;
}

async function enableAuth(ep: string): Promise<void> {
  for (const args of [
    ['user', 'add', 'root:rootpw'],
    ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', 'u:upw'],
    ['auth', 'enable'],
  ]) {
    const r = await etcdctl(ep, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
}

/** The whole matrix for one server: "who rpc → answer" lines. */
async function matrix(ep: string): Promise<string[]> {
  const c = client(ep);
  try {
    const bad = new grpc.Metadata();
    // a simple token without the ".index" suffix: unknown at once (with one, etcd waits for that index)
    bad.set('token', 'notatoken');
    const who: Array<[string, grpc.Metadata]> = [
      ['anonymous', new grpc.Metadata()],
      ['bad token', bad],
      ['user', await token(c, 'u', 'upw')],
      ['root', await token(c, 'root', 'rootpw')],
    ];
    const out: string[] = [];
    for (const [w, md] of who) for (const rpc of RPCS) out.push(`${w} ${rpc} → ${await call(c, rpc, md)}`);
    return out;
  } finally {
    c.close();
  }
}

/** etcdctl lease timetolive's answer once the lease's TTL has run out (waits for the server's revoke, 15 s at most). */
async function expiredAnswer(ep: string, root: string[]): Promise<{ ttl: string; get: string }> {
  const grant = await etcdctl(ep, [...root, 'lease', 'grant', '1']);
  assert.equal(grant.code, 0, grant.stderr);
  const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1];
  assert.equal((await etcdctl(ep, [...root, 'put', '/leased', 'v', `--lease=${id}`])).code, 0);
  const deadline = Date.now() + 15_000;
  let ttl = '';
  for (;;) {
    ttl = (await etcdctl(ep, [...root, 'lease', 'timetolive', id, '--keys'])).stdout.trim();
    if (/already expired/.test(ttl) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const get = (await etcdctl(ep, [...root, 'get', '/leased', '--print-value-only'])).stdout.trim();
  return { ttl: ttl.replace(id, '<id>'), get };
}

describe('auth on the Maintenance API, lease expiry and watch refusals, as etcd 3.4', { skip: hasEtcd() ? false : 'etcd 3.4 is not installed' }, () => {
  let etcd: ServerProc;
  let ours: ServerProc;
  before(async () => {
    [etcd, ours] = await Promise.all([startEtcd(), startEtcdesk()]);
    await Promise.all([enableAuth(etcd.endpoint), enableAuth(ours.endpoint)]);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), ours?.stop()]);
  });

  test('every Maintenance RPC answers each caller as etcd does (root only where etcd says so, errors untranslated)', async () => {
    const [want, got] = await Promise.all([matrix(etcd.endpoint), matrix(ours.endpoint)]);
    assert.deepEqual(got, want);
    // the matrix is not vacuous: plain users are refused HashKV, root is not
    assert.ok(want.includes('user HashKV → 2 auth: permission denied'));
    assert.ok(want.includes('root HashKV → OK'));
  });

  test('an expired lease is revoked and its keys deleted while auth is enabled', async () => {
    const root = ['--user', 'root:rootpw'];
    const [want, got] = await Promise.all([expiredAnswer(etcd.endpoint, root), expiredAnswer(ours.endpoint, root)]);
    assert.deepEqual(got, want);
    assert.match(want.ttl, /already expired/);
    assert.equal(want.get, '');
  });

  test("a watch refused for permission is cancelled with etcd's reason text", async () => {
    const watch = async (ep: string, user: string[]): Promise<string> => {
      const r = await etcdctl(ep, [...user, 'watch', 'secret'], { timeoutMs: 10_000 });
      return `${r.code} ${r.stdout.trim()} | ${r.stderr.split('\n').filter((l) => !l.includes('retry_interceptor')).join(' ').trim()}`;
    };
    for (const user of [['--user', 'u:upw'], []]) {
      const [want, got] = await Promise.all([watch(etcd.endpoint, user), watch(ours.endpoint, user)]);
      assert.equal(got, want);
      assert.match(want, /watch was canceled \(rpc error: code = \w+ desc = etcdserver: /);
    }
  });
});
