// Behind an SSH tunnel, every member is reached through the tunnel (issue #12):
// a real three-member etcd runs in a network namespace of its own, as a
// private network behind a bastion is, and advertises 127.0.0.1 addresses of
// *that* network; nothing on this machine's loopback answers at them, so a
// member dialled at its advertised URL is refused. The SSH server's sessions
// run inside the namespace (sshd -i), so only the tunnel reaches the members.
// The profile names one member; the other two are known only from MemberList.
// Twice: plain http on 127.0.0.1, and TLS where members advertise names that
// resolve only inside (m1.private, …) and each certificate names only its
// member, so every member's TLS must verify that member's own name.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Channel, ClusterInfo, ConnectionProfile, Req, Res, SpacePlan } from '../contract/index';
import { hasEtcd, waitFor } from '../../node-core/testing/processes';
import { privateNetworkUnavailable, reachableHere, startEtcdIn, startPrivateNetwork, type PrivateEtcd, type PrivateNetwork } from '../../node-core/testing/private-network';
import { hasSshd, startSshdIn, type SshdInside } from '../../node-core/testing/sshd';
import { ConnectionManager } from './connection-manager';
import { createHandlers, dispatch, type HandlerContext, type Handlers } from './handlers';
import { ProfileStore } from './profile-store';
import { FileSecrets } from './secrets';
import { openTunnel } from './ssh-tunnel';
import { routeTls } from './member-dialer';

const skip = (!hasSshd() && 'no /usr/sbin/sshd: apt-get install openssh-server') || (!hasEtcd() && 'no /usr/bin/etcd') || privateNetworkUnavailable();

const NAMES = ['m1.private', 'm2.private', 'm3.private'];

