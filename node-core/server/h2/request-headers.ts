// Well-formed request header lists (RFC 9113 §8.2, §8.3): the checks nghttp2 makes before a
// stream reaches node:http2's JavaScript, so the node answers malformed requests as before
// (the stream reset with PROTOCOL_ERROR, the connection kept). One pass over the decoded
// fields; `:authority` is deliberately not parsed (grpc-go sends `http://host:port`).

/** Fields that belong to HTTP/1.1 connections and make an HTTP/2 request malformed (§8.2.2). */
const CONNECTION_SPECIFIC = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

/** A regular field name: non-empty, lowercase (§8.2.1), visible ASCII, no ':'. */
function nameOk(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || c === 0x3a) return false;
  }
  return true;
}

/** A field value must not contain NUL, CR or LF (§8.2.1). */
function valueOk(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

/**
 * A request's header list as decoded ([name, value, ...]): pseudo-header fields first, each
 * at most once, only the request ones; :method, :scheme and a non-empty :path present
 * (CONNECT: :method and :authority only); field names lowercase; no connection-specific
 * fields; `te` only as "trailers".
 */
export function requestHeadersValid(f: readonly string[]): boolean {
  let method: string | undefined;
  let scheme = false;
  let path = false;
  let authority = false;
  let regular = false;
  for (let i = 0; i < f.length; i += 2) {
    const name = f[i];
    const value = f[i + 1];
    if (!valueOk(value)) return false;
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) return false;
      switch (name) {
        case ':method':
          if (method !== undefined || value.length === 0) return false;
          method = value;
          break;
        case ':scheme':
          if (scheme) return false;
          scheme = true;
          break;
        case ':path':
          if (path || value.length === 0) return false;
          path = true;
          break;
        case ':authority':
          if (authority) return false;
          authority = true;
          break;
        default:
          return false; // :status or an unknown pseudo-header
      }
      continue;
    }
    regular = true;
    if (!nameOk(name)) return false;
    if (CONNECTION_SPECIFIC.has(name)) return false;
    if (name === 'te' && value !== 'trailers') return false;
  }
  if (method === 'CONNECT') return authority && !scheme && !path;
  return method !== undefined && scheme && path;
}

/** Trailers: no pseudo-header fields, names lowercase, no connection-specific fields. */
export function trailersValid(f: readonly string[]): boolean {
  for (let i = 0; i < f.length; i += 2) {
    const name = f[i];
    if (!nameOk(name) || !valueOk(f[i + 1]) || CONNECTION_SPECIFIC.has(name)) return false;
  }
  return true;
}
