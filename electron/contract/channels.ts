// The one IPC contract: every invoke channel with its request/response type and
// every event channel with its payload. main's handlers, the preload whitelist,
// the browser shell and the renderer's API are all typed from these maps.
import type * as T from './types';

type Empty = Record<string, never>;

export interface InvokeMap {
  'app:info': { req: Empty; res: T.AppInfo };
  'conn:list': { req: Empty; res: T.ConnectionProfile[] };
  /** Any profile: remote ones in full; built-in and restored ones take a name and credentials. */
  'conn:save': { req: T.ConnectionProfile; res: T.ConnectionProfile };
  /** Remote: forgotten. Restored: its node stopped and its data folder removed. Built-in: name and credentials reset. */
  'conn:delete': { req: { id: string }; res: { ok: true } };
  /** Credentials for a profile, then connect. remember: keep the password (keychain / 0600 file), else for this session. */
  'conn:sign-in': { req: { id: string; username: string; password: string; remember: boolean }; res: T.ConnectionStatus };
  'conn:connect': { req: { id: string }; res: T.ConnectionStatus };
  'conn:disconnect': { req: Empty; res: T.ConnectionStatus };
  'conn:status': { req: Empty; res: T.ConnectionStatus };
  /** The saved remote profiles as a shareable document: no passwords, no pinned host keys, no ids. */
  'conn:export': { req: Empty; res: T.ProfilesExport };
  /** Profiles from such a document (the renderer read the file the user picked); same-named ones are skipped. */
  'conn:import': { req: { text: string }; res: { added: T.ConnectionProfile[]; skipped: string[] } };

  /** Moving data: every key under a prefix at one revision, as JSON, YAML or an etcdctl script (progress on opId). */
  'data:export': { req: { prefix: string; format: T.DataExportFormat; opId: string }; res: T.DataExportResult };
  /** An export's text read and diffed against the cluster (optionally moved under another prefix); nothing is written. */
  'data:import-preview': { req: { text: string; targetPrefix?: string; opId: string }; res: T.ImportPreview };
  /** Writes a previewed import; each key only if unchanged since the preview (compare on mod_revision). */
  'data:import-apply': { req: { planId: string; opId: string }; res: T.TransferResult };
  /** Copy or rename a prefix: targets must not exist; dryRun counts and names collisions only. */
  'data:copy-prefix': { req: { from: string; to: string; rename: boolean; dryRun: boolean; opId: string }; res: T.TransferResult & { planned: number; existing: string[] } };
  /** Deletes the selected keys, each only if it still has the mod_revision shown when selected. */
  'data:delete-keys': { req: { keys: { key: T.B64; modRevision: number }[]; opId: string }; res: T.TransferResult };
  /** Stops a running data operation between batches. */
  'data:cancel': { req: { opId: string }; res: { ok: true } };
  /** Scheduled backups: every connection's schedule and the history of runs (newest first). */
  /** A backup from backup:list restored into every member of the local three-member cluster (its keys replaced), then connected. */
  'backup:restore-cluster': { req: { opId: string; name: string }; res: { revision: number; status: T.ConnectionStatus } };
  'backup:schedules': { req: Empty; res: { schedules: T.BackupSchedule[]; history: T.BackupRun[] } };
  'backup:schedule-set': { req: T.BackupSchedule; res: T.BackupSchedule };
  'backup:schedule-remove': { req: { profileId: string }; res: { ok: true } };
  /** A verified backup of a connection now: snapshot, sha256, restore into a scratch node, HashKV compared. */
  'backup:run-now': { req: { profileId: string; opId: string }; res: T.BackupRun };
  'kv:window': { req: T.KeysWindowRequest; res: T.KeysWindowResponse };
  'kv:tree': { req: T.TreeRequest; res: { nodes: T.TreeNode[]; revision: number } };
  'kv:get': { req: { key: T.B64; revision?: number }; res: { kv: T.KeyValue | null; revision: number } };
  'kv:put': { req: T.PutRequest; res: T.PutResult };
  'kv:delete': { req: T.DeleteRequest; res: T.DeleteResult };
  'kv:count': { req: { prefix: string }; res: { count: number; revision: number } };
  'kv:history': { req: { key: T.B64; limit?: number }; res: T.HistoryResponse };
  'kv:txn': { req: T.TxnRequest; res: T.TxnResult };
  'kv:compact': { req: { revision: number; physical?: boolean }; res: { revision: number } };

