// A member's configuration: etcd 3.4's flags, their defaults and their
// ETCD_* environment variables. The CLI parses into this; embedders (the
// desktop app, tests) pass a Partial<NodeConfig> to startNode().

export interface NodeConfig {
  name: string;
  dataDir: string;
  walDir: string;
  snapshotCount: number;
  heartbeatInterval: number;
  electionTimeout: number;
  listenPeerUrls: string[];
  listenClientUrls: string[];
  listenMetricsUrls: string[];
  initialAdvertisePeerUrls: string[];
  advertiseClientUrls: string[];
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  strictReconfigCheck: boolean;
  preVote: boolean;
  quotaBackendBytes: number;
  maxTxnOps: number;
  maxRequestBytes: number;
  /** --grpc-keepalive-interval / --grpc-keepalive-timeout, in milliseconds. */
  grpcKeepaliveInterval: number;
  grpcKeepaliveTimeout: number;
  autoCompactionRetention: string;
  autoCompactionMode: 'periodic' | 'revision';
  certFile: string;
  keyFile: string;
  clientCertAuth: boolean;
  clientCrlFile: string;
  clientCertAllowedHostname: string;
  trustedCaFile: string;
  autoTls: boolean;
  peerCertFile: string;
  peerKeyFile: string;
  peerClientCertAuth: boolean;
  peerTrustedCaFile: string;
  peerAutoTls: boolean;
  peerCrlFile: string;
  peerCertAllowedCn: string;
  peerCertAllowedHostname: string;
  /** Go cipher suite names (--cipher-suites); empty: the TLS library's defaults. */
  cipherSuites: string[];
  authToken: string;
  bcryptCost: number;
  authTokenTtl: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  logger: string;
  logOutputs: string[];
  experimentalInitialCorruptCheck: boolean;
  experimentalCorruptCheckTime: number;
  experimentalEnableLeaseCheckpoint: boolean;
  experimentalCompactionBatchLimit: number;
  experimentalWatchProgressNotifyInterval: number;
  forceNewCluster: boolean;
  unsafeNoFsync: boolean;
}

type Kind = 'string' | 'uint' | 'bool' | 'duration' | 'urls' | 'list' | 'enum' | 'ignored';

interface FlagSpec {
  flag: string;
  key?: keyof NodeConfig;
  kind: Kind;
  def: string;
  values?: readonly string[];
  /** duration flags given as a bare number are in this unit (etcd's ms flags). */
  unitMs?: number;
}

