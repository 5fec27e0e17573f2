// Starts a member: opens (or creates) its data, the node, the gRPC services
// and the client listeners. The CLI and the desktop app both come through here.
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import { mergeConfig, type NodeConfig } from '../cluster/config';
import { createLogger, type Logger } from '../cluster/logger';
import { EtcdNode } from '../cluster/node';
import { ClusterService, KVService, MaintenanceService } from '../proto/gen/etcdserverpb';
import { listenClientUrl, type ClientListener } from './client-listener';
import { createClusterHandlers } from './cluster-service';
import { createHttpHandler } from './http-endpoints';
import { createKVHandlers } from './kv-service';
import { createMaintenanceHandlers } from './maintenance-service';
import { openGuard } from './request-guard';

export interface RunningNode {
  readonly config: NodeConfig;
  readonly node: EtcdNode;
  /** The client URLs actually listened on (port 0 resolved). */
  readonly clientUrls: string[];
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

/** etcd's grpcOverheadBytes: room for framing above --max-request-bytes. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

export async function startNode(partial: Partial<NodeConfig>, opts: StartOptions = {}): Promise<RunningNode> {
  const config = mergeConfig(partial);
  const log = opts.logger ?? createLogger(config.logLevel);
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const node = await EtcdNode.open(config, log);
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const guard = openGuard;
  server.addService(KVService, createKVHandlers(node, guard));
  server.addService(MaintenanceService, createMaintenanceHandlers(node, guard) as grpc.UntypedServiceImplementation);
  server.addService(ClusterService, createClusterHandlers(node, guard));

  const listeners: ClientListener[] = [];
  const httpHandler = createHttpHandler(node);
  try {
    for (const url of config.listenClientUrls) {
      const secure = url.startsWith('https:') || url.startsWith('unixs:');
      if (secure) throw new Error(`TLS client URL ${url} needs --cert-file/--key-file or --auto-tls (not available in this build)`);
      const l = await listenClientUrl(url, server, grpc.ServerCredentials.createInsecure(), false, httpHandler);
      listeners.push(l);
      log.warn('serving client traffic insecurely; this is strongly discouraged!', { address: url.replace(/^\w+:\/\//, '') });
    }
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
  let stopped = false;
  return {
    config,
    node,
    clientUrls,
    async stop() {
      if (stopped) return;
      stopped = true;
      server.forceShutdown();
      for (const l of listeners) await l.close();
      await node.close();
    },
  };
}
