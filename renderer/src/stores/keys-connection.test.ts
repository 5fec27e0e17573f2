// The key list's consumption of main's keys:changed, the list's permission
// and sign-in errors, and the sign-in flow of the connection store.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import { ContractError, utf8ToB64, type Channel, type ConnectionStatus, type EtcdeskApi, type EventChannel, type EventMap, type KeyRow, type Req, type Res } from '../../../electron/contract/index';
import { setApi } from '../api';
import { useKeysStore, PAGE } from './keys';
import { removalEffect, useConnectionStore } from './connection';

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

const row = (i: number, version = 1): KeyRow => ({ key: utf8ToB64(`k${String(i).padStart(6, '0')}`), keyText: `k${String(i).padStart(6, '0')}`, createRevision: 2, modRevision: 2 + version, version, lease: '0' });
const status = (over: Partial<ConnectionStatus>): ConnectionStatus => ({ state: 'connected', profileId: 'embedded', profileName: 'Embedded node', kind: 'embedded', endpoints: ['e'], activeEndpoint: 'e', user: null, ...over });

describe('keys store follows main\'s keys:changed', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('patches held rows in place without asking main, and re-asks only the pages whose positions moved', async () => {
    let total = 100_000;
    const api = fakeApi({
      'kv:window': (r) => ({ total, offset: r.offset, rows: Array.from({ length: Math.min(r.limit, total - r.offset) }, (_, i) => row(r.offset + i)), revision: 9, partial: false }),
      'watch:start': () => ({ watchId: 'w1', revision: 9 }),
    });
    setApi(api);
    const keys = useKeysStore();
    await keys.search('');
    await keys.ensureRange(90_000, 90_060); // scrolled deep
    const windowsBefore = api.calls.filter((c) => c.channel === 'kv:window').length;
    const callsBefore = api.calls.length;
    // A burst of rewrites: rows on screen and rows not held.
    const changed = Array.from({ length: 1000 }, (_, i) => ({ index: 89_500 + i, row: row(89_500 + i, 2) }));
    api.emit('keys:changed', { prefix: '', revision: 1009, total, changed, shiftedFrom: null });
    assert.equal(api.calls.filter((c) => c.channel === 'kv:window').length, windowsBefore, 'no window asked for in-place changes');
    assert.equal(keys.rowAt(90_000)?.version, 2);
    assert.equal(keys.rowAt(0)?.version, 1);
    assert.equal(keys.revision, 1009);

    // A key added near the end: only the held pages from that position on are asked again.
    total++;
    api.emit('keys:changed', { prefix: '', revision: 1010, total, changed: [], shiftedFrom: 90_100 });
    await new Promise((r) => setImmediate(r));
    const asked = api.calls.slice(callsBefore).filter((c) => c.channel === 'kv:window').map((c) => (c.req as Req<'kv:window'>).offset);
    assert.deepEqual(asked, [Math.floor(90_100 / PAGE) * PAGE]);
    assert.equal(keys.total, 100_001);
  });

  it('a list refused for permission says who is signed in and what they may not read, not "no keys"', async () => {
    setApi(
      fakeApi({
        'kv:window': () => Promise.reject(new ContractError(7, 'etcdserver: permission denied', 'PermissionDenied')),
      }),
    );
    useConnectionStore().apply(status({ user: 'bob' }));
    const keys = useKeysStore();
    keys.prefix = '/app/';
    await keys.reload();
    assert.deepEqual(keys.listError, { kind: 'denied', message: 'Signed in as bob: no read permission on "/app/"' });
    assert.equal(keys.total, 0);
  });

  it('a list refused for missing credentials opens the sign-in dialog', async () => {
    setApi(fakeApi({ 'kv:window': () => Promise.reject(new ContractError(3, 'etcdserver: user name is empty', 'UserEmpty')) }));
    const conn = useConnectionStore();
    conn.apply(status({}));
    const keys = useKeysStore();
    await keys.reload();
    assert.equal(keys.listError?.kind, 'sign-in');
    assert.equal(conn.signIn?.profileId, 'embedded');
    assert.equal(conn.signIn?.username, 'root');
  });
});

describe('connection store sign-in', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('a connection that needs credentials asks; signing in connects and closes the dialog; a refusal keeps it open', async () => {
    let good = false;
    const api = fakeApi({
      'conn:sign-in': (r) =>
        good && r.password === 'root-pw'
          ? status({ user: r.username })
          : status({ state: 'error', error: { code: 3, message: 'etcdserver: authentication failed, invalid user ID or password', etcdError: 'AuthFailed' }, signInRequired: true }),
      'conn:list': () => [{ id: 'embedded', name: 'Embedded node', kind: 'embedded', endpoints: [] }],
    });
    setApi(api);
    const conn = useConnectionStore();
    conn.apply(status({ state: 'error', error: { code: 3, message: 'etcdserver: user name is empty', etcdError: 'UserEmpty' }, signInRequired: true }));
    assert.equal(conn.signIn?.reason, 'etcdserver: user name is empty');
    assert.equal(await conn.submitSignIn('root', 'wrong', true), false);
    assert.match(conn.signInError, /authentication failed/);
    assert.ok(conn.signIn, 'still open after a refusal');
    good = true;
    assert.equal(await conn.submitSignIn('root', 'root-pw', true), true);
    assert.equal(conn.signIn, null);
    assert.equal(conn.status.user, 'root');
    assert.deepEqual(api.calls.find((c) => c.channel === 'conn:sign-in')?.req, { id: 'embedded', username: 'root', password: 'wrong', remember: true });
  });

  it('says what removing each kind of profile does', () => {
    assert.match(removalEffect({ id: 'r', name: 'Restored: x', kind: 'restored', endpoints: [], dataDir: '/d/restored/1' }), /stops and its data folder \(\/d\/restored\/1\) is deleted/);
    assert.match(removalEffect({ id: 'embedded', name: 'Embedded node', kind: 'embedded', endpoints: [] }), /built in and stays/);
  });
});