// etcd 3.4's flags, in `etcd --help` order. Flags Etcdesk does not act on
// are still accepted (kind 'ignored' or parsed into unused keys) so etcd's
// own scripts and Procfiles start us unchanged.
const FLAGS: FlagSpec[] = [
  { flag: 'name', key: 'name', kind: 'string', def: 'default' },
  { flag: 'data-dir', key: 'dataDir', kind: 'string', def: '' },
  { flag: 'wal-dir', key: 'walDir', kind: 'string', def: '' },
  { flag: 'snapshot-count', key: 'snapshotCount', kind: 'uint', def: '100000' },
  { flag: 'heartbeat-interval', key: 'heartbeatInterval', kind: 'uint', def: '100' },
  { flag: 'election-timeout', key: 'electionTimeout', kind: 'uint', def: '1000' },
  { flag: 'initial-election-tick-advance', kind: 'bool', def: 'true' },
  { flag: 'listen-peer-urls', key: 'listenPeerUrls', kind: 'urls', def: 'http://localhost:2380' },
  { flag: 'listen-client-urls', key: 'listenClientUrls', kind: 'urls', def: 'http://localhost:2379' },
  { flag: 'max-snapshots', kind: 'uint', def: '5' },
  { flag: 'max-wals', kind: 'uint', def: '5' },
  { flag: 'quota-backend-bytes', key: 'quotaBackendBytes', kind: 'uint', def: '0' },
  { flag: 'backend-batch-interval', kind: 'ignored', def: '' },
  { flag: 'backend-batch-limit', kind: 'uint', def: '0' },
  { flag: 'max-txn-ops', key: 'maxTxnOps', kind: 'uint', def: '128' },
  { flag: 'max-request-bytes', key: 'maxRequestBytes', kind: 'uint', def: '1572864' },
  { flag: 'max-concurrent-streams', kind: 'ignored', def: '' },
  { flag: 'grpc-keepalive-min-time', kind: 'duration', def: '5s' },
  { flag: 'grpc-keepalive-interval', key: 'grpcKeepaliveInterval', kind: 'duration', def: '2h' },
  { flag: 'grpc-keepalive-timeout', key: 'grpcKeepaliveTimeout', kind: 'duration', def: '20s' },
  { flag: 'initial-advertise-peer-urls', key: 'initialAdvertisePeerUrls', kind: 'urls', def: 'http://localhost:2380' },
  { flag: 'initial-cluster', key: 'initialCluster', kind: 'string', def: '' },
  { flag: 'initial-cluster-state', key: 'initialClusterState', kind: 'enum', def: 'new', values: ['new', 'existing'] },
  { flag: 'initial-cluster-token', key: 'initialClusterToken', kind: 'string', def: 'etcd-cluster' },
  { flag: 'advertise-client-urls', key: 'advertiseClientUrls', kind: 'urls', def: 'http://localhost:2379' },
  { flag: 'discovery', kind: 'ignored', def: '' },
  { flag: 'discovery-fallback', kind: 'ignored', def: 'proxy' },
  { flag: 'discovery-proxy', kind: 'ignored', def: '' },
  { flag: 'discovery-srv', kind: 'ignored', def: '' },
  { flag: 'discovery-srv-name', kind: 'ignored', def: '' },
  { flag: 'strict-reconfig-check', key: 'strictReconfigCheck', kind: 'bool', def: 'true' },
  { flag: 'pre-vote', key: 'preVote', kind: 'bool', def: 'false' },
  { flag: 'auto-compaction-retention', key: 'autoCompactionRetention', kind: 'string', def: '0' },
  { flag: 'auto-compaction-mode', key: 'autoCompactionMode', kind: 'enum', def: 'periodic', values: ['periodic', 'revision'] },
  { flag: 'enable-v2', kind: 'bool', def: 'false' },
  { flag: 'cert-file', key: 'certFile', kind: 'string', def: '' },
  { flag: 'key-file', key: 'keyFile', kind: 'string', def: '' },
  { flag: 'client-cert-auth', key: 'clientCertAuth', kind: 'bool', def: 'false' },
  { flag: 'client-crl-file', key: 'clientCrlFile', kind: 'string', def: '' },
  { flag: 'client-cert-allowed-hostname', key: 'clientCertAllowedHostname', kind: 'string', def: '' },
  { flag: 'trusted-ca-file', key: 'trustedCaFile', kind: 'string', def: '' },
  { flag: 'auto-tls', key: 'autoTls', kind: 'bool', def: 'false' },
  { flag: 'peer-cert-file', key: 'peerCertFile', kind: 'string', def: '' },
  { flag: 'peer-key-file', key: 'peerKeyFile', kind: 'string', def: '' },
  { flag: 'peer-client-cert-auth', key: 'peerClientCertAuth', kind: 'bool', def: 'false' },
  { flag: 'peer-trusted-ca-file', key: 'peerTrustedCaFile', kind: 'string', def: '' },
  { flag: 'peer-cert-allowed-cn', key: 'peerCertAllowedCn', kind: 'string', def: '' },
  { flag: 'peer-cert-allowed-hostname', key: 'peerCertAllowedHostname', kind: 'string', def: '' },
  { flag: 'peer-auto-tls', key: 'peerAutoTls', kind: 'bool', def: 'false' },
  { flag: 'peer-crl-file', key: 'peerCrlFile', kind: 'string', def: '' },
  { flag: 'cipher-suites', key: 'cipherSuites', kind: 'list', def: '' },
  { flag: 'cors', kind: 'ignored', def: '*' },
  { flag: 'host-whitelist', kind: 'ignored', def: '*' },
  { flag: 'auth-token', key: 'authToken', kind: 'string', def: 'simple' },
  { flag: 'bcrypt-cost', key: 'bcryptCost', kind: 'uint', def: '10' },
  { flag: 'auth-token-ttl', key: 'authTokenTtl', kind: 'uint', def: '300' },
  { flag: 'enable-pprof', kind: 'bool', def: 'false' },
  { flag: 'metrics', kind: 'enum', def: 'basic', values: ['basic', 'extensive'] },
  { flag: 'listen-metrics-urls', key: 'listenMetricsUrls', kind: 'urls', def: '' },
  { flag: 'logger', key: 'logger', kind: 'enum', def: 'capnslog', values: ['capnslog', 'zap'] },
  { flag: 'log-output', kind: 'ignored', def: 'default' },
  { flag: 'log-outputs', key: 'logOutputs', kind: 'list', def: 'default' },
  { flag: 'log-level', key: 'logLevel', kind: 'enum', def: 'info', values: ['debug', 'info', 'warn', 'error', 'panic', 'fatal'] },
  { flag: 'debug', kind: 'bool', def: 'false' },
  { flag: 'log-package-levels', kind: 'ignored', def: '' },
  { flag: 'proxy', kind: 'enum', def: 'off', values: ['off', 'readonly', 'on'] },
  { flag: 'proxy-failure-wait', kind: 'uint', def: '5000' },
  { flag: 'proxy-refresh-interval', kind: 'uint', def: '30000' },
  { flag: 'proxy-dial-timeout', kind: 'uint', def: '1000' },
  { flag: 'proxy-write-timeout', kind: 'uint', def: '5000' },
  { flag: 'proxy-read-timeout', kind: 'uint', def: '0' },
  { flag: 'experimental-initial-corrupt-check', key: 'experimentalInitialCorruptCheck', kind: 'bool', def: 'false' },
  { flag: 'experimental-corrupt-check-time', key: 'experimentalCorruptCheckTime', kind: 'duration', def: '0s' },
  { flag: 'experimental-enable-v2v3', kind: 'ignored', def: '' },
  { flag: 'experimental-backend-bbolt-freelist-type', kind: 'ignored', def: 'array' },
  { flag: 'experimental-enable-lease-checkpoint', key: 'experimentalEnableLeaseCheckpoint', kind: 'bool', def: 'false' },
  { flag: 'experimental-enable-lease-checkpoint-persist', kind: 'bool', def: 'false' },
  { flag: 'experimental-compaction-batch-limit', key: 'experimentalCompactionBatchLimit', kind: 'uint', def: '1000' },
  { flag: 'experimental-peer-skip-client-san-verification', kind: 'bool', def: 'false' },
  { flag: 'experimental-watch-progress-notify-interval', key: 'experimentalWatchProgressNotifyInterval', kind: 'duration', def: '10m' },
  { flag: 'experimental-warning-apply-duration', kind: 'duration', def: '100ms' },
  { flag: 'unsafe-no-fsync', key: 'unsafeNoFsync', kind: 'bool', def: 'false' },
  { flag: 'force-new-cluster', key: 'forceNewCluster', kind: 'bool', def: 'false' },
  { flag: 'enable-grpc-gateway', kind: 'bool', def: 'true' },
  { flag: 'config-file', kind: 'ignored', def: '' },
];

