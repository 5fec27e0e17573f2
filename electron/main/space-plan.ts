// The space guardian's plan: compact to a retention → defragment the
// followers one at a time → move the leader to a defragmented follower →
// defragment the old leader → disarm NOSPACE. Built for review first, then
// run step by step; every step is verified after it ran, an abort stops
// between steps, and an optional write probe shows writes flowing meanwhile.
import { EtcdClient, EtcdPb } from '../../node-core/index';
import type { SpacePlan, SpacePlanStep, WriteProbeState } from '../contract/index';
import { formatBytes } from './doctor';
import { isEtcdError, serializeError } from './errors';
import { directDialer, memberClient, type MemberDialer } from './member-dialer';

interface PlanMember {
  id: bigint;
  name: string;
  clientUrl: string;
}

/** Per-member calls get a deadline of their own: a defragment of a large database takes long. */
const MEMBER_TIMEOUT_MS = 120_000;
/** How long a step's effect may take to show on every member (applied through the log). */
const VERIFY_MS = 10_000;

const label = (m: PlanMember): string => m.name || m.id.toString(16);

/**
 * `fn` on a client of one member (by its advertised URL, reached through `dial`: the SSH tunnel's
 * forward when there is one), sharing the connection's credentials and TLS.
 */
async function withMember<T>(client: EtcdClient, dial: MemberDialer, url: string, fn: (c: EtcdClient) => Promise<T>, timeoutMs = MEMBER_TIMEOUT_MS): Promise<T> {
  const c = await memberClient(client, dial, url, timeoutMs);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** Retries `check` until it returns a verdict string or the bound passes; the last error is the failure. */
async function eventually(check: () => Promise<string | null>, what: string, ms = VERIFY_MS): Promise<string> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (let wait = 50; ; wait = Math.min(wait * 2, 500)) {
    try {
      const v = await check();
      if (v !== null) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`could not verify ${what}${last ? `: ${serializeError(last).message}` : ''}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Members with client URLs and the current leader, as the connection sees them now. */
async function survey(client: EtcdClient, dial: MemberDialer): Promise<{ members: PlanMember[]; leader: bigint; revision: number }> {
  const ml = await client.memberList();
  const members = ml.members.filter((m) => m.clientURLs.length && !m.isLearner).map((m) => ({ id: m.ID, name: m.name, clientUrl: m.clientURLs[0] }));
  let leader = 0n;
  for (const m of members) {
    const s = await withMember(client, dial, m.clientUrl, (c) => c.status(), 5_000).catch(() => null);
    if (s?.leader) {
      leader = s.leader;
      break;
    }
  }
  const head = await client.range({ key: Buffer.from([0]), count_only: true });
  return { members, leader, revision: head.header?.revision ?? 0 };
}

/**
 * A plan for review: what each step will do, on which member. Followers
 * first so that only one member at a time pauses while copying its
 * database, and the leader never does (a defragmenting leader stalls
 * every write); then its leadership moves to a follower already done.
 */
export async function buildPlan(client: EtcdClient, retention: number, planId: string, probe: boolean, dial: MemberDialer = directDialer): Promise<SpacePlan> {
  const { members, leader, revision } = await survey(client, dial);
  const compactTo = revision - retention;
  const steps: SpacePlanStep[] = [];
  const step = (s: Omit<SpacePlanStep, 'state'>): void => void steps.push({ ...s, state: 'pending' });
  if (compactTo > 1)
    step({ id: 'compact', kind: 'compact', title: `Compact to revision ${compactTo}`, detail: `Keep the last ${retention} revisions (of ${revision}): versions before ${compactTo} are dropped on every member; reading or watching from before it then fails with “required revision has been compacted”.` });
  else step({ id: 'compact', kind: 'compact', title: 'Compact', detail: `Nothing to compact: the store has ${revision} revisions and the retention keeps ${retention}.` });
  const leaderM = members.find((m) => m.id === leader);
  const followers = members.filter((m) => m.id !== leader);
  for (const f of followers) step({ id: `defrag-${f.id}`, kind: 'defrag', memberId: f.id.toString(), title: `Defragment ${label(f)} (follower)`, detail: `Rewrites ${label(f)}’s database file without its free pages; the member pauses while copying, the others go on serving.` });
  if (leaderM && followers.length) {
    const to = followers[0];
    step({ id: 'move-leader', kind: 'move-leader', memberId: to.id.toString(), title: `Move the leader from ${label(leaderM)} to ${label(to)}`, detail: `MoveLeader hands leadership to ${label(to)}, already defragmented, so no write waits on a defragmenting leader.` });
  }
  if (leaderM)
    step({ id: `defrag-${leaderM.id}`, kind: 'defrag', memberId: leaderM.id.toString(), title: `Defragment ${label(leaderM)} (${followers.length ? 'the old leader' : 'the only member'})`, detail: followers.length ? `Now a follower, ${label(leaderM)} is defragmented like the others.` : `A single member pauses while it defragments: writes wait for it.` });
  step({ id: 'disarm', kind: 'disarm', title: 'Disarm NOSPACE', detail: 'If a NOSPACE alarm is raised, deactivate it so writes are accepted again (after the steps above gave the space back).' });
  return { planId, state: 'review', retention, compactTo: compactTo > 1 ? compactTo : 0, steps, abortRequested: false, probe: probe ? { running: false, writes: 0, failures: 0, lastMs: null, maxMs: null } : null };
}

/** Puts one small key in a loop while the plan runs: its success count and latency show writes keep flowing. */
export class WriteProbe {
  readonly state: WriteProbeState = { running: false, writes: 0, failures: 0, lastMs: null, maxMs: null };
  private stopped = false;
  private loop: Promise<void> | null = null;
  constructor(
    private readonly client: EtcdClient,
    private readonly key = '/etcdesk/space-plan/write-probe',
    private readonly everyMs = 100,
  ) {}

  start(): void {
    this.state.running = true;
    this.loop = (async () => {
      let i = 0;
      while (!this.stopped) {
        const t0 = performance.now();
        try {
          await this.client.put({ key: Buffer.from(this.key), value: Buffer.from(String(i++)) });
          const ms = performance.now() - t0;
          this.state.writes++;
          this.state.lastMs = ms;
          this.state.maxMs = Math.max(this.state.maxMs ?? 0, ms);
        } catch (e) {
          this.state.failures++;
          this.state.lastError = serializeError(e).message;
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, this.everyMs));
      }
    })();
  }

  /** Stops after the write in flight and removes the probe's key. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.state.running = false;
    await this.client.deleteRange({ key: Buffer.from(this.key) }).catch(() => undefined);
  }
}

export interface RunnerOptions {
  onUpdate(plan: SpacePlan): void;
  /** The probe's writes go through this client (the connection's); null: no probe. */
  probeClient?: EtcdClient | null;
  /** Reaches a member by its advertised URL (the connection's SSH tunnel, if any); default: directly. */
  dial?: MemberDialer;
}

/** Runs a reviewed plan; each step's outcome and verification land in the plan as it goes. */
export class PlanRunner {
  private aborted = false;
  private probe: WriteProbe | null = null;
  private running: Promise<SpacePlan> | null = null;
  private readonly dial: MemberDialer;

  constructor(
    private readonly client: EtcdClient,
    readonly plan: SpacePlan,
    private readonly opts: RunnerOptions,
  ) {
    this.dial = opts.dial ?? directDialer;
  }

  /** Stops before the next step; the step in progress finishes and is verified. */
  abort(): void {
    this.aborted = true;
    this.plan.abortRequested = true;
    this.emit();
  }

  run(): Promise<SpacePlan> {
    this.running ??= this.doRun();
    return this.running;
  }

  private emit(): void {
    if (this.probe) this.plan.probe = { ...this.probe.state };
    this.opts.onUpdate(structuredClone(this.plan));
  }

  private async doRun(): Promise<SpacePlan> {
    this.plan.state = 'running';
    if (this.plan.probe && this.opts.probeClient) {
      this.probe = new WriteProbe(this.opts.probeClient);
      this.probe.start();
    }
    // The probe's counts refresh on screen while a long step runs.
    const ticker = setInterval(() => this.emit(), 250);
    this.emit();
    try {
      for (const s of this.plan.steps) {
        if (this.aborted) {
          s.state = 'skipped';
          s.verification = 'not run: the plan was aborted';
          continue;
        }
        s.state = 'running';
        this.emit();
        const t0 = Date.now();
        try {
          const v = await this.runStep(s);
          if (v.skipped) s.state = 'skipped';
          else s.state = 'done';
          s.verification = v.text;
        } catch (e) {
          s.state = 'failed';
          s.error = serializeError(e).message;
        }
        s.ms = Date.now() - t0;
        this.emit();
        if (s.state === 'failed') {
          for (const rest of this.plan.steps.filter((x) => x.state === 'pending')) {
            rest.state = 'skipped';
            rest.verification = `not run: “${s.title}” failed`;
          }
          break;
        }
      }
    } finally {
      clearInterval(ticker);
      // The plan ends only once the probe's last write has come back (and its key is gone): a plan
      // shown done must not still be writing, and another plan may start only then.
      await this.probe?.stop();
      this.plan.state = this.plan.steps.some((s) => s.state === 'failed') ? 'failed' : this.aborted ? 'aborted' : 'done';
      this.emit();
    }
    return structuredClone(this.plan);
  }

  private async member(id: string | undefined): Promise<PlanMember> {
    const { members } = await survey(this.client, this.dial);
    const m = members.find((x) => x.id.toString() === id);
    if (!m) throw new Error(`member ${id ? BigInt(id).toString(16) : '?'} is no longer in the cluster`);
    return m;
  }

  private async runStep(s: SpacePlanStep): Promise<{ text: string; skipped?: boolean }> {
    switch (s.kind) {
      case 'compact':
        return this.compact();
      case 'defrag':
        return this.defrag(await this.member(s.memberId));
      case 'move-leader':
        return this.moveLeader(await this.member(s.memberId));
      case 'disarm':
        return this.disarm();
    }
  }

  private async compact(): Promise<{ text: string; skipped?: boolean }> {
    const rev = this.plan.compactTo;
    if (!rev) return { text: 'nothing to compact', skipped: true };
    let already = false;
    try {
      await this.client.compact(rev, true);
    } catch (e) {
      // Compacted at or past this revision already (by someone, or auto-compaction): nothing left to do.
      if (!isEtcdError(e, 'Compacted')) throw e;
      already = true;
    }
    // Verified on every member: reading just before the compaction revision is refused there.
    const { members } = await survey(this.client, this.dial);
    for (const m of members) {
      await eventually(
        () =>
          withMember(this.client, this.dial, m.clientUrl, async (c) => {
            try {
              await c.range({ key: Buffer.from([0]), count_only: true, revision: rev - 1, serializable: true });
              return null;
            } catch (e) {
              if (isEtcdError(e, 'Compacted')) return 'ok';
              throw e;
            }
          }),
        `the compaction on ${label(m)}`,
      );
    }
    return { text: `${already ? 'already compacted' : 'compacted'} to ${rev}: revision ${rev - 1} is refused as compacted on ${members.map(label).join(', ')}` };
  }

  private async defrag(m: PlanMember): Promise<{ text: string }> {
    const before = await withMember(this.client, this.dial, m.clientUrl, (c) => c.status());
    await withMember(this.client, this.dial, m.clientUrl, (c) => c.defragment());
    const after = await withMember(this.client, this.dial, m.clientUrl, (c) => c.status());
    const freeBefore = before.dbSize - before.dbSizeInUse;
    const freeAfter = after.dbSize - after.dbSizeInUse;
    // Writes go on meanwhile, so the file may grow a little; what a defragment removes is free space.
    if (after.dbSize > before.dbSize && freeAfter > freeBefore) throw new Error(`${label(m)} still holds ${formatBytes(freeAfter)} of free space after the defragment (before: ${formatBytes(freeBefore)})`);
    return { text: `${label(m)}: ${formatBytes(before.dbSize)} → ${formatBytes(after.dbSize)} (in use ${formatBytes(after.dbSizeInUse)}), answering` };
  }

  private async moveLeader(to: PlanMember): Promise<{ text: string; skipped?: boolean }> {
    const { members, leader } = await survey(this.client, this.dial);
    if (leader === to.id) return { text: `${label(to)} already leads`, skipped: true };
    const from = members.find((x) => x.id === leader);
    if (!from) throw new Error('no member reports a leader: leadership cannot move now');
    // MoveLeader must reach the leader itself.
    await withMember(this.client, this.dial, from.clientUrl, (c) => c.moveLeader(to.id));
    const text = await eventually(
      () => withMember(this.client, this.dial, to.clientUrl, async (c) => ((await c.status()).leader === to.id ? `${label(to)} reports itself leader` : null), 5_000),
      `${label(to)} leading`,
    );
    return { text: `leadership moved from ${label(from)}: ${text}` };
  }

  private async disarm(): Promise<{ text: string; skipped?: boolean }> {
    const { GET, DEACTIVATE } = EtcdPb.AlarmRequest_AlarmAction;
    const NOSPACE = EtcdPb.AlarmType.NOSPACE;
    const raised = (await this.client.alarm({ action: GET })).alarms.filter((a) => a.alarm === NOSPACE);
    if (!raised.length) return { text: 'no NOSPACE alarm is raised', skipped: true };
    for (const a of raised) await this.client.alarm({ action: DEACTIVATE, memberID: a.memberID, alarm: a.alarm });
    const left = (await this.client.alarm({ action: GET })).alarms.filter((a) => a.alarm === NOSPACE);
    if (left.length) throw new Error(`NOSPACE is still raised on ${left.length} member(s)`);
    return { text: `NOSPACE disarmed on ${raised.length} member(s); the alarm list no longer has it` };
  }
}
