// HTTP endpoints on the client port, as etcd serves them: /health,
// /version and /metrics (Prometheus text). Metrics come from the registry.
import type http from 'node:http';
import type { EtcdNode } from '../cluster/node';

export const SERVER_VERSION = '3.4.23';
export const CLUSTER_VERSION = '3.4.0';

export function createHttpHandler(node: EtcdNode): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/health') {
      const healthy = node.leaderId !== 0n && !node.hasAlarm(url.searchParams.getAll('exclude'));
      return json(healthy ? 200 : 503, { health: healthy ? 'true' : 'false' });
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
