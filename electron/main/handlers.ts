// The IPC handlers, typed by the contract. Plain Node (no Electron import) so
// the browser shell serves the very same functions.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EtcdPb, MvccPb, type EtcdClient } from '../../node-core/index';
import {
  ContractError,
  type AppInfo,
  type AuthOverview,
  type Channel,
  type ClusterInfo,
  type EventMap,
  type EventChannel,
  type HistoryEntry,
  type LeaseInfo,
  type PermCheckResult,
  type Req,
  type Res,
  type RoleInfo,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
  type UserInfo,
  type WatchEvent,
} from '../contract/index';
import { fromB64, kvToContract, permToContract, permTypeOf, prefixEndOf, rangeEndFor, text } from './convert';
import type { ConnectionManager } from './connection-manager';
import type { LocalControl } from './node-host';
import type { ProfileStore } from './profile-store';
import { serializeError } from './errors';

export interface HandlerContext {
  /** Which renderer asked (a webContents id, or a shell session): owns its watches. */
  clientId: string;
  emit<E extends EventChannel>(event: E, payload: EventMap[E]): void;
}

export type Handler<C extends Channel> = (req: Req<C>, ctx: HandlerContext) => Promise<Res<C>>;
export type Handlers = { [C in Channel]: Handler<C> };

export interface HandlerDeps {
  manager: ConnectionManager;
  profiles: ProfileStore;
  info: AppInfo;
  broadcast<E extends EventChannel>(event: E, payload: EventMap[E]): void;
  /** Where to write a snapshot; null = cancelled. */
  chooseSnapshotPath(): Promise<string | null>;
  /** Which snapshot file to restore (Electron's open dialog); null = cancelled. Absent: the caller must give a path. */
  chooseRestorePath?(): Promise<string | null>;
  /** The app's default backups folder (the shell writes there; backup:list reads it). */
  backupsDir?: string;
}

/**
 * sha256 over everything but the last 32 bytes, fed chunk by chunk: etcd
 * appends the sha256 of the db to a snapshot, so the tail is only known at the end.
 */
export class SnapshotDigest {
  private readonly hash = createHash('sha256');
  private tail = Buffer.alloc(0);
  bytes = 0;

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    const all = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const cut = Math.max(0, all.length - 32);
    if (cut) this.hash.update(all.subarray(0, cut));
    this.tail = Buffer.from(all.subarray(cut));
  }

  /** sha256: the appended hash; verified: it equals the hash of the db bytes before it. */
  finish(): { sha256: string; verified: boolean } {
    const computed = this.hash.digest('hex');
    const appended = this.tail.length === 32 ? this.tail.toString('hex') : '';
    return { sha256: appended || computed, verified: appended === computed };
  }
}

const { Compare_CompareResult: CR, Compare_CompareTarget: CT } = EtcdPb;
const TREE_LIMIT = 5000;
const WATCH_FLUSH_MS = 100;
const WATCH_MAX_EVENTS = 200;

function compareToPb(c: TxnCompare): EtcdPb.CompareInit {
  const result = { '=': CR.EQUAL, '!=': CR.NOT_EQUAL, '<': CR.LESS, '>': CR.GREATER }[c.op];
  const key = text(c.key);
  const num = (): number => {
    const n = Number(c.operand.trim() || '0');
    if (!Number.isInteger(n)) throw new ContractError(-1, `"${c.operand}" is not a number (compare on ${c.key})`);
    return n;
  };
  switch (c.target) {
    case 'version':
      return { key, result, target: CT.VERSION, version: num() };
    case 'create':
      return { key, result, target: CT.CREATE, create_revision: num() };
    case 'mod':
      return { key, result, target: CT.MOD, mod_revision: num() };
    case 'value':
      return { key, result, target: CT.VALUE, value: text(c.operand) };
    case 'lease':
      return { key, result, target: CT.LEASE, lease: BigInt(c.operand.trim() || '0') };
  }
}

function opToPb(op: TxnOp): EtcdPb.RequestOpInit {
  const key = text(op.key);
  const end = 'prefix' in op && op.prefix ? prefixEndOf(key) : undefined;
  switch (op.type) {
    case 'put':
      return { request_put: { key, value: text(op.value), lease: op.lease ? BigInt(op.lease) : undefined, prev_kv: true } };
    case 'get':
      return { request_range: { key, range_end: end } };
    case 'delete':
      return { request_delete_range: { key, range_end: end, prev_kv: true } };
  }
}