  /** startRevision: deliver every change after the revision the caller's data was read at (no gap). */
  'watch:start': { req: { prefix: string; fromKey?: boolean; startRevision?: number }; res: { watchId: string; revision: number } };
  'watch:stop': { req: { watchId: string }; res: { ok: true } };

  'lease:list': { req: Empty; res: T.LeaseInfo[] };
  'lease:grant': { req: { ttl: number }; res: T.LeaseInfo };
  'lease:revoke': { req: { id: string }; res: { ok: true } };
  'lease:keepalive-once': { req: { id: string }; res: T.LeaseInfo };
  'lease:keepalive': { req: { id: string; on: boolean }; res: T.LeaseInfo };
  'lease:attach': { req: { id: string; key: string }; res: T.LeaseInfo };

  'auth:overview': { req: Empty; res: T.AuthOverview };
  /** Ensures user root with role root exists first (created with rootPassword when missing), then enables and reconnects as root. */
  'auth:enable': { req: { rootPassword: string }; res: T.AuthOverview };
  'auth:disable': { req: Empty; res: T.AuthOverview };
  'auth:user-add': { req: { name: string; password: string }; res: T.UserInfo };
  'auth:user-delete': { req: { name: string }; res: { ok: true } };
  'auth:user-passwd': { req: { name: string; password: string }; res: { ok: true } };
  'auth:user-grant': { req: { name: string; role: string }; res: T.UserInfo };
  'auth:user-revoke': { req: { name: string; role: string }; res: T.UserInfo };
  'auth:role-add': { req: { name: string }; res: T.RoleInfo };
  'auth:role-delete': { req: { name: string }; res: { ok: true } };
  'auth:role-grant': { req: { name: string; perm: Omit<T.Permission, 'rangeEnd'> & { rangeEnd?: string } }; res: T.RoleInfo };
  'auth:role-revoke': { req: { name: string; key: string; rangeEnd: string }; res: T.RoleInfo };
  'auth:check': { req: { user: string; op: T.PermCheckOp; key: string }; res: T.PermCheckResult };

  'cluster:info': { req: Empty; res: T.ClusterInfo };
  'cluster:member-add': { req: { peerUrls: string[]; learner: boolean }; res: T.ClusterInfo };
  'cluster:member-remove': { req: { id: string }; res: T.ClusterInfo };
  'cluster:member-promote': { req: { id: string }; res: T.ClusterInfo };
  'cluster:move-leader': { req: { id: string }; res: T.ClusterInfo };
  /** Stop / start again one member of the app's local three-node cluster (in-process: a kill is a graceful stop). */
  'cluster:local-stop': { req: { index: number }; res: T.ClusterInfo };
  'cluster:local-restart': { req: { index: number }; res: T.ClusterInfo };
  /** on: main polls every member's Status (fast, in parallel) and pushes cluster:changed to this window until off or the connection changes. */
  'cluster:monitor': { req: { on: boolean }; res: { connectionId: number | null } };
  'maint:defragment': { req: { endpoint?: string }; res: { ok: true } };
  /** HashKV on every member at one revision (default: the current one), so the hashes are comparable. */
  'maint:hashkv': { req: { revision?: number }; res: T.HashCheck };
  'maint:alarm-disarm': { req: Empty; res: T.ClusterInfo };
  /** File → Export Backup…: Maintenance.Snapshot streamed to where main's save dialog (or the shell's backups folder) says: the renderer never names a path. */
  'maint:snapshot': { req: { opId: string }; res: T.BackupResult };
  /**
   * File → Restore Backup…: the snapshot restored into a new local node (own data dir), then connected to.
   * name: a file listed by backup:list (the shell's picker); none: main's open dialog asks. Never a path.
   */
  'backup:restore': { req: { opId: string; name?: string }; res: T.RestoreResult };
  /** Snapshot files in the app's backups folder (the shell's restore picker). */
  'backup:list': { req: Empty; res: { dir: string; files: { name: string; path: string; bytes: number; mtime: number }[] } };

