// One active connection at a time: the embedded node (default), the local
// three-node cluster, or a saved remote profile. Owns the client, the hosted
// node processes, and every stream opened on the connection's behalf.
import fs from 'node:fs';
import path from 'node:path';
import { EtcdClient } from '../../node-core/index';
import { ContractError, type ClusterInfo, type ConnectionProfile, type ConnectionStatus, type KeysChangedEvent } from '../contract/index';
import { ClusterMonitor, ClusterReader } from './cluster-monitor';
import type { HostedNode, LocalControl, NodeEngine } from './node-host';
import { BUILTIN_CLUSTER, BUILTIN_EMBEDDED, ProfileStore } from './profile-store';
import { KeyList, KeyListRegistry } from './key-list';
import { isEtcdError, needsSignIn, serializeError } from './errors';
import { KeepAliveRegistry, WatchRegistry } from './stream-registry';
import { openTunnel, parseTarget, type OpenTunnel } from './ssh-tunnel';
import { directDialer, type MemberDialer } from './member-dialer';
import { ScanRegistry } from './keyspace-scan';

export interface ManagerOptions {
  dataDir: string;
  engine: NodeEngine | null;
  profiles: ProfileStore;
  onStatus(s: ConnectionStatus): void;
  clusterBasePort?: number;
}

export class ConnectionManager {
  client: EtcdClient | null = null;
  private profile: ConnectionProfile | null = null;
  private hosted = new Map<string, HostedNode>();
  private state: ConnectionStatus['state'] = 'disconnected';
  private lastError: ConnectionStatus['error'];
  private signInRequired = false;
  /** The last hosted node that died on its own, so a connect racing its death does not end "connected". */
  private death: { id: string; message: string } | undefined;
  private readonly keyLists = new KeyListRegistry();
  readonly watches = new WatchRegistry();
  readonly keepAlives = new KeepAliveRegistry();
  /** Search and analyzer scans, by window. */
  readonly scans = new ScanRegistry();
  private switching: Promise<unknown> = Promise.resolve();
  /** Windows watching the cluster (cluster:monitor), by client id. */
  private readonly clusterMonitors = new Map<string, ClusterMonitor>();
  private connectionSeq = 0;
  /** This connection's number (ConnectionStatus.connectionId): every connect makes a new one. */
  connectionId: number | undefined;
  /** The endpoint the last conn:changed named, so a failover is told. */
  private reportedEndpoint: string | null = null;
  /** Data dirs of nodes started on restored backups: their connections live for the session only. */
  private readonly restoredDirs: string[] = [];
  /** The live connection's SSH tunnel, if its profile has one. */
  private tunnel: OpenTunnel | null = null;

  constructor(private readonly opts: ManagerOptions) {}

  get engineName(): string {
    return this.opts.engine?.name ?? 'none';
  }

  status(): ConnectionStatus {
    const p = this.profile;
    this.reportedEndpoint = this.client?.activeEndpoint ?? null;
    return {
      state: this.state,
      profileId: p?.id ?? null,
      profileName: p?.name ?? '',
      kind: p?.kind ?? null,
      endpoints: this.client?.endpointUrls ?? [],
      activeEndpoint: this.client?.activeEndpoint ?? null,
      user: this.client?.options.username ?? null,
      insecure: p?.kind === 'remote' && p.tls?.insecureSkipVerify ? true : undefined,
      tunnel: p?.kind === 'remote' && p.ssh ? `${p.ssh.username}@${p.ssh.host}:${p.ssh.port ?? 22}` : undefined,
      engine: p && p.kind !== 'remote' ? this.engineName : undefined,
      error: this.lastError,
      signInRequired: this.signInRequired || undefined,
      connectionId: this.connectionId,
    };
  }

  requireClient(): EtcdClient {
    if (!this.client || this.state !== 'connected') throw new ContractError(-1, 'not connected: choose a connection first');
    return this.client;
  }

  connect(id: string): Promise<ConnectionStatus> {
    const run = this.switching.then(() => this.doConnect(id));
    this.switching = run.catch(() => undefined);
    return run;
  }