export class FlagError extends Error {}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** Go's time.ParseDuration, in milliseconds. */
export function parseDuration(s: string): number {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let sign = 1;
  let str = s;
  if (str.startsWith('-') || str.startsWith('+')) {
    if (str[0] === '-') sign = -1;
    str = str.slice(1);
  }
  if (!str) throw new FlagError('parse error');
  re.lastIndex = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while (pos < str.length && (m = re.exec(str))) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (pos !== str.length) throw new FlagError('parse error');
  return sign * total;
}

function parseValue(spec: FlagSpec, raw: string): unknown {
  switch (spec.kind) {
    case 'string':
    case 'ignored':
      return raw;
    case 'uint': {
      if (!/^\d+$/.test(raw)) throw new FlagError('parse error');
      return Number(raw);
    }
    case 'bool': {
      const v = raw.toLowerCase();
      if (['1', 't', 'true'].includes(v)) return true;
      if (['0', 'f', 'false'].includes(v)) return false;
      throw new FlagError('parse error');
    }
    case 'duration':
      return parseDuration(raw);
    case 'urls': {
      if (raw === '') return [];
      const urls = raw.split(',').map((u) => u.trim());
      for (const u of urls) {
        let parsed: URL;
        try {
          parsed = new URL(u);
        } catch {
          throw new FlagError(`URL scheme must be http, https, unix, or unixs: ${u}`);
        }
        if (!['http:', 'https:', 'unix:', 'unixs:'].includes(parsed.protocol))
          throw new FlagError(`URL scheme must be http, https, unix, or unixs: ${u}`);
      }
      return urls;
    }
    case 'list':
      return raw === '' ? [] : raw.split(',');
    case 'enum':
      if (!spec.values!.includes(raw)) throw new FlagError(`invalid value "${raw}" for flag -${spec.flag}: valid values are ${spec.values!.join(', ')}`);
      return raw;
  }
}

