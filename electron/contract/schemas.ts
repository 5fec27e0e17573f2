// Runtime validation of every request at the contract: one valibot schema per
// invoke channel, checked against the TypeScript request types below so the
// two never drift. main's dispatch (Electron IPC and the shell's POST alike)
// parses the request with its schema before any handler sees it. Kept out of
// the contract's index so the renderer does not bundle valibot.
import * as v from 'valibot';
import type { Channel, Req } from './channels';

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const str = v.string('must be a string');
const b64 = v.pipe(v.string('must be base64'), v.regex(B64_RE, 'must be base64'));
const bool = v.boolean('must be true or false');
const int = (min = 0): v.SchemaWithPipe<readonly [v.NumberSchema<string>, v.IntegerAction<number, string>, v.MinValueAction<number, number, string>]> =>
  v.pipe(v.number('must be a number'), v.integer('must be a whole number'), v.minValue(min, `must be ≥ ${min}`));
/** Lease and member ids: decimal strings of 64-bit numbers. */
const id64 = v.pipe(v.string('must be a decimal id'), v.regex(/^\d{1,20}$/, 'must be a decimal id'));
const name = v.pipe(str, v.maxLength(1024, 'is too long'));
const empty = v.object({});
const one = <T extends v.GenericSchema>(s: T): v.ObjectSchema<{ readonly id: T }, undefined> => v.object({ id: s });

const permType = v.picklist(['read', 'write', 'readwrite'], 'must be read, write or readwrite');
const permScope = v.picklist(['key', 'prefix', 'range', 'from-key'], 'must be key, prefix, range or from-key');
const kind = v.picklist(['embedded', 'local-cluster', 'remote', 'restored'], 'must be a connection kind');

const sshConfig = v.object({
  host: v.pipe(str, v.minLength(1, 'is required'), v.maxLength(255, 'is too long')),
  port: v.optional(v.pipe(int(1), v.maxValue(65535, 'must be ≤ 65535'))),
  username: v.pipe(str, v.minLength(1, 'is required'), v.maxLength(255, 'is too long')),
  keyFile: v.optional(str),
  hostKeySha256: v.optional(str),
});

const profile = v.object({
  id: str,
  name,
  kind,
  endpoints: v.array(str, 'must be a list of endpoints'),
  username: v.optional(str),
  password: v.optional(str),
  hasPassword: v.optional(bool),
  passwordStore: v.optional(v.picklist(['keychain', 'file', 'session'])),
  tls: v.optional(
    v.object({ caFile: v.optional(str), certFile: v.optional(str), keyFile: v.optional(str), serverName: v.optional(str), insecureSkipVerify: v.optional(bool) }),
  ),
  ssh: v.optional(sshConfig),
  sshSecret: v.optional(str),
  hasSshSecret: v.optional(bool),
  dataDir: v.optional(str),
});

const compare = v.object({
  key: str,
  target: v.picklist(['version', 'create', 'mod', 'value', 'lease'], 'must be version, create, mod, value or lease'),
  op: v.picklist(['=', '!=', '<', '>'], 'must be =, !=, < or >'),
  operand: str,
});
const txnOp = v.variant(
  'type',
  [
    v.object({ type: v.literal('put'), key: str, value: str, lease: v.optional(id64) }),
    v.object({ type: v.literal('get'), key: str, prefix: v.optional(bool) }),
    v.object({ type: v.literal('delete'), key: str, prefix: v.optional(bool) }),
  ],
  'must be a put, get or delete',
);
const opId = v.pipe(str, v.maxLength(200, 'is too long'));
/** A name as backup:list gives it: a file, or a connection's folder and a file (scheduled backups); never a path out. */
const backupName = v.pipe(
  str,
  v.regex(/^[^/\\]+(?:\/[^/\\]+)?$/, 'must be a file name from backup:list, not a path'),
  v.check((s) => s.split('/').every((p) => p !== '.' && p !== '..'), 'must be a file name from backup:list, not a path'),
);

