// Data shapes crossing the IPC boundary. Everything is JSON-safe because the
// browser shell carries the same messages over HTTP: bytes travel as base64,
// 64-bit ids (leases, members) as decimal strings.

/** base64 of raw bytes (keys and values may be binary). */
export type B64 = string;

export interface KeyValue {
  key: B64;
  /** UTF-8 decoding of the key for display (lossy for binary keys). */
  keyText: string;
  value: B64;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease id, decimal; "0" when none */
  lease: string;
}

/** A key row without its value (lists). */
export type KeyRow = Omit<KeyValue, 'value'> & { size?: number };

/** restored: a node the app started on a restored backup (lives for the session). */
export type ConnectionKind = 'embedded' | 'local-cluster' | 'remote' | 'restored';

export interface ConnectionProfile {
  id: string;
  name: string;
  kind: ConnectionKind;
  /** remote only */
  endpoints: string[];
  /** Any kind: the embedded node and local cluster take credentials too once auth is on. */
  username?: string;
  /** Never sent back by main: only written (save / sign-in) and used there. */
  password?: string;
  hasPassword?: boolean;
  /** Where a saved password is kept: the OS keychain (safeStorage), a 0600 file in the data folder, or memory for this session. */
  passwordStore?: 'keychain' | 'file' | 'session';
  tls?: {
    caFile?: string;
    certFile?: string;
    keyFile?: string;
    serverName?: string;
    /** Accept any server certificate (self-signed test clusters). The app shows a warning while such a connection is used. */
    insecureSkipVerify?: boolean;
  };
  /** remote only: reach the endpoints through an SSH tunnel (a bastion). */
  ssh?: SshTunnelConfig;
  /** Write-only, like password: the SSH password, or the key's passphrase when keyFile is set. */
  sshSecret?: string;
  hasSshSecret?: boolean;
  /** restored only: the data folder of the node started on the backup (removed with the connection). */
  dataDir?: string;
}

export interface SshTunnelConfig {
  host: string;
  port?: number;
  username: string;
  /** A private key file on this machine; absent: password authentication. */
  keyFile?: string;
  /** The server's host key fingerprint (`SHA256:…`), pinned on first connect; another key is refused. */
  hostKeySha256?: string;
}

/** A profile as exported for sharing: no secrets, no machine-local state. */
export interface ExportedProfile {
  name: string;
  endpoints: string[];
  username?: string;
  tls?: ConnectionProfile['tls'];
  ssh?: SshTunnelConfig;
}

export interface ProfilesExport {
  etcdeskProfiles: 1;
  profiles: ExportedProfile[];
}

export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'error';

export interface ConnectionStatus {
  state: ConnectionState;
  profileId: string | null;
  profileName: string;
  kind: ConnectionKind | null;
  endpoints: string[];
  activeEndpoint: string | null;
  user: string | null;
  /** The server certificate is not verified (the profile's "skip verification"): shown as a warning. */
  insecure?: boolean;
  /** Reached through an SSH tunnel: `user@host:port`. */
  tunnel?: string;
  /** What runs the embedded node: node-core's startNode or the etcd binary fallback. */
  engine?: string;
  error?: SerializedError;
  /** The node wants credentials (auth is on and none were given, or they were refused): ask the user to sign in. */
  signInRequired?: boolean;
  /** Which connection this is: a new number on every connect (what the cluster view keys its series by). */
  connectionId?: number;
}

export interface AppInfo {
  mode: 'electron' | 'shell';
  version: string;
  platform: string;
  features: { localCluster: boolean; embeddedEngine: string };
}

export interface SerializedError {
  /** gRPC status code from etcd, or one of ErrorCode's app-side codes (negative) */
  code: number;
  message: string;
  /** Which of etcd's errors this is (its name in etcd's rpctypes table, e.g. "PermissionDenied"): recognise errors by this, never by their text. */
  etcdError?: string;
}

/** App-side error codes (etcd's gRPC codes are ≥ 0). */
export const ErrorCode = {
  /** The app's own refusal (not connected, cancelled, …). */
  App: -1,
  /** The request did not match the contract's schema for its channel; no handler ran. */
  InvalidRequest: -2,
} as const;

export interface KeysWindowRequest {
  prefix: string;
  offset: number;
  limit: number;
  /** Drop main's key list and read it again ("refresh"); watch events never need this: main applies them. */
  refresh?: boolean;
}