function opResult(op: TxnOp, r: EtcdPb.ResponseOp): TxnOpResult {
  if (r.response_range) return { type: 'get', key: op.key, kvs: r.response_range.kvs.map(kvToContract) };
  if (r.response_put) return { type: 'put', key: op.key, prevKv: r.response_put.prev_kv ? kvToContract(r.response_put.prev_kv) : null };
  if (r.response_delete_range) return { type: 'delete', key: op.key, deleted: r.response_delete_range.deleted, kvs: r.response_delete_range.prev_kvs.map(kvToContract) };
  return { type: op.type, key: op.key };
}

async function leaseInfo(client: EtcdClient, id: bigint, keepingAlive: boolean): Promise<LeaseInfo> {
  const t = await client.leaseTimeToLive(id, true);
  if (t.TTL === -1) throw new ContractError(5, 'etcdserver: requested lease not found');
  return { id: id.toString(), ttl: t.TTL, grantedTtl: t.grantedTTL, keys: t.keys.map((k) => Buffer.from(k).toString('utf8')), keepingAlive, at: Date.now() };
}

async function authEnabled(client: EtcdClient): Promise<boolean> {
  try {
    await client.authenticateProbe('etcdesk-auth-probe', 'x');
    return true;
  } catch (e) {
    return !/authentication is not enabled/.test(serializeError(e).message);
  }
}

async function userInfo(client: EtcdClient, name: string): Promise<UserInfo> {
  const u = await client.userGet(name);
  return { name, roles: u.roles };
}

async function roleInfo(client: EtcdClient, name: string): Promise<RoleInfo> {
  const r = await client.roleGet(name);
  return { name, perms: r.perm.map(permToContract) };
}

async function overview(client: EtcdClient): Promise<AuthOverview> {
  const enabled = await authEnabled(client);
  try {
    const [ul, rl] = await Promise.all([client.userList(), client.roleList()]);
    const users = await Promise.all(ul.users.map((u) => userInfo(client, u)));
    const roles = await Promise.all(rl.roles.map((r) => roleInfo(client, r)));
    return { enabled, users, roles, restricted: false };
  } catch (e) {
    if (/permission denied|user name is empty|invalid auth token/.test(serializeError(e).message)) return { enabled, users: [], roles: [], restricted: true };
    throw e;
  }
}

/** etcd's permission rule: root role allows all; else any granted range covering the key with the op. */
export function checkPermission(ov: AuthOverview, user: string, op: 'read' | 'write', key: string): PermCheckResult {
  if (!ov.enabled) return { allowed: true, reason: 'authentication is disabled: every request is allowed' };
  const u = ov.users.find((x) => x.name === user);
  if (!u) return { allowed: false, reason: `user "${user}" does not exist` };
  if (u.roles.includes('root')) return { allowed: true, reason: `"${user}" has the root role` };
  const k = text(key);
  for (const roleName of u.roles) {
    const role = ov.roles.find((r) => r.name === roleName);
    for (const p of role?.perms ?? []) {
      if (op === 'read' ? p.type === 'write' : p.type === 'read') continue;
      const start = text(p.key);
      let covers: boolean;
      if (p.scope === 'key') covers = start.equals(k);
      else if (p.scope === 'from-key') covers = Buffer.compare(k, start) >= 0;
      else {
        const end = p.scope === 'prefix' ? prefixEndOf(start) : text(p.rangeEnd);
        covers = Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0;
      }
      if (covers) return { allowed: true, reason: `role "${roleName}" grants ${p.type} on ${p.scope} "${p.key}"${p.scope === 'range' ? ` … "${p.rangeEnd}"` : ''}` };
    }
  }
  return { allowed: false, reason: u.roles.length ? `no role of "${user}" (${u.roles.join(', ')}) grants ${op} on "${key}"` : `"${user}" has no roles` };
}

