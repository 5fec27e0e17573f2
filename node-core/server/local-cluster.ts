// A local three-member (or n) cluster inside one process, for the desktop
// app and tests: each member is a full node (own data dir, own client and
// peer ports on 127.0.0.1, real raft over the loopback transport), so
// stopping one and watching the leader move behaves exactly as with separate
// processes.
import fs from 'node:fs';
import path from 'node:path';
import type { NodeConfig } from '../cluster';
import { freePort, isAddrInUse } from '../support/listen-address';
import { silentLogger, type Logger } from '../support/logger';
import { startNode, type RunningNode } from './start';

/** What the cluster needs of a started member. */
export interface LocalMemberHandle {
  stop(): Promise<void>;
}

export interface LocalClusterOptions<M extends LocalMemberHandle = RunningNode> {
  /** Parent folder; member i keeps its data in <dir>/m<i>. */
  dir: string;
  size?: number;
  /** First client port; member i uses basePort + 2i (client) and + 2i + 1 (peer). 0 picks free ports. */
  basePort?: number;
  logger?: Logger;
  /** Extra config for every member (heartbeat, election timeout, quota ...). */
  config?: Partial<NodeConfig>;
  /**
   * How a member is started (default: startNode in this thread). The desktop
   * app starts each member in its own worker thread, so a stop halts it.
   */
  startMember?: (config: Partial<NodeConfig>, logger: Logger) => Promise<M>;
}

export interface LocalMemberInfo {
  index: number;
  name: string;
  clientUrl: string;
  peerUrl: string;
  running: boolean;
}

export interface LocalCluster<M extends LocalMemberHandle = RunningNode> {
  readonly size: number;
  /** Client URLs of every member (stopped ones included: clients fail over). */
  readonly clientUrls: string[];
  members(): LocalMemberInfo[];
  member(i: number): M | undefined;
  /** Graceful stop of one member. */
  stopMember(i: number): Promise<void>;
  /** Starts a stopped member again on its data. */
  restartMember(i: number): Promise<void>;
  stop(): Promise<void>;
}

export function startLocalCluster<M extends LocalMemberHandle>(opts: LocalClusterOptions<M> & { startMember: LocalClusterOptions<M>['startMember'] }): Promise<LocalCluster<M>>;
export function startLocalCluster(opts: Omit<LocalClusterOptions, 'startMember'>): Promise<LocalCluster>;
export async function startLocalCluster<M extends LocalMemberHandle>(opts: LocalClusterOptions<M>): Promise<LocalCluster<M>> {
  // Without startMember (the first overload) M is RunningNode.
  const start = opts.startMember ?? ((c: Partial<NodeConfig>, logger: Logger) => startNode(c, { logger }) as unknown as Promise<M>);
  const size = opts.size ?? 3;
  fs.mkdirSync(opts.dir, { recursive: true });
  const ports: { client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++) {
    if (opts.basePort) ports.push({ client: opts.basePort + 2 * i, peer: opts.basePort + 2 * i + 1 });
    else ports.push({ client: await freePort(), peer: await freePort() });
  }
  // remember the ports with the data, so a restarted app finds the same cluster
  const portsFile = path.join(opts.dir, 'ports.json');
  const memberDir = (i: number): string => path.join(opts.dir, `m${i + 1}`);
  // ports picked here for members with no data yet: another may take one before we bind it
  let fresh = !opts.basePort && ports.every((_, i) => !fs.existsSync(memberDir(i)));
  if (fs.existsSync(portsFile) && !opts.basePort) {
    const saved = JSON.parse(fs.readFileSync(portsFile, 'utf8')) as { client: number; peer: number }[];
    if (saved.length === size) {
      ports.splice(0, size, ...saved);
      fresh = false;
    }
  }
  fs.writeFileSync(portsFile, JSON.stringify(ports));
  const names = ports.map((_, i) => `local${i + 1}`);
  const initialCluster = (): string => ports.map((p, i) => `${names[i]}=http://127.0.0.1:${p.peer}`).join(',');
  const cfg = (i: number): Partial<NodeConfig> => ({
    ...opts.config,
    name: names[i],
    dataDir: memberDir(i),
    listenClientUrls: [`http://127.0.0.1:${ports[i].client}`],
    advertiseClientUrls: [`http://127.0.0.1:${ports[i].client}`],
    listenPeerUrls: [`http://127.0.0.1:${ports[i].peer}`],
    initialAdvertisePeerUrls: [`http://127.0.0.1:${ports[i].peer}`],
    initialCluster: initialCluster(),
    initialClusterToken: 'etcdesk-local',
    initialClusterState: 'new',
  });
  const log = opts.logger ?? silentLogger;
  let running: (M | undefined)[] = [];
  for (let attempt = 1; ; attempt++) {
    const started = await Promise.allSettled(ports.map((_, i) => start(cfg(i), log)));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (!failed) {
      running = started.map((r) => (r as PromiseFulfilledResult<M>).value);
      break;
    }
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    if (!fresh || attempt >= 3 || !isAddrInUse(failed.reason)) throw failed.reason;
    // a port found free was taken before the member bound it: member ids derive from the peer
    // URLs, so start over with new ports and empty data dirs
    for (let i = 0; i < size; i++) {
      fs.rmSync(memberDir(i), { recursive: true, force: true });
      ports[i] = { client: await freePort(), peer: await freePort() };
    }
    fs.writeFileSync(portsFile, JSON.stringify(ports));
  }
  const clientUrls = ports.map((p) => `http://127.0.0.1:${p.client}`);
  return {
    size,
    clientUrls,
    members: () =>
      ports.map((p, i) => ({ index: i, name: names[i], clientUrl: clientUrls[i], peerUrl: `http://127.0.0.1:${p.peer}`, running: !!running[i] })),
    member: (i) => running[i],
    async stopMember(i) {
      const r = running[i];
      running[i] = undefined;
      await r?.stop();
    },
    async restartMember(i) {
      if (running[i]) return;
      running[i] = await start(cfg(i), log);
    },
    async stop() {
      await Promise.all(running.map((r) => r?.stop()));
      running.fill(undefined);
    },
  };
}
