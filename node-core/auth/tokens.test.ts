import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { AuthErrors } from './errors';
import { parseGoDuration } from './go-duration';
import { JwtTokenProvider, type JwtSignMethod } from './jwt-token';
import { SimpleTokenProvider } from './simple-token';
import { DEFAULT_JWT_TTL_MS, decomposeAuthTokenOption, newTokenProvider, parseAuthTokenOption } from './token-options';

describe('simple tokens (injected clock)', () => {
  test('format, TTL renewed on every use, expiry', () => {
    let now = 0;
    const tp = new SimpleTokenProvider({ now: () => now, sweep: false });
    assert.equal(tp.ttlMs, 300_000, "etcd's default 5 minutes");
    const prefix = tp.genTokenPrefix();
    assert.match(prefix, /^[a-zA-Z]{16}$/);
    // not enabled: assigned but never valid (etcd has no keeper then)
    const t0 = tp.assign('u', 1, { index: 1, simpleTokenPrefix: prefix });
    assert.equal(tp.info(t0, 1), undefined);
    tp.enable();
    const t = tp.assign('alice', 3, { index: 9, simpleTokenPrefix: prefix });
    assert.equal(t, `${prefix}.9`);
    assert.equal(tp.tokenIndex(t), 9);
    assert.equal(tp.tokenIndex('nodot'), undefined);
    assert.equal(tp.tokenIndex('a.b.c'), undefined);
    assert.deepEqual(tp.info(t, 7), { username: 'alice', revision: 7 }, 'reports the current store revision');
    now += 299_000;
    assert.ok(tp.info(t, 7), 'still valid just before the TTL');
    now += 299_000; // 598 s after issue, but only 299 s after the last use
    assert.ok(tp.info(t, 7), 'renewed by the previous use');
    now += 300_001;
    assert.equal(tp.info(t, 7), undefined, 'expired after a TTL without use');
    assert.equal(tp.size, 0);
  });

  test('sweep, invalidateUser, disable, custom TTL', () => {
    let now = 0;
    const tp = new SimpleTokenProvider({ now: () => now, sweep: false, ttlMs: 1000 });
    tp.enable();
    const a = tp.assign('a', 1, { index: 1, simpleTokenPrefix: 'x' });
    const b = tp.assign('b', 1, { index: 2, simpleTokenPrefix: 'x' });
    const a2 = tp.assign('a', 1, { index: 3, simpleTokenPrefix: 'y' });
    tp.invalidateUser('a');
    assert.equal(tp.info(a, 1), undefined);
    assert.equal(tp.info(a2, 1), undefined);
    assert.ok(tp.info(b, 1));
    now += 1001;
    tp.expire();
    assert.equal(tp.size, 0);
    const c = tp.assign('c', 1, { index: 4, simpleTokenPrefix: 'x' });
    tp.disable();
    assert.equal(tp.info(c, 1), undefined);
    tp.enable();
    assert.equal(tp.info(c, 1), undefined, 'disable dropped every token');
    tp.close();
  });
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-jwt-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function keyFiles(name: string, kind: 'rsa' | 'ec', curve?: string): { priv: string; pub: string } {
  const kp =
    kind === 'rsa'
      ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      : crypto.generateKeyPairSync('ec', { namedCurve: curve! });
  const priv = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pub`);
  fs.writeFileSync(priv, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pub, kp.publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

describe('JWT tokens', () => {
  const rsa = keyFiles('rsa', 'rsa');
  const ec: Record<string, { priv: string; pub: string }> = {
    ES256: keyFiles('p256', 'ec', 'P-256'),
    ES384: keyFiles('p384', 'ec', 'P-384'),
    ES512: keyFiles('p521', 'ec', 'P-521'),
  };
  const hmac = path.join(dir, 'hmac.key');
  fs.writeFileSync(hmac, 'a-shared-secret');
  const filesFor = (m: string) => (m.startsWith('ES') ? ec[m] : m.startsWith('HS') ? { priv: hmac, pub: '' } : rsa);

  const methods: JwtSignMethod[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'];
  for (const m of methods) {
    test(`${m}: sign, verify, claims as etcd, expiry`, async () => {
      let now = 1_700_000_000_000;
      const f = filesFor(m);
      const opt = f.pub ? `jwt,pub-key=${f.pub},priv-key=${f.priv},sign-method=${m},ttl=1m` : `jwt,priv-key=${f.priv},sign-method=${m},ttl=1m`;
      const tp = newTokenProvider(opt, { now: () => now });
      assert.equal(tp.type, 'jwt');
      const token = tp.assign('alice', 12, { index: 0, simpleTokenPrefix: '' });
      const [h, c, sig] = token.split('.');
      assert.equal(Buffer.from(h, 'base64url').toString(), `{"alg":"${m}","typ":"JWT"}`);
      assert.equal(Buffer.from(c, 'base64url').toString(), `{"exp":${1_700_000_060},"revision":12,"username":"alice"}`);
      assert.ok(!token.includes('='), 'unpadded base64url');
      if (m.startsWith('ES')) assert.equal(Buffer.from(sig, 'base64url').length, ({ ES256: 64, ES384: 96, ES512: 132 } as Record<string, number>)[m]);
      assert.deepEqual(await tp.info(token, 99), { username: 'alice', revision: 12 }, 'the revision comes from the token');
      // tampering breaks the signature
      const forged = `${h}.${Buffer.from(`{"exp":${1_700_000_060},"revision":12,"username":"root"}`).toString('base64url')}.${sig}`;
      assert.equal(await tp.info(forged, 99), undefined);
      now += 59_000;
      assert.ok(await tp.info(token, 99), 'valid before exp');
      now += 1000;
      assert.equal(await tp.info(token, 99), undefined, 'expired at exp (RFC 7519, golang-jwt v4 as Debian builds etcd)');
    });
  }

  test('a token signed with another method or key is refused; garbage is refused', async () => {
    const rs = newTokenProvider(`jwt,priv-key=${rsa.priv},sign-method=RS256`);
    const ps = newTokenProvider(`jwt,priv-key=${rsa.priv},sign-method=PS256`);
    const other = keyFiles('rsa2', 'rsa');
    const rs2 = newTokenProvider(`jwt,priv-key=${other.priv},sign-method=RS256`);
    const t = rs.assign('u', 1, { index: 0, simpleTokenPrefix: '' });
    assert.equal(await ps.info(t, 1), undefined);
    assert.equal(await rs2.info(t, 1), undefined);
    for (const junk of ['', 'a.b', 'a.b.c', '...', 'x.y.z.w']) assert.equal(await rs.info(junk, 1), undefined);
  });

  test('public key only: verify-only (etcd refuses to sign)', async () => {
    const full = newTokenProvider(`jwt,pub-key=${rsa.pub},priv-key=${rsa.priv},sign-method=RS512`);
    const verifier = newTokenProvider(`jwt,pub-key=${rsa.pub},sign-method=RS512`) as JwtTokenProvider;
    assert.equal(verifier.verifyOnly, true);
    assert.throws(() => verifier.assign('u', 1, { index: 0, simpleTokenPrefix: '' }), AuthErrors.VerifyOnly);
    const t = full.assign('bob', 4, { index: 0, simpleTokenPrefix: '' });
    assert.deepEqual(await verifier.info(t), { username: 'bob', revision: 4 });
  });

  test('time claims are checked by type: a string or null exp/iat/nbf is refused, 0 means unset', async () => {
    const secret = Buffer.from('a-shared-secret');
    const now = 1_700_000_000_000;
    const tp = newTokenProvider(`jwt,priv-key=${hmac},sign-method=HS256`, { now: () => now });
    const sign = (claims: string): string => {
      const h = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
      const c = Buffer.from(claims).toString('base64url');
      return `${h}.${c}.${crypto.createHmac('sha256', secret).update(`${h}.${c}`).digest('base64url')}`;
    };
    const user = '"revision":3,"username":"u"';
    assert.deepEqual(await tp.info(sign(`{"exp":1700000100,${user}}`), 1), { username: 'u', revision: 3 });
    assert.deepEqual(await tp.info(sign(`{${user}}`), 1), { username: 'u', revision: 3 }, 'no exp: never expires');
    assert.deepEqual(await tp.info(sign(`{"exp":0,${user}}`), 1), { username: 'u', revision: 3 }, 'exp 0 is unset');
    for (const bad of ['"exp":"1700000100"', '"exp":"99999999999"', '"exp":null', '"exp":{}', '"iat":"1"', '"nbf":"1"', '"nbf":1700000100', '"iat":1700000100', '"exp":1699999999']) {
      assert.equal(await tp.info(sign(`{${bad},${user}}`), 1), undefined, bad);
    }
  });

  test('a validly signed token without username/revision is refused (etcd would panic)', async () => {
    const secret = Buffer.from('a-shared-secret');
    const tp = newTokenProvider(`jwt,priv-key=${hmac},sign-method=HS256`);
    const h = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url');
    const c = Buffer.from('{"exp":99999999999}').toString('base64url');
    const sig = crypto.createHmac('sha256', secret).update(`${h}.${c}`).digest('base64url');
    assert.equal(await tp.info(`${h}.${c}.${sig}`, 1), undefined);
  });
});

describe('--auth-token parsing (etcd semantics)', () => {
  const rsa = keyFiles('rsa-opt', 'rsa');
  test('types', () => {
    assert.deepEqual(parseAuthTokenOption('simple'), { type: 'simple' });
    assert.deepEqual(parseAuthTokenOption(''), { type: 'nop' });
    assert.equal(newTokenProvider('simple').type, 'simple');
    assert.equal(newTokenProvider('').type, 'nop');
    assert.throws(() => parseAuthTokenOption('opaque'), AuthErrors.InvalidAuthOpts);
  });

  test('option syntax: k=v pairs, no duplicates', () => {
    assert.deepEqual(decomposeAuthTokenOption('jwt,a=1,b=2'), { type: 'jwt', options: new Map([['a', '1'], ['b', '2']]) });
    assert.throws(() => decomposeAuthTokenOption('jwt,a'), AuthErrors.InvalidAuthOpts);
    assert.throws(() => decomposeAuthTokenOption('jwt,a=1=2'), AuthErrors.InvalidAuthOpts);
    assert.throws(() => decomposeAuthTokenOption('jwt,a=1,a=2'), AuthErrors.InvalidAuthOpts);
    // options after "simple" are parsed (and must be well-formed) but unused
    assert.throws(() => parseAuthTokenOption('simple,x'), AuthErrors.InvalidAuthOpts);
  });

  test('jwt options: defaults, ttl, errors', () => {
    const cfg = parseAuthTokenOption(`jwt,pub-key=${rsa.pub},priv-key=${rsa.priv},sign-method=RS256`);
    assert.equal(cfg.type, 'jwt');
    if (cfg.type === 'jwt') {
      assert.equal(cfg.ttlMs, DEFAULT_JWT_TTL_MS);
      assert.deepEqual(cfg.unknownOptions, []);
    }
    const c2 = parseAuthTokenOption(`jwt,priv-key=${rsa.priv},sign-method=RS256,ttl=1h30m,extra=1`);
    if (c2.type === 'jwt') {
      assert.equal(c2.ttlMs, 90 * 60_000);
      assert.deepEqual(c2.unknownOptions, ['extra']);
    }
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=${rsa.priv},sign-method=XX256`), AuthErrors.InvalidAuthOpts);
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=${rsa.priv}`), AuthErrors.InvalidAuthOpts);
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=${rsa.priv},sign-method=RS256,ttl=5`), AuthErrors.InvalidAuthOpts);
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=/no/such/file,sign-method=RS256`), AuthErrors.InvalidAuthOpts);
    assert.throws(() => parseAuthTokenOption('jwt,sign-method=RS256'), AuthErrors.MissingKey);
    assert.throws(() => parseAuthTokenOption('jwt,sign-method=HS256'), AuthErrors.MissingKey);
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=${rsa.priv},sign-method=ES256`), /not a valid ECDSA private key/);
    assert.throws(() => parseAuthTokenOption(`jwt,priv-key=${rsa.priv},sign-method=EdDSA`), /unsupported signing method/);
  });

  test("Go's time.ParseDuration", () => {
    assert.equal(parseGoDuration('5m'), 300_000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('300ms'), 300);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('-2s'), -2000);
    assert.equal(parseGoDuration('10us'), 0.01);
    for (const bad of ['', '5', 'm', '1x', '.s', '1h 2m']) assert.throws(() => parseGoDuration(bad), /time: /);
  });
});
