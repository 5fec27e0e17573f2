// etcdctl compatibility for auth, RBAC, JWT and TLS client certificates:
// the same etcdctl script against real etcd 3.4.23 and against etcdesk, with
// outputs compared line by line. Our node failing to start, to serve TLS or
// to serve Auth fails the test.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { newTokenProvider } from '../auth/token-options';
import { etcdctl, freePort, hasEtcd, startEtcd, startEtcdesk, tempDir, type ServerProc } from '../testing/processes';
import { AuthStore } from '../auth/store';
import { tempBackend } from '../auth/test-helpers';
import { authClient, call, makeTestPki, serveAuth, TestAuthNode } from './auth-harness.test';

interface Step {
  args: string[];
  stdin?: string;
}

// stdout, the "Error:" lines (not clientv3's JSON retry warnings), exit code
async function run(endpoint: string, step: Step, extra: string[] = []): Promise<string> {
  const r = await etcdctl(endpoint, [...extra, ...step.args], { stdin: step.stdin });
  const err = r.stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('{'))
    .join('\n');
  return `$ etcdctl ${step.args.join(' ')}\n${r.stdout}${err ? `${err}\n` : ''}rc=${r.code}`;
}

async function runScript(endpoint: string, steps: Step[], extra: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const s of steps) out.push(await run(endpoint, s, extra));
  return out;
}

const R = (u: string) => ['--user', u];
const ROOT = R('root:rootpw');

const RBAC_SCRIPT: Step[] = [
  { args: ['user', 'add', 'root', '--new-user-password=rootpw'] },
  { args: ['user', 'add', 'root', '--new-user-password=x'] },
  { args: ['auth', 'enable'] }, // etcdctl adds the root role and grants it, then enables
  { args: ['user', 'list'] },
  { args: ['user', 'list', ...R('root:wrong')] },
  { args: ['role', 'list', ...ROOT] },
  { args: ['role', 'get', 'root', ...ROOT] },
  { args: ['role', 'add', 'r1', ...ROOT] },
  { args: ['role', 'add', 'r1', ...ROOT] },
  { args: ['role', 'grant-permission', 'r1', 'readwrite', 'foo', ...ROOT] },
  { args: ['role', 'grant-permission', 'r1', 'read', 'app/', '--prefix', ...ROOT] },
  { args: ['role', 'grant-permission', 'r1', 'write', 'x', '--from-key', ...ROOT] },
  { args: ['role', 'grant-permission', 'r1', 'read', 'foo', ...ROOT] }, // update in place
  { args: ['role', 'grant-permission', 'nope', 'read', 'foo', ...ROOT] },
  { args: ['role', 'get', 'r1', ...ROOT] },
  { args: ['user', 'add', 'alice:alicepw', ...ROOT] },
  { args: ['user', 'grant-role', 'alice', 'r1', ...ROOT] },
  { args: ['user', 'grant-role', 'alice', 'nope', ...ROOT] },
  { args: ['user', 'grant-role', 'bob', 'r1', ...ROOT] },
  { args: ['user', 'get', 'alice', ...ROOT] },
  { args: ['user', 'get', 'alice', '--detail', ...ROOT] },
  { args: ['user', 'list', ...ROOT] },
  { args: ['put', 'foo', 'bar', ...ROOT] },
  { args: ['put', 'foo', 'baz', ...R('alice:alicepw')] },
  { args: ['put', 'xyz', '1', ...R('alice:alicepw')] },
  { args: ['put', 'abc', '1', ...R('alice:alicepw')] },
  { args: ['get', 'foo', ...R('alice:alicepw')] },
  { args: ['get', 'xyz', ...R('alice:alicepw')] },
  { args: ['get', 'app/', '--prefix', ...R('alice:alicepw')] },
  { args: ['get', 'a', '--prefix', ...R('alice:alicepw')] },
  { args: ['get', 'foo'] },
  { args: ['del', 'xyz', ...R('alice:alicepw')] },
  { args: ['del', 'foo', ...R('alice:alicepw')] },
  { args: ['user', 'list', ...R('alice:alicepw')] },
  { args: ['user', 'get', 'alice', ...R('alice:alicepw')] },
  { args: ['role', 'get', 'r1', ...R('alice:alicepw')] },
  { args: ['put', 'foo', 'bar', ...R('alice:wrong')] },
  { args: ['user', 'passwd', 'alice', '--interactive=false', ...ROOT], stdin: 'newpw\n' },
  { args: ['get', 'foo', ...R('alice:alicepw')] },
  { args: ['get', 'foo', ...R('alice:newpw')] },
  { args: ['user', 'revoke-role', 'alice', 'r1', ...ROOT] },
  { args: ['user', 'revoke-role', 'alice', 'r1', ...ROOT] },
  { args: ['get', 'foo', ...R('alice:newpw')] },
  { args: ['role', 'revoke-permission', 'r1', 'foo', ...ROOT] },
  { args: ['role', 'revoke-permission', 'r1', 'foo', ...ROOT] },
  { args: ['role', 'revoke-permission', 'r1', 'app/', '--prefix', ...ROOT] },
  { args: ['role', 'get', 'r1', ...ROOT] },
  { args: ['role', 'delete', 'r1', ...ROOT] },
  { args: ['role', 'delete', 'r1', ...ROOT] },
  { args: ['role', 'delete', 'root', ...ROOT] },
  { args: ['user', 'revoke-role', 'root', 'root', ...ROOT] },
  { args: ['user', 'delete', 'root', ...ROOT] },
  { args: ['user', 'add', 'svc', '--no-password', ...ROOT] },
  { args: ['get', 'foo', ...R('svc:')] },
  { args: ['user', 'delete', 'alice', ...ROOT] },
  { args: ['user', 'delete', 'alice', ...ROOT] },
  { args: ['auth', 'disable', ...ROOT] },
  { args: ['auth', 'disable'] },
  { args: ['user', 'list'] },
  { args: ['get', 'foo'] },
  { args: ['user', 'delete', 'root'] },
];

