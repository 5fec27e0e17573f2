// TLS from etcd's flags: --cert-file/--key-file/--trusted-ca-file/
// --client-cert-auth/--client-crl-file/--auto-tls for clients and the --peer-*
// equivalents for the peer transport. Mirrors etcd's transport.TLSInfo:
// a trusted CA or --client-cert-auth makes the server require and verify a
// client certificate; --auto-tls writes a self-signed ECDSA P-521 certificate
// to <data-dir>/fixtures/{client,peer} (reused when present) and replaces the
// given TLS settings only when no cert/key files were given.
// --cipher-suites (Go's names, mapped to OpenSSL's) limits TLS 1.2 on both
// ports, as Go's tls.Config.CipherSuites (TLS 1.3 suites are not
// configurable in Go: names are accepted, TLS 1.3 keeps its defaults).
// --peer-cert-allowed-cn / --peer-cert-allowed-hostname and
// --client-cert-allowed-hostname make a verified certificate acceptable only
// with that CN / for that host (etcd's VerifyPeerCertificate, on both ends).
import crypto, { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls, { type ConnectionOptions, type PeerCertificate, type SecureContextOptions, type TLSSocket, type TlsOptions } from 'node:tls';

/** The subset of the node's configuration TLS reads (same names as NodeConfig). */
export interface TlsFlags {
  dataDir: string;
  listenClientUrls?: string[];
  listenPeerUrls?: string[];
  certFile?: string;
  keyFile?: string;
  trustedCaFile?: string;
  clientCertAuth?: boolean;
  clientCrlFile?: string;
  autoTls?: boolean;
  peerCertFile?: string;
  peerKeyFile?: string;
  peerTrustedCaFile?: string;
  peerClientCertAuth?: boolean;
  peerCrlFile?: string;
  peerAutoTls?: boolean;
  cipherSuites?: string[];
  clientCertAllowedHostname?: string;
  peerCertAllowedCn?: string;
  peerCertAllowedHostname?: string;
}

/** etcd's transport.TLSInfo. */
export interface TlsInfo {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  crlFile: string;
  /** A generated self-signed certificate: peers skip verifying each other (etcd). */
  selfCert: boolean;
  /** Go cipher suite names (validated by cipherSuiteOptions). */
  cipherSuites?: string[];
  /** The CN a peer's certificate must carry (etcd's AllowedCN). */
  allowedCn?: string;
  /** The host a peer's certificate must be valid for (etcd's AllowedHostname). */
  allowedHostname?: string;
}

const isEmpty = (i: TlsInfo): boolean => i.certFile === '' && i.keyFile === '';

function hostsOf(urls: string[] | undefined): string[] {
  const out: string[] = [];
  for (const u of urls ?? []) {
    try {
      out.push(new URL(u).host);
    } catch {
      // not a URL: nothing to put in the certificate
    }
  }
  return out;
}

/** The client-side TLS info, with --auto-tls resolved. */
export function clientTlsInfo(f: TlsFlags): TlsInfo {
  const info: TlsInfo = {
    certFile: f.certFile ?? '',
    keyFile: f.keyFile ?? '',
    trustedCaFile: f.trustedCaFile ?? '',
    clientCertAuth: f.clientCertAuth ?? false,
    crlFile: f.clientCrlFile ?? '',
    selfCert: false,
    cipherSuites: f.cipherSuites,
    allowedHostname: f.clientCertAllowedHostname || undefined,
  };
  if (!f.autoTls || !isEmpty(info)) return info;
  return { ...selfCert(path.join(f.dataDir, 'fixtures', 'client'), hostsOf(f.listenClientUrls)), cipherSuites: info.cipherSuites, allowedHostname: info.allowedHostname };
}

/** The peer-side TLS info, with --peer-auto-tls resolved. */
export function peerTlsInfo(f: TlsFlags): TlsInfo {
  const info: TlsInfo = {
    certFile: f.peerCertFile ?? '',
    keyFile: f.peerKeyFile ?? '',
    trustedCaFile: f.peerTrustedCaFile ?? '',
    clientCertAuth: f.peerClientCertAuth ?? false,
    crlFile: f.peerCrlFile ?? '',
    selfCert: false,
    cipherSuites: f.cipherSuites,
    allowedCn: f.peerCertAllowedCn || undefined,
    allowedHostname: f.peerCertAllowedHostname || undefined,
  };
  if (!f.peerAutoTls || !isEmpty(info)) return info;
  const self = selfCert(path.join(f.dataDir, 'fixtures', 'peer'), hostsOf(f.listenPeerUrls));
  return { ...self, cipherSuites: info.cipherSuites, allowedCn: info.allowedCn, allowedHostname: info.allowedHostname };
}

/**
 * Node TLS server options (for tls/https/http2 servers) from a TLSInfo:
 * TLS 1.2 minimum, "h2" ALPN, a required and verified client certificate
 * when a trusted CA or client-cert-auth is set, and the CRL when given.
 */
export function serverTlsOptions(info: TlsInfo): TlsOptions & SecureContextOptions {
  if (info.keyFile === '' || info.certFile === '') {
    throw new Error(`KeyFile and CertFile must both be present[key: ${info.keyFile}, cert: ${info.certFile}]`);
  }
  const requireClientCert = info.trustedCaFile !== '' || info.clientCertAuth;
  const opts: TlsOptions & SecureContextOptions = {
    cert: fs.readFileSync(info.certFile),
    key: fs.readFileSync(info.keyFile),
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['h2'],
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert,
  };
  if (info.trustedCaFile !== '') opts.ca = fs.readFileSync(info.trustedCaFile);
  if (info.crlFile !== '') opts.crl = fs.readFileSync(info.crlFile);
  Object.assign(opts, cipherSuiteOptions(info.cipherSuites ?? []));
  certificateCheck(info);
  return opts;
}

/** Node TLS client options for dialing peers with a TLSInfo (etcd's ClientConfig). */
export function clientTlsOptions(info: TlsInfo): ConnectionOptions {
  const opts: ConnectionOptions = { minVersion: 'TLSv1.2', ALPNProtocols: ['h2'] };
  if (!isEmpty(info)) {
    opts.cert = fs.readFileSync(info.certFile);
    opts.key = fs.readFileSync(info.keyFile);
  }
  if (info.trustedCaFile !== '') opts.ca = fs.readFileSync(info.trustedCaFile);
  // self-signed peers cannot be verified; etcd skips verification for them
  if (info.selfCert) opts.rejectUnauthorized = false;
  if (!isEmpty(info)) Object.assign(opts, cipherSuiteOptions(info.cipherSuites ?? []));
  const allowed = certificateCheck(info);
  if (allowed) {
    // etcd's VerifyPeerCertificate runs on the dialing side too: the server's certificate must pass
    opts.checkServerIdentity = (host, cert) => tls.checkServerIdentity(host, cert) ?? (allowed(cert) ? undefined : new Error('client certificate authentication failed'));
  }
  return opts;
}

/**
 * Server and dial options for the peer transport, or undefined for plain
 * text. Throws for an unknown --cipher-suites name whether or not TLS is
 * used, as etcd refuses to start (it is called first thing at start).
 */
export function peerTransportTls(f: TlsFlags):
  | { server: TlsOptions & SecureContextOptions; client: ConnectionOptions; refuseConnection?: (socket: TLSSocket) => boolean }
  | undefined {
  cipherSuiteOptions(f.cipherSuites ?? []);
  const info = peerTlsInfo(f);
  if (isEmpty(info)) return undefined;
  return { server: serverTlsOptions(info), client: clientTlsOptions(info), refuseConnection: serverSideCheck(info) };
}

// ---- --cipher-suites ----

/** Go's cipher suite names (tls.CipherSuites() and InsecureCipherSuites() of Go 1.19, plus etcd's two aliases) → OpenSSL's. */
const GO_CIPHER_SUITES: Record<string, string> = {
  TLS_RSA_WITH_RC4_128_SHA: 'RC4-SHA',
  TLS_RSA_WITH_3DES_EDE_CBC_SHA: 'DES-CBC3-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_RC4_128_SHA: 'ECDHE-ECDSA-RC4-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_RC4_128_SHA: 'ECDHE-RSA-RC4-SHA',
  TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA: 'ECDHE-RSA-DES-CBC3-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/** TLS 1.3 suites: valid names, but Go never lets them be configured. */
const GO_TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);
/** OpenSSL's default TLS 1.3 suites, kept whatever --cipher-suites says. */
const TLS13_DEFAULT = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

/**
 * node:tls options for --cipher-suites (Go names): the TLS 1.2 suites limited
 * to the mapped ones, TLS 1.3 untouched; {} when none are given. Throws
 * etcd's `unexpected TLS cipher suite "X"` for an unknown name.
 */
export function cipherSuiteOptions(names: string[]): { ciphers?: string; minVersion?: 'TLSv1.3' } {
  if (names.length === 0) return {};
  const tls12: string[] = [];
  for (const n of names) {
    const mapped = GO_CIPHER_SUITES[n];
    if (mapped !== undefined) tls12.push(mapped);
    else if (!GO_TLS13_SUITES.has(n)) throw new Error(`unexpected TLS cipher suite "${n}"`);
  }
  // only TLS 1.3 names: Go's TLS 1.2 has no suite left to negotiate
  if (tls12.length === 0) return { minVersion: 'TLSv1.3' };
  return { ciphers: `${TLS13_DEFAULT}:${[...new Set(tls12)].join(':')}` };
}

// ---- allowed CN / hostname ----

/**
 * etcd's AllowedCN / AllowedHostname check of a verified certificate (the
 * two are exclusive, with etcd's error), or undefined when neither is set.
 * A hostname matches as Go's VerifyHostname: SANs only (never the CN),
 * wildcards only as a whole leftmost label; an IP against IP SANs.
 */
export function certificateCheck(info: Pick<TlsInfo, 'allowedCn' | 'allowedHostname'>): ((cert: PeerCertificate | undefined) => boolean) | undefined {
  const cn = info.allowedCn;
  const host = info.allowedHostname;
  if (cn && host) throw new Error(`AllowedCN and AllowedHostname are mutually exclusive (cn=${JSON.stringify(cn)}, hostname=${JSON.stringify(host)})`);
  if (cn) return (cert) => commonName(cert) === cn;
  if (host) {
    const h = host.replace(/^\[|\]$/g, '');
    return (cert) => {
      if (!cert?.raw) return false;
      const x = new X509Certificate(cert.raw);
      return net.isIP(h) ? x.checkIP(h) !== undefined : x.checkHost(h.replace(/\.$/, ''), { subject: 'never', partialWildcards: false, multiLabelWildcards: false }) !== undefined;
    };
  }
  return undefined;
}

/**
 * The server side of the allowance: Go calls VerifyPeerCertificate on a
 * server only when it asks for client certificates (a trusted CA or
 * client-cert-auth); otherwise connections are not checked at all.
 */
function serverSideCheck(info: TlsInfo): ((socket: TLSSocket) => boolean) | undefined {
  const allowed = certificateCheck(info);
  if (!allowed || (info.trustedCaFile === '' && !info.clientCertAuth)) return undefined;
  return (socket) => !allowed(socket.getPeerCertificate());
}

function commonName(cert: PeerCertificate | undefined): string | undefined {
  const cn: unknown = cert?.subject?.CN;
  // several CN attributes: Go's pkix keeps the last one
  if (Array.isArray(cn)) return cn.length ? String(cn[cn.length - 1]) : undefined;
  return typeof cn === 'string' ? cn : undefined;
}

/**
 * Applies a TLS info's allowed CN/hostname to a TLS server: a connection
 * whose verified client certificate does not pass is closed once the
 * handshake completes, before any request is read (etcd fails the handshake
 * itself; node:tls has no hook there).
 */
export function refusePeersNotAllowed(server: tls.Server, refuse: ((socket: TLSSocket) => boolean) | undefined): void {
  if (!refuse) return;
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (refuse(socket)) socket.destroy();
  });
}

