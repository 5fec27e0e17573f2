// Linearizability checking in the style of Porcupine (Wing & Gong's search with Lowe's
// memoization): find an order of the operations that respects real time (an operation that
// returned before another was called comes first) and that a sequential model accepts.
// Histories are split into independent partitions first (per key for the KV model), which keeps
// the exponential search small.

export interface Operation<I, O> {
  clientId: number;
  input: I;
  /** undefined: the call never returned (timeout, crash); it may or may not have taken effect. */
  output: O | undefined;
  call: number;
  /** Infinity (or undefined) when the call never returned. */
  return?: number;
}

export interface Model<S, I, O> {
  /** Splits a history into histories that can be checked independently. */
  partition?(history: Operation<I, O>[]): Operation<I, O>[][];
  init(): S;
  /**
   * Applies input to state. output undefined means unknown (pending call): any outcome the model
   * allows is fine. ok false when the observed output is impossible in this state.
   */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /** A string identifying the state, for memoization. */
  key(state: S): string;
  describe?(input: I, output: O | undefined): string;
}

export type CheckResult = 'ok' | 'illegal' | 'unknown';

export type StepResult<S> = { ok: true; state: S } | { ok: false };

const ILLEGAL: { ok: false } = { ok: false };

export interface PartitionResult<I, O> {
  result: CheckResult;
  operations: Operation<I, O>[];
  /** For 'ok': operations in a valid linearization order. */
  linearization?: Operation<I, O>[];
  /** For 'illegal': the longest prefix of a linearization the search managed to build. */
  longestPrefix?: Operation<I, O>[];
}

export interface CheckReport<I, O> {
  result: CheckResult;
  partitions: PartitionResult<I, O>[];
}

export interface CheckOptions {
  /** Give up on a partition after this many search steps (result 'unknown'). Default 5e6. */
  maxSteps?: number;
}

