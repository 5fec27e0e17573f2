// The operator's console: the cluster doctor (every member's status, /health,
// /metrics and HashKV, judged by ../doctor.ts) and the space guardian (size,
// quota, growth, and the compact → defragment → move leader → disarm plan).
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { EtcdClient, EtcdPb } from '../../../node-core/index';
import { ContractError, type DoctorMember, type DoctorReport, type SpacePlan, type SpaceReport } from '../../contract/index';
import { DEFAULT_QUOTA, findings, GUIDANCE, growth, hashTimeoutMs, memberMetrics, parsePrometheus, ScrapeHistory, SpaceHistory, type Scrape } from '../doctor';
import { isEtcdError, serializeError } from '../errors';
import { buildPlan, PlanRunner } from '../space-plan';
import { memberClient, routeTls, type MemberDialer, type MemberRoute } from '../member-dialer';
import type { HandlerDeps, HandlersFor } from './context';

const PROBE_TIMEOUT_MS = 5_000;

/** GET on a member's client URL (/health, /metrics) with the connection's TLS material. */
function httpGet(base: string, path: string, tls: EtcdClient['options']['tls']): Promise<{ status: number; body: string }> {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).get(
      url,
      { timeout: PROBE_TIMEOUT_MS, ...(secure && tls ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
  });
}

const message = (e: unknown): string => serializeError(e).message;

interface Probe {
  member: DoctorMember;
  scrape: Scrape | null;
}

type DoctorChannels = 'doctor:report' | 'space:report' | 'space:plan' | 'space:run' | 'space:abort' | 'space:plan-status';