/** The HTTP/2 server's TLS options for a TLSInfo, or undefined for plain text. */
export function grpcServerTls(info: TlsInfo | undefined): (TlsOptions & SecureContextOptions) | undefined {
  if (!info || isEmpty(info)) return undefined;
  return serverTlsOptions(info);
}

export interface ClientListenerTls {
  /** TLS options for the listener's HTTP/2 server; undefined: plain text. */
  tls: (TlsOptions & SecureContextOptions) | undefined;
  /** etcd's warnings for TLS settings a plain-text URL ignores. */
  warnings: string[];
  /** Whether certificate common names name users on this listener. */
  clientCertAuth: boolean;
  /** --client-cert-allowed-hostname: whether a handshaken connection must be closed. */
  refuseConnection?: (socket: TLSSocket) => boolean;
}

/**
 * TLS for one --listen-client-urls entry, with etcd's rules: an http/unix
 * URL serves plain text (given TLS settings are ignored with a warning); an
 * https/unixs URL needs a certificate and key.
 */
export function clientListenerTls(url: string, f: TlsFlags): ClientListenerTls {
  const info = clientTlsInfo(f);
  const scheme = url.split('://')[0];
  const warnings: string[] = [];
  if (scheme === 'http' || scheme === 'unix') {
    if (!isEmpty(info)) warnings.push(`The scheme of client url ${url} is HTTP while peer key/cert files are presented. Ignored key/cert files.`);
    if (info.clientCertAuth) warnings.push(`The scheme of client url ${url} is HTTP while client cert auth (--client-cert-auth) is enabled. Ignored client cert auth for this url.`);
    return { tls: undefined, warnings, clientCertAuth: false };
  }
  if (isEmpty(info)) throw new Error(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url} with HTTPS scheme`);
  return { tls: grpcServerTls(info), warnings, clientCertAuth: info.clientCertAuth, refuseConnection: serverSideCheck(info) };
}

// ---- self-signed certificates (etcd's transport.SelfCert) ----

/**
 * Writes cert.pem/key.pem into dir unless both exist: an ECDSA P-521 key and
 * a self-signed certificate (O=etcd, one year, server auth, SANs from the
 * listen hosts), as etcd generates for --auto-tls / --peer-auto-tls.
 */
export function selfCert(dir: string, hosts: string[], now: Date = new Date()): TlsInfo {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const info: TlsInfo = { certFile, keyFile, trustedCaFile: '', clientCertAuth: false, crlFile: '', selfCert: true };
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) return info;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const der = selfSignedCertificate(privateKey, publicKey, hosts, now);
  fs.writeFileSync(certFile, pem('CERTIFICATE', der));
  fs.writeFileSync(keyFile, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  return info;
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// Minimal DER: enough to write the one certificate shape etcd generates.
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...xs: Buffer[]): Buffer => tlv(0x30, Buffer.concat(xs));
const set = (...xs: Buffer[]): Buffer => tlv(0x31, Buffer.concat(xs));
const ctx = (n: number, body: Buffer): Buffer => tlv(0xa0 + n, body);

function oid(s: string): Buffer {
  const parts = s.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

function derInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && (b[i + 1] & 0x80) === 0) i++;
  let v = b.subarray(i);
  if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  // GeneralizedTime from 2050 on, as X.509 requires
  if (d.getUTCFullYear() >= 2050) return tlv(0x18, Buffer.from(`${d.getUTCFullYear()}${s.slice(2)}`));
  return tlv(0x17, Buffer.from(s));
}

const bitString = (unused: number, body: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unused]), body]));
const TRUE = tlv(0x01, Buffer.from([0xff]));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, tlv(0x04, value)) : seq(oid(id), tlv(0x04, value));
}

function splitHostPort(hostport: string): string {
  // "[::1]:2379" → "::1"; "localhost:2379" → "localhost"; no port → Go fails → ""
  const m = /^\[([^\]]*)\]:\d*$/.exec(hostport) ?? /^([^:]*):\d*$/.exec(hostport);
  return m ? m[1] : '';
}

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and pack 8 groups of 16 bits
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function selfSignedCertificate(priv: crypto.KeyObject, pub: crypto.KeyObject, hosts: string[], now: Date): Buffer {
  const ECDSA_SHA512 = seq(oid('1.2.840.10045.4.3.4'));
  const name = seq(set(seq(oid('2.5.4.10'), tlv(0x13, Buffer.from('etcd')))));
  const notAfter = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const serial = crypto.randomBytes(16);
  const sans: Buffer[] = [];
  for (const hp of hosts) {
    const h = splitHostPort(hp);
    if (h === '') continue;
    if (net.isIP(h)) sans.push(tlv(0x87, ipBytes(h)));
    else sans.push(tlv(0x82, Buffer.from(h, 'ascii')));
  }
  const exts: Buffer[] = [
    // digitalSignature | keyEncipherment
    extension('2.5.29.15', true, bitString(5, Buffer.from([0xa0]))),
    extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
    extension('2.5.29.19', true, seq()),
  ];
  if (sans.length) exts.push(extension('2.5.29.17', false, seq(...sans)));
  const tbs = seq(
    ctx(0, tlv(0x02, Buffer.from([2]))),
    derInteger(serial),
    ECDSA_SHA512,
    name,
    seq(utcTime(now), utcTime(notAfter)),
    name,
    pub.export({ type: 'spki', format: 'der' }),
    ctx(3, seq(...exts)),
  );
  const sig = crypto.sign('sha512', tbs, { key: priv, dsaEncoding: 'der' });
  return seq(tbs, ECDSA_SHA512, bitString(0, sig));
}