  /** Every member's status, /health and /metrics (differenced against main's previous scrape); hash: also HashKV of all at one revision. */
  'doctor:report': { req: { hash?: boolean }; res: T.DoctorReport };
  /** Db size, in use and quota (quotaBytes: the user's value when the node does not say), growth and time to NOSPACE. */
  'space:report': { req: { quotaBytes?: number }; res: T.SpaceReport };
  /** A plan to review: compact keeping `retention` revisions, defragment followers, move the leader, defragment it, disarm NOSPACE. */
  'space:plan': { req: { retention: number; probe?: boolean }; res: T.SpacePlan };
  /** Starts a reviewed plan; progress arrives on space:plan events. */
  'space:run': { req: { planId: string }; res: T.SpacePlan };
  /** Stops the plan between steps (a running step finishes and is verified). */
  'space:abort': { req: { planId: string }; res: T.SpacePlan };
  'space:plan-status': { req: { planId: string }; res: T.SpacePlan };
  /** Key search beyond prefixes, streamed as scan:progress (hits) over one revision; a new search of the window cancels its last. */
  'scan:search': { req: T.SearchRequest; res: T.ScanStarted };
  /** Keyspace analyzer, streamed as scan:progress; the last event carries the report. */
  'scan:analyze': { req: T.AnalyzeRequest; res: T.ScanStarted };
  'scan:cancel': { req: { scanId: string }; res: { ok: true } };
  /** One value decoded for reading (Kubernetes protobuf envelope → JSON). */
  'scan:decode': { req: { key: T.B64; revision?: number }; res: T.DecodedValue };
  /** Chaos lab (local cluster only): a sample workload (puts/gets/CAS, history recorded) while faults are injected; chaos:changed pushes its state. */
  'chaos:state': { req: Empty; res: T.ChaosState };
  'chaos:start': { req: Empty; res: T.ChaosState };
  /** Stops the workload, checks the whole history, writes the summary. */
  'chaos:stop': { req: Empty; res: T.ChaosState };
  /** pause: seconds (default 5); slow-disk: delayMs before each WAL fsync (default 200). */
  'chaos:fault': { req: { member: number; fault: T.ChaosFault; seconds?: number; delayMs?: number }; res: T.ChaosState };
}

export interface EventMap {
  'keys:changed': T.KeysChangedEvent;
  'watch:update': T.WatchUpdateEvent;
  'watch:error': T.WatchErrorEvent;
  'lease:tick': T.LeaseTickEvent;
  'progress': T.ProgressEvent;
  'conn:changed': T.ConnectionStatus;
  'cluster:changed': T.ClusterInfo;
  'menu:action': { action: T.MenuAction };
  'space:plan': T.SpacePlan;
  'scan:progress': T.ScanProgressEvent;
  'chaos:changed': T.ChaosState;
}

export type Channel = keyof InvokeMap;
export type EventChannel = keyof EventMap;
export type Req<C extends Channel> = InvokeMap[C]['req'];
export type Res<C extends Channel> = InvokeMap[C]['res'];