export function doctorHandlers(deps: HandlerDeps): HandlersFor<DoctorChannels> {
  const m = deps.manager;
  const c = (): EtcdClient => m.requireClient();
  // Main keeps the previous scrapes and size samples: the renderer may come and go.
  const scrapes = new ScrapeHistory();
  const space = new SpaceHistory();
  const plans = new Map<string, PlanRunner>();

  /** Status, /health and /metrics of every member, in parallel. */
  async function probeAll(client: EtcdClient, dial: MemberDialer): Promise<{ clusterId: string; probes: Probe[] }> {
    const ml = await client.memberList();
    const clusterId = ml.header?.cluster_id.toString() ?? '';
    const probes = await Promise.all(
      ml.members.map(async (x): Promise<Probe> => {
        const url = x.clientURLs[0] ?? null;
        const member: DoctorMember = { id: x.ID.toString(), name: x.name, clientUrl: url, isLeader: false, isLearner: x.isLearner };
        if (!url) return { member, scrape: null };
        // The advertised URL may be reachable only from the SSH server: dialled through the tunnel then.
        let route: MemberRoute;
        try {
          route = await dial(url);
        } catch (e) {
          member.statusError = member.healthError = member.metricsError = message(e);
          return { member, scrape: null };
        }
        const one = await memberClient(client, async () => route, url, PROBE_TIMEOUT_MS);
        const tls = routeTls(client, route);
        const [st, health, metrics] = await Promise.allSettled([one.status(), httpGet(route.url, 'health', tls), httpGet(route.url, 'metrics', tls)]);
        one.close();
        if (st.status === 'fulfilled') {
          const s = st.value;
          member.status = { version: s.version, dbSize: s.dbSize, dbSizeInUse: s.dbSizeInUse, leader: s.leader.toString(), raftTerm: s.raftTerm, raftIndex: s.raftIndex, raftAppliedIndex: s.raftAppliedIndex, errors: s.errors };
          member.isLeader = s.leader === x.ID;
          member.isLearner = s.isLearner || x.isLearner;
        } else member.statusError = message(st.reason);
        if (health.status === 'fulfilled') {
          const h = health.value;
          let body: { health?: unknown; reason?: unknown } = {};
          try {
            body = JSON.parse(h.body) as typeof body;
          } catch {
            // not etcd's JSON: judged by the HTTP status alone
          }
          member.health = { ok: h.status === 200 && (body.health === 'true' || body.health === true), httpStatus: h.status, reason: typeof body.reason === 'string' && body.reason ? body.reason : undefined };
        } else member.healthError = message(health.reason);
        let scrape: Scrape | null = null;
        if (metrics.status === 'fulfilled' && metrics.value.status === 200) scrape = parsePrometheus(metrics.value.body);
        else member.metricsError = metrics.status === 'fulfilled' ? `HTTP ${metrics.value.status}` : message(metrics.reason);
        return { member, scrape };
      }),
    );
    return { clusterId, probes };
  }

  /**
   * HashKV of every member at one revision, one member after another (as etcd's
   * own corruption check asks its peers): each HashKV reads the member's whole
   * database: members sharing a host (a local cluster) all scanning at once
   * each took about three times as long, and in one of two runs at 1,000,000
   * keys a HashKV failed and the cluster was left without a leader
   * (bench/RESULTS.md, "Doctor and space report at 1,000,000 keys").
   * A member a little behind is asked again once it caught up.
   */
  async function hashAll(client: EtcdClient, dial: MemberDialer, members: DoctorMember[]): Promise<number> {
    const rev = (await client.range({ key: Buffer.from([0]), count_only: true })).header?.revision ?? 0;
    for (const x of members) {
      if (!x.clientUrl) continue;
      let one: EtcdClient | null = null;
      try {
        one = await memberClient(client, dial, x.clientUrl, hashTimeoutMs(x.status?.dbSize ?? 0));
        for (let attempt = 0; ; attempt++) {
          try {
            const h = await one.hashKV(rev);
            x.hash = { hash: h.hash, compactRevision: h.compact_revision };
            break;
          } catch (e) {
            if (!isEtcdError(e, 'FutureRev') || attempt >= 20) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } catch (e) {
        x.hashError = message(e);
      } finally {
        one?.close();
      }
    }
    return rev;
  }

  const plan = (id: string): PlanRunner => {
    const p = plans.get(id);
    if (!p) throw new ContractError(-1, `no space plan ${id}: make a new plan`);
    return p;
  };

  /** Every member probed, the alarms and the current revision, at one moment (both reports start here). */
  const look = async (client: EtcdClient, dial: MemberDialer) => {
    const at = Date.now();
    const [{ clusterId, probes }, alarmRes, head] = await Promise.all([
      probeAll(client, dial),
      client.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET }).catch(() => null),
      client.range({ key: Buffer.from([0]), count_only: true, serializable: true }).catch(() => null),
    ]);
    return { at, clusterId, probes, alarmRes, head };
  };

  return {
    'doctor:report': async ({ hash }) => {
      const client = c();
      const dial = m.memberDialer();
      const { at, clusterId, probes, alarmRes, head } = await look(client, dial);
      const members = probes.map((p) => p.member);
      for (const p of probes) {
        if (!p.scrape) continue;
        const base = scrapes.add(`${clusterId}/${p.member.id}`, at, p.scrape);
        p.member.metrics = memberMetrics(p.scrape, base?.scrape ?? null, base ? (at - base.at) / 1000 : 0);
      }
      const hashRevision = hash ? await hashAll(client, dial, members) : 0;
      const nameOf = (id: bigint): string => members.find((x) => x.id === id.toString())?.name || id.toString(16);
      const alarms = (alarmRes?.alarms ?? []).map((a) => ({ memberId: a.memberID.toString(), member: nameOf(a.memberID), alarm: EtcdPb.AlarmType[a.alarm] ?? String(a.alarm) }));
      const quotaBytes = members.map((x) => x.metrics?.quotaBytes).find((q): q is number => !!q) ?? DEFAULT_QUOTA;
      const report: DoctorReport = {
        at,
        clusterId,
        revision: head?.header?.revision ?? 0,
        hashRevision,
        members,
        alarms,
        findings: findings({ members, alarms, quotaBytes, hashRevision }),
        guidance: { walFsyncMs: GUIDANCE.walFsyncMs, backendCommitMs: GUIDANCE.backendCommitMs },
      };
      return report;
    },

    'space:report': async ({ quotaBytes }) => {
      const client = c();
      const { at, clusterId, probes, alarmRes, head } = await look(client, m.memberDialer());
      const members = probes.map((p) => p.member);
      const fromMetrics = probes.map((p) => (p.scrape ? (p.scrape.get('etcd_server_quota_backend_bytes')?.[0]?.value ?? 0) : 0)).find((q) => q > 0);
      // The node's own word first; the user's value where the node does not say; else etcd's default.
      const quota = fromMetrics ?? quotaBytes ?? DEFAULT_QUOTA;
      const quotaSource: SpaceReport['quotaSource'] = fromMetrics ? 'metrics' : quotaBytes ? 'user' : 'default';
      const sized = members.filter((x) => x.status);
      const biggest = sized.reduce<DoctorMember | null>((b, x) => (!b || x.status!.dbSize > b.status!.dbSize ? x : b), null);
      const revision = head?.header?.revision ?? 0;
      const sample = { at, revision, dbSize: biggest?.status?.dbSize ?? 0, dbSizeInUse: Math.max(0, ...sized.map((x) => x.status!.dbSizeInUse)) };
      const g = growth(space.add(clusterId, sample), quota, at);
      const report: SpaceReport = {
        at,
        revision,
        dbSize: sample.dbSize,
        dbSizeInUse: sample.dbSizeInUse,
        members: members.map((x) => ({ id: x.id, name: x.name, dbSize: x.status?.dbSize ?? 0, dbSizeInUse: x.status?.dbSizeInUse ?? 0, isLeader: x.isLeader, error: x.statusError })),
        quotaBytes: quota,
        quotaSource,
        revisionsPerMinute: g.revisionsPerMinute,
        bytesPerMinute: g.bytesPerMinute,
        noSpaceInMs: g.noSpaceInMs,
        projection: g.projection,
        nospaceAlarm: (alarmRes?.alarms ?? []).some((a) => a.alarm === EtcdPb.AlarmType.NOSPACE),
      };
      return report;
    },

    'space:plan': async ({ retention, probe }) => {
      const client = c();
      for (const [id, r] of plans) if (r.plan.state !== 'running') plans.delete(id);
      const dial = m.memberDialer();
      const p = await buildPlan(client, retention, randomUUID(), probe ?? m.localControl() !== null, dial);
      plans.set(p.planId, new PlanRunner(client, p, { onUpdate: (x: SpacePlan) => deps.broadcast('space:plan', x), probeClient: client, dial }));
      return structuredClone(p);
    },
    'space:run': async ({ planId }) => {
      const r = plan(planId);
      if ([...plans.values()].some((x) => x !== r && x.plan.state === 'running')) throw new ContractError(-1, 'another space plan is running: abort it or wait for it');
      if (r.plan.state !== 'review') throw new ContractError(-1, `this plan has already run (${r.plan.state}): make a new plan`);
      // Runs on; its progress arrives as space:plan events.
      void r.run().catch(() => undefined);
      return structuredClone(r.plan);
    },
    'space:abort': async ({ planId }) => {
      const r = plan(planId);
      r.abort();
      return structuredClone(r.plan);
    },
    'space:plan-status': async ({ planId }) => structuredClone(plan(planId).plan),
  };
}