export const requestSchemas = {
  'app:info': empty,
  'conn:list': empty,
  'conn:save': profile,
  'conn:delete': one(str),
  'backup:restore-cluster': v.strictObject(
    { opId, name: backupName },
    'takes an opId and a file name from backup:list: main chooses the file',
  ),
  'backup:schedules': empty,
  'backup:schedule-set': v.object({
    profileId: str,
    everyMinutes: v.pipe(int(1), v.maxValue(7 * 24 * 60, 'must be at most a week')),
    keep: v.pipe(int(1), v.maxValue(1000, 'must be ≤ 1000')),
    enabled: bool,
    lastRunAt: v.optional(v.number()),
  }),
  'backup:schedule-remove': v.object({ profileId: str }),
  'backup:run-now': v.object({ profileId: str, opId }),
  'data:export': v.object({ prefix: str, format: v.picklist(['json', 'yaml', 'etcdctl'], 'must be json, yaml or etcdctl'), opId }),
  'data:import-preview': v.object({ text: v.pipe(str, v.maxLength(256 << 20, 'is over 256 MiB')), targetPrefix: v.optional(str), opId }),
  'data:import-apply': v.object({ planId: opId, opId }),
  'data:copy-prefix': v.object({ from: str, to: str, rename: bool, dryRun: bool, opId }),
  'data:delete-keys': v.object({ keys: v.pipe(v.array(v.object({ key: b64, modRevision: int(0) })), v.maxLength(100_000, 'at most 100,000 keys at once')), opId }),
  'data:cancel': v.object({ opId }),
  'conn:export': empty,
  'conn:import': v.object({ text: v.pipe(str, v.maxLength(1 << 20, 'is over 1 MiB')) }),
  'conn:sign-in': v.object({ id: str, username: v.pipe(str, v.minLength(1, 'must not be empty')), password: str, remember: bool }),
  'conn:connect': one(str),
  'conn:disconnect': empty,
  'conn:status': empty,

  'kv:window': v.object({ prefix: str, offset: int(), limit: int(), refresh: v.optional(bool) }),
  'kv:tree': v.object({ prefix: str, delimiter: str }),
  'kv:get': v.object({ key: b64, revision: v.optional(int()) }),
  'kv:put': v.object({ key: b64, value: b64, lease: v.optional(id64), expectModRevision: v.optional(int()) }),
  'kv:delete': v.object({ key: b64, prefix: v.optional(bool), expectModRevision: v.optional(int()) }),
  'kv:count': v.object({ prefix: str }),
  'kv:history': v.object({ key: b64, limit: v.optional(int(1)) }),
  'kv:txn': v.object({ compares: v.array(compare), success: v.array(txnOp), failure: v.array(txnOp) }),
  'kv:compact': v.object({ revision: int(1), physical: v.optional(bool) }),

  'watch:start': v.object({ prefix: str, fromKey: v.optional(bool), startRevision: v.optional(int()) }),
  'watch:stop': v.object({ watchId: str }),

  'lease:list': empty,
  'lease:grant': v.object({ ttl: int(1) }),
  'lease:revoke': one(id64),
  'lease:keepalive-once': one(id64),
  'lease:keepalive': v.object({ id: id64, on: bool }),
  'lease:attach': v.object({ id: id64, key: str }),

  'auth:overview': empty,
  'auth:enable': v.object({ rootPassword: str }),
  'auth:disable': empty,
  'auth:user-add': v.object({ name, password: str }),
  'auth:user-delete': v.object({ name }),
  'auth:user-passwd': v.object({ name, password: str }),
  'auth:user-grant': v.object({ name, role: name }),
  'auth:user-revoke': v.object({ name, role: name }),
  'auth:role-add': v.object({ name }),
  'auth:role-delete': v.object({ name }),
  'auth:role-grant': v.object({ name, perm: v.object({ type: permType, key: str, scope: permScope, rangeEnd: v.optional(str) }) }),
  'auth:role-revoke': v.object({ name, key: str, rangeEnd: str }),
  'auth:check': v.object({ user: name, op: v.picklist(['read', 'write'], 'must be read or write'), key: str }),

  'cluster:info': empty,
  'cluster:member-add': v.object({ peerUrls: v.array(str), learner: bool }),
  'cluster:member-remove': one(id64),
  'cluster:member-promote': one(id64),
  'cluster:move-leader': one(id64),
  'cluster:local-stop': v.object({ index: int() }),
  'cluster:local-restart': v.object({ index: int() }),
  'cluster:monitor': v.object({ on: bool }),
  'chaos:state': empty,
  'chaos:start': empty,
  'chaos:stop': empty,
  'chaos:fault': v.object({
    member: int(),
    fault: v.picklist(['kill', 'restart', 'pause', 'isolate', 'heal', 'slow-disk', 'fast-disk'], 'must be a chaos fault'),
    seconds: v.optional(v.pipe(int(1), v.maxValue(30, 'must be ≤ 30'))),
    delayMs: v.optional(v.pipe(int(1), v.maxValue(5000, 'must be ≤ 5000'))),
  }),
  'maint:defragment': v.object({ endpoint: v.optional(str) }),
  'maint:hashkv': v.object({ revision: v.optional(int()) }),
  'maint:alarm-disarm': empty,
  // Strict: a path from the renderer is refused outright, never ignored (main's own dialogs choose files).
  'maint:snapshot': v.strictObject({ opId }, 'takes only an opId: main chooses where the file goes'),
  'backup:restore': v.strictObject(
    {
      opId,
      name: v.optional(backupName),
    },
    'takes an opId and at most a file name from backup:list: main chooses the file',
  ),
  'backup:list': empty,

  'doctor:report': v.object({ hash: v.optional(bool) }),
  'space:report': v.object({ quotaBytes: v.optional(int(1)) }),
  'space:plan': v.object({ retention: int(), probe: v.optional(bool) }),
  'space:run': v.object({ planId: str }),
  'space:abort': v.object({ planId: str }),
  'space:plan-status': v.object({ planId: str }),
  'scan:search': v.object({
    mode: v.picklist(['contains', 'glob', 'value'], 'must be contains, glob or value'),
    pattern: v.pipe(str, v.minLength(1, 'must not be empty'), v.maxLength(4096, 'is too long')),
    prefix: str,
    caseSensitive: v.optional(bool),
  }),
  'scan:analyze': v.object({ prefix: str, delimiter: v.optional(v.pipe(str, v.maxLength(16, 'is too long'))), kubernetes: v.optional(bool) }),
  'scan:cancel': v.object({ scanId: str }),
  'scan:decode': v.object({ key: b64, revision: v.optional(int()) }),
} satisfies { [C in Channel]: v.GenericSchema };