/** Runtime lists for whitelists (preload, shell); `satisfies` keeps them complete. */
const channelSet: { [C in Channel]: true } = {
  'app:info': true, 'conn:list': true, 'conn:save': true, 'conn:delete': true, 'conn:sign-in': true, 'conn:connect': true, 'conn:disconnect': true, 'conn:status': true, 'conn:export': true, 'conn:import': true,
  'data:export': true, 'data:import-preview': true, 'data:import-apply': true, 'data:copy-prefix': true, 'data:delete-keys': true, 'data:cancel': true,
  'backup:restore-cluster': true, 'backup:schedules': true, 'backup:schedule-set': true, 'backup:schedule-remove': true, 'backup:run-now': true,
  'kv:window': true, 'kv:tree': true, 'kv:get': true, 'kv:put': true, 'kv:delete': true, 'kv:count': true, 'kv:history': true, 'kv:txn': true, 'kv:compact': true,
  'watch:start': true, 'watch:stop': true,
  'lease:list': true, 'lease:grant': true, 'lease:revoke': true, 'lease:keepalive-once': true, 'lease:keepalive': true, 'lease:attach': true,
  'auth:overview': true, 'auth:enable': true, 'auth:disable': true, 'auth:user-add': true, 'auth:user-delete': true, 'auth:user-passwd': true,
  'auth:user-grant': true, 'auth:user-revoke': true, 'auth:role-add': true, 'auth:role-delete': true, 'auth:role-grant': true, 'auth:role-revoke': true, 'auth:check': true,
  'cluster:info': true, 'cluster:member-add': true, 'cluster:member-remove': true, 'cluster:member-promote': true, 'cluster:move-leader': true,
  'cluster:local-stop': true, 'cluster:local-restart': true, 'cluster:monitor': true,
  'maint:defragment': true, 'maint:hashkv': true, 'maint:alarm-disarm': true, 'maint:snapshot': true, 'backup:restore': true, 'backup:list': true,
  'doctor:report': true, 'space:report': true, 'space:plan': true, 'space:run': true, 'space:abort': true, 'space:plan-status': true,
  'scan:search': true, 'scan:analyze': true, 'scan:cancel': true, 'scan:decode': true,
  'chaos:state': true, 'chaos:start': true, 'chaos:stop': true, 'chaos:fault': true,
};
const eventSet: { [E in EventChannel]: true } = {
  'keys:changed': true, 'watch:update': true, 'watch:error': true, 'lease:tick': true, 'progress': true, 'conn:changed': true, 'menu:action': true,
  'space:plan': true,
  'cluster:changed': true,
  'scan:progress': true,
  'chaos:changed': true,
};
export const CHANNELS = Object.keys(channelSet) as Channel[];
export const EVENT_CHANNELS = Object.keys(eventSet) as EventChannel[];
export const isChannel = (c: unknown): c is Channel => typeof c === 'string' && Object.prototype.hasOwnProperty.call(channelSet, c);
export const isEventChannel = (c: unknown): c is EventChannel => typeof c === 'string' && Object.prototype.hasOwnProperty.call(eventSet, c);

/** Electron IPC channel names are namespaced so they never clash with Electron's own. */
export const IPC_PREFIX = 'etcdesk:';

/** Invoke results travel as a tagged union so errors keep etcd's code and message across IPC/HTTP. */
export type Envelope<R> = { ok: true; value: R } | { ok: false; error: T.SerializedError };

/** What the renderer sees, from the preload bridge or the shell client alike. */
export interface EtcdeskApi {
  invoke<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>>;
  on<E extends EventChannel>(event: E, listener: (payload: EventMap[E]) => void): () => void;
}

/** Raw bridge the preload exposes: envelopes, no exceptions across the context boundary. */
export interface EtcdeskBridge {
  invoke(channel: string, req: unknown): Promise<Envelope<unknown>>;
  on(event: string, listener: (payload: unknown) => void): () => void;
}

export class ContractError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** SerializedError.etcdError: which of etcd's errors, when it is one. */
    readonly etcdError?: string,
  ) {
    super(message);
  }
}

export const SHELL_TOKEN_HEADER = 'x-etcdesk-token';