/**
 * Main keeps each window's key list current by applying watch events itself
 * and sends this instead of the events: the renderer patches the rows it holds
 * and re-asks (from main's memory) only for positions that moved.
 */
export interface KeysChangedEvent {
  prefix: string;
  revision: number;
  total: number;
  /** Rows changed in place (same position): version, mod revision, lease. */
  changed: { index: number; row: KeyRow }[];
  /** Lowest position where a key was added or removed: rows from here on moved. null: nothing moved. */
  shiftedFrom: number | null;
}

export interface KeysWindowResponse {
  total: number;
  offset: number;
  rows: KeyRow[];
  revision: number;
  /** True while main is still counting beyond the requested window. */
  partial: boolean;
}

export interface TreeRequest {
  prefix: string;
  delimiter: string;
}

export interface TreeNode {
  /** full path of this node (prefix + segment [+ delimiter for dirs]) */
  path: string;
  name: string;
  isDir: boolean;
  /** number of keys below a dir */
  count: number;
  /** a dir path may itself be a key */
  isKey: boolean;
}

export interface PutRequest {
  key: B64;
  value: B64;
  lease?: string;
  /** Compare-and-swap: only write if the key's mod_revision is still this (0 = must not exist). */
  expectModRevision?: number;
}

export type PutResult = { ok: true; revision: number; kv: KeyValue | null } | { ok: false; conflict: true; current: KeyValue | null; revision: number };

export interface DeleteRequest {
  key: B64;
  prefix?: boolean;
  expectModRevision?: number;
}

export type DeleteResult = { ok: true; deleted: number; revision: number } | { ok: false; conflict: true; current: KeyValue | null; revision: number };

export interface HistoryEntry {
  kv: KeyValue | null;
  /** revision at which this version was written (or the delete revision) */
  revision: number;
  deleted: boolean;
}

export interface HistoryResponse {
  entries: HistoryEntry[];
  /** older versions fell to compaction */
  compacted: boolean;
}

export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

export interface TxnCompare {
  key: string;
  target: CompareTarget;
  op: CompareOp;
  /** number for revisions/version, text for value, decimal id for lease */
  operand: string;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'get'; key: string; prefix?: boolean }
  | { type: 'delete'; key: string; prefix?: boolean };

export interface TxnRequest {
  compares: TxnCompare[];
  success: TxnOp[];
  failure: TxnOp[];
}

export interface TxnOpResult {
  type: 'put' | 'get' | 'delete';
  key: string;
  kvs?: KeyValue[];
  deleted?: number;
  prevKv?: KeyValue | null;
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  results: TxnOpResult[];
}

export interface LeaseInfo {
  id: string;
  ttl: number;
  grantedTtl: number;
  keys: string[];
  keepingAlive: boolean;
  /** ms epoch when ttl was read; the renderer counts down from here */
  at: number;
}

export type PermType = 'read' | 'write' | 'readwrite';
export type PermScope = 'key' | 'prefix' | 'range' | 'from-key';

export interface Permission {
  type: PermType;
  key: string;
  rangeEnd: string;
  scope: PermScope;
}

export interface RoleInfo {
  name: string;
  perms: Permission[];
}

export interface UserInfo {
  name: string;
  roles: string[];
}

export interface AuthOverview {
  enabled: boolean;
  users: UserInfo[];
  roles: RoleInfo[];
  /** Could not list users/roles (auth on and we are not root) */
  restricted: boolean;
}

export type PermCheckOp = 'read' | 'write';

export interface PermCheckResult {
  allowed: boolean;
  reason: string;
}

export interface MemberInfo {
  id: string;
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
  isLeader: boolean;
  status?: { version: string; dbSize: number; raftIndex: number; raftTerm: number; errors: string[] } | { error: string };
}

export interface ClusterInfo {
  clusterId: string;
  members: MemberInfo[];
  revision: number;
  alarms: { memberId: string; alarm: string }[];
  /** Only for the app's local cluster: which in-process members run (stop/restart). */
  local?: LocalMemberState[];
  /** The connection (ConnectionStatus.connectionId) this was read on: a late answer from a previous one is dropped. */
  connectionId?: number;
}

export interface LocalMemberState {
  index: number;
  name: string;
  clientUrl: string;
  running: boolean;
}

export interface HashCheck {
  revision: number;
  hashes: { endpoint: string; memberId: string; name: string; hash: number; compactRevision: number; error?: string }[];
}