export function defaultConfig(): NodeConfig {
  const cfg: Record<string, unknown> = {};
  for (const f of FLAGS) if (f.key) cfg[f.key] = parseValue(f, f.def);
  return finalize(cfg as unknown as NodeConfig, new Set());
}

/** Fills the defaults that depend on other flags, as etcd does. */
function finalize(cfg: NodeConfig, given: Set<string>): NodeConfig {
  if (!cfg.dataDir) cfg.dataDir = `${cfg.name}.etcd`;
  if (!given.has('initial-cluster') && !cfg.initialCluster) {
    cfg.initialCluster = cfg.initialAdvertisePeerUrls.map((u) => `${cfg.name}=${u}`).join(',');
  }
  return cfg;
}

export function mergeConfig(partial: Partial<NodeConfig>): NodeConfig {
  const base = defaultConfig();
  const cfg = { ...base, ...partial } as NodeConfig;
  if (!partial.dataDir) cfg.dataDir = `${cfg.name}.etcd`;
  if (!partial.initialCluster) cfg.initialCluster = cfg.initialAdvertisePeerUrls.map((u) => `${cfg.name}=${u}`).join(',');
  return cfg;
}

export interface ParsedArgs {
  config: NodeConfig;
  version: boolean;
  help: boolean;
  warnings: string[];
}

/**
 * Parses etcd's command line (Go flag syntax: -flag, --flag, =value or a
 * separate value, bare booleans) over ETCD_* environment variables. Throws
 * FlagError with etcd's wording for unknown flags and bad values.
 */
export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = {}): ParsedArgs {
  const byName = new Map(FLAGS.map((f) => [f.flag, f]));
  const values = new Map<string, unknown>();
  const given = new Set<string>();
  const warnings: string[] = [];
  let version = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-' || a === '--') {
      if (a === '--') break;
      throw new FlagError(`'${a}' is not a valid flag`);
    }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === 'version') {
      version = true;
      continue;
    }
    if (name === 'help' || name === 'h') {
      help = true;
      continue;
    }
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name}`);
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.kind === 'bool') raw = 'true';
    else {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`);
      raw = argv[++i];
    }
    let v: unknown;
    try {
      v = parseValue(spec, raw);
    } catch (e) {
      const msg = (e as Error).message;
      throw new FlagError(msg.startsWith('invalid value') ? msg : `invalid value "${raw}" for flag -${name}: ${msg}`);
    }
    values.set(name, v);
    given.add(name);
  }
  for (const spec of FLAGS) {
    const envName = `ETCD_${spec.flag.toUpperCase().replace(/-/g, '_')}`;
    const raw = env[envName];
    if (raw === undefined) continue;
    if (given.has(spec.flag)) {
      warnings.push(`recognized environment variable ${envName}, but unused: shadowed by corresponding flag`);
      continue;
    }
    try {
      values.set(spec.flag, parseValue(spec, raw));
    } catch (e) {
      throw new FlagError(`invalid value "${raw}" for ${envName}: ${(e as Error).message}`);
    }
    given.add(spec.flag);
  }
  const cfg: Record<string, unknown> = {};
  for (const f of FLAGS) {
    if (!f.key) continue;
    cfg[f.key] = values.has(f.flag) ? values.get(f.flag) : parseValue(f, f.def);
  }
  const config = finalize(cfg as unknown as NodeConfig, given);
  for (const f of FLAGS) if (f.kind === 'ignored' && given.has(f.flag)) warnings.push(`--${f.flag} is accepted for compatibility and has no effect in Etcdesk`);
  return { config, version, help, warnings };
}

export function usage(): string {
  const lines = ['Usage:', '', '  etcdesk-node [flags]', '', 'Flags (etcd 3.4 compatible; ETCD_<FLAG> variables are read too):'];
  for (const f of FLAGS) lines.push(`  --${f.flag} '${f.def}'`);
  lines.push('  --version', '  --help');
  return lines.join('\n');
}

/** Parses `name1=url1,name2=url2` into name → peer URLs, as etcd's initial-cluster. */
export function parseInitialCluster(s: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of s.split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid initial-cluster entry: ${part}`);
    const name = part.slice(0, eq);
    const url = part.slice(eq + 1);
    if (!out.has(name)) out.set(name, []);
    out.get(name)!.push(url);
  }
  return out;
}
