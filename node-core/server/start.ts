// Starts a member: opens (or creates) its data, the node, the gRPC services
// and the client listeners. The CLI and the desktop app both come through here.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import fs from 'node:fs';
import { mergeConfig, parseInitialCluster, type ClusterNode, type NodeConfig, type Member, EtcdNode, instrumentService } from '../cluster';
import { fetchMembers, PeerTransport } from '../transport/transport';
import path from 'node:path';
import { createLogger, type Logger } from '../support/logger';
import { ClusterService, KVService, LeaseService, MaintenanceService, WatchService } from '../proto/gen/etcdserverpb';
import { ElectionService } from '../proto/gen/v3electionpb';
import { LockService } from '../proto/gen/v3lockpb';
import { listenClientUrl, type ClientListener } from './client-listener';
import { createClusterHandlers } from './cluster-service';
import { createHttpHandler, listenMetricsUrls } from './http-endpoints';
import { createElectionHandlers } from './election-service';
import { createKVHandlers } from './kv-service';
import { createLeaseHandlers } from './lease-service';
import { createLockHandlers } from './lock-service';
import { createWatchHandlers } from './watch-service';
import { createMaintenanceHandlers } from './maintenance-service';
import { guardLearner as guardCalls } from './learner-guard';
import type { RequestGuard } from './request-guard';
import { createAuthServer } from './auth-service';
import { clientListenerTls, peerTransportTls, refusePeersNotAllowed, type TlsFlags } from './tls';
import type { Http2SecureServer } from 'node:http2';
import { GrpcServer } from './grpc-server';
import { ServerContext } from './server-context';
import { createGateway } from './gateway/gateway';
import { accessController } from './gateway/access-controller';
import { AuthService } from '../proto/gen/etcdserverpb';

/**
 * A member joining a running cluster (--initial-cluster-state existing, no
 * data yet) learns its id, the cluster id and the membership from the other
 * members, as etcd's GetClusterFromRemotePeers: its id is the one MemberAdd
 * gave the member with its peer URLs.
 */