for (const tls of [false, true]) {
  describe(`behind an SSH tunnel (${tls ? 'TLS, members named only inside' : 'http'}), the doctor, the space plan and the cluster view reach every member through it`, { timeout: 180_000, skip }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdesk-tunnel-members-'));
    const user = os.userInfo().username;
    let privateNet: PrivateNetwork;
    let etcd: PrivateEtcd;
    let sshd: SshdInside;
    let manager: ConnectionManager;
    let h: Handlers;
    const plans: SpacePlan[] = [];
    const planListeners: ((p: SpacePlan) => void)[] = [];
    const clusterEvents: ((i: ClusterInfo) => void)[] = [];
    const ctx: HandlerContext = {
      clientId: 'c',
      emit: (event, payload) => {
        if (event === 'cluster:changed') for (const l of clusterEvents) l(payload as ClusterInfo);
      },
    };

    const call = async <C extends Channel>(c: C, req: Req<C>): Promise<Res<C>> => {
      const env = await dispatch(h, c, req, ctx);
      if (!env.ok) throw Object.assign(new Error(env.error.message), env.error);
      return env.value as Res<C>;
    };

    const sshConfig = () => ({ host: '127.0.0.1', port: sshd.port, username: user, keyFile: sshd.userKey });

    before(async () => {
      privateNet = await startPrivateNetwork(NAMES);
      etcd = await startEtcdIn(privateNet, 3, tls ? { names: NAMES } : undefined);
      sshd = await startSshdIn((cmd, args) => privateNet.spawn(cmd, args));
      for (const u of etcd.clientUrls) assert.equal(await reachableHere(u), false, `the premise: ${u} must not answer from outside the private network`);
      const profiles = new ProfileStore(path.join(dir, 'connections.json'), new FileSecrets(path.join(dir, 'credentials.json')), false);
      manager = new ConnectionManager({ dataDir: dir, engine: null, profiles, onStatus: () => undefined });
      h = createHandlers({
        manager,
        profiles,
        info: { mode: 'shell', version: 'test', platform: process.platform, features: { localCluster: false, embeddedEngine: 'none' } },
        broadcast: (event, payload) => {
          if (event !== 'space:plan') return;
          plans.push(payload as SpacePlan);
          for (const l of planListeners) l(payload as SpacePlan);
        },
        chooseSnapshotPath: async () => null,
      });
      const profile: ConnectionProfile = { id: '', name: 'behind bastion', kind: 'remote', endpoints: [etcd.clientUrls[0]], ssh: sshConfig(), tls: tls ? { caFile: etcd.caFile } : undefined };
      const saved = await call('conn:save', profile);
      const s = await call('conn:connect', { id: saved.id });
      assert.equal(s.state, 'connected', s.error?.message);
    });

    after(async () => {
      await manager?.shutdown().catch(() => undefined);
      await sshd?.stop().catch(() => undefined);
      etcd?.stop();
      privateNet?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('the tunnel forwards a member address on demand: the endpoint reuses its listener, another gets its own, all close with the tunnel', { skip: tls && 'once is enough (plain http)' }, async () => {
      const t = await openTunnel(sshConfig(), [etcd.clientUrls[0]], {});
      const listening = (url: string): Promise<boolean> => reachableHere(url);
      try {
        assert.equal(await t.forward(etcd.clientUrls[0]), t.endpoints[0], 'the profile endpoint keeps its listener');
        assert.equal(t.forwardedUrl(etcd.clientUrls[1]), undefined, 'nothing is opened before it is asked for');
        const [a, b] = await Promise.all([t.forward(etcd.clientUrls[1]), t.forward(etcd.clientUrls[1])]);
        assert.equal(a, b, 'one listener per member, even when asked twice at once');
        assert.notEqual(a, t.endpoints[0]);
        assert.match(a, /^http:\/\/127\.0\.0\.1:\d+$/);
        assert.equal(t.forwardedUrl(etcd.clientUrls[1]), a);
        // The forward reaches the member's own HTTP endpoint inside the private network.
        const health = await fetch(`${a}/health`).then((r) => r.json() as Promise<{ health: string }>);
        assert.equal(health.health, 'true');
        t.close();
        await assert.rejects(t.forward(etcd.clientUrls[2]), /closed/);
        assert.equal(await listening(a), false, 'the member forward closed with the tunnel');
        assert.equal(await listening(t.endpoints[0]), false);
      } finally {
        t.close();
      }
    });

    it('the connection dials a member at its forward, and TLS verifies the member\'s own name', async () => {
      const route = await manager.memberDialer()(etcd.clientUrls[2]);
      assert.notEqual(route.url, etcd.clientUrls[2]);
      assert.match(route.url, tls ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(route.serverName, tls ? 'm3.private' : '127.0.0.1', 'the advertised host, never the loopback listener\'s');
      const client = manager.requireClient();
      assert.equal(routeTls(client, route)?.serverName, tls ? 'm3.private' : undefined, tls ? 'TLS verifies the member\'s own name' : 'plain http: no TLS');
      if (tls) assert.ok(routeTls(client, route)?.ca, 'with the connection\'s CA');
    });

    it('the doctor sees every member: Status, /health, /metrics and HashKV through the tunnel', async () => {
      const r = await call('doctor:report', { hash: true });
      assert.equal(r.members.length, 3);
      for (const m of r.members) {
        assert.ok(etcd.clientUrls.includes(m.clientUrl!), `the member is named by its advertised URL: ${m.clientUrl}`);
        assert.equal(m.statusError, undefined, `${m.name}: ${m.statusError}`);
        assert.equal(m.healthError, undefined, `${m.name}: ${m.healthError}`);
        assert.equal(m.metricsError, undefined, `${m.name}: ${m.metricsError}`);
        assert.equal(m.hashError, undefined, `${m.name}: ${m.hashError}`);
        assert.ok(m.status && m.health?.ok && m.metrics && m.hash, m.name);
      }
      assert.equal(r.members.filter((m) => m.isLeader).length, 1);
      assert.equal(new Set(r.members.map((m) => m.hash!.hash)).size, 1, 'every member hashes alike at one revision');
    });

    it('the cluster view and its monitor show every member answering, and the leader', async () => {
      const info = await call('cluster:info', {});
      assert.deepEqual(info.members.map((m) => (m.status && 'error' in m.status ? m.status.error : 'ok')), ['ok', 'ok', 'ok']);
      assert.equal(info.members.filter((m) => m.isLeader).length, 1);
      const pushed = new Promise<ClusterInfo>((resolve) => clusterEvents.push(resolve));
      await call('cluster:monitor', { on: true });
      const first = await pushed;
      await call('cluster:monitor', { on: false });
      assert.deepEqual(first.members.map((m) => (m.status && 'error' in m.status ? m.status.error : 'ok')), ['ok', 'ok', 'ok']);
      const hashes = await call('maint:hashkv', {});
      assert.deepEqual(hashes.hashes.map((x) => x.error ?? 'ok'), ['ok', 'ok', 'ok']);
    });

    it('the space plan defragments every member, moves the leader, and reports done', async () => {
      for (let i = 0; i < 20; i++) await call('kv:put', { key: Buffer.from(`/space/${i % 3}`).toString('base64'), value: Buffer.from(String(i)).toString('base64') });
      // No write probe: its writes during a defragment make the plan's own free-space check unreliable on tiny databases.
      const plan = await call('space:plan', { retention: 5, probe: false });
      assert.deepEqual(plan.steps.map((s) => s.kind), ['compact', 'defrag', 'defrag', 'move-leader', 'defrag', 'disarm'], 'three members found, a leader among them');
      const finished = new Promise<SpacePlan>((resolve) => planListeners.push((p) => p.planId === plan.planId && p.state !== 'running' && p.state !== 'review' && resolve(p)));
      await call('space:run', { planId: plan.planId });
      const end = await finished;
      assert.deepEqual(end.steps.map((s) => [s.kind, s.state, s.error ?? '']), [
        ['compact', 'done', ''],
        ['defrag', 'done', ''],
        ['defrag', 'done', ''],
        ['move-leader', 'done', ''],
        ['defrag', 'done', ''],
        ['disarm', 'skipped', ''],
      ]);
      assert.equal(end.state, 'done');
    });

    it('a member that stops answering is left for a live one: its advertised URL is matched to its forward', { skip: tls && 'once is enough (plain http)' }, async () => {
      const saved = await call('conn:save', { id: '', name: 'two endpoints', kind: 'remote', endpoints: [etcd.clientUrls[0], etcd.clientUrls[1]], ssh: sshConfig() });
      assert.equal((await call('conn:connect', { id: saved.id })).state, 'connected');
      const [first, second] = manager.status().endpoints;
      assert.equal(manager.status().activeEndpoint, first);
      await call('cluster:monitor', { on: true });
      etcd.procs[0].kill('SIGKILL'); // the last test: the cluster keeps a quorum of two
      await waitFor('the connection following the live member', () => manager.status().activeEndpoint === second, 20_000);
      await call('cluster:monitor', { on: false });
      assert.equal((await call('kv:get', { key: Buffer.from('/space/0').toString('base64') })).kv?.key, Buffer.from('/space/0').toString('base64'));
    });
  });
}
