// A three (or n) member etcdesk cluster whose peer traffic goes through
// PeerProxy instances: each member listens for peers on its real port but
// advertises its proxy's port, so every peer reaches it through the proxy and
// a test can cut a member off the network while its process keeps running.
import { freePort, startEtcdesk, tempDir, waitHealthy, type ClusterProcs, type ServerProc } from './processes';
import { PeerProxy } from './peer-proxy';

export interface ProxiedCluster extends ClusterProcs {
  /** proxies[i] carries every peer message into member i. */
  proxies: PeerProxy[];
}

export async function startProxiedCluster(n = 3, extraArgs: string[] = []): Promise<ProxiedCluster> {
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ client: await freePort(), peer: await freePort() })));
  const proxies = await Promise.all(ports.map((p) => PeerProxy.start(p.peer)));
  const token = `proxied-${process.pid}-${ports[0].client}`;
  const initial = proxies.map((p, i) => `m${i + 1}=${p.url}`).join(',');
  const dirs = ports.map((_, i) => tempDir(`proxied-m${i + 1}`));
  const startOne = (i: number): Promise<ServerProc> =>
    startEtcdesk({
      name: `m${i + 1}`,
      dataDir: dirs[i],
      clientPort: ports[i].client,
      peerPort: ports[i].peer,
      waitReady: false,
      // Given after the harness's own peer flags: the last occurrence of a flag wins, so the member
      // keeps listening on its real port but announces the proxy.
      extraArgs: ['--initial-advertise-peer-urls', proxies[i].url, '--initial-cluster', initial, '--initial-cluster-token', token, '--initial-cluster-state', 'new', ...extraArgs],
    });
  const members: ServerProc[] = [];
  try {
    members.push(...(await Promise.all(ports.map((_, i) => startOne(i)))));
    await Promise.all(members.map((m) => waitHealthy(m.clientUrl, 30_000, m.proc)));
  } catch (e) {
    await Promise.all(members.map((m) => m.kill()));
    await Promise.all(proxies.map((p) => p.close()));
    throw e;
  }
  const c: ProxiedCluster = {
    members,
    proxies,
    token,
    endpoints: members.map((m) => m.endpoint).join(','),
    async restart(i: number) {
      const m = await startOne(i);
      c.members[i] = m;
      await waitHealthy(m.clientUrl, 30_000, m.proc);
      return m;
    },
    async stop() {
      for (const p of proxies) p.heal();
      await Promise.all(c.members.map((m) => m.stop()));
      await Promise.all(proxies.map((p) => p.close()));
    },
  };
  return c;
}