async function joinIdentity(config: NodeConfig, log: Logger, tls?: ReturnType<typeof peerTransportTls>): Promise<{ memberId: bigint; clusterId: bigint; members: Member[] } | undefined> {
  if (config.initialClusterState !== 'existing' || !EtcdNode.isFreshDataDir(config.dataDir)) return undefined;
  const mine = new Set(config.initialAdvertisePeerUrls);
  const others = [...parseInitialCluster(config.initialCluster).entries()].filter(([name]) => name !== config.name).flatMap(([, urls]) => urls);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const got = await fetchMembers(others, config.initialClusterToken, tls);
      const me = got.members.find((m) => m.peerURLs.some((u) => mine.has(u)));
      if (!me) throw new Error(`member with peer URLs ${[...mine].join(',')} is not in the cluster; add it with MemberAdd first`);
      log.info('joining existing cluster', { 'member-id': me.id, 'cluster-id': got.clusterId });
      return { memberId: me.id, clusterId: got.clusterId, members: got.members.map((m) => ({ ...m, name: m.id === me.id ? config.name : m.name })) };
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`could not fetch the cluster membership from ${others.join(',')}: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export interface RunningNode {
  readonly config: NodeConfig;
  /** Resolves when the member stopped, by stop() or by being removed from the cluster. */
  readonly closed: Promise<void>;
  readonly node: ClusterNode;
  /** The client URLs actually listened on (port 0 resolved). */
  readonly clientUrls: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Lab only (the app's chaos lab), read per call so the lab can switch them on and off; absent: no fault. */
  faults?: NodeFaults;
}

/** Faults a lab injects into one member: never active unless it asks. */
export interface NodeFaults {
  /** Milliseconds to wait before each WAL fdatasync (a slow disk). */
  syncDelayMs?(): number;
  /** True while the member is cut off from its peers (raft messages in and out dropped). */
  isolated?(): boolean;
}

/** etcd's grpcOverheadBytes: room for framing above --max-request-bytes. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
/** How long a stopping member lets unary calls in flight finish after GOAWAY. */
const SHUTDOWN_GRACE_MS = 1000;

export async function startNode(partial: Partial<NodeConfig>, opts: StartOptions = {}): Promise<RunningNode> {
  const config = mergeConfig(partial);
  const log = opts.logger ?? createLogger(config.logLevel);
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const tlsFlags: TlsFlags = { ...config };
  const peerTls = peerTransportTls(tlsFlags);
  const identity = await joinIdentity(config, log, peerTls);
  const node = await EtcdNode.open(config, log, {
    identity,
    createTransport: (n) =>
      new PeerTransport({
        memberId: n.memberId,
        clusterId: n.clusterId,
        listenPeerUrls: config.listenPeerUrls,
        tls: peerTls,
        clusterToken: config.initialClusterToken,
        snapshotDir: path.join(config.dataDir, 'member'),
        maxMessageBytes: Math.max(128 << 20, config.maxRequestBytes * 4),
        log,
        handler: n.peerHandler(),
        dropPeerTraffic: opts.faults?.isolated ? () => opts.faults?.isolated?.() === true : undefined,
      }),
    syncDelayMs: opts.faults?.syncDelayMs ? () => opts.faults?.syncDelayMs?.() ?? 0 : undefined,
  });
  const server = new GrpcServer({
    maxReceiveMessageBytes: config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    // --grpc-keepalive-interval / --grpc-keepalive-timeout (etcd's 2 h / 20 s by default)
    keepaliveTimeMs: config.grpcKeepaliveInterval,
    keepaliveTimeoutMs: config.grpcKeepaliveTimeout,
  });
  // --client-cert-auth names users by certificate CN on TLS client URLs
  const clientCertAuth = config.clientCertAuth && config.listenClientUrls.some((u) => u.startsWith('https:') || u.startsWith('unixs:'));
  const auth = createAuthServer({
    propose: (r) => node.propose(r),
    header: () => node.header(),
    services: { auth: node.auth },
    clientCertAuth,
    waitApplied: (i) => node.waitApplied(i),
    readBarrier: () => node.readBarrier(),
  });
  const guard: RequestGuard = auth.guard;
  // the server layer's per-member state (watch hub, lease ids, leader client, leader monitor), closed with the member
  const ctx = new ServerContext(node);
  void node.closed.then(() => ctx.close());
  // every service's calls count in /metrics (grpc_server_started_total, grpc_server_handled_total)
  const addService = server.addService.bind(server);
  server.addService = (def, impl) => addService(def, instrumentService(def, impl, node.metrics));
  const learner = (): boolean => node.isLearner();
  // etcd's unary interceptor: the learner check, then WithRequireLeader calls refused without a leader
  const guardLearner = <T extends UntypedServiceImplementation>(h: T, isLearner: () => boolean, allowed?: (m: string, r: unknown) => boolean): T =>
    guardCalls(h, isLearner, allowed, () => node.leaderId === 0n);
  server.addService(KVService, guardLearner(createKVHandlers(node, guard), learner, (m, r) => m === 'Range' && (r as { serializable?: boolean }).serializable === true));
  server.addService(MaintenanceService, guardLearner(createMaintenanceHandlers(node, guard) as UntypedServiceImplementation, learner, (m) => m === 'Status'));
  server.addService(ClusterService, guardLearner(createClusterHandlers(node, guard), learner));
  server.addService(AuthService, guardLearner(auth.handlers, learner));
  server.addService(WatchService, guardLearner(createWatchHandlers(ctx, guard), learner));
  server.addService(LeaseService, guardLearner(createLeaseHandlers(ctx, guard), learner));
  server.addService(LockService, guardLearner(createLockHandlers(ctx, guard), learner));
  server.addService(ElectionService, guardLearner(createElectionHandlers(ctx, guard), learner));

  // as etcd: clients are served (and the member says it is ready) only once it is published through the log
  await node.published;
  const listeners: ClientListener[] = [];
  const httpHandler = createHttpHandler(node);
  // the client URLs' HTTP: etcd's accessController in front of the gateway and the endpoints above
  const clientHttp = accessController(createGateway(server), httpHandler, { refuseCommonName: () => config.clientCertAuth && node.auth.enabled });
  try {
    for (const url of config.listenClientUrls) {
      const secure = url.startsWith('https:') || url.startsWith('unixs:');
      const t = clientListenerTls(url, tlsFlags);
      for (const w of t.warnings) log.warn(w);
      // plain ports: the lean HTTP/2 server (ETCDESK_NODE_HTTP2=1: node:http2, for comparison); TLS ports: node:http2
      const h2 = secure || t.tls || process.env.ETCDESK_NODE_HTTP2 === '1' ? server.http2Server(t.tls, clientHttp) : undefined;
      if (h2 && t.tls) refusePeersNotAllowed(h2 as Http2SecureServer, t.refuseConnection);
      const l = await listenClientUrl(url, h2 ?? server, secure, clientHttp);
      listeners.push(l);
      if (!secure) log.warn('serving client traffic insecurely; this is strongly discouraged!', { address: url.replace(/^\w+:\/\//, '') });
    }
    const metricsListeners = await listenMetricsUrls(config.listenMetricsUrls, httpHandler);
    void node.closed.then(() => metricsListeners.close());
  } catch (e) {
    for (const l of listeners) await l.close();
    await node.close();
    throw e;
  }
  const clientUrls = listeners.map((l) => {
    const u = new URL(l.url);
    if (u.protocol.startsWith('unix')) return l.url;
    u.port = String(l.port);
    return u.toString().replace(/\/$/, '');
  });
  log.info('ready to serve client requests', { name: config.name, 'member-id': node.memberId, 'cluster-id': node.clusterId, 'client-urls': clientUrls });
  let stopped: Promise<void> | undefined;
  // a member removed from the cluster (or stopped by a storage failure) closes itself; its listeners go
  // with it, and stop() then waits for that, so a host tearing down the member's thread finds no live socket
  void node.closed.then(() => {
    stopped ??= server.shutdown({ graceMs: SHUTDOWN_GRACE_MS }).then(async () => {
      await Promise.all(listeners.map((l) => l.close()));
    });
  });
  return {
    config,
    node,
    closed: node.closed,
    clientUrls,
    stop() {
      // GOAWAY first: unary calls in flight get their answers before the node closes
      stopped ??= server.shutdown({ graceMs: SHUTDOWN_GRACE_MS }).then(async () => {
        for (const l of listeners) await l.close();
        await node.close();
      });
      return stopped;
    },
  };
}