  private async doConnect(id: string): Promise<ConnectionStatus> {
    const profile = this.opts.profiles.get(id);
    if (!profile) throw new ContractError(-1, `unknown connection ${id}`);
    this.closeClient();
    this.profile = profile;
    this.connectionId = ++this.connectionSeq;
    this.state = 'connecting';
    this.lastError = undefined;
    this.signInRequired = false;
    this.death = undefined;
    this.opts.onStatus(this.status());
    let client: EtcdClient | null = null;
    try {
      let endpoints: string[];
      let tls = profile.tls ? readTls(profile.tls) : undefined;
      if (profile.kind === 'remote' && profile.ssh) {
        const tunnel = await openTunnel(profile.ssh, profile.endpoints, { secret: this.opts.profiles.sshSecret(profile.id) });
        this.tunnel = tunnel;
        this.opts.profiles.pinHostKey(profile.id, tunnel.hostKey);
        tunnel.onClose((reason) => {
          if (this.tunnel !== tunnel) return;
          this.failOnDeath(reason);
          this.opts.onStatus(this.status());
        });
        endpoints = tunnel.endpoints;
        // The client dials loopback; TLS must still verify the member's own name (one name per
        // connection: members' certificates usually share a SAN list, else set Server name).
        if (profile.endpoints.some((e) => /^https:/i.test(e.trim())) || tls) tls = { ...tls, serverName: tls?.serverName || tunnel.hosts[0] };
      } else if (profile.kind === 'remote') endpoints = profile.endpoints;
      else endpoints = (await this.host(profile.id)).clientUrls;
      client = new EtcdClient({
        endpoints,
        username: profile.username,
        password: profile.username ? this.opts.profiles.password(profile.id) : undefined,
        tls,
        timeoutMs: 15_000,
      });
      // A cheap call proves the endpoints, TLS and credentials (a user's first call authenticates).
      await client.status().catch((e: unknown) => {
        // Status may be denied to non-root users; the read below proves the rest.
        if (!isEtcdError(e, 'PermissionDenied')) throw e;
      });
      // Status answers without credentials even with auth on: a read is what tells "sign in first".
      await client.range({ key: Buffer.from([0]), count_only: true }).catch((e: unknown) => {
        if (!isEtcdError(e, 'PermissionDenied')) throw e;
      });
      this.client = client;
      this.state = 'connected';
    } catch (e) {
      client?.close();
      this.closeClient();
      this.state = 'error';
      this.lastError = serializeError(e);
      this.signInRequired = needsSignIn(e);
    }
    const died = this.deathOf(id);
    if (died !== undefined) this.failOnDeath(died);
    const s = this.status();
    this.opts.onStatus(s);
    return s;
  }

  private async host(id: string): Promise<HostedNode> {
    const running = this.hosted.get(id);
    if (running) return running;
    const engine = this.opts.engine;
    if (!engine) throw new ContractError(-1, 'no node engine: ETCDESK_ENGINE=etcd asks for the etcd binary and none is on PATH');
    let node: HostedNode;
    if (id === BUILTIN_EMBEDDED) node = await engine.startSingle(path.join(this.opts.dataDir, 'embedded'));
    else if (id === BUILTIN_CLUSTER) {
      if (!engine.startCluster) throw new ContractError(-1, 'this engine cannot start a local cluster');
      const dir = path.join(this.opts.dataDir, 'local-cluster');
      fs.mkdirSync(dir, { recursive: true });
      node = await engine.startCluster(dir, this.opts.clusterBasePort ?? 23790);
    } else throw new ContractError(-1, `not a hosted connection: ${id}`);
    this.adopt(id, node);
    return node;
  }

  /** Keeps a hosted node, and hears when it dies on its own. */
  private adopt(id: string, node: HostedNode): void {
    this.hosted.set(id, node);
    node.onDeath?.((message) => void this.nodeDied(id, node, message));
  }

  /**
   * A hosted node (or a member of the local cluster) stopped on its own, e.g.
   * its disk is full: the connection on it says so, with the node's message,
   * and is never left looking connected. The rest of it is stopped so that
   * connecting again starts it afresh on its data.
   */
  private async nodeDied(id: string, node: HostedNode, message: string): Promise<void> {
    if (this.hosted.get(id) !== node) return;
    this.hosted.delete(id);
    this.death = { id, message };
    if (this.profile?.id === id && this.state === 'connected') {
      this.failOnDeath(message);
      this.opts.onStatus(this.status());
    }
    await node.stop().catch(() => undefined);
  }

  private deathOf(id: string): string | undefined {
    return this.death?.id === id ? this.death.message : undefined;
  }

  private failOnDeath(message: string): void {
    this.closeClient();
    this.state = 'error';
    this.lastError = { code: -1, message };
    this.signInRequired = false;
  }

