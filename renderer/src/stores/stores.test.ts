// Stores run in node with a fake contract API: no DOM, no Electron.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import { ContractError, utf8ToB64, type Channel, type EtcdeskApi, type EventChannel, type EventMap, type KeyRow, type KeyValue, type Req, type Res } from '../../../electron/contract/index';
import { setApi } from '../api';
import { useKeysStore, PAGE, MAX_PAGES } from './keys';
import { useTxnStore } from './txn';
import { useLeasesStore } from './leases';
import { useAuthStore } from './auth';
import { useUiStore } from './ui';

type Impl = { [C in Channel]?: (req: Req<C>) => Res<C> | Promise<Res<C>> };

function fakeApi(impl: Impl): EtcdeskApi & { calls: { channel: Channel; req: unknown }[]; emit<E extends EventChannel>(e: E, p: EventMap[E]): void } {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const calls: { channel: Channel; req: unknown }[] = [];
  return {
    calls,
    async invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
      calls.push({ channel, req });
      const f = impl[channel] as ((r: Req<C>) => Res<C> | Promise<Res<C>>) | undefined;
      if (!f) throw new ContractError(-1, `unexpected ${channel}`);
      return f(req);
    },
    on<E extends EventChannel>(e: E, l: (p: EventMap[E]) => void): () => void {
      let s = listeners.get(e);
      if (!s) listeners.set(e, (s = new Set()));
      s.add(l as (p: unknown) => void);
      return () => s.delete(l as (p: unknown) => void);
    },
    emit(e, p) {
      for (const l of listeners.get(e) ?? []) l(p);
    },
  };
}

const kv = (key: string, value: string, mod = 5): KeyValue => ({ key: utf8ToB64(key), keyText: key, value: utf8ToB64(value), createRevision: 2, modRevision: mod, version: 1, lease: '0' });
const row = (i: number): KeyRow => ({ key: utf8ToB64(`k${i}`), keyText: `k${i}`, createRevision: i, modRevision: i, version: 1, lease: '0' });

describe('keys store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('pages the list on demand and never holds more than MAX_PAGES pages', async () => {
    const total = 100_000;
    setApi(
      fakeApi({
        'kv:window': (r) => ({ total, offset: r.offset, rows: Array.from({ length: Math.min(r.limit, total - r.offset) }, (_, i) => row(r.offset + i)), revision: 9, partial: false }),
      }),
    );
    const keys = useKeysStore();
    await keys.reload();
    assert.equal(keys.total, total);
    assert.equal(keys.rowAt(0)?.keyText, 'k0');
    for (let start = 0; start < total; start += 7 * PAGE) await keys.ensureRange(start, start + 60);
    await keys.ensureRange(total - 60, total);
    assert.equal(keys.rowAt(total - 1)?.keyText, `k${total - 1}`);
    assert.ok(keys.loadedRows <= MAX_PAGES * PAGE, `holds ${keys.loadedRows}`);
  });

  it('a slow response for an older search never overwrites a newer one', async () => {
    const gates: Record<string, () => void> = {};
    setApi(
      fakeApi({
        'kv:window': (r) =>
          new Promise((resolve) => {
            gates[r.prefix] = () => resolve({ total: r.prefix ? 1 : 50, offset: 0, rows: [row(r.prefix ? 1 : 0)], revision: 1, partial: false });
          }),
      }),
    );
    const keys = useKeysStore();
    keys.prefix = '';
    const old = keys.reload();
    keys.prefix = '/big/';
    const fresh = keys.reload();
    gates['/big/']();
    await fresh;
    gates['']();
    await old;
    assert.equal(keys.total, 1);
    assert.equal(keys.rowAt(0)?.keyText, 'k1');
  });

  it('saves with a mod_revision compare and turns a concurrent change into a conflict', async () => {
    let server = kv('/a', 'one', 5);
    const api = fakeApi({
      'kv:get': () => ({ kv: server, revision: server.modRevision }),
      'kv:put': (r) => {
        if (r.expectModRevision !== server.modRevision) return { ok: false, conflict: true, current: server, revision: server.modRevision };
        server = { ...server, value: r.value, modRevision: server.modRevision + 1 };
        return { ok: true, revision: server.modRevision, kv: server };
      },
    });
    setApi(api);
    const keys = useKeysStore();
    await keys.select(utf8ToB64('/a'));
    assert.equal(keys.valueMode, 'text');
    keys.draft = 'mine';
    assert.equal(keys.dirty, true);
    server = kv('/a', 'theirs', 7); // someone else wrote
    assert.equal(await keys.save(), 'conflict');
    assert.equal(keys.conflict?.theirs?.modRevision, 7);
    assert.equal((api.calls.at(-1)?.req as Req<'kv:put'>).expectModRevision, 5);
    assert.equal(await keys.save(true), 'saved');
    assert.equal(keys.conflict, null);
    assert.equal(keys.selected?.modRevision, 8);
  });

  it('picks JSON for JSON values, hex for binary, and refuses invalid JSON', async () => {
    const values: Record<string, string> = { '/j': utf8ToB64('{"a":1}'), '/b': Buffer.from([0, 1, 2, 255]).toString('base64') };
    setApi(fakeApi({ 'kv:get': (r) => ({ kv: { ...kv('x', ''), key: r.key, value: values[Buffer.from(r.key, 'base64').toString()] }, revision: 1 }) }));
    const keys = useKeysStore();
    await keys.select(utf8ToB64('/j'));
    assert.equal(keys.valueMode, 'json');
    assert.equal(keys.draft, '{\n  "a": 1\n}');
    keys.draft = '{"a":';
    assert.ok(keys.draftError);
    await keys.select(utf8ToB64('/b'));
    assert.equal(keys.binary, true);
    assert.equal(keys.valueMode, 'hex');
    assert.match(keys.draft, /00 01 02 ff/);
  });

  it('a watch event on the selected key marks a remote change while editing', async () => {
    const api = fakeApi({
      'kv:get': () => ({ kv: kv('/a', 'one'), revision: 5 }),
      'kv:window': () => ({ total: 0, offset: 0, rows: [], revision: 5, partial: false }),
      'watch:start': () => ({ watchId: 'w1', revision: 5 }),
    });
    setApi(api);
    const keys = useKeysStore();
    await keys.startWatch();
    await keys.select(utf8ToB64('/a'));
    keys.draft = 'editing';
    api.emit('watch:update', { watchId: 'w1', revision: 6, events: [{ type: 'put', kv: kv('/a', 'two', 6) }], dropped: 0 });
    assert.equal(keys.remoteChanged, true);
    assert.equal(keys.draft, 'editing');
  });
});

