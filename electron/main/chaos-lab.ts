// The chaos lab on the app's local three-member cluster: a small sample
// workload (a few clients doing gets, puts and compare-and-sets on a handful
// of keys, each client bound to one member so a failed call is never retried
// elsewhere) records a history, while the user kills, pauses, isolates a
// member or slows its disk. The lab follows the leader (the cluster view's
// reader), keeps a timeline of faults, leader changes and errors, checks the
// history with node-core's linearizability checker as it grows, and writes a
// "what happened" summary when stopped.
import { performance } from 'node:perf_hooks';
import { checkKvHistory, Code, describeReport, EtcdClient, HistoryRecorder, kvCas, kvGet, kvModel, kvPut, seededRandom, type KvOperation } from '../../node-core/index';
import type { ChaosEvent, ChaosFault, ChaosMember, ChaosState } from '../contract/index';
import { ClusterReader } from './cluster-monitor';
import { serializeError } from './errors';
import type { LocalControl } from './node-host';

export interface ChaosLabOptions {
  /** The connection's client (member list and Status reads). */
  client: EtcdClient;
  local: LocalControl;
  /** Workload clients (default 4), client i on member i mod n. */
  clients?: number;
  /** How many keys the workload touches (default 3). */
  keys?: number;
  /** Per-call deadline of the workload (default 1500 ms). */
  timeoutMs?: number;
  /** Told whenever the state changes (at most every ~250 ms while running). */
  onChange?(state: ChaosState): void;
}

/** How often the live verdict is recomputed while running. */
const CHECK_EVERY_MS = 2000;
/** The live check's search budget per key (the final one gets more). */
const LIVE_STEPS = 200_000;
const FINAL_STEPS = 2_000_000;
const PUSH_EVERY_MS = 250;
const ERRORS_EVERY_MS = 1000;

/** A failed call's kind for the timeline: etcd's own error text, else the gRPC status it failed with. */
function errorKind(e: Error): string {
  const s = serializeError(e);
  if (s.etcdError) return s.message;
  const grpc: Record<number, string> = { [Code.Canceled]: 'cancelled', [Code.DeadlineExceeded]: 'deadline exceeded', [Code.Internal]: 'internal error', [Code.Unavailable]: 'member unavailable' };
  return grpc[s.code] ?? s.message.split('\n')[0].slice(0, 120);
}

const fmt = (n: number): string => n.toLocaleString('en-US');
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;


/**
 * Acknowledged writes the final reads do not account for: per key, the final
 * value must come from a write that nothing acknowledged later superseded
 * (a write is superseded once another acknowledged write was called after it
 * returned); a key with acknowledged writes must not read as absent.
 */
export function lostAcknowledgedWrites(history: KvOperation[], finals: Map<string, string | undefined>): number {
  let lost = 0;
  for (const [key, value] of finals) {
    const writes = history.filter(
      (o) => o.input.key === key && (o.input.op === 'put' || (o.input.op === 'cas' && (o.output === undefined || (o.output.op === 'cas' && o.output.ok)))),
    );
    const acked = writes.filter((w) => w.output !== undefined);
    if (!acked.length) continue;
    const superseded = (w: KvOperation): boolean => acked.some((a) => a !== w && w.return !== undefined && a.call > w.return);
    const candidates = writes.filter((w) => !superseded(w)).map((w) => (w.input.op === 'get' ? undefined : w.input.value));
    if (value === undefined || !candidates.includes(value)) lost++;
  }
  return lost;
}

export class ChaosLab {
  private readonly recorder = new HistoryRecorder();
  private readonly reader: ClusterReader;
  private readonly timeline: ChaosEvent[] = [];
  private readonly faults = new Map<number, { paused: boolean; isolated: boolean; syncDelayMs: number }>();
  private readonly workers: EtcdClient[] = [];
  private readonly keyNames: string[];
  private t0 = 0;
  private stoppedAt = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private leader: string | null = null;
  private members: ChaosMember[] = [];
  private leaderlessSince: number | null = null;
  /** The last fault on the member that led: a leader change is timed from it. */
  private lastLeaderFault: { at: number; member: string } | null = null;
  private counts = { ops: 0, ok: 0, failed: 0, writesFailedLeaderless: 0 };
  private errorKinds = new Map<string, number>();
  private pendingErrors = new Map<string, number>();
  private verdict: ChaosState['verdict'] = { result: 'pending', ops: 0 };
  private summary: string[] | null = null;
  private leaderChanges: string[] = [];
  private timers: ReturnType<typeof setTimeout>[] = [];
  private lastPush = 0;
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private checking = false;
  private lastErrorsAt = -Infinity;
  private readonly sleepers = new Set<() => void>();

