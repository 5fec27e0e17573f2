// Moving data against real etcd 3.4: an export replays (the etcdctl script run
// by sh into another etcd gives the same keys and bytes; JSON and YAML read
// back to the same entries); an import is previewed as a diff and applied only
// where the key is unchanged since the preview; a prefix is copied/renamed in
// verified batches past the txn limit without overwriting anything; selected
// keys are deleted only if unchanged; a server with a lower --max-txn-ops still
// takes the writes (the batches shrink).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdClient, Errors } from '../../node-core/index';
import { isEtcdError } from './errors';
import { startEtcd, tempDir, type ServerProc } from '../../node-core/testing/processes';
import { copyPrefix, deletesOf, formatExport, parseImport, planPuts, putsOf, readPrefix, rebase, runGuarded } from './data-transfer';

const ctl = (ep: string, args: string[], input?: string): string => execFileSync('etcdctl', ['--endpoints', ep, ...args], { input, env: { ...process.env, ETCDCTL_API: '3' } }).toString();

/** Every key and value under a prefix as base64 pairs, as etcdctl reads them (the reference reader). */
function dump(ep: string, prefix: string): [string, string][] {
  const out = JSON.parse(ctl(ep, ['get', '--prefix', prefix, '-w', 'json'])) as { kvs?: { key: string; value?: string }[] };
  return (out.kvs ?? []).map((k) => [k.key, k.value ?? '']);
}

