// HTTP endpoints on the client port, as etcd serves them: /health,
// /livez, /readyz (etcd 3.4.29+/3.5's health.go), /version and /metrics
// (Prometheus text). Metrics come from the registry.
import http from 'node:http';
import type { ClusterNode } from '../cluster';
import { IDLE_HTTP_MS } from './client-listener';

export const SERVER_VERSION = '3.4.23';
export const CLUSTER_VERSION = '3.4.0';

/** etcd's checkHealth gives its quorum read one second. */
const HEALTH_QUORUM_TIMEOUT_MS = 1000;

function quorumWithin(node: ClusterNode, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const read = node.readBarrier().then(
    () => true,
    () => false,
  );
  return Promise.race([read, late]).finally(() => clearTimeout(timer));
}

/** One named check of /livez or /readyz: resolves to a failure reason, or undefined when it passes. */
type Check = (node: ClusterNode) => Promise<string | undefined> | string | undefined;

const serializableRead: Check = (node) => {
  try {
    node.mvcc.range({ key: Buffer.from('\0'), range_end: Buffer.alloc(0), limit: 1, revision: 0, sort_order: 0, sort_target: 0, serializable: true, keys_only: true, count_only: false, min_mod_revision: 0, max_mod_revision: 0, min_create_revision: 0, max_create_revision: 0 });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

// etcd's readyz: a CORRUPT alarm and a linearizable read that cannot complete make the member unready
const HEALTH_CHECKS: Record<'livez' | 'readyz', [string, Check][]> = {
  livez: [['serializable_read', serializableRead]],
  readyz: [
    ['data_corruption', (node) => (node.hasAlarm(['NONE', 'NOSPACE']) ? 'Alarm active:CORRUPT' : undefined)],
    ['serializable_read', serializableRead],
    [
      'linearizable_read',
      async (node) => {
        if (node.leaderId === 0n) return 'etcdserver: no leader';
        return (await quorumWithin(node, HEALTH_QUORUM_TIMEOUT_MS)) ? undefined : 'etcdserver: request timed out';
      },
    ],
  ],
};

/**
 * etcd's /livez and /readyz (the Kubernetes-style health API): 200 `ok`, or
 * with ?verbose one `[+]name ok` line per check and `<kind> check passed`;
 * any failure answers 503 listing every check (`[-]name failed: reason`)
 * and `<kind> check failed`. ?exclude=name skips a check (`[+]name excluded: ok`).
 */
async function healthApi(node: ClusterNode, kind: 'livez' | 'readyz', url: URL, res: http.ServerResponse): Promise<void> {
  const exclude = new Set(url.searchParams.getAll('exclude'));
  let lines = '';
  let failed = false;
  for (const [name, check] of HEALTH_CHECKS[kind]) {
    if (exclude.has(name)) {
      lines += `[+]${name} excluded: ok\n`;
      continue;
    }
    const reason = await check(node);
    if (reason === undefined) lines += `[+]${name} ok\n`;
    else {
      failed = true;
      lines += `[-]${name} failed: ${reason}\n`;
    }
  }
  const head = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };
  if (failed) {
    res.writeHead(503, head);
    return void res.end(`${lines}${kind} check failed\n`);
  }
  res.writeHead(200, head);
  res.end(url.searchParams.has('verbose') ? `${lines}${kind} check passed\n` : 'ok');
}

export function createHttpHandler(node: ClusterNode): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/health') {
      // etcd's NewHealthHandler: GET only; no Content-Type set, so Go sniffs text/plain; 503 through http.Error
      if (req.method !== 'GET') {
        res.writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
        return res.end('Method Not Allowed\n');
      }
      const answer = (healthy: boolean): void => {
        res.writeHead(healthy ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8', ...(healthy ? {} : { 'X-Content-Type-Options': 'nosniff' }) });
        res.end(healthy ? '{"health":"true"}' : '{"health":"false"}\n');
      };
      if (node.leaderId === 0n || node.hasAlarm(url.searchParams.getAll('exclude'))) return answer(false);
      // etcd's checkHealth also needs a quorum round within a second (its QGET); ours is a ReadIndex
      return void quorumWithin(node, HEALTH_QUORUM_TIMEOUT_MS).then(answer);
    }
    if (url.pathname === '/livez' || url.pathname === '/readyz') {
      if (req.method !== 'GET') {
        res.writeHead(405, { Allow: 'GET', 'Content-Type': 'text/plain; charset=utf-8' });
        return res.end('Method Not Allowed\n');
      }
      return void healthApi(node, url.pathname === '/livez' ? 'livez' : 'readyz', url, res);
    }
    if (url.pathname === '/version') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET' });
        return res.end('Method Not Allowed');
      }
      return json(200, { etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION });
    }
    if (url.pathname === '/metrics') {
      return void node.renderMetrics().then((text) => {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
      }, (e: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${e.message}\n`);
      });
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
      srv.keepAliveTimeout = IDLE_HTTP_MS;
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
