// What the cluster view shows, read fast and pushed: every member's Status in
// parallel, each under a short deadline of its own (a dead member costs one
// deadline, never the others' answers), the leader as the members that still
// answer report it (never a member known to be down), and the local cluster's
// Stop told at once (node-host's onChange), before the member has finished
// stopping. A window that looks at the cluster asks for a monitor
// (`cluster:monitor`); main then pushes `cluster:changed` to it.
import { Code, EtcdClient, EtcdPb } from '../../node-core/index';
import type { ClusterInfo, MemberInfo } from '../contract/index';
import { serializeError } from './errors';
import type { LocalControl } from './node-host';
import { directDialer, memberClient, type MemberDialer } from './member-dialer';

/** One member's Status deadline: an unreachable member must not hold the view (nor the leader) up. */
export const MEMBER_DEADLINE_MS = 500;
/** Pause between two polls (a poll itself lasts at most a member deadline or a list deadline). */
export const POLL_MS = 250;
/** While no leader is known (an election): poll this often, so the new leader shows as soon as one member names it. */
export const ELECTION_POLL_MS = 50;
/** A member that answered within this long keeps its last Status through a missed deadline (a busy member is not a dead one). */
const SLOW_GRACE_MS = 2000;
/** The member list and alarms change rarely: read again this often (and on every local change). */
const LIST_EVERY_MS = 2000;
const LIST_DEADLINE_MS = 1500;

type Status = EtcdPb.StatusResponse;
type ListMember = { id: bigint; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean };

/** The text a member stopped by the app shows instead of a Status. */
export const STOPPED = 'stopped by the app';

/**
 * The leader as the members that answer see it: the report with the highest
 * term wins (a member still in the old term has not heard of the election);
 * a leader that is itself down or stopped is no leader (followers keep
 * naming a dead leader until their election timeout).
 */
export function pickLeader(reports: { id: bigint; status?: Status }[], down: Set<bigint>): bigint {
  let best: Status | undefined;
  for (const r of reports) {
    if (!r.status) continue;
    if (!best || r.status.raftTerm > best.raftTerm || (r.status.raftTerm === best.raftTerm && !best.leader && r.status.leader)) best = r.status;
  }
  const leader = best?.leader ?? 0n;
  return leader && !down.has(leader) ? leader : 0n;
}

/** Reads member list, alarms and every member's Status (in parallel, short deadlines) into one ClusterInfo. */
export class ClusterReader {
  private readonly members = new Map<string, EtcdClient>();
  /** Each member's last Status and when it came, by client URL. */
  private readonly lastGood = new Map<string, { status: Status; at: number }>();
  private list: { members: ListMember[]; clusterId: string; alarms: ClusterInfo['alarms']; at: number } | null = null;
  private readonly lister: EtcdClient;

  constructor(
    private readonly client: EtcdClient,
    private readonly local: LocalControl | null,
    private readonly connectionId: number | undefined,
    /** Reaches a member by its advertised URL (through the connection's SSH tunnel, if any). */
    private readonly dial: MemberDialer = directDialer,
  ) {
    this.lister = new EtcdClient({ ...client.options, endpoints: client.endpointUrls, timeoutMs: LIST_DEADLINE_MS });
  }

  /** Forget the member list: the next read lists members again. */
  stale(): void {
    if (this.list) this.list.at = 0;
  }

  /** Client URLs of members the app stopped. */
  private stoppedUrls(): Set<string> {
    return new Set((this.local?.members() ?? []).filter((m) => !m.running).map((m) => m.clientUrl));
  }

  private async memberClient(url: string): Promise<EtcdClient> {
    let c = this.members.get(url);
    if (!c) {
      c = await memberClient(this.client, this.dial, url, MEMBER_DEADLINE_MS);
      // Another read may have made one meanwhile (the dial is asynchronous): keep one per member.
      const other = this.members.get(url);
      if (other) {
        c.close();
        return other;
      }
      this.members.set(url, c);
    }
    return c;
  }

  /** A member that failed gets a fresh channel next time (grpc-js would back off reconnecting for many seconds). */
  private dropMember(url: string): void {
    this.members.get(url)?.close();
    this.members.delete(url);
  }

  private listing: Promise<NonNullable<ClusterReader['list']>> | null = null;

  /**
   * The member list: read once, then refreshed in the background when stale,
   * so the Status calls never wait for it (during an election a MemberList
   * can wait for the new leader).
   */
  private async readList(): Promise<NonNullable<ClusterReader['list']>> {
    if (this.list && Date.now() - this.list.at < LIST_EVERY_MS) return this.list;
    this.listing ??= this.fetchList().finally(() => (this.listing = null));
    if (this.list) {
      this.listing.catch(() => undefined);
      return this.list;
    }
    return this.listing;
  }

  private async fetchList(): Promise<NonNullable<ClusterReader['list']>> {
    const [ml, alarms] = await Promise.all([this.lister.memberList(), this.lister.alarm({ action: EtcdPb.AlarmRequest_AlarmAction.GET }).catch(() => null)]);
    this.list = {
      members: ml.members.map((m) => ({ id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner })),
      clusterId: ml.header?.cluster_id.toString() ?? '',
      alarms: (alarms?.alarms ?? []).map((a) => ({ memberId: a.memberID.toString(), alarm: EtcdPb.AlarmType[a.alarm] ?? String(a.alarm) })),
      at: Date.now(),
    };
    return this.list;
  }