interface Node {
  id: number;
  isCall: boolean;
  time: number;
  /** For a call: its return node. */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

class BitSet {
  readonly words: Uint32Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5] &= ~(1 << (i & 31));
  }
  key(): string {
    let s = '';
    for (let i = 0; i < this.words.length; i++) s += this.words[i].toString(36) + ',';
    return s;
  }
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps: number): PartitionResult<I, O> {
  const n = ops.length;
  if (n === 0) return { result: 'ok', operations: ops, linearization: [] };
  // Build the event list: calls and returns ordered by time; at equal times calls come first,
  // so touching intervals count as concurrent (the lenient reading).
  const events: { id: number; isCall: boolean; time: number }[] = [];
  ops.forEach((op, id) => {
    events.push({ id, isCall: true, time: op.call });
    events.push({ id, isCall: false, time: op.return ?? Number.POSITIVE_INFINITY });
  });
  events.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  const head: Node = { id: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  const returns = new Map<number, Node>();
  const calls: Node[] = [];
  let prev = head;
  for (const e of events) {
    const node: Node = { id: e.id, isCall: e.isCall, time: e.time, match: undefined, prev, next: undefined };
    prev.next = node;
    prev = node;
    if (e.isCall) calls[e.id] = node;
    else returns.set(e.id, node);
  }
  for (const c of calls) c.match = returns.get(c.id);

  const lift = (c: Node): void => {
    // Remove the call and its return from the list.
    (c.prev as Node).next = c.next;
    if (c.next) c.next.prev = c.prev;
    const r = c.match as Node;
    (r.prev as Node).next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Node): void => {
    const r = c.match as Node;
    (r.prev as Node).next = r;
    if (r.next) r.next.prev = r;
    (c.prev as Node).next = c;
    if (c.next) c.next.prev = c;
  };

  const linearized = new BitSet(n);
  const cache = new Set<string>();
  const stack: { node: Node; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  let longest: number[] = [];
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { result: 'unknown', operations: ops };
    if (entry === undefined) break;
    if (entry.isCall) {
      const op = ops[entry.id];
      const res = model.step(state, op.input, op.output);
      if (res.ok) {
        const next = res.state;
        linearized.set(entry.id);
        const k = linearized.key() + '|' + model.key(next);
        if (!cache.has(k)) {
          cache.add(k);
          stack.push({ node: entry, state });
          state = next;
          lift(entry);
          if (stack.length > longest.length) longest = stack.map((s) => s.node.id);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.id);
      }
      entry = entry.next;
    } else {
      // A return with its call not yet linearized: this branch is dead; backtrack.
      const top = stack.pop();
      if (!top) {
        return { result: 'illegal', operations: ops, longestPrefix: longest.map((i) => ops[i]) };
      }
      state = top.state;
      linearized.clear(top.node.id);
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return { result: 'ok', operations: ops, linearization: stack.map((s) => ops[s.node.id]) };
}

export function checkOperations<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[], opts: CheckOptions = {}): CheckReport<I, O> {
  const parts = model.partition ? model.partition(history) : [history];
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const partitions = parts.map((p) => checkPartition(model, p, maxSteps));
  let result: CheckResult = 'ok';
  for (const p of partitions) {
    if (p.result === 'illegal') return { result: 'illegal', partitions };
    if (p.result === 'unknown') result = 'unknown';
  }
  return { result, partitions };
}

// --- key-value model: get, put, compare-and-set on single keys ---

export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  /** expected undefined: succeed only if the key does not exist (etcd's create-revision 0). */
  | { op: 'cas'; key: string; expected: string | undefined; value: string };

export type KvOutput =
  | { op: 'get'; value: string | undefined }
  | { op: 'put' }
  | { op: 'cas'; ok: boolean };

export type KvOperation = Operation<KvInput, KvOutput>;

/** Every operation touches one key, so keys are independent: check each key's history alone. */
export const kvModel: Model<string | undefined, KvInput, KvOutput> = {
  partition(history) {
    const byKey = new Map<string, KvOperation[]>();
    for (const op of history) {
      // A read that never returned constrains nothing; dropping it saves a search dimension.
      if (op.input.op === 'get' && op.output === undefined) continue;
      const list = byKey.get(op.input.key);
      if (list) list.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  init: () => undefined,
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        if (output === undefined) return { ok: true, state };
        return output.op === 'get' && output.value === state ? { ok: true, state } : ILLEGAL;
      case 'put':
        return { ok: true, state: input.value };
      case 'cas': {
        const matches = state === input.expected;
        if (output === undefined) return { ok: true, state: matches ? input.value : state };
        if (output.op !== 'cas' || output.ok !== matches) return ILLEGAL;
        return { ok: true, state: matches ? input.value : state };
      }
    }
  },
  key: (state) => (state === undefined ? '\u0000none' : 'v' + state),
  describe(input, output) {
    const out = output === undefined ? 'pending' : JSON.stringify(output);
    return `${JSON.stringify(input)} -> ${out}`;
  },
};

export function checkKvHistory(history: KvOperation[], opts?: CheckOptions): CheckReport<KvInput, KvOutput> {
  return checkOperations(kvModel, history, opts);
}

/** A readable account of the first illegal partition: its operations by call time and how far the search got. */
export function describeReport<S, I, O>(model: Model<S, I, O>, report: CheckReport<I, O>): string {
  const bad = report.partitions.find((p) => p.result !== 'ok');
  if (!bad) return 'linearizable';
  const show = (op: Operation<I, O>): string => {
    const what = model.describe ? model.describe(op.input, op.output) : JSON.stringify({ input: op.input, output: op.output });
    const ret = op.return === undefined || op.return === Number.POSITIVE_INFINITY ? '∞' : String(op.return);
    return `  [${op.call}, ${ret}] client ${op.clientId}: ${what}`;
  };
  const lines = [`${bad.result}: ${bad.operations.length} operations`];
  for (const op of [...bad.operations].sort((a, b) => a.call - b.call)) lines.push(show(op));
  if (bad.longestPrefix) {
    lines.push(`longest linearizable prefix (${bad.longestPrefix.length}):`);
    for (const op of bad.longestPrefix) lines.push(show(op));
  }
  return lines.join('\n');
}