  /** The local cluster's member control while connected to it (null otherwise). */
  localControl(): LocalControl | null {
    if (this.profile?.id !== BUILTIN_CLUSTER) return null;
    return this.hosted.get(BUILTIN_CLUSTER)?.local ?? null;
  }

  get dataDir(): string {
    return this.opts.dataDir;
  }

  /**
   * Restores a snapshot file into a new node under <data>/restored/<stamp> and
   * connects to it as a session connection: the live cluster is never touched.
   */
  async openRestored(file: string): Promise<{ profileId: string; revision: number; dataDir: string; status: ConnectionStatus }> {
    const engine = this.opts.engine;
    if (!engine?.startRestored) throw new ContractError(-1, `the ${this.engineName} engine cannot restore a backup into a new node`);
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const dir = path.join(this.opts.dataDir, 'restored', stamp);
    fs.mkdirSync(dir, { recursive: true });
    const node = await engine.startRestored(file, dir);
    const id = `restored-${stamp}`;
    this.adopt(id, node);
    this.restoredDirs.push(dir);
    this.opts.profiles.addSession({ id, name: `Restored: ${path.basename(file).replace(/^etcd-(backup|snapshot)-/, '').replace(/\.db$/, '')}`, kind: 'restored', endpoints: [], dataDir: dir });
    const status = await this.connect(id);
    return { profileId: id, revision: node.revision, dataDir: dir, status };
  }

  /**
   * Disaster recovery into the local three-member cluster: its members stop,
   * the snapshot is restored into each (etcd's procedure: one file, the whole
   * membership), the cluster starts on it and the app connects to it. The
   * local cluster's previous keys are replaced; the backup file is untouched.
   */
  async restoreIntoLocalCluster(file: string): Promise<{ revision: number; status: ConnectionStatus }> {
    const engine = this.opts.engine;
    if (!engine?.restoreCluster || !engine.startCluster) throw new ContractError(-1, `the ${this.engineName} engine cannot restore into the local cluster`);
    if (this.profile?.id === BUILTIN_CLUSTER) this.disconnect();
    const running = this.hosted.get(BUILTIN_CLUSTER);
    if (running) {
      this.hosted.delete(BUILTIN_CLUSTER); // stopped on purpose: not a death
      await running.stop();
    }
    const { revision } = await engine.restoreCluster(file, path.join(this.opts.dataDir, 'local-cluster'), this.opts.clusterBasePort ?? 23790);
    const status = await this.connect(BUILTIN_CLUSTER);
    return { revision, status };
  }