describe('etcdctl auth compatibility: etcd 3.4.23 vs etcdesk', { skip: !hasEtcd() && 'etcd/etcdctl not installed', concurrency: false }, () => {
  const procs: ServerProc[] = [];
  const start = async (kind: 'etcd' | 'etcdesk', extraArgs: string[] = [], waitReady = true, ports?: { clientPort: number }) => {
    const p = await (kind === 'etcd' ? startEtcd : startEtcdesk)({ extraArgs, waitReady, ...ports, timeoutMs: 30000 });
    procs.push(p);
    return p;
  };
  after(async () => {
    for (const p of procs) await p.stop().catch(() => undefined);
    for (const p of procs) fs.rmSync(p.dataDir, { recursive: true, force: true });
  });

  const compare = async (steps: Step[], args: string[] = [], extra: string[] = []) => {
    const etcd = await start('etcd', args);
    const want = await runScript(etcd.endpoint, steps, extra);
    await etcd.stop();
    // the reference run itself must show the access control at work
    assert.ok(want.some((l) => l.includes('Error: etcdserver: permission denied')), want.join('\n\n'));
    const desk = await start('etcdesk', args);
    const got = await runScript(desk.endpoint, steps, extra);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `step ${i}`);
  };

  test('users, roles, permissions, --user access, passwd, enable/disable (simple tokens)', async () => {
    await compare(RBAC_SCRIPT);
  });

  test('the Auth service alone (in-process, over the real appliers) matches etcd for every user/role/auth step', async () => {
    const steps = RBAC_SCRIPT.filter((s) => ['user', 'role', 'auth'].includes(s.args[0]));
    const etcd = await start('etcd');
    const want = await runScript(etcd.endpoint, steps);
    await etcd.stop();
    const tb = tempBackend('auth-compat');
    const store = new AuthStore(tb.backend, { bcryptCost: 4 });
    const { server, port } = await serveAuth(new TestAuthNode(tb.backend, store));
    try {
      const got = await runScript(`127.0.0.1:${port}`, steps);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `step ${i}`);
    } finally {
      server.forceShutdown();
      await store.close();
      await tb.cleanup();
    }
  });

  describe('JWT', () => {
    const dir = tempDir('jwt-compat');
    const priv = path.join(dir, 'jwt.key');
    const pub = path.join(dir, 'jwt.pub');
    before(() => {
      const kp = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      fs.writeFileSync(priv, kp.privateKey.export({ type: 'pkcs1', format: 'pem' }));
      fs.writeFileSync(pub, kp.publicKey.export({ type: 'spki', format: 'pem' }));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const opt = () => `jwt,pub-key=${pub},priv-key=${priv},sign-method=RS256,ttl=10m`;

    // every key family: PKCS#1 v1.5, PSS (salt length), ECDSA (raw r||s, P-521), HMAC
    const METHODS: Array<[string, () => { priv: Buffer; pub?: Buffer }]> = [
      ['RS256', () => ({ priv: fs.readFileSync(priv), pub: fs.readFileSync(pub) })],
      ['PS384', () => ({ priv: fs.readFileSync(priv), pub: fs.readFileSync(pub) })],
      ['ES256', () => ecPair('P-256')],
      ['ES512', () => ecPair('P-521')],
      ['HS256', () => ({ priv: Buffer.from('shared-secret') })],
    ];
    const ecPair = (curve: string) => {
      const kp = crypto.generateKeyPairSync('ec', { namedCurve: curve });
      return { priv: Buffer.from(kp.privateKey.export({ type: 'sec1', format: 'pem' })), pub: Buffer.from(kp.publicKey.export({ type: 'spki', format: 'pem' })) };
    };
    for (const [method, keys] of METHODS) {
      test(`${method}: etcd's tokens verify with our provider and ours are accepted by etcd`, async () => {
        const k = keys();
        const kp = path.join(dir, `${method}.key`);
        const pp = path.join(dir, `${method}.pub`);
        fs.writeFileSync(kp, k.priv);
        if (k.pub) fs.writeFileSync(pp, k.pub);
        const option = `jwt,${k.pub ? `pub-key=${pp},` : ''}priv-key=${kp},sign-method=${method},ttl=10m`;
        const etcd = await start('etcd', ['--auth-token', option]);
        for (const s of RBAC_SCRIPT.slice(0, 3)) await run(etcd.endpoint, s);
        const c = authClient(Number(etcd.endpoint.split(':')[1]));
        try {
          const { token } = (await call(c, 'Authenticate', { name: 'root', password: 'rootpw' })) as { token: string };
          const ours = newTokenProvider(option);
          const info = await ours.info(token, 0);
          assert.equal(info?.username, 'root');
          assert.ok(info!.revision > 0);
          const [h, claims] = token.split('.').map((x) => Buffer.from(x, 'base64url').toString());
          assert.equal(h, `{"alg":"${method}","typ":"JWT"}`);
          assert.match(claims, /^\{"exp":\d+,"revision":\d+,"username":"root"\}$/);
          const mine = ours.assign('root', info!.revision, { index: 0, simpleTokenPrefix: '' });
          assert.deepEqual((await call(c, 'UserList', {}, mine)).users, ['root']);
          // and a forged one is refused by etcd, as by us
          const forged = `${mine.split('.').slice(0, 2).join('.')}.${Buffer.alloc(8).toString('base64url')}`;
          await assert.rejects(call(c, 'UserList', {}, forged), /invalid auth token/);
          assert.equal(await ours.info(forged, 0), undefined);
        } finally {
          c.close();
          await etcd.stop();
        }
      });
    }

    test('etcdctl with --auth-token jwt', async () => {
      await compare(RBAC_SCRIPT, ['--auth-token', opt()]);
    });
  });

  describe('TLS client certificates, CN as user', () => {
    const dir = tempDir('tls-compat');
    before(() => makeTestPki(dir));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const f = (n: string) => path.join(dir, n);
    const certArgs = (who: string) => ['--cacert', f('ca.pem'), '--cert', f(`${who}.pem`), '--key', f(`${who}.key`)];
    // `who` picks the client certificate; mallory's CN names no user
    const TLS_SCRIPT = (): Array<Step & { who: string }> => {
      return [
        { who: 'root', args: ['user', 'add', 'root', '--new-user-password=rootpw'] },
        { who: 'root', args: ['auth', 'enable'] },
        { who: 'root', args: ['user', 'add', 'alice:pw'] },
        { who: 'root', args: ['user', 'list'] },
        { who: 'alice', args: ['user', 'list'] },
        { who: 'alice', args: ['put', 'foo', 'bar'] },
        { who: 'root', args: ['put', 'foo', 'bar'] },
        { who: 'alice', args: ['get', 'foo'] },
        { who: 'alice', args: ['get', 'foo', '--user', 'root:rootpw'] },
        { who: 'mallory', args: ['get', 'foo'] },
        { who: 'root', args: ['auth', 'disable'] },
      ];
    };

    const tlsArgs = (port: number) => [
      '--listen-client-urls', `https://127.0.0.1:${port}`,
      '--advertise-client-urls', `https://127.0.0.1:${port}`,
      '--cert-file', f('server.pem'),
      '--key-file', f('server.key'),
      '--trusted-ca-file', f('ca.pem'),
      '--client-cert-auth',
    ];

    const waitTls = async (p: ServerProc): Promise<boolean> => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
        const r = await etcdctl(p.endpoint, [...certArgs('root'), 'endpoint', 'health'], { timeoutMs: 3000 });
        if (r.code === 0) return true;
        if (p.proc.exitCode !== null) return false;
        await new Promise((res) => setTimeout(res, 200));
      }
      return false;
    };

    const runTls = async (p: ServerProc) => {
      const out: string[] = [];
      for (const s of TLS_SCRIPT()) out.push(`[${s.who}] ${await run(p.endpoint, s, certArgs(s.who))}`);
      return out;
    };

    test('etcd and etcdesk agree', async () => {
      const port = await freePort();
      const etcd = await start('etcd', tlsArgs(port), false, { clientPort: port });
      assert.ok(await waitTls(etcd), etcd.output().slice(-2000));
      const want = await runTls(etcd);
      await etcd.stop();
      assert.match(want[4], /Error: etcdserver: permission denied/, 'alice (by CN) is no admin');
      assert.match(want[6], /OK/, 'root (by CN) writes');
      assert.match(want[9], /Error: etcdserver: permission denied/, 'a CN that names no user reads nothing');
      const port2 = await freePort();
      const desk = await start('etcdesk', tlsArgs(port2), false, { clientPort: port2 });
      assert.ok(await waitTls(desk), `etcdesk does not serve TLS:\n${desk.output().slice(-2000)}`);
      const got = await runTls(desk);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `step ${i}`);
    });
  });

});