async function clusterInfo(client: EtcdClient, local?: LocalControl | null): Promise<ClusterInfo> {
  // Cluster RPC headers carry no revision (as etcd): a count-only range gives the store's.
  const [ml, alarms, head] = await Promise.all([
    client.memberList(),
    client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET }).catch(() => null),
    client.range({ key: Buffer.from([0]), count_only: true, serializable: true }).catch(() => null),
  ]);
  let leader = 0n;
  const members = await Promise.all(
    ml.members.map(async (m) => {
      const url = m.clientURLs[0];
      let status: ClusterInfo['members'][number]['status'];
      if (url) {
        const one = client.forEndpoint(url);
        try {
          const s = await one.status();
          if (s.leader) leader = s.leader;
          status = { version: s.version, dbSize: s.dbSize, raftIndex: s.raftIndex, raftTerm: s.raftTerm, errors: s.errors };
        } catch (e) {
          status = { error: serializeError(e).message };
        } finally {
          one.close();
        }
      }
      return { id: m.ID.toString(), name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner, isLeader: false, status };
    }),
  );
  for (const m of members) m.isLeader = m.id === leader.toString();
  return {
    clusterId: ml.header?.cluster_id.toString() ?? '',
    members,
    revision: head?.header?.revision || ml.header?.revision || 0,
    alarms: (alarms?.alarms ?? []).map((a) => ({ memberId: a.memberID.toString(), alarm: EtcdPb.AlarmType[a.alarm] ?? String(a.alarm) })),
    local: local?.members().map((x) => ({ index: x.index, name: x.name, clientUrl: x.clientUrl, running: x.running })),
  };
}

let watchSeq = 0;