describe('txn store', () => {
  beforeEach(() => setActivePinia(createPinia()));
  it('builds the etcdctl preview and records which branch ran', async () => {
    setApi(fakeApi({ 'kv:txn': (r) => ({ succeeded: false, revision: 3, results: r.failure.map((o) => ({ type: o.type, key: o.key })) }) }));
    const txn = useTxnStore();
    txn.addCompare();
    Object.assign(txn.compares[0], { key: 'k', target: 'value', op: '!=', operand: 'x' });
    txn.addOp('success');
    Object.assign(txn.success[0], { key: 'k', value: 'v' });
    txn.addOp('failure', 'delete');
    txn.failure[0].key = 'k';
    // Exactly etcdctl txn's stdin: no prompts, each section ended by a blank line.
    assert.equal(txn.preview, 'val("k") != "x"\n\nput k v\n\ndel k\n\n');
    assert.equal(txn.previewProblem, null);
    const r = await txn.run();
    assert.equal(r.succeeded, false);
    assert.deepEqual(r.results, [{ type: 'delete', key: 'k' }]);
  });
});

describe('leases store', () => {
  beforeEach(() => setActivePinia(createPinia()));
  it('counts down locally and applies keep-alive ticks', async () => {
    const api = fakeApi({ 'lease:grant': (r) => ({ id: '42', ttl: r.ttl, grantedTtl: r.ttl, keys: [], keepingAlive: false, at: 1000 }) });
    setApi(api);
    const leases = useLeasesStore();
    leases.subscribe();
    await leases.grant(10);
    leases.now = 4000;
    assert.equal(leases.remaining(leases.leases[0]), 7);
    api.emit('lease:tick', { id: '42', ttl: 10, at: 4000 });
    assert.equal(leases.remaining(leases.leases[0]), 10);
    api.emit('lease:tick', { id: '42', ttl: 0, at: 5000, gone: true });
    assert.equal(leases.leases.length, 0);
  });
});

describe('auth and ui stores', () => {
  beforeEach(() => setActivePinia(createPinia()));
  it('knows when root is ready for enabling auth', async () => {
    setApi(fakeApi({ 'auth:overview': () => ({ enabled: false, users: [{ name: 'root', roles: ['root'] }], roles: [{ name: 'root', perms: [] }], restricted: false }) }));
    const auth = useAuthStore();
    await auth.load();
    assert.equal(auth.rootReady, true);
    assert.equal(auth.enabled, false);
  });
  it('attempt() turns a failure into an error toast with etcd\'s message', async () => {
    setApi(fakeApi({}));
    const ui = useUiStore();
    const r = await ui.attempt(() => Promise.reject(new ContractError(9, 'etcdserver: root user does not exist')));
    assert.equal(r, undefined);
    assert.equal(ui.toasts[0].text, 'etcdserver: root user does not exist');
    assert.equal(ui.toasts[0].kind, 'error');
    // …and the table's cause and fix beside it.
    assert.match(ui.toasts[0].help?.sentence ?? '', /needs a user named root/);
  });
  it('confirm() resolves with the answer, and a newer question cancels an older one', async () => {
    setApi(fakeApi({}));
    const ui = useUiStore();
    const first = ui.confirm({ title: 'a', message: 'm', action: 'Do a' });
    const second = ui.confirm({ title: 'b', message: 'm', action: 'Do b' });
    assert.equal(await first, false);
    assert.equal(ui.confirmation?.title, 'b');
    ui.answerConfirm(true);
    assert.equal(await second, true);
    assert.equal(ui.confirmation, null);
  });
});