describe('moving data (against etcd 3.4)', { timeout: 120_000 }, () => {
  let a: ServerProc;
  let b: ServerProc;
  let ca: EtcdClient;
  let cb: EtcdClient;
  const awkward: [Buffer, Buffer][] = [
    [Buffer.from('/m/plain'), Buffer.from('hello')],
    [Buffer.from("/m/quote'd %s \\n"), Buffer.from("it's 100% \\ real\nsecond line\n")],
    [Buffer.from('/m/bin\x01\xff'), Buffer.from([0, 1, 2, 255, 10, 39, 37, 92])],
    [Buffer.from('/m/trailing-newline\n'), Buffer.from('')],
    [Buffer.from('/m/-dash'), Buffer.from('-v')],
  ];

  before(async () => {
    [a, b] = await Promise.all([startEtcd(), startEtcd({ extraArgs: ['--max-txn-ops', '16'] })]);
    ca = new EtcdClient({ endpoints: [a.clientUrl] });
    cb = new EtcdClient({ endpoints: [b.clientUrl] });
    for (const [k, v] of awkward) await ca.put({ key: k, value: v });
  });
  after(async () => {
    ca?.close();
    cb?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('the etcdctl script export replays byte for byte into another etcd', async () => {
    const { kvs, revision } = await readPrefix(ca, Buffer.from('/m/'));
    assert.equal(kvs.length, awkward.length);
    const script = formatExport('etcdctl', '/m/', revision, kvs);
    const file = path.join(tempDir('export'), 'replay.sh');
    fs.writeFileSync(file, script);
    execFileSync('sh', [file], { env: { ...process.env, ETCDCTL_API: '3', ETCDCTL_ENDPOINTS: b.clientUrl } });
    assert.deepEqual(dump(b.endpoint, '/m/'), dump(a.endpoint, '/m/'));
  });

  it('JSON and YAML exports read back to the same keys and bytes', async () => {
    const { kvs, revision } = await readPrefix(ca, Buffer.from('/m/'));
    for (const f of ['json', 'yaml'] as const) {
      const { entries, prefix } = parseImport(formatExport(f, '/m/', revision, kvs));
      assert.equal(prefix, '/m/');
      assert.deepEqual(entries.map((e) => [e.key.toString('base64'), e.value.toString('base64')]), kvs.map((k) => [k.key.toString('base64'), k.value.toString('base64')]), f);
    }
  });

  it('an import is previewed as a diff; a key changed after the preview is a conflict, not overwritten', async () => {
    await ca.put({ key: Buffer.from('/imp/same'), value: Buffer.from('s') });
    await ca.put({ key: Buffer.from('/imp/old'), value: Buffer.from('before') });
    await ca.put({ key: Buffer.from('/imp/raced'), value: Buffer.from('before') });
    const doc = JSON.stringify({ etcdeskExport: 1, prefix: '/imp/', revision: 1, keys: [{ key: '/imp/same', value: 's' }, { key: '/imp/old', value: 'after' }, { key: '/imp/raced', value: 'after' }, { key: '/imp/new', value: 'n' }] });
    const { plan } = await planPuts(ca, parseImport(doc).entries);
    assert.deepEqual(plan.map((p) => [p.key.toString(), p.action]), [['/imp/same', 'unchanged'], ['/imp/old', 'update'], ['/imp/raced', 'update'], ['/imp/new', 'create']]);
    await ca.put({ key: Buffer.from('/imp/raced'), value: Buffer.from('someone else') }); // between preview and apply
    const r = await runGuarded(ca, putsOf(plan));
    assert.deepEqual(r.conflicts, ['/imp/raced']);
    assert.equal(r.written, 2);
    assert.equal(r.verified, true);
    assert.equal(Buffer.from((await ca.get('/imp/raced'))!.value).toString(), 'someone else');
    assert.equal(Buffer.from((await ca.get('/imp/old'))!.value).toString(), 'after');
    assert.equal(Buffer.from((await ca.get('/imp/new'))!.value).toString(), 'n');
  });

  it('an import can go under another prefix', () => {
    const { entries } = parseImport(JSON.stringify({ etcdeskExport: 1, prefix: '/a/', revision: 1, keys: [{ key: '/a/x', value: '1' }] }));
    assert.deepEqual(rebase(entries, '/a/', '/b/').map((e) => e.key.toString()), ['/b/x']);
    assert.throws(() => parseImport('{"keys": []}'), /not an Etcdesk export/);
    assert.throws(() => parseImport('{"etcdeskExport":1,"keys":[{"key":"/k","value":"1"},{"key":"/k","value":"2"}]}'), /appears twice/);
  });

  it('a prefix renamed past the txn limit, in verified batches, on a server allowing 16 ops per txn', async () => {
    for (let i = 0; i < 300; i++) await cb.put({ key: Buffer.from(`/src/k${String(i).padStart(3, '0')}`), value: Buffer.from(`v${i}`) });
    const dry = await copyPrefix(cb, '/src/', '/dst/', true, true);
    assert.equal(dry.planned, 300);
    assert.equal(dry.written, 0);
    const r = await copyPrefix(cb, '/src/', '/dst/', true, false);
    assert.equal(r.written, 300, 'keys renamed, not operations (each is a put and a delete)');
    assert.ok(r.txns >= 600 / 16, `batches shrank to the server's limit (${r.txns} txns)`);
    assert.equal(r.verified, true);
    assert.equal(dump(b.endpoint, '/src/').length, 0);
    const dst = dump(b.endpoint, '/dst/');
    assert.equal(dst.length, 300);
    assert.equal(Buffer.from(dst[7][1], 'base64').toString(), 'v7');
  });

  it('an import cut by a timeout says how far it got and that the last batch may have happened; a new preview finishes it', async () => {
    const doc = JSON.stringify({ etcdeskExport: 1, prefix: '/cut/', revision: 1, keys: Array.from({ length: 40 }, (_, i) => ({ key: `/cut/k${String(i).padStart(2, '0')}`, value: `v${i}` })) });
    const { entries } = parseImport(doc);
    // The second txn that etcd accepts commits, but its answer is lost as in a timeout: the write's outcome is unknown to the app.
    let accepted = 0;
    const cut = new Proxy(cb, {
      get(target, prop) {
        if (prop === 'txn') {
          return async (req: Parameters<EtcdClient['txn']>[0]) => {
            const r = await target.txn(req);
            if (++accepted === 2) throw Object.assign(new Error(Errors.Timeout.message), { code: Errors.Timeout.code });
            return r;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const { plan } = await planPuts(cb, entries);
    const err = await runGuarded(cut, putsOf(plan)).then(() => undefined, (e: unknown) => e);
    assert.ok(isEtcdError(err, 'Timeout'), `still etcd's timeout by identity: ${String(err)}`);
    const m = /\(stopped after (\d+) writes of 40; the next (\d+) writes may or may not have happened: a write that timed out can still commit; nothing was overwritten/.exec((err as Error).message);
    assert.ok(m, (err as Error).message);
    const [done, next] = [Number(m[1]), Number(m[2])];
    assert.ok(done > 0 && next > 0 && done + next < 40, `${done} + ${next}`);
    assert.equal(dump(b.endpoint, '/cut/').length, done + next, 'the batch whose answer was lost did commit');
    const again = await planPuts(cb, entries);
    assert.deepEqual(again.plan.map((p) => p.action).filter((a) => a !== 'unchanged'), Array(40 - done - next).fill('create'));
    const r = await runGuarded(cb, putsOf(again.plan));
    assert.equal(r.written, 40 - done - next);
    assert.deepEqual(r.conflicts, []);
    assert.equal(dump(b.endpoint, '/cut/').length, 40);
  });

  it('a small rename is one txn: all of it happens or none', async () => {
    for (let i = 0; i < 10; i++) await ca.put({ key: Buffer.from(`/one/k${i}`), value: Buffer.from(`${i}`) });
    const r = await copyPrefix(ca, '/one/', '/two/', true, false);
    assert.equal(r.txns, 1);
    assert.equal(r.written, 10, 'ten keys renamed (twenty operations)');
    assert.equal(dump(a.endpoint, '/one/').length, 0);
    assert.equal(dump(a.endpoint, '/two/').length, 10);
  });

  it('a copy onto existing keys writes nothing and names them', async () => {
    await cb.put({ key: Buffer.from('/c1/a'), value: Buffer.from('1') });
    await cb.put({ key: Buffer.from('/c2/a'), value: Buffer.from('taken') });
    await assert.rejects(copyPrefix(cb, '/c1/', '/c2/', false, false), /1 key already exist under \/c2\/ \(first: \/c2\/a\)/);
    assert.equal(Buffer.from((await cb.get('/c2/a'))!.value).toString(), 'taken');
    await assert.rejects(copyPrefix(cb, '/c1/', '/c1/sub/', false, false), /inside the source/);
  });

  it('selected keys are deleted only if unchanged since they were selected', async () => {
    const rows = [];
    for (const k of ['/del/1', '/del/2', '/del/3']) {
      const put = await ca.put({ key: Buffer.from(k), value: Buffer.from('x') });
      rows.push({ key: Buffer.from(k), modRevision: put.header!.revision });
    }
    await ca.put({ key: Buffer.from('/del/2'), value: Buffer.from('edited') });
    const r = await runGuarded(ca, deletesOf(rows));
    assert.deepEqual(r.conflicts, ['/del/2']);
    assert.deepEqual(dump(a.endpoint, '/del/').map(([k]) => Buffer.from(k, 'base64').toString()), ['/del/2']);
  });
});
