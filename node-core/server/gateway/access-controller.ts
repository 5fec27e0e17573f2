// etcd's accessController (embed/serve.go), in front of everything HTTP on
// a client URL: "/v3beta/" paths are the same API as "/v3/"; with
// --client-cert-auth and auth enabled a gateway request whose verified client
// certificate has a CommonName is refused (the gateway could not pass the
// name on as the user); every answer carries the CORS headers of etcd's
// default --cors "*", and OPTIONS is answered 200 on any path. Then "/v3/"
// goes to the gateway and the rest to the member's HTTP endpoints.
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { plainError, type GatewayHandler } from './gateway';

const CORS_HEADERS: [string, string][] = [
  ['Access-Control-Allow-Headers', 'accept, content-type, authorization'],
  ['Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE'],
  ['Access-Control-Allow-Origin', '*'],
];

export interface AccessControllerOptions {
  /** --client-cert-auth is set and auth is enabled now. */
  refuseCommonName?: () => boolean;
}

/** The CommonName of a verified client certificate on a TLS request, if any. */
function verifiedCommonName(req: http.IncomingMessage): string | undefined {
  const sock = req.socket as Partial<TLSSocket> | undefined;
  if (!sock || !sock.encrypted || !sock.authorized || typeof sock.getPeerCertificate !== 'function') return undefined;
  const cn: unknown = sock.getPeerCertificate()?.subject?.CN;
  const name = Array.isArray(cn) ? cn[cn.length - 1] : cn;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

export function accessController(gateway: GatewayHandler, rest: http.RequestListener, opts: AccessControllerOptions = {}): http.RequestListener {
  return (req, res) => {
    let path = (req.url ?? '/').split('?')[0];
    if (path.startsWith('/v3beta/')) path = '/v3/' + path.slice('/v3beta/'.length);
    const gw = path.startsWith('/v3/');
    if (gw && opts.refuseCommonName?.() && verifiedCommonName(req) !== undefined)
      return plainError(res, 400, 'CommonName of client sending a request against gateway will be ignored and not used as expected');
    for (const [k, v] of CORS_HEADERS) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(200, { 'Content-Length': 0 });
      return void res.end();
    }
    // then Go's ServeMux: unclean paths and the bare subtree root are redirected
    const query = (req.url ?? '').includes('?') ? (req.url ?? '').slice((req.url ?? '').indexOf('?')) : '';
    const clean = cleanPath(path);
    if (clean !== path) return redirect(req, res, clean + query);
    if (path === '/v3') return redirect(req, res, '/v3/' + query);
    if (gw) return gateway(req, res, path);
    rest(req, res);
  };
}

/** Go's path.Clean, keeping a trailing slash (net/http's cleanPath). */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  if (p[0] !== '/') p = '/' + p;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  let np = '/' + out.join('/');
  if (p.endsWith('/') && np !== '/') np += '/';
  return np;
}

const htmlEscape = (s: string): string => s.replace(/[&'<>"]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;' })[c] ?? c);

/** Go's http.Redirect with 301 (what ServeMux answers). */
function redirect(req: http.IncomingMessage, res: http.ServerResponse, to: string): void {
  res.setHeader('Location', to);
  if (req.method === 'GET' || req.method === 'HEAD') res.setHeader('Content-Type', 'text/html; charset=utf-8');
  const body = req.method === 'GET' ? `<a href="${htmlEscape(to)}">Moved Permanently</a>.\n\n` : '';
  res.writeHead(301, { 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
