// Hosting the app's own nodes: the embedded one, the local three-member
// cluster, and nodes started on restored backups. node-core (startNode,
// startLocalCluster, restoreSnapshot) is the engine, each node in its own
// worker thread (node-thread.ts); ETCDESK_ENGINE=etcd puts
// Debian's etcd binary behind the same interface, to tell a UI bug from a node bug.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, restoreLocalCluster, startLocalCluster, type NodeConfig } from '../../node-core/index';
import { startNodeThread, type NodeThread, type NodeThreadFault } from './node-thread';

/** Member control of the app's in-process local cluster (node-core engine only). */
export interface LocalControl {
  members(): { index: number; name: string; clientUrl: string; running: boolean }[];
  stopMember(i: number): Promise<void>;
  restartMember(i: number): Promise<void>;
  /** Called when a member starts stopping (at once), has stopped, or has restarted; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  /** The chaos lab's faults (pause, isolate, slow disk) for a running member; false when it is not running. */
  fault?(i: number, f: NodeThreadFault): boolean;
}

export interface HostedNode {
  clientUrls: string[];
  stop(): Promise<void>;
  local?: LocalControl;
  /**
   * Called once when a node (or a local-cluster member) stops that nobody
   * asked to stop: a fatal storage error (disk full, a damaged log) or its
   * removal from the cluster. The message names the member and the cause
   * (with the file); the app must not go on calling the connection healthy.
   */
  onDeath?(listener: (message: string) => void): void;
}

/**
 * Tells `listener` once when one of the watched nodes (threads) closes without
 * the app stopping it: `closed` resolves with why, or undefined after a stop.
 */
class DeathWatch {
  private listener: ((message: string) => void) | undefined;
  private pending: string | undefined;
  private told = false;

  watch(closed: Promise<string | undefined>): void {
    void closed.then((why) => {
      if (why !== undefined) this.died(why);
    });
  }

  on(listener: (message: string) => void): void {
    this.listener = listener;
    if (this.pending !== undefined) this.died(this.pending);
  }

  private died(message: string): void {
    if (this.told) return;
    if (!this.listener) {
      this.pending = message;
      return;
    }
    this.told = true;
    this.listener(message);
  }
}

export interface NodeEngine {
  readonly name: string;
  startSingle(dataDir: string): Promise<HostedNode>;
  /** Three members on loopback; absent when the engine cannot do it. */
  startCluster?(dir: string, basePort: number): Promise<HostedNode>;
  /** A new single node on a restored snapshot file (data under dir); absent when the engine cannot restore. */
  startRestored?(file: string, dir: string): Promise<HostedNode & { revision: number }>;
  /** The snapshot restored into every member of the (stopped) local cluster's folder; startCluster then runs it. */
  restoreCluster?(file: string, dir: string, basePort: number): Promise<{ revision: number }>;
}

/** The flags the etcd binary is started with: node-core's own config names. */
type EtcdFlags = Pick<
  NodeConfig,
  'name' | 'dataDir' | 'listenClientUrls' | 'advertiseClientUrls' | 'listenPeerUrls' | 'initialAdvertisePeerUrls' | 'initialCluster' | 'initialClusterState' | 'initialClusterToken'
>;

/** node-core's one freePort, re-exported for the app's tests and benchmarks. */
export { freePort };

async function waitHealthy(url: string, proc: ChildProcess | null, log: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`etcd exited (${proc.exitCode}): ${log().slice(-2000)}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`node at ${url} did not become healthy: ${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function etcdBinary(): string | null {
  if (process.env.ETCD_BIN) return process.env.ETCD_BIN;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, process.platform === 'win32' ? 'etcd.exe' : 'etcd');
    if (dir && fs.existsSync(p)) return p;
  }
  return null;
}