  constructor(private readonly o: ChaosLabOptions) {
    this.reader = new ClusterReader(o.client, o.local, undefined);
    // keys of this run only: the model starts from "absent", so a run must not see an earlier run's values
    const run = Date.now().toString(36);
    this.keyNames = Array.from({ length: o.keys ?? 3 }, (_, i) => `/chaos/${run}/k${i}`);
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  private event(kind: ChaosEvent['kind'], text: string): void {
    this.timeline.push({ t: Math.round(this.now()) / 1000, kind, text });
    this.changed();
  }

  private memberFaults(i: number): { paused: boolean; isolated: boolean; syncDelayMs: number } {
    let f = this.faults.get(i);
    if (!f) this.faults.set(i, (f = { paused: false, isolated: false, syncDelayMs: 0 }));
    return f;
  }

  state(): ChaosState {
    const local = this.o.local.members();
    const members: ChaosMember[] = local.map((m) => {
      const f = this.memberFaults(m.index);
      return { index: m.index, name: m.name, running: m.running, isLeader: this.leader === m.name, paused: f.paused, isolated: f.isolated, syncDelayMs: f.syncDelayMs };
    });
    return {
      running: this.running,
      elapsed: this.t0 ? Math.round((this.running ? this.now() : this.stoppedAt) / 100) / 10 : 0,
      members,
      leader: this.leader,
      timeline: [...this.timeline],
      counts: { ...this.counts },
      verdict: { ...this.verdict },
      summary: this.summary ? [...this.summary] : null,
    };
  }

  /** The keys the workload touches. */
  keys(): string[] {
    return [...this.keyNames];
  }

  /** The workload's history so far (the checker's input). */
  history(): KvOperation[] {
    return this.recorder.ops;
  }

  private changed(): void {
    if (!this.o.onChange || this.pushTimer) return;
    const wait = Math.max(0, PUSH_EVERY_MS - (performance.now() - this.lastPush));
    this.pushTimer = setTimeout(() => {
      this.pushTimer = undefined;
      this.lastPush = performance.now();
      this.o.onChange?.(this.state());
    }, wait);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = performance.now();
    this.event('start', `workload started: ${this.o.clients ?? 4} clients on ${this.keyNames.length} keys`);
    const urls = this.o.local.members().map((m) => m.clientUrl);
    const n = this.o.clients ?? 4;
    for (let i = 0; i < n; i++) this.workers.push(new EtcdClient({ endpoints: [urls[i % urls.length]], timeoutMs: this.o.timeoutMs ?? 1500 }));
    this.loops = [...this.workers.map((c, i) => this.clientLoop(c, i)), this.leaderLoop(), this.checkLoop()];
  }

  private async clientLoop(client: EtcdClient, i: number): Promise<void> {
    const rand = seededRandom(1000 + i);
    const lastSeen = new Map<string, string | undefined>();
    let clientId = i;
    let seq = 0;
    const n = this.workers.length;
    while (this.running) {
      const key = this.keyNames[Math.floor(rand() * this.keyNames.length)];
      const r = rand();
      let res;
      let write = true;
      if (r < 0.45) {
        write = false;
        res = await this.recorder.record(clientId, { op: 'get', key }, () => kvGet(client, key));
        if (res.ok && res.output.op === 'get') lastSeen.set(key, res.output.value);
      } else if (r < 0.7) {
        const value = `c${i}-${seq++}`;
        res = await this.recorder.record(clientId, { op: 'put', key, value }, () => kvPut(client, key, value));
        if (res.ok) lastSeen.set(key, value);
      } else {
        const value = `c${i}-${seq++}`;
        const expected = lastSeen.get(key);
        res = await this.recorder.record(clientId, { op: 'cas', key, expected, value }, () => kvCas(client, key, expected, value));
        if (res.ok && res.output.op === 'cas' && res.output.ok) lastSeen.set(key, value);
      }
      this.counts.ops++;
      if (res.ok) this.counts.ok++;
      else {
        this.counts.failed++;
        const s = serializeError(res.error);
        const leaderless = s.etcdError === 'NoLeader' || s.etcdError === 'LeaderChanged' || this.leaderlessSince !== null;
        if (write && leaderless) this.counts.writesFailedLeaderless++;
        const kind = errorKind(res.error);
        this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
        this.pendingErrors.set(kind, (this.pendingErrors.get(kind) ?? 0) + 1);
        // the failed call stays pending in the history: this client is no longer sequential, so continue as a new one
        clientId += n;
        // a member that is down answers at once: do not spin on it
        await new Promise((r2) => setTimeout(r2, 100));
      }
      this.changed();
    }
  }

  /** Follows the leader as the members that answer name it (the cluster view's reader); flushes error counts into the timeline. */
  private async leaderLoop(): Promise<void> {
    while (this.running) {
      try {
        const info = await this.reader.read();
        const leader = info.members.find((m) => m.isLeader)?.name ?? null;
        this.observeLeader(leader);
      } catch {
        this.observeLeader(null);
      }
      // errors go into the timeline at most once a second, counted by kind
      if (this.now() - this.lastErrorsAt >= ERRORS_EVERY_MS) this.flushErrors();
      await this.sleep(this.leader ? 200 : 50);
    }
  }

  private observeLeader(leader: string | null): void {
    if (leader === this.leader) return;
    const prev = this.leader;
    const at = this.now();
    if (leader === null) {
      this.leaderlessSince = at;
      this.event('leaderless', prev ? `no leader (${prev} lost)` : 'no leader');
    } else if (prev === null && this.leaderlessSince === null && !this.leaderChanges.length && this.timeline.every((e) => e.kind !== 'leader')) {
      this.event('leader', `leader ${leader}`);
    } else {
      const from = this.lastLeaderFault && this.lastLeaderFault.at <= at ? this.lastLeaderFault.at : (this.leaderlessSince ?? at);
      const was = prev ?? this.lastLeaderFault?.member ?? '?';
      const text = `leader ${was}→${leader} in ${secs(at - from)}`;
      this.leaderChanges.push(text);
      this.event('leader', text);
      this.lastLeaderFault = null;
    }
    if (leader !== null) this.leaderlessSince = null;
    this.leader = leader;
  }

  private flushErrors(): void {
    if (!this.pendingErrors.size) return;
    this.lastErrorsAt = this.now();
    const parts = [...this.pendingErrors].map(([k, c]) => `${k} ×${c}`);
    const total = [...this.pendingErrors.values()].reduce((a, b) => a + b, 0);
    this.pendingErrors.clear();
    this.event('errors', `${fmt(total)} op${total === 1 ? '' : 's'} failed: ${parts.join(', ')}`);
  }

  /** A wait that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.sleepers.delete(wake);
        resolve();
      }, ms);
      const wake = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.sleepers.add(wake);
    });
  }

  private check(steps: number): void {
    const ops = this.recorder.ops;
    const report = checkKvHistory(ops, { maxSteps: steps });
    const result = report.result === 'ok' ? 'linearizable' : report.result === 'illegal' ? 'not linearizable' : 'unknown';
    const before = this.verdict.result;
    this.verdict = { result, ops: ops.length, detail: report.result === 'illegal' ? describeReport(kvModel, report).split('\n').slice(0, 12).join('\n') : undefined };
    if (result !== before && result !== 'linearizable') this.event('verdict', `history ${result} (${fmt(ops.length)} ops)`);
    this.changed();
  }

  private async checkLoop(): Promise<void> {
    while (this.running) {
      await this.sleep(CHECK_EVERY_MS);
      if (!this.running || this.checking) continue;
      this.checking = true;
      try {
        this.check(LIVE_STEPS);
      } finally {
        this.checking = false;
      }
    }
  }

  /** Injects one fault into member `index` (kill and restart through the local cluster's control). */
  async fault(index: number, fault: ChaosFault, opts: { seconds?: number; delayMs?: number } = {}): Promise<void> {
    const m = this.o.local.members().find((x) => x.index === index);
    if (!m) throw new Error(`no local member ${index}`);
    const f = this.memberFaults(index);
    const wasLeader = this.leader === m.name;
    const mark = (): void => {
      if (wasLeader) this.lastLeaderFault = { at: this.now(), member: m.name };
    };
    const send = (nf: Parameters<NonNullable<LocalControl['fault']>>[1]): void => {
      if (!this.o.local.fault?.(index, nf)) throw new Error(`${m.name} is not running`);
    };
    switch (fault) {
      case 'kill':
        mark();
        this.event('fault', `${m.name} killed${wasLeader ? ' (the leader)' : ''}`);
        await this.o.local.stopMember(index);
        f.paused = false;
        f.isolated = false;
        f.syncDelayMs = 0;
        break;
      case 'restart':
        await this.o.local.restartMember(index);
        this.event('fault', `${m.name} restarted`);
        break;
      case 'pause': {
        const ms = (opts.seconds ?? 5) * 1000;
        mark();
        f.paused = true;
        this.event('fault', `${m.name} paused for ${secs(ms)}${wasLeader ? ' (the leader)' : ''}`);
        send({ kind: 'pause', ms });
        this.timers.push(
          setTimeout(() => {
            f.paused = false;
            if (this.running) this.event('fault', `${m.name} resumed`);
          }, ms),
        );
        break;
      }
      case 'isolate':
        send({ kind: 'isolate', on: true });
        mark();
        f.isolated = true;
        this.event('fault', `${m.name} isolated from its peers${wasLeader ? ' (the leader)' : ''}`);
        break;
      case 'heal':
        send({ kind: 'isolate', on: false });
        f.isolated = false;
        this.event('fault', `${m.name} healed`);
        break;
      case 'slow-disk': {
        const ms = opts.delayMs ?? 200;
        send({ kind: 'slowDisk', syncDelayMs: ms });
        f.syncDelayMs = ms;
        this.event('fault', `${m.name} disk slowed (+${ms} ms per WAL fsync)`);
        break;
      }
      case 'fast-disk':
        send({ kind: 'slowDisk', syncDelayMs: 0 });
        f.syncDelayMs = 0;
        this.event('fault', `${m.name} disk back to normal`);
        break;
    }
  }

  /** Stops the workload, lifts the lab's faults, checks the whole history and writes the summary. */
  async stop(): Promise<ChaosState> {
    if (!this.running) return this.state();
    this.running = false;
    this.stoppedAt = this.now();
    for (const t of this.timers) clearTimeout(t);
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
    await Promise.all(this.loops);
    for (const c of this.workers) c.close();
    this.flushErrors();
    // faults are the lab's: nothing stays isolated or slow after it (a paused thread resumes on its own)
    for (const [i, f] of this.faults) {
      if (f.isolated) this.o.local.fault?.(i, { kind: 'isolate', on: false });
      if (f.syncDelayMs) this.o.local.fault?.(i, { kind: 'slowDisk', syncDelayMs: 0 });
      f.isolated = false;
      f.syncDelayMs = 0;
      f.paused = false;
    }
    const finals = await this.finalReads();
    const lost = finals ? lostAcknowledgedWrites(this.recorder.ops, finals) : null;
    this.check(FINAL_STEPS);
    this.event('stop', 'workload stopped');
    this.summary = this.summarize(lost);
    this.reader.close();
    clearTimeout(this.pushTimer);
    this.pushTimer = undefined;
    const s = this.state();
    this.o.onChange?.(s);
    return s;
  }

  /** Each key read once more (linearizable, through any member that answers); null when none does. */
  private async finalReads(): Promise<Map<string, string | undefined> | null> {
    const urls = this.o.local.members().filter((m) => m.running).map((m) => m.clientUrl);
    const c = new EtcdClient({ endpoints: urls, timeoutMs: 3000 });
    try {
      const out = new Map<string, string | undefined>();
      for (const k of this.keyNames) {
        const r = await kvGet(c, k);
        out.set(k, r.op === 'get' ? r.value : undefined);
      }
      return out;
    } catch {
      return null;
    } finally {
      c.close();
    }
  }

  private summarize(lost: number | null): string[] {
    const lines: string[] = [];
    const c = this.counts;
    lines.push(`ran ${secs(this.stoppedAt)}: ${fmt(c.ops)} operations by ${this.workers.length} clients (${fmt(c.ok)} ok, ${fmt(c.failed)} failed)`);
    for (const e of this.timeline) if (e.kind === 'fault') lines.push(`${e.text} at ${e.t.toFixed(1)} s`);
    lines.push(...this.leaderChanges);
    if (!this.leaderChanges.length) lines.push('no leader change');
    if (c.failed) {
      const kinds = [...this.errorKinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ×${n}`);
      // A write that ended in an error while there was no leader has no definite outcome (a timed-out
      // proposal may still commit): the checker lets it take effect or not, so the summary says so
      // rather than calling it failed.
      const w = c.writesFailedLeaderless;
      lines.push(`${fmt(w)} write${w === 1 ? '' : 's'} ended in an error while leaderless (outcome unknown: each may or may not have been applied; the checker allows both); errors: ${kinds.join(', ')}`);
    } else lines.push('no operation failed');
    lines.push(lost === null ? 'acknowledged writes: not checked (no member answered the final reads)' : `${fmt(lost)} acknowledged writes lost`);
    const v = this.verdict;
    lines.push(v.result === 'linearizable' ? `history linearizable (${fmt(v.ops)} ops)` : `history ${v.result} (${fmt(v.ops)} ops)`);
    return lines;
  }
}