  /**
   * A throwaway node on a snapshot file (backup verification): the engine's own
   * restore, in a scratch folder removed when it stops. Never a connection.
   */
  async scratchRestore(file: string): Promise<{ clientUrls: string[]; revision: number; stop(): Promise<void> }> {
    const engine = this.opts.engine;
    if (!engine?.startRestored) throw new ContractError(-1, `the ${this.engineName} engine cannot restore a backup to verify it`);
    const dir = fs.mkdtempSync(path.join(this.opts.dataDir, 'scratch-'));
    try {
      const node = await engine.startRestored(file, dir);
      return {
        clientUrls: node.clientUrls,
        revision: node.revision,
        stop: async () => {
          await node.stop().catch(() => undefined);
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Swap credentials on the live connection (after enabling auth as root). */
  relogin(username: string | undefined, password: string | undefined): void {
    const old = this.requireClient();
    this.closeStreams();
    this.client = new EtcdClient({ ...old.options, username, password });
    old.close();
    this.opts.onStatus(this.status());
  }

  /**
   * How the live connection reaches one member by the client URL the cluster advertises for it:
   * directly, or through its SSH tunnel (a loopback forward opened on demand; TLS then verifies
   * the member's own host, or the profile's server name when one is set).
   */
  memberDialer(): MemberDialer {
    const tunnel = this.tunnel;
    if (!tunnel) return directDialer;
    const serverName = this.profile?.kind === 'remote' ? this.profile.tls?.serverName : undefined;
    return async (url) => ({ url: await tunnel.forward(url), serverName: serverName || parseTarget(url).host });
  }

  /** The profile of the live (or last tried) connection. */
  get currentProfile(): ConnectionProfile | null {
    return this.profile;
  }

  /**
   * Removes a connection. A restored one's node stops and its data folder (a
   * copy of the backup's keys) goes; the backup file itself stays.
   */
  async remove(id: string): Promise<void> {
    // A built-in profile is only reset (name, credentials): its live connection may go on.
    if (this.profile?.id === id && !ProfileStore.isBuiltin(id)) this.disconnect();
    const node = this.opts.profiles.isSession(id) ? this.hosted.get(id) : undefined;
    const dataDir = this.opts.profiles.get(id)?.dataDir;
    this.opts.profiles.delete(id);
    if (node) {
      this.hosted.delete(id);
      await node.stop();
    }
    if (dataDir) {
      fs.rmSync(dataDir, { recursive: true, force: true });
      const i = this.restoredDirs.indexOf(dataDir);
      if (i >= 0) this.restoredDirs.splice(i, 1);
    }
  }

  disconnect(): ConnectionStatus {
    this.closeClient();
    this.profile = null;
    this.state = 'disconnected';
    this.lastError = undefined;
    this.signInRequired = false;
    const s = this.status();
    this.opts.onStatus(s);
    return s;
  }

  /** The window's key list for a prefix; main keeps it current and tells the window through `emit`. */
  keyList(clientId: string, prefix: string, refresh: boolean, emit: (e: KeysChangedEvent) => void): { list: KeyList; fresh: boolean } {
    const client = this.requireClient();
    return this.keyLists.get(clientId, prefix, refresh, () => new KeyList(client, prefix, emit));
  }

  /** A list whose first read failed must not be reused half-made. */
  dropKeyList(clientId: string): void {
    this.keyLists.closeClient(clientId);
  }

  /** A window went away: its watches, key list and cluster monitor go too. */
  closeStreamsOf(owner: string): void {
    this.watches.closeOwner(owner);
    this.keyLists.closeClient(owner);
    this.scans.cancelOwner(owner);
    this.stopClusterMonitor(owner);
  }

  /** The window's cluster monitor on this connection (replacing any it had): pushes every read through `emit`. */
  startClusterMonitor(owner: string, emit: (info: ClusterInfo) => void): void {
    const client = this.requireClient();
    this.stopClusterMonitor(owner);
    this.clusterMonitors.set(owner, new ClusterMonitor(client, this.localControl(), this.connectionId, emit, (info) => this.followLiveMembers(info), this.memberDialer()));
  }

  stopClusterMonitor(owner: string): void {
    this.clusterMonitors.get(owner)?.close();
    this.clusterMonitors.delete(owner);
  }

  /**
   * The connection leaves a member that stopped answering (or that the app
   * stopped) for a live one, and conn:changed tells the window (the sidebar
   * names the endpoint in use), without waiting for a call to fail over.
   */
  private followLiveMembers(info: ClusterInfo): void {
    const client = this.client;
    if (!client || this.state !== 'connected') return;
    // Members are listed by their advertised URLs; through a tunnel the client dials their forwards.
    const tunnel = this.tunnel;
    const down = new Set([...ClusterReader.downUrls(info)].map((u) => tunnel?.forwardedUrl(u) ?? u));
    for (let i = 0; i < client.endpointUrls.length && down.has(client.activeEndpoint); i++) client.failover();
    if (down.has(client.activeEndpoint)) return;
    if (client.activeEndpoint !== this.reportedEndpoint) this.opts.onStatus(this.status());
  }

  private closeStreams(): void {
    for (const m of this.clusterMonitors.values()) m.close();
    this.clusterMonitors.clear();
    this.watches.closeAll();
    this.keepAlives.closeAll();
    this.keyLists.closeAll();
    this.scans.cancelAll();
  }

  private closeClient(): void {
    this.closeStreams();
    this.client?.close();
    this.client = null;
    const t = this.tunnel;
    this.tunnel = null;
    t?.close();
  }

  /** Quit: close streams and stop every hosted node. */
  async shutdown(): Promise<void> {
    this.closeClient();
    const nodes = [...this.hosted.values()];
    this.hosted.clear();
    await Promise.allSettled(nodes.map((n) => n.stop()));
    // A restored node's connection is gone after quit, so its copy of the backup would only pile up;
    // the backup file itself is untouched.
    for (const d of this.restoredDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
}

/** A profile's TLS settings with the files read (the live connection and the backup scheduler's own clients). */
export function readTls(t: NonNullable<ConnectionProfile['tls']>): { ca?: Buffer; cert?: Buffer; key?: Buffer; serverName?: string; insecureSkipVerify?: boolean } {
  const read = (f: string | undefined): Buffer | undefined => (f ? fs.readFileSync(f) : undefined);
  return { ca: read(t.caFile), cert: read(t.certFile), key: read(t.keyFile), serverName: t.serverName || undefined, insecureSkipVerify: t.insecureSkipVerify || undefined };
}