function spawnEtcd(bin: string, cfg: EtcdFlags): { proc: ChildProcess; log: () => string } {
  fs.mkdirSync(cfg.dataDir, { recursive: true });
  const args = [
    '--name', cfg.name,
    '--data-dir', cfg.dataDir,
    '--listen-client-urls', cfg.listenClientUrls.join(','),
    '--advertise-client-urls', cfg.advertiseClientUrls.join(','),
    '--listen-peer-urls', cfg.listenPeerUrls.join(','),
    '--initial-advertise-peer-urls', cfg.initialAdvertisePeerUrls.join(','),
    '--initial-cluster', cfg.initialCluster,
    '--initial-cluster-state', cfg.initialClusterState,
    '--initial-cluster-token', cfg.initialClusterToken,
    '--log-level', 'error',
    '--logger', 'zap',
  ];
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  });
  return { proc, log: () => out };
}

async function killProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** Ports persist per data dir so a restarted embedded node keeps its advertised peer URL. */
function portsFile(dataDir: string): string {
  return path.join(dataDir, 'etcdesk-ports.json');
}

async function stablePorts(dataDir: string): Promise<{ client: number; peer: number }> {
  try {
    const p = JSON.parse(fs.readFileSync(portsFile(dataDir), 'utf8')) as { client: number; peer: number };
    if (await portFree(p.client)) return p;
  } catch {
    /* first start */
  }
  const p = { client: await freePort(), peer: await freePort() };
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(portsFile(dataDir), JSON.stringify(p));
  return p;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export function etcdBinaryEngine(bin: string): NodeEngine {
  return {
    name: `etcd binary (${bin})`,
    async startSingle(dataDir) {
      const { client, peer } = await stablePorts(dataDir);
      const c = `http://127.0.0.1:${client}`;
      const p = `http://127.0.0.1:${peer}`;
      // etcd refuses a different peer URL for an existing member; the peer port is kept alongside the data.
      const { proc, log } = spawnEtcd(bin, {
        ...embeddedMember(path.join(dataDir, 'etcd'), c, p),
      });
      try {
        await waitHealthy(c, proc, log);
      } catch (e) {
        await killProc(proc);
        throw e;
      }
      return { clientUrls: [c], stop: () => killProc(proc) };
    },
    async startCluster(dir, basePort) {
      const names = ['m1', 'm2', 'm3'];
      const peer = (i: number): string => `http://127.0.0.1:${basePort + 2 * i + 1}`;
      const client = (i: number): string => `http://127.0.0.1:${basePort + 2 * i}`;
      const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
      const procs = names.map((name, i) =>
        spawnEtcd(bin, {
          name,
          dataDir: path.join(dir, name),
          listenClientUrls: [client(i)],
          advertiseClientUrls: [client(i)],
          listenPeerUrls: [peer(i)],
          initialAdvertisePeerUrls: [peer(i)],
          initialCluster,
          initialClusterState: 'new',
          initialClusterToken: 'etcdesk-local-cluster',
        }),
      );
      const stop = async (): Promise<void> => {
        await Promise.all(procs.map((p) => killProc(p.proc)));
      };
      try {
        await Promise.all(procs.map((p, i) => waitHealthy(client(i), p.proc, p.log, 30_000)));
      } catch (e) {
        await stop();
        throw e;
      }
      return { clientUrls: names.map((_, i) => client(i)), stop };
    },
  };
}

/** Every node-core node runs in its own worker thread (node-thread.ts); main reaches it over gRPC. */
export function nodeCoreEngine(): NodeEngine {
  const logLevel = 'error' as const;
  const single = async (t: NodeThread, fallbackUrl: string): Promise<HostedNode & { revision: number }> => {
    const deaths = new DeathWatch();
    deaths.watch(t.closed);
    return { clientUrls: t.clientUrls.length ? t.clientUrls : [fallbackUrl], stop: () => t.stop(), onDeath: (l) => deaths.on(l), revision: t.revision ?? 0 };
  };
  return {
    name: 'node-core',
    async startSingle(dataDir) {
      const { client, peer } = await stablePorts(dataDir);
      const c = `http://127.0.0.1:${client}`;
      const p = `http://127.0.0.1:${peer}`;
      const t = await startNodeThread({ name: 'etcdesk', config: embeddedMember(path.join(dataDir, 'node'), c, p), logLevel });
      return single(t, c);
    },
    restoreCluster: (file, dir, basePort) => restoreLocalCluster(file, { dir, basePort }),
    async startCluster(dir, basePort) {
      // One thread per member: Stop halts that member's thread, its peers lose it as if killed.
      const c = await startLocalCluster<NodeThread>({
        dir,
        basePort,
        startMember: (config) => startNodeThread({ name: config.name ?? 'member', config, logLevel }),
      });
      const deaths = new DeathWatch();
      const changes = new Set<() => void>();
      const changed = (): void => {
        for (const l of changes) l();
      };
      const watch = (i: number): void => {
        const t = c.member(i);
        if (t) deaths.watch(t.closed);
      };
      for (let i = 0; i < c.size; i++) watch(i);
      const local: LocalControl = {
        members: () => c.members(),
        stopMember: async (i) => {
          // members() says stopped from here on (the cluster forgets the member first): tell at once.
          const stopped = c.stopMember(i);
          changed();
          try {
            await stopped;
          } finally {
            changed();
          }
        },
        restartMember: async (i) => {
          try {
            await c.restartMember(i);
            watch(i);
          } finally {
            changed();
          }
        },
        onChange: (l) => {
          changes.add(l);
          return () => changes.delete(l);
        },
        fault: (i, f) => {
          const t = c.member(i);
          if (!t || t.exited) return false;
          t.fault(f);
          return true;
        },
      };
      return { clientUrls: c.clientUrls, stop: () => c.stop(), local, onDeath: (l) => deaths.on(l) };
    },
    async startRestored(file, dir) {
      // etcdctl's restore: a new cluster of one (new ids, fresh WAL) on the file's keys and revisions,
      // so browsing a backup never touches the cluster it came from.
      const client = await freePort();
      const peer = await freePort();
      const c = `http://127.0.0.1:${client}`;
      const p = `http://127.0.0.1:${peer}`;
      const dataDir = path.join(dir, 'node');
      const t = await startNodeThread({
        name: 'restored',
        restore: { file, options: { dataDir, name: 'restored', initialCluster: `restored=${p}`, initialAdvertisePeerUrls: [p], initialClusterToken: 'etcdesk-restored' } },
        config: { name: 'restored', dataDir, listenClientUrls: [c], advertiseClientUrls: [c], listenPeerUrls: [p], initialAdvertisePeerUrls: [p], initialCluster: `restored=${p}`, initialClusterToken: 'etcdesk-restored' },
        logLevel,
      });
      return single(t, c);
    },
  };
}

/**
 * The engine in use: node-core by default; ETCDESK_ENGINE=etcd picks a real
 * etcd binary instead (to compare behaviour); null when that binary is missing.
 */
export function pickEngine(): NodeEngine | null {
  if (process.env.ETCDESK_ENGINE === 'etcd') {
    const bin = etcdBinary();
    return bin ? etcdBinaryEngine(bin) : null;
  }
  return nodeCoreEngine();
}

/** The embedded single member's flags, the same for node-core and for Debian's etcd binary. */
function embeddedMember(dataDir: string, clientUrl: string, peerUrl: string) {
  return {
    name: 'etcdesk',
    dataDir,
    listenClientUrls: [clientUrl],
    advertiseClientUrls: [clientUrl],
    listenPeerUrls: [peerUrl],
    initialAdvertisePeerUrls: [peerUrl],
    initialCluster: `etcdesk=${peerUrl}`,
    initialClusterState: 'new' as const,
    initialClusterToken: 'etcdesk-embedded',
  };
}