export function createHandlers(deps: HandlerDeps): Handlers {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  const info = (): Promise<ClusterInfo> => clusterInfo(c(), m.localControl());
  const local = (index: number): LocalControl => {
    const l = m.localControl();
    if (!l) throw new ContractError(-1, 'only members of the app\'s local cluster can be stopped and restarted');
    if (!l.members().some((x) => x.index === index)) throw new ContractError(-1, `no local member ${index}`);
    return l;
  };

  return {
    'app:info': async () => deps.info,
    'conn:list': async () => deps.profiles.list(),
    'conn:save': async (p) => deps.profiles.save(p),
    'conn:delete': async ({ id }) => {
      if (m.status().profileId === id) m.disconnect();
      deps.profiles.delete(id);
      return { ok: true };
    },
    'conn:connect': async ({ id }) => m.connect(id),
    'conn:disconnect': async () => m.disconnect(),
    'conn:status': async () => m.status(),

    'kv:window': async (req, ctx) => {
      const { list, fresh } = m.keyList(req.prefix, !!req.refresh);
      if (fresh) await list.init();
      const big = req.offset + req.limit - list.rows.length > 20_000;
      const opId = `keys-${Date.now()}`;
      if (big) {
        await list.ensure(req.offset + req.limit, (done, total) => ctx.emit('progress', { opId, label: 'Loading keys', done, total }));
        ctx.emit('progress', { opId, label: 'Loading keys', done: list.rows.length, total: list.total, finished: true });
      }
      return list.window(req.offset, Math.min(req.limit, 1000));
    },
    'kv:tree': async ({ prefix, delimiter }) => {
      // Reuses main's key list for the prefix: watch events invalidate it, so it is never stale.
      const { list, fresh } = m.keyList(prefix, false);
      if (fresh) await list.init();
      const nodes = await list.tree(delimiter);
      return { nodes: nodes.slice(0, TREE_LIMIT), revision: list.revision };
    },
    'kv:get': async ({ key, revision }) => {
      const r = await c().range({ key: fromB64(key), revision });
      return { kv: r.kvs[0] ? kvToContract(r.kvs[0]) : null, revision: r.header?.revision ?? 0 };
    },
    'kv:count': async ({ prefix }) => {
      const key = prefix ? text(prefix) : Buffer.from([0]);
      const r = await c().range({ key, range_end: prefix ? prefixEndOf(key) : Buffer.from([0]), count_only: true });
      return { count: r.count, revision: r.header?.revision ?? 0 };
    },
    'kv:put': async (req) => {
      const key = fromB64(req.key);
      const lease = req.lease && req.lease !== '0' ? BigInt(req.lease) : undefined;
      const put: EtcdPb.RequestOpInit = { request_put: { key, value: fromB64(req.value), lease } };
      if (req.expectModRevision === undefined) {
        const r = await c().txn({ success: [put, { request_range: { key } }] });
        const kv = r.responses[1]?.response_range?.kvs[0];
        return { ok: true, revision: r.header?.revision ?? 0, kv: kv ? kvToContract(kv) : null };
      }
      // Compare-and-swap on mod_revision: a concurrent writer makes this a conflict, never a silent overwrite.
      const r = await c().txn({
        compare: [{ key, target: CT.MOD, result: CR.EQUAL, mod_revision: req.expectModRevision }],
        success: [put, { request_range: { key } }],
        failure: [{ request_range: { key } }],
      });
      const ops = r.responses;
      const kv = (r.succeeded ? ops[1] : ops[0])?.response_range?.kvs[0];
      if (r.succeeded) return { ok: true, revision: r.header?.revision ?? 0, kv: kv ? kvToContract(kv) : null };
      return { ok: false, conflict: true, current: kv ? kvToContract(kv) : null, revision: r.header?.revision ?? 0 };
    },
    'kv:delete': async (req, ctx) => {
      const key = fromB64(req.key);
      const range_end = req.prefix ? (key.length ? prefixEndOf(key) : Buffer.from([0])) : undefined;
      if (req.expectModRevision !== undefined && !req.prefix) {
        const r = await c().txn({
          compare: [{ key, target: CT.MOD, result: CR.EQUAL, mod_revision: req.expectModRevision }],
          success: [{ request_delete_range: { key } }],
          failure: [{ request_range: { key } }],
        });
        if (r.succeeded) return { ok: true, deleted: r.responses[0]?.response_delete_range?.deleted ?? 0, revision: r.header?.revision ?? 0 };
        const kv = r.responses[0]?.response_range?.kvs[0];
        return { ok: false, conflict: true, current: kv ? kvToContract(kv) : null, revision: r.header?.revision ?? 0 };
      }
      const opId = `delete-${Date.now()}`;
      if (req.prefix) ctx.emit('progress', { opId, label: 'Deleting prefix', done: 0, total: 1 });
      const r = await c().deleteRange({ key, range_end });
      if (req.prefix) ctx.emit('progress', { opId, label: 'Deleting prefix', done: 1, total: 1, finished: true });
      m.invalidateKeys();
      return { ok: true, deleted: r.deleted, revision: r.header?.revision ?? 0 };
    },
    'kv:history': async ({ key, limit }) => {
      // Walk back version by version: each read at (mod_revision - 1) yields the previous
      // version; at (create_revision - 1) the previous generation's last version, if any.
      const k = fromB64(key);
      const entries: HistoryEntry[] = [];
      let compacted = false;
      const max = limit ?? 50;
      const first = await c().range({ key: k });
      let kv: MvccPb.KeyValue | undefined = first.kvs[0];
      if (!kv) {
        entries.push({ kv: null, revision: first.header?.revision ?? 0, deleted: true });
        return { entries, compacted };
      }
      while (kv && entries.length < max) {
        entries.push({ kv: kvToContract(kv), revision: kv.mod_revision, deleted: false });
        const at: number = kv.version > 1 ? kv.mod_revision - 1 : kv.create_revision - 1;
        if (at < 1) break;
        try {
          const r = await c().range({ key: k, revision: at });
          kv = r.kvs[0];
        } catch (e) {
          if (/compacted/.test(serializeError(e).message)) compacted = true;
          else throw e;
          break;
        }
      }
      return { entries, compacted };
    },
    'kv:txn': async (req) => {
      const r = await c().txn({ compare: req.compares.map(compareToPb), success: req.success.map(opToPb), failure: req.failure.map(opToPb) });
      const ops = r.succeeded ? req.success : req.failure;
      m.invalidateKeys();
      return { succeeded: r.succeeded, revision: r.header?.revision ?? 0, results: r.responses.map((resp, i) => opResult(ops[i], resp)) };
    },
    'kv:compact': async ({ revision, physical }) => {
      const r = await c().compact(revision, physical ?? false);
      return { revision: r.header?.revision ?? 0 };
    },

    'watch:start': async ({ prefix, fromKey, startRevision }, ctx) => {
      const id = `w${++watchSeq}`;
      const key = prefix ? text(prefix) : Buffer.from([0]);
      const rangeEnd = fromKey || !prefix ? Buffer.from([0]) : prefixEndOf(key);
      // Bulk writes (a 100k-key import) must not stream every event to the renderer:
      // events are batched per WATCH_FLUSH_MS and capped; the rest is only counted.
      let pending: WatchEvent[] = [];
      let dropped = 0;
      let revision = 0;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const flush = (): void => {
        timer = null;
        ctx.emit('watch:update', { watchId: id, revision, events: pending, dropped });
        pending = [];
        dropped = 0;
      };
      const watch = c().watch(
        { key, rangeEnd, prevKv: false, startRevision: startRevision && startRevision > 0 ? startRevision : undefined },
        {
          onEvents: (u) => {
            m.invalidateKeys();
            revision = u.revision;
            for (const e of u.events) {
              if (pending.length >= WATCH_MAX_EVENTS) {
                dropped++;
                continue;
              }
              const kv = e.kv ?? { key: Buffer.alloc(0), value: Buffer.alloc(0), create_revision: 0, mod_revision: 0, version: 0, lease: 0n };
              pending.push({ type: e.type === MvccPb.Event_EventType.DELETE ? 'delete' : 'put', kv: kvToContract(kv) });
            }
            if (!timer) timer = setTimeout(flush, WATCH_FLUSH_MS);
          },
          onError: (e) => {
            if (timer) clearTimeout(timer);
            m.watches.delete(id);
            ctx.emit('watch:error', { watchId: id, error: serializeError(e) });
          },
        },
      );
      m.watches.set(id, { owner: ctx.clientId, watch });
      const rev = await watch.ready;
      return { watchId: id, revision: rev };
    },
    'watch:stop': async ({ watchId }) => {
      m.watches.get(watchId)?.watch.close();
      m.watches.delete(watchId);
      return { ok: true };
    },

    'lease:list': async () => {
      const l = await c().leaseLeases();
      const infos = await Promise.all(
        l.leases.slice(0, 500).map((x) => leaseInfo(c(), x.ID, m.keepAlives.has(x.ID.toString())).catch(() => null)),
      );
      return infos.filter((x): x is LeaseInfo => x !== null).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    },
    'lease:grant': async ({ ttl }) => {
      if (!Number.isInteger(ttl) || ttl < 1) throw new ContractError(-1, 'TTL must be a whole number of seconds ≥ 1');
      const g = await c().leaseGrant(ttl);
      return leaseInfo(c(), g.ID, false);
    },
    'lease:revoke': async ({ id }) => {
      m.keepAlives.get(id)?.close();
      m.keepAlives.delete(id);
      await c().leaseRevoke(BigInt(id));
      m.invalidateKeys();
      deps.broadcast('lease:tick', { id, ttl: 0, at: Date.now(), gone: true });
      return { ok: true };
    },
    'lease:keepalive-once': async ({ id }) => {
      await c().leaseKeepAliveOnce(BigInt(id));
      return leaseInfo(c(), BigInt(id), m.keepAlives.has(id));
    },
    'lease:keepalive': async ({ id, on }) => {
      const existing = m.keepAlives.get(id);
      if (!on) {
        existing?.close();
        m.keepAlives.delete(id);
      } else if (!existing) {
        const ka = c().leaseKeepAlive(
          BigInt(id),
          (r) => deps.broadcast('lease:tick', { id, ttl: r.TTL, at: Date.now() }),
          () => {
            m.keepAlives.delete(id);
            deps.broadcast('lease:tick', { id, ttl: 0, at: Date.now(), gone: true });
          },
        );
        m.keepAlives.set(id, ka);
      }
      return leaseInfo(c(), BigInt(id), on);
    },
    'lease:attach': async ({ id, key }) => {
      // ignore_value keeps the current value: attaching never rewrites data.
      await c().put({ key: text(key), lease: BigInt(id), ignore_value: true });
      return leaseInfo(c(), BigInt(id), m.keepAlives.has(id));
    },

    'auth:overview': async () => overview(c()),
    'auth:enable': async ({ rootPassword }) => {
      const client = c();
      const roles = (await client.roleList()).roles;
      if (!roles.includes('root')) await client.roleAdd('root');
      const users = (await client.userList()).users;
      if (!users.includes('root')) {
        if (!rootPassword) throw new ContractError(-1, 'user root does not exist yet: give it a password to create it');
        await client.userAdd('root', rootPassword);
      }
      const root = await client.userGet('root');
      if (!root.roles.includes('root')) await client.userGrantRole('root', 'root');
      await client.authEnable();
      // Keep administering: from now on requests need credentials.
      if (!client.options.username) {
        if (!rootPassword) throw new ContractError(-1, 'auth enabled; reconnect with the root user');
        try {
          await client.authenticateProbe('root', rootPassword);
        } catch {
          // root existed with another password: say so instead of failing every later call.
          throw new ContractError(-1, 'authentication enabled, but that is not the root password: reconnect with root\'s credentials');
        }
        m.relogin('root', rootPassword);
      } else client.resetToken();
      return overview(c());
    },
    'auth:disable': async () => {
      await c().authDisable();
      return overview(c());
    },
    'auth:user-add': async ({ name, password }) => {
      await c().userAdd(name, password);
      return userInfo(c(), name);
    },
    'auth:user-delete': async ({ name }) => {
      await c().userDelete(name);
      return { ok: true };
    },
    'auth:user-passwd': async ({ name, password }) => {
      await c().userChangePassword(name, password);
      return { ok: true };
    },
    'auth:user-grant': async ({ name, role }) => {
      await c().userGrantRole(name, role);
      return userInfo(c(), name);
    },
    'auth:user-revoke': async ({ name, role }) => {
      await c().userRevokeRole(name, role);
      return userInfo(c(), name);
    },
    'auth:role-add': async ({ name }) => {
      await c().roleAdd(name);
      return roleInfo(c(), name);
    },
    'auth:role-delete': async ({ name }) => {
      await c().roleDelete(name);
      return { ok: true };
    },
    'auth:role-grant': async ({ name, perm }) => {
      const key = perm.scope === 'from-key' && !perm.key ? Buffer.from([0]) : text(perm.key);
      if (!key.length) throw new ContractError(-1, 'a permission needs a key (use from-key with an empty key for all keys)');
      const range_end = rangeEndFor(perm.scope, key, perm.rangeEnd);
      await c().roleGrantPermission(name, { permType: permTypeOf(perm.type), key, range_end });
      return roleInfo(c(), name);
    },
    'auth:role-revoke': async ({ name, key, rangeEnd }) => {
      const end = rangeEnd === '\\0' ? Buffer.from([0]) : rangeEnd ? text(rangeEnd) : undefined;
      await c().roleRevokePermission(name, text(key), end);
      return roleInfo(c(), name);
    },
    'auth:check': async ({ user, op, key }) => checkPermission(await overview(c()), user, op, key),

    'cluster:info': async () => info(),
    'cluster:member-add': async ({ peerUrls, learner }) => {
      await c().memberAdd(peerUrls, learner);
      return info();
    },
    'cluster:member-remove': async ({ id }) => {
      await c().memberRemove(BigInt(id));
      return info();
    },
    'cluster:member-promote': async ({ id }) => {
      await c().memberPromote(BigInt(id));
      return info();
    },
    'cluster:move-leader': async ({ id }) => {
      // MoveLeader must reach the current leader.
      const before = await info();
      const leader = before.members.find((x) => x.isLeader);
      const target = leader?.clientUrls[0] ? c().forEndpoint(leader.clientUrls[0]) : c();
      try {
        await target.moveLeader(BigInt(id));
      } finally {
        if (target !== c()) target.close();
      }
      return info();
    },
    'maint:defragment': async ({ endpoint }) => {
      const target = endpoint ? c().forEndpoint(endpoint) : c();
      try {
        await target.defragment();
      } finally {
        if (endpoint) target.close();
      }
      return { ok: true };
    },
    'cluster:local-stop': async ({ index }) => {
      await local(index).stopMember(index);
      return info();
    },
    'cluster:local-restart': async ({ index }) => {
      await local(index).restartMember(index);
      return info();
    },
    'maint:hashkv': async ({ revision }) => {
      const members = (await c().memberList()).members.filter((x) => x.clientURLs.length);
      // One revision for all: hashes at different revisions never agree.
      const rev = revision && revision > 0 ? revision : ((await c().range({ key: Buffer.from([0]), count_only: true })).header?.revision ?? 0);
      const hashes = await Promise.all(
        members.map(async (mem) => {
          const url = mem.clientURLs[0];
          const one = c().forEndpoint(url);
          const base = { endpoint: url, memberId: mem.ID.toString(), name: mem.name };
          try {
            const h = await one.hashKV(rev);
            return { ...base, hash: h.hash, compactRevision: h.compact_revision };
          } catch (e) {
            return { ...base, hash: 0, compactRevision: 0, error: serializeError(e).message };
          } finally {
            one.close();
          }
        }),
      );
      return { revision: rev, hashes };
    },
    'maint:alarm-disarm': async () => {
      const client = c();
      const al = await client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET });
      for (const a of al.alarms) await client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm });
      return info();
    },
    'maint:snapshot': async ({ opId, path: given }, ctx) => {
      c(); // not connected: say so before a save dialog asks where to write
      const file = given || (await deps.chooseSnapshotPath());
      if (!file) return { path: null, bytes: 0, sha256: '', verified: false };
      fs.mkdirSync(path.dirname(file), { recursive: true });
      // Written beside the target and renamed at the end: a failed export never leaves a file that looks whole.
      const part = `${file}.part`;
      const out = fs.createWriteStream(part);
      let failed: Error | null = null;
      out.on('error', (e) => (failed = e));
      const digest = new SnapshotDigest();
      const label = 'Exporting backup';
      try {
        await c().snapshot((blob, remaining) => {
          out.write(blob);
          digest.update(blob);
          ctx.emit('progress', { opId, label, done: digest.bytes, total: digest.bytes + remaining });
        });
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        if (failed) throw failed;
        fs.renameSync(part, file);
      } catch (e) {
        out.destroy();
        fs.rmSync(part, { force: true });
        throw e;
      } finally {
        ctx.emit('progress', { opId, label, done: digest.bytes, total: digest.bytes, finished: true });
      }
      const { sha256, verified } = digest.finish();
      if (!verified) throw new ContractError(-1, `backup written to ${file} but its sha256 does not match the db (${sha256}): do not rely on it`);
      return { path: file, bytes: digest.bytes, sha256, verified };
    },
    'backup:restore': async ({ opId, path: given }, ctx) => {
      const file = given || (deps.chooseRestorePath ? await deps.chooseRestorePath() : null);
      if (!file) {
        if (!deps.chooseRestorePath && !given) throw new ContractError(-1, 'choose a snapshot file to restore');
        return { path: null, profileId: '', revision: 0, dataDir: '', status: m.status() };
      }
      const label = 'Restoring backup';
      ctx.emit('progress', { opId, label, done: 0, total: 1 });
      try {
        const r = await m.openRestored(file);
        if (r.status.state !== 'connected') throw new ContractError(-1, `restored into ${r.dataDir}, but the node did not answer: ${r.status.error?.message ?? r.status.state}`);
        return { path: file, ...r };
      } finally {
        ctx.emit('progress', { opId, label, done: 1, total: 1, finished: true });
      }
    },
    'backup:list': async () => {
      const dir = deps.backupsDir ?? path.join(m.dataDir, 'snapshots');
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir).filter((f) => f.endsWith('.db'));
      } catch {
        /* no backups yet */
      }
      const files = names.map((f) => {
        const st = fs.statSync(path.join(dir, f));
        return { path: path.join(dir, f), bytes: st.size, mtime: st.mtimeMs };
      });
      return { dir, files: files.sort((a, b) => b.mtime - a.mtime) };
    },
  };
}

/** Runs one channel's handler and wraps the outcome in the contract's envelope. */
export async function dispatch(handlers: Handlers, channel: Channel, req: unknown, ctx: HandlerContext): Promise<{ ok: true; value: unknown } | { ok: false; error: { code: number; message: string } }> {
  try {
    const h = handlers[channel] as (r: unknown, c: HandlerContext) => Promise<unknown>;
    return { ok: true, value: await h(req ?? {}, ctx) };
  } catch (e) {
    return { ok: false, error: serializeError(e) };
  }
}