export interface BackupResult {
  /** null: the save dialog was cancelled */
  path: string | null;
  bytes: number;
  /** hex sha256 of the db, as etcd appends it to the snapshot (the last 32 bytes) */
  sha256: string;
  /** the appended sha256 equals the sha256 of the bytes before it */
  verified: boolean;
}

/** A connection's scheduled backups: every N minutes, keeping the newest `keep` verified files. */
export interface BackupSchedule {
  profileId: string;
  everyMinutes: number;
  keep: number;
  enabled: boolean;
  lastRunAt?: number;
}

/** One backup run, as the history shows it. */
export interface BackupRun {
  id: string;
  profileId: string;
  profileName: string;
  at: number;
  trigger: 'manual' | 'schedule';
  status: 'running' | 'verified' | 'failed' | 'skipped';
  file?: string;
  bytes?: number;
  sha256?: string;
  /** The snapshot's revision (as the scratch restore found it). */
  revision?: number;
  hashKV?: number;
  /** Each check passed (true), failed (false) or not reached (absent). */
  checks: { sha256?: boolean; restored?: boolean; hashKV?: boolean };
  error?: string;
  /** The file was removed by retention. */
  removed?: boolean;
}

export interface RestoreResult {
  /** null: the open dialog was cancelled */
  path: string | null;
  profileId: string;
  revision: number;
  dataDir: string;
  status: ConnectionStatus;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

export interface WatchUpdateEvent {
  watchId: string;
  revision: number;
  events: WatchEvent[];
  /** Events main left out of this update to keep bulk writes from flooding the renderer. */
  dropped: number;
}

export interface WatchErrorEvent {
  watchId: string;
  error: SerializedError;
}

export interface LeaseTickEvent {
  id: string;
  ttl: number;
  at: number;
  /** The lease is gone (expired or revoked). */
  gone?: boolean;
}

export interface ProgressEvent {
  opId: string;
  label: string;
  done: number;
  total: number;
  finished?: boolean;
}

/** Moving data: export formats. etcdctl = a shell script of `etcdctl put` that replays the keys. */
export type DataExportFormat = 'json' | 'yaml' | 'etcdctl';

export interface DataExportResult {
  text: string;
  count: number;
  revision: number;
  /** Suggested file name (prefix, revision, format). */
  fileName: string;
}

export interface ImportRow {
  key: B64;
  keyText: string;
  /** conflict: changed by someone else after the preview (only in results). */
  action: 'create' | 'update' | 'unchanged' | 'conflict';
  size: number;
  oldSize?: number;
}

export interface ImportPreview {
  /** Main keeps the plan (with each key's mod_revision as read); apply refers to it. */
  planId: string;
  revision: number;
  total: number;
  counts: { create: number; update: number; unchanged: number };
  /** The first rows (all of them when not truncated). */
  rows: ImportRow[];
  truncated: boolean;
}

export interface TransferResult {
  written: number;
  /** Keys changed by someone else since they were read: left as they are. */
  conflicts: string[];
  txns: number;
  revision: number;
  /** Every written key read back and found as written. */
  verified: boolean;
  mismatches: number;
}

export type MenuAction = 'export-backup' | 'restore-backup' | 'view-maintenance' | 'new-key' | 'refresh' | 'find' | 'toggle-theme' | 'view-keys' | 'view-txn' | 'view-leases' | 'view-auth' | 'view-cluster' | 'connect' | 'about';

// ---- Operator's console: the cluster doctor and the space guardian (electron/main/handlers/doctor.ts)

/** What one member's /metrics said over the last interval (two scrapes differenced). */
export interface MemberMetrics {
  /** Seconds between the two scrapes compared; 0: the first scrape, so counts are since the member started. */
  intervalSec: number;
  /** p99 from the histogram's buckets over the interval; null when nothing was observed in it. */
  walFsyncP99Ms: number | null;
  backendCommitP99Ms: number | null;
  /** Deltas over the interval (totals since start on the first scrape). */
  leaderChanges: number;
  proposalsFailed: number;
  slowApplies: number;
  /** A gauge: proposals waiting now. */
  proposalsPending: number;
  /** etcd_server_quota_backend_bytes, when the member exports it. */
  quotaBytes: number | null;
  /** Metric names the doctor looks for that this member does not export. */
  missing: string[];
}

export interface DoctorMember {
  id: string;
  name: string;
  clientUrl: string | null;
  isLeader: boolean;
  isLearner: boolean;
  status?: {
    version: string;
    dbSize: number;
    dbSizeInUse: number;
    leader: string;
    raftTerm: number;
    raftIndex: number;
    /** From etcd 3.4; 0 from older members. */
    raftAppliedIndex: number;
    errors: string[];
  };
  statusError?: string;
  /** GET <client URL>/health */
  health?: { ok: boolean; httpStatus: number; reason?: string };
  healthError?: string;
  metrics?: MemberMetrics;
  metricsError?: string;
  hash?: { hash: number; compactRevision: number };
  hashError?: string;
}

export interface DoctorFinding {
  severity: 'critical' | 'warning' | 'info';
  /** The member it is about (its name), absent for the whole cluster. */
  member?: string;
  /** What is wrong and why, as a sentence: "m2: WAL fsync p99 48 ms, above 10 ms: the disk is too slow for etcd". */
  text: string;
  /** What to do about it. */
  fix: string;
}

export interface DoctorReport {
  at: number;
  clusterId: string;
  revision: number;
  /** The revision every member's HashKV was taken at (0: no hash check in this report). */
  hashRevision: number;
  members: DoctorMember[];
  alarms: { memberId: string; member: string; alarm: string }[];
  findings: DoctorFinding[];
  /** etcd's guidance the charts draw: WAL fsync p99 under 10 ms, backend commit p99 under 25 ms. */
  guidance: { walFsyncMs: number; backendCommitMs: number };
}

export interface SpaceReport {
  at: number;
  revision: number;
  /** The largest member's database (NOSPACE is raised by any member reaching the quota). */
  dbSize: number;
  dbSizeInUse: number;
  members: { id: string; name: string; dbSize: number; dbSizeInUse: number; isLeader: boolean; error?: string }[];
  quotaBytes: number;
  /** metrics: etcd_server_quota_backend_bytes; user: set for this connection; default: etcd's 2 GiB. */
  quotaSource: 'metrics' | 'user' | 'default';
  /** Over the samples main holds (up to the last 10 minutes); null until two samples 5 s apart. */
  revisionsPerMinute: number | null;
  bytesPerMinute: number | null;
  /** ms until the database reaches the quota at the current growth; null: not growing (or not measured yet). */
  noSpaceInMs: number | null;
  /** The projection as a sentence. */
  projection: string;
  nospaceAlarm: boolean;
}

export type SpaceStepKind = 'compact' | 'defrag' | 'move-leader' | 'disarm';
export type SpaceStepState = 'pending' | 'running' | 'done' | 'skipped' | 'failed';

export interface SpacePlanStep {
  id: string;
  kind: SpaceStepKind;
  title: string;
  /** What it will do, for review before running. */
  detail: string;
  /** The member it works on (defragment, move leader target). */
  memberId?: string;
  state: SpaceStepState;
  /** How the step was checked afterwards ("12.0 MiB → 3.1 MiB"), or why it was skipped. */
  verification?: string;
  error?: string;
  ms?: number;
}

export interface WriteProbeState {
  running: boolean;
  writes: number;
  failures: number;
  lastMs: number | null;
  maxMs: number | null;
  lastError?: string;
}

export interface SpacePlan {
  planId: string;
  state: 'review' | 'running' | 'done' | 'failed' | 'aborted';
  retention: number;
  /** The revision compaction goes to (current − retention), 0 when nothing is compacted. */
  compactTo: number;
  steps: SpacePlanStep[];
  abortRequested: boolean;
  probe: WriteProbeState | null;
}

// ---- Keyspace scans: search beyond prefixes (Keys view) and the analyzer ----

/** contains: substring of the key; glob: the whole key against * ? [a-z] [!x] (\ escapes); value: substring of the value. */
export type SearchMode = 'contains' | 'glob' | 'value';

export interface SearchRequest {
  mode: SearchMode;
  pattern: string;
  /** Only keys with this prefix ('' = the whole keyspace). */
  prefix: string;
  caseSensitive?: boolean;
}

export interface AnalyzeRequest {
  /** '' = the whole keyspace. */
  prefix: string;
  /** Path segments are split on this (default '/'). */
  delimiter?: string;
  /** Kubernetes mode: values under /registry/ are read as Kubernetes objects (counted by apiVersion/kind). */
  kubernetes?: boolean;
}

export interface ScanStarted {
  scanId: string;
  /** Every page of the scan is read at this revision: a key written after the start is not seen. */
  revision: number;
  /** Keys in range at that revision (count_only). */
  total: number;
}

export interface SearchHit {
  row: KeyRow;
  /** value search: the text around the first match. */
  snippet?: string;
}

export interface PrefixNode {
  /** path segment including its trailing delimiter ('' for the root) */
  name: string;
  /** full prefix of this node */
  path: string;
  /** keys below (all depths) */
  count: number;
  /** key + value bytes below */
  bytes: number;
  /** keys whose path ends here (no further delimiter) */
  ownKeys: number;
  ownBytes: number;
  /** keys below that were not broken down further (the node cap was reached) */
  foldedKeys: number;
  foldedBytes: number;
  children: PrefixNode[];
}

export interface KeyStat {
  key: B64;
  keyText: string;
  size: number;
  version: number;
  modRevision: number;
}

export interface KeyspaceReport {
  prefix: string;
  delimiter: string;
  revision: number;
  keys: number;
  keyBytes: number;
  valueBytes: number;
  tree: PrefixNode;
  /** the cap on tree nodes kept in memory; when reached, deeper keys are counted in their parent's folded figures */
  nodeCap: number;
  biggest: KeyStat[];
  mostRevised: KeyStat[];
  /** keys per lease (biggest first, at most 100); noLease: keys without one */
  leases: { lease: string; keys: number; bytes: number }[];
  leaseCount: number;
  noLease: number;
  /** Kubernetes mode: values under /registry/ by apiVersion/kind (protobuf envelope or JSON) */
  kinds?: { apiVersion: string; kind: string; count: number; bytes: number }[];
  storage: StorageEstimate | { error: string };
  /** true when the scan was cancelled: the figures cover the keys scanned so far */
  partial: boolean;
}

/** What compaction could free. Measured: Status's sizes and the revisions; estimated: the bytes. */
export interface StorageEstimate {
  dbSize: number;
  dbSizeInUse: number;
  revision: number;
  /** 0 when never compacted */
  compactRevision: number;
  /** revisions kept as history: revision − compact revision */
  historyRevisions: number;
  /** live keys modified after the compact revision (their current version is not history) */
  liveSinceCompact: number;
  /** key + value bytes of the live keys (measured by the scan) */
  liveBytes: number;
  /** ESTIMATE: one superseded record per history revision, each the size of an average live record */
  estimatedHistoryBytes: number;
}

export interface ScanProgressEvent {
  scanId: string;
  kind: 'search' | 'analyze';
  revision: number;
  scanned: number;
  total: number;
  /** search: hits found since the previous event (only the first `cap` are ever sent) */
  hits?: SearchHit[];
  /** search: all matches so far, also those past the cap */
  matched?: number;
  /** the most hits main sends for one search (the renderer keeps no more) */
  cap?: number;
  done?: boolean;
  cancelled?: boolean;
  error?: SerializedError;
  /** analyze: the report, with the last event (also when cancelled: partial) */
  report?: KeyspaceReport;
}

/** A value decoded for reading (Kubernetes protobuf envelope, JSON, text). */
export interface DecodedValue {
  keyText: string;
  size: number;
  format: 'kubernetes-protobuf' | 'json' | 'text' | 'binary' | 'missing';
  apiVersion?: string;
  kind?: string;
  contentType?: string;
  /** pretty JSON of the decoded object; protobuf fields without a known name appear by number */
  json: string;
  revision: number;
}

/** Chaos lab (the app's local cluster only): faults a user injects into one member while a sample workload runs. */
export type ChaosFault = 'kill' | 'restart' | 'pause' | 'isolate' | 'heal' | 'slow-disk' | 'fast-disk';

export interface ChaosEvent {
  /** Seconds since the workload started. */
  t: number;
  kind: 'start' | 'stop' | 'fault' | 'leader' | 'leaderless' | 'errors' | 'verdict';
  text: string;
}

export interface ChaosMember {
  index: number;
  name: string;
  running: boolean;
  isLeader: boolean;
  paused: boolean;
  isolated: boolean;
  /** The injected delay before each WAL fsync (0: none). */
  syncDelayMs: number;
}

export interface ChaosState {
  running: boolean;
  /** Seconds since the workload started (0 before). */
  elapsed: number;
  members: ChaosMember[];
  leader: string | null;
  timeline: ChaosEvent[];
  counts: { ops: number; ok: number; failed: number; writesFailedLeaderless: number };
  /** The project's linearizability checker on the history so far ('pending' before the first check). */
  verdict: { result: 'pending' | 'linearizable' | 'not linearizable' | 'unknown'; ops: number; detail?: string };
  /** "What happened", once the workload was stopped. */
  summary: string[] | null;
}
