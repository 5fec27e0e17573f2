// HTTP endpoints on the client port, as etcd serves them: /health,
// /version and /metrics (Prometheus text). Metrics come from the registry.
import http from 'node:http';
import type { EtcdNode } from '../cluster/node';

export const SERVER_VERSION = '3.4.23';
export const CLUSTER_VERSION = '3.4.0';

/** etcd's checkHealth gives its quorum read one second. */
const HEALTH_QUORUM_TIMEOUT_MS = 1000;

function quorumWithin(node: EtcdNode, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const read = node.readBarrier().then(
    () => true,
    () => false,
  );
  return Promise.race([read, late]).finally(() => clearTimeout(timer));
}

export function createHttpHandler(node: EtcdNode): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/health') {
      const answer = (healthy: boolean): void => json(healthy ? 200 : 503, { health: healthy ? 'true' : 'false' });
      if (node.leaderId === 0n || node.hasAlarm(url.searchParams.getAll('exclude'))) return answer(false);
      // etcd's checkHealth also needs a quorum round within a second (its QGET); ours is a ReadIndex
      return void quorumWithin(node, HEALTH_QUORUM_TIMEOUT_MS).then(answer);
    }
    if (url.pathname === '/version') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET' });
        return res.end('Method Not Allowed');
      }
      return json(200, { etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION });
    }
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
      return res.end(node.metrics.render(node));
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  };
}

/**
 * --listen-metrics-urls: plain HTTP listeners serving the same /metrics and
 * /health as the client port (etcd's metrics listener), so scrapers need not
 * reach the gRPC port. Resolves once all listen; close() stops them.
 */
export async function listenMetricsUrls(urls: string[], handler: http.RequestListener): Promise<{ close(): Promise<void> }> {
  const servers: http.Server[] = [];
  const close = (): Promise<void> =>
    Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  try {
    for (const raw of urls) {
      const u = new URL(raw);
      if (u.protocol !== 'http:') throw new Error(`metrics URL ${raw}: only http:// is supported in this build`);
      const srv = http.createServer((req, res) => {
        const p = new URL(req.url ?? '/', 'http://x').pathname;
        if (p === '/metrics' || p === '/health') return handler(req, res);
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('404 page not found\n');
      });
      srv.keepAliveTimeout = 5000;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(Number(u.port || 80), u.hostname.replace(/^\[|\]$/g, ''), () => {
          srv.off('error', reject);
          resolve();
        });
      });
      servers.push(srv);
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    close: () => {
      for (const s of servers) s.closeAllConnections();
      return close();
    },
  };
}
