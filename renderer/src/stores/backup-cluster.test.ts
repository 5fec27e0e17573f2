// The backup flow and the cluster store's new actions with a fake contract API.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { createPinia, setActivePinia } from 'pinia';
import { ContractError, type Channel, type ClusterInfo, type EtcdeskApi, type Req, type Res } from '../../../electron/contract/index';
import { setApi } from '../api';
import { useBackupStore } from './backup';
import { useClusterStore } from './cluster';
import { useConnectionStore } from './connection';

type Impl = { [C in Channel]?: (req: Req<C>) => Res<C> | Promise<Res<C>> };
function fakeApi(impl: Impl): EtcdeskApi & { calls: { channel: Channel; req: unknown }[] } {
  const calls: { channel: Channel; req: unknown }[] = [];
  return {
    calls,
    async invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
      calls.push({ channel, req });
      const f = impl[channel] as ((r: Req<C>) => Res<C> | Promise<Res<C>>) | undefined;
      if (!f) throw new ContractError(-1, `unexpected ${channel}`);
      return f(req);
    },
    on: () => () => undefined,
  };
}
const info = (revision: number, leader: string): ClusterInfo => ({
  clusterId: '1',
  revision,
  alarms: [],
  members: ['a', 'b'].map((n, i) => ({ id: String(i + 1), name: n, peerUrls: [], clientUrls: [`u${i}`], isLearner: false, isLeader: n === leader, status: { version: '3.4', dbSize: 1, raftIndex: revision + 10, raftTerm: 2, errors: [] } })),
  local: [{ index: 0, name: 'a', clientUrl: 'u0', running: true }, { index: 1, name: 'b', clientUrl: 'u1', running: true }],
});

describe('backup store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('export: one op id for the progress bar, result kept, cancelled dialog closes', async () => {
    let cancel = false;
    const api = fakeApi({ 'maint:snapshot': (r) => (cancel ? { path: null, bytes: 0, sha256: '', verified: false } : { path: '/b/x.db', bytes: 40, sha256: 'ab', verified: true }) as Res<'maint:snapshot'> & { opId?: string } });
    setApi(api);
    const b = useBackupStore();
    const r = await b.exportBackup();
    assert.equal(r?.path, '/b/x.db');
    assert.equal(b.dialog, 'export');
    assert.equal((api.calls[0].req as { opId: string }).opId, b.opId);
    assert.equal(b.busy, false);
    cancel = true;
    assert.equal(await b.exportBackup(), null);
    assert.equal(b.dialog, null);
  });

  it('export failure is shown in the dialog, not thrown', async () => {
    setApi(fakeApi({ 'maint:snapshot': () => Promise.reject(new ContractError(-1, 'not connected: choose a connection first')) }));
    const b = useBackupStore();
    assert.equal(await b.exportBackup(), null);
    assert.match(b.error, /not connected/);
    assert.equal(b.dialog, 'export');
  });

  it('restore: lists the backups folder, then restores and switches the connection', async () => {
    const status = { state: 'connected', profileId: 'restored-1', profileName: 'Restored: x.db', kind: 'restored', endpoints: ['e'], activeEndpoint: 'e', user: null } as const;
    const api = fakeApi({
      'backup:list': () => ({ dir: '/b', files: [{ name: 'x.db', path: '/b/x.db', bytes: 1, mtime: 1 }] }),
      'backup:restore': (r) => ({ path: r.name ? `/b/${r.name}` : null, profileId: 'restored-1', revision: 22, dataDir: '/d', status: { ...status, endpoints: [...status.endpoints] } }),
      'conn:list': () => [],
    });
    setApi(api);
    const b = useBackupStore();
    await b.openRestore();
    assert.equal(b.files.length, 1);
    const r = await b.restore('x.db');
    assert.deepEqual(api.calls.find((x) => x.channel === 'backup:restore')?.req, { opId: b.opId, name: 'x.db' });
    assert.equal(r?.revision, 22);
    const conn = useConnectionStore();
    assert.equal(conn.status.profileId, 'restored-1');
    assert.equal(conn.epoch, 1, 'views reload for the new connection');
    b.close();
    assert.equal(b.dialog, null);
  });
});

describe('cluster store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('every cluster answer updates the view, the chart keeps one sample a second; stop/restart mark the member pending', async () => {
    let leader = 'a';
    let rev = 10;
    const api = fakeApi({
      'cluster:info': () => info(rev, leader),
      'cluster:local-stop': ({ index }) => {
        assert.equal(useClusterStore().pendingLocal, index);
        leader = 'b';
        return info(++rev, leader);
      },
      'cluster:local-restart': () => info(++rev, leader),
      'maint:hashkv': (r) => ({ revision: r.revision ?? rev, hashes: [] }),
      'kv:compact': (r) => ({ revision: r.revision }),
    });
    setApi(api);
    const c = useClusterStore();
    await c.load();
    assert.equal(c.leader?.name, 'a');
    await c.stopLocal(0);
    assert.equal(c.leader?.name, 'b');
    assert.equal(c.pendingLocal, null);
    await c.restartLocal(0);
    assert.equal(c.info?.revision, 12);
    // three answers within a second: one sample (pushes come a few a second)
    assert.deepEqual(c.samples.map((s) => s.revision), [10]);
    const h = await c.hashKV(7);
    assert.equal(h.revision, 7);
    await c.compact(5, true);
    assert.deepEqual(api.calls.find((x) => x.channel === 'kv:compact')?.req, { revision: 5, physical: true });
    c.resetSamples();
    assert.equal(c.samples.length, 0);
  });

  it('pushes of the live connection update the view; a late one of the previous connection is dropped; a new connection starts a new chart', async () => {
    let push: (i: ClusterInfo) => void = () => undefined;
    const api = fakeApi({ 'cluster:monitor': () => ({ connectionId: 1 }) });
    setApi({ ...api, on: ((e: string, l: (i: ClusterInfo) => void) => (e === 'cluster:changed' && (push = l), () => undefined)) as typeof api.on });
    const conn = useConnectionStore();
    const c = useClusterStore();
    conn.status = { ...conn.status, state: 'connected', connectionId: 1 };
    await c.monitor(true);
    assert.deepEqual(api.calls.map((x) => x.req), [{ on: true }]);
    push({ ...info(10, 'a'), connectionId: 1 });
    assert.equal(c.leader?.name, 'a');
    // switched to connection 2; connection 1's last push arrives late
    conn.status = { ...conn.status, connectionId: 2 };
    push({ ...info(99, 'b'), connectionId: 1 });
    assert.equal(c.info?.revision, 10, 'the previous connection\'s read is dropped');
    push({ ...info(3, 'b'), connectionId: 2 });
    assert.equal(c.leader?.name, 'b');
    assert.deepEqual(c.samples.map((s) => s.revision), [3], 'only the new connection\'s series');
    assert.equal(c.series.connectionId, 2);
  });
});