  async read(): Promise<ClusterInfo> {
    const list = await this.readList();
    const stopped = this.stoppedUrls();
    const reports = await Promise.all(
      list.members.map(async (m) => {
        const url = m.clientURLs[0];
        if (!url) return { m, status: undefined, error: undefined };
        if (stopped.has(url)) {
          this.lastGood.delete(url);
          return { m, status: undefined, error: STOPPED };
        }
        try {
          const status = await (await this.memberClient(url)).status();
          this.lastGood.set(url, { status, at: Date.now() });
          return { m, status, error: undefined };
        } catch (e) {
          // Refused (stopped, not listening) shows at once; a deadline missed by a member that answered
          // lately keeps its last answer for a moment: under load a Status can queue behind writes.
          const last = this.lastGood.get(url);
          if ((e as { code?: unknown }).code === Code.DeadlineExceeded && last && Date.now() - last.at < SLOW_GRACE_MS) return { m, status: last.status, error: undefined };
          this.dropMember(url);
          this.lastGood.delete(url);
          return { m, status: undefined, error: serializeError(e).message };
        }
      }),
    );
    const down = new Set(reports.filter((r) => r.error !== undefined).map((r) => r.m.id));
    const leader = pickLeader(reports.map((r) => ({ id: r.m.id, status: r.status })), down);
    const members: MemberInfo[] = reports.map(({ m, status, error }) => ({
      id: m.id.toString(),
      name: m.name,
      peerUrls: m.peerURLs,
      clientUrls: m.clientURLs,
      isLearner: m.isLearner,
      isLeader: leader !== 0n && m.id === leader,
      status: status
        ? { version: status.version, dbSize: status.dbSize, raftIndex: status.raftIndex, raftTerm: status.raftTerm, errors: status.errors }
        : error !== undefined
          ? { error }
          : undefined,
    }));
    // Status headers carry the store's revision: the leader's is the newest.
    const leaderReport = reports.find((r) => r.m.id === leader && r.status);
    const revision = leaderReport?.status?.header?.revision ?? Math.max(0, ...reports.map((r) => r.status?.header?.revision ?? 0));
    return {
      clusterId: list.clusterId,
      members,
      revision,
      alarms: list.alarms,
      local: this.local?.members().map((x) => ({ index: x.index, name: x.name, clientUrl: x.clientUrl, running: x.running })),
      connectionId: this.connectionId,
    };
  }

  /** Client URLs of members that did not answer (or were stopped) in the last read. */
  static downUrls(info: ClusterInfo): Set<string> {
    return new Set(info.members.filter((m) => m.status && 'error' in m.status).flatMap((m) => m.clientUrls));
  }

  close(): void {
    this.lister.close();
    for (const c of this.members.values()) c.close();
    this.members.clear();
  }
}

/**
 * Polls the cluster for one window while it looks at it: a read every
 * POLL_MS after the previous one ends, pushed with `emit`; a local member
 * stopping or restarting is pushed at once (before the stop completes).
 */
export class ClusterMonitor {
  private readonly reader: ClusterReader;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private again = false;
  private last: ClusterInfo | null = null;
  private readonly offLocal: () => void;

  constructor(
    client: EtcdClient,
    private readonly local: LocalControl | null,
    connectionId: number | undefined,
    private readonly emit: (info: ClusterInfo) => void,
    /** After each read (the connection follows live members). */
    private readonly afterRead: (info: ClusterInfo) => void = () => undefined,
    dial: MemberDialer = directDialer,
  ) {
    this.reader = new ClusterReader(client, local, connectionId, dial);
    this.offLocal = local?.onChange(() => this.localChanged()) ?? (() => undefined);
    void this.poll();
  }

  /** A local member started stopping, stopped or restarted: say so now, then read everything again. */
  private localChanged(): void {
    if (this.closed) return;
    this.reader.stale();
    const last = this.last;
    if (last && this.local) {
      const local = this.local.members().map((x) => ({ index: x.index, name: x.name, clientUrl: x.clientUrl, running: x.running }));
      const stopped = new Set(local.filter((x) => !x.running).map((x) => x.clientUrl));
      const members = last.members.map((m) => {
        const down = m.clientUrls.some((u) => stopped.has(u));
        return down ? { ...m, isLeader: false, status: { error: STOPPED } } : m;
      });
      this.last = { ...last, members, local };
      this.emit(this.last);
    }
    this.pollSoon();
  }

  private pollSoon(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    void this.poll();
  }

  private async poll(): Promise<void> {
    if (this.closed) return;
    this.running = true;
    try {
      const info = await this.reader.read();
      if (this.closed) return;
      this.last = info;
      this.emit(info);
      this.afterRead(info);
    } catch {
      /* the member list could not be read (every endpoint down): the next poll tries again */
    } finally {
      this.running = false;
    }
    if (this.closed) return;
    if (this.again) {
      this.again = false;
      void this.poll();
    } else this.timer = setTimeout(() => void this.poll(), this.last?.members.some((m) => m.isLeader) === false ? ELECTION_POLL_MS : POLL_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.offLocal();
    this.reader.close();
  }
}