export type RequestSchemas = typeof requestSchemas;

// The schema's output and the contract's request type must be the same shape in both directions.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Mismatched = { [C in Channel]: Same<v.InferOutput<RequestSchemas[C]>, Req<C>> extends true ? never : C }[Channel];
const schemasMatchContract: [Mismatched] extends [never] ? true : { mismatched: Mismatched } = true;
void schemasMatchContract;

export type ValidationResult<C extends Channel> = { ok: true; value: Req<C> } | { ok: false; message: string };

/** Parses a request for `channel`; the message names the field: "kv:put.key must be base64". */
export function validateRequest<C extends Channel>(channel: C, req: unknown): ValidationResult<C> {
  const schema = requestSchemas[channel] as v.GenericSchema;
  const r = v.safeParse(schema, req ?? {});
  if (r.success) return { ok: true, value: r.output as Req<C> };
  const issue = r.issues[0];
  const where = (issue.path ?? []).map((p) => String(p.key)).join('.');
  if (!where) return { ok: false, message: `${channel} needs an object request` };
  // A missing field reports valibot's own "Invalid key" wording: say it plainly.
  const message = issue.input === undefined && issue.received === 'undefined' ? 'is required' : issue.message;
  return { ok: false, message: `${channel}.${where} ${message}` };
}
