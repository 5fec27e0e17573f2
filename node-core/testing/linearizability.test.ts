import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KvInput, type KvOperation, type KvOutput, type Model, type Operation, checkKvHistory, checkOperations, describeReport, kvModel } from './linearizability';

const get = (clientId: number, key: string, value: string | undefined, call: number, ret?: number): KvOperation => ({
  clientId,
  input: { op: 'get', key },
  output: ret === undefined ? undefined : { op: 'get', value },
  call,
  return: ret,
});
const put = (clientId: number, key: string, value: string, call: number, ret?: number): KvOperation => ({
  clientId,
  input: { op: 'put', key, value },
  output: ret === undefined ? undefined : { op: 'put' },
  call,
  return: ret,
});
const cas = (clientId: number, key: string, expected: string | undefined, value: string, ok: boolean, call: number, ret?: number): KvOperation => ({
  clientId,
  input: { op: 'cas', key, expected, value },
  output: ret === undefined ? undefined : { op: 'cas', ok },
  call,
  return: ret,
});

describe('linearizability checker (KV model)', () => {
  test('sequential history is linearizable', () => {
    const h = [put(1, 'x', 'a', 0, 1), get(1, 'x', 'a', 2, 3), cas(1, 'x', 'a', 'b', true, 4, 5), get(1, 'x', 'b', 6, 7)];
    const r = checkKvHistory(h);
    assert.equal(r.result, 'ok');
    assert.deepEqual(r.partitions[0].linearization, h);
  });

  test('concurrent operations may take effect in either order', () => {
    // put(a) and put(b) overlap; reads after both see either, but consistently.
    const h = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 1, 9), get(3, 'x', 'a', 11, 12), get(3, 'x', 'a', 13, 14)];
    assert.equal(checkKvHistory(h).result, 'ok');
    const h2 = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 1, 9), get(3, 'x', 'b', 11, 12)];
    assert.equal(checkKvHistory(h2).result, 'ok');
  });

  test('a read overlapping a write may see old or new value', () => {
    const h = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 10), get(2, 'x', 'a', 3, 4), get(3, 'x', 'b', 5, 6), get(2, 'x', 'b', 7, 8)];
    assert.equal(checkKvHistory(h).result, 'ok');
  });

  test('a stale read is rejected', () => {
    // put(b) completed before the read started, yet the read returns the old value.
    const h = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)];
    const r = checkKvHistory(h);
    assert.equal(r.result, 'illegal');
    assert.ok((r.partitions[0].longestPrefix?.length ?? 0) >= 2);
    const text = describeReport(kvModel, r);
    assert.match(text, /illegal: 3 operations/);
    assert.match(text, /\[4, 5\] client 2: \{"op":"get","key":"x"\} -> \{"op":"get","value":"a"\}/);
  });

  test('values going back in time across readers are rejected', () => {
    // Two reads, non-overlapping: b then a, while only one write of b happened after a.
    const h = [put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 20), get(2, 'x', 'b', 3, 4), get(3, 'x', 'a', 5, 6)];
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  test('compare-and-set outcomes must agree with the value', () => {
    const okH = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 5), cas(3, 'x', 'a', 'c', false, 3, 6), get(1, 'x', 'b', 7, 8)];
    assert.equal(checkKvHistory(okH).result, 'ok');
    // Both CASes from 'a' cannot succeed.
    const bad = [put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 5), cas(3, 'x', 'a', 'c', true, 3, 6)];
    assert.equal(checkKvHistory(bad).result, 'illegal');
    // Create-if-absent.
    assert.equal(checkKvHistory([cas(1, 'y', undefined, 'v', true, 0, 1), get(1, 'y', 'v', 2, 3)]).result, 'ok');
    assert.equal(checkKvHistory([cas(1, 'y', undefined, 'v', false, 0, 1)]).result, 'illegal');
  });

  test('an operation that never returned may or may not have happened', () => {
    // The pending put(b) is visible to one read...
    const applied = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2), get(3, 'x', 'b', 10, 11)];
    assert.equal(checkKvHistory(applied).result, 'ok');
    // ...or to none...
    const notApplied = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2), get(3, 'x', 'a', 10, 11)];
    assert.equal(checkKvHistory(notApplied).result, 'ok');
    // ...but once seen it cannot disappear.
    const flicker = [put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2), get(3, 'x', 'b', 10, 11), get(3, 'x', 'a', 12, 13)];
    assert.equal(checkKvHistory(flicker).result, 'illegal');
    // A pending op cannot take effect before it was called.
    const early = [get(3, 'x', 'b', 0, 1), put(2, 'x', 'b', 2)];
    assert.equal(checkKvHistory(early).result, 'illegal');
  });

  test('keys are checked independently and a failure names its partition', () => {
    const h = [put(1, 'x', 'a', 0, 1), put(2, 'y', 'q', 0, 1), get(1, 'x', 'a', 2, 3), get(2, 'y', undefined, 2, 3)];
    const r = checkKvHistory(h);
    assert.equal(r.result, 'illegal');
    assert.equal(r.partitions.length, 2);
    assert.equal(r.partitions.find((p) => p.result === 'illegal')?.operations[0].input.key, 'y');
  });

  test('large concurrent histories stay fast thanks to partitioning and memoization', () => {
    // A register history produced by a real linearizable register with random overlaps.
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const h: KvOperation[] = [];
    for (let k = 0; k < 20; k++) {
      const key = `k${k}`;
      let value: string | undefined;
      let t = 0;
      // Clients' operations overlap by up to 3 others; the effect point is inside each interval.
      for (let i = 0; i < 60; i++) {
        t += 1;
        const call = t - Math.floor(rnd() * 3);
        const ret = t + 1 + Math.floor(rnd() * 3);
        const c = Math.floor(rnd() * 5);
        const x = rnd();
        if (x < 0.4) h.push(get(c, key, value, call, ret));
        else if (x < 0.7) {
          value = `v${i}`;
          h.push(put(c, key, value, call, ret));
        } else {
          const expected = rnd() < 0.5 ? value : 'nope';
          const ok = expected === value;
          if (ok) value = `c${i}`;
          h.push(cas(c, key, expected, `c${i}`, ok, call, ret));
        }
      }
    }
    // a step budget, not a clock: a search that lost its pruning blows through it on any machine
    const r = checkKvHistory(h, { maxSteps: 10_000 });
    assert.equal(r.result, 'ok');
  });

  test('the search gives up with "unknown" when over budget', () => {
    const h: KvOperation[] = [];
    for (let i = 0; i < 12; i++) h.push(put(i, 'x', `v${i}`, 0, 100));
    h.push(get(99, 'x', 'never-written', 101, 102));
    assert.equal(checkKvHistory(h, { maxSteps: 50 }).result, 'unknown');
    assert.equal(checkKvHistory(h).result, 'illegal');
  });

  test('works with a custom model (a counter)', () => {
    type In = { inc: number } | { read: true };
    type Out = { value: number } | { ok: true };
    const counter: Model<number, In, Out> = {
      init: () => 0,
      step: (s, i, o) => {
        if ('inc' in i) return { ok: true, state: s + i.inc };
        if (o === undefined) return { ok: true, state: s };
        return 'value' in o && o.value === s ? { ok: true, state: s } : { ok: false };
      },
      key: (s) => String(s),
    };
    const h: Operation<In, Out>[] = [
      { clientId: 1, input: { inc: 1 }, output: { ok: true }, call: 0, return: 5 },
      { clientId: 2, input: { inc: 2 }, output: { ok: true }, call: 1, return: 6 },
      { clientId: 3, input: { read: true }, output: { value: 2 }, call: 2, return: 3 },
      { clientId: 3, input: { read: true }, output: { value: 3 }, call: 7, return: 8 },
    ];
    assert.equal(checkOperations(counter, h).result, 'ok');
    h.push({ clientId: 3, input: { read: true }, output: { value: 1 }, call: 9, return: 10 });
    assert.equal(checkOperations(counter, h).result, 'illegal');
    const typed: Model<string | undefined, KvInput, KvOutput> = kvModel;
    assert.ok(typed.describe);
  });

  test('agrees with brute force on random small histories (with pending calls)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const values = ['a', 'b', undefined];
    const bruteForce = (ops: KvOperation[]): boolean => {
      const used = new Array<boolean>(ops.length).fill(false);
      const search = (state: string | undefined, done: number): boolean => {
        if (done === ops.length) return true;
        for (let i = 0; i < ops.length; i++) {
          if (used[i]) continue;
          // i may go next only if no other remaining op returned before i was called.
          let minimal = true;
          for (let j = 0; j < ops.length; j++) {
            if (j !== i && !used[j] && (ops[j].return ?? Infinity) < ops[i].call) minimal = false;
          }
          if (!minimal) continue;
          const r = kvModel.step(state, ops[i].input, ops[i].output);
          if (!r.ok) continue;
          used[i] = true;
          if (search(r.state, done + 1)) return true;
          used[i] = false;
        }
        return false;
      };
      return search(undefined, 0);
    };
    let legal = 0;
    let illegal = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const n = 1 + Math.floor(rnd() * 6);
      const h: KvOperation[] = [];
      for (let i = 0; i < n; i++) {
        const call = Math.floor(rnd() * 10);
        const pending = rnd() < 0.15;
        const ret = pending ? undefined : call + Math.floor(rnd() * 5);
        const x = rnd();
        const pickV = () => values[Math.floor(rnd() * values.length)];
        if (x < 0.4) h.push(get(i, 'k', pickV(), call, ret));
        else if (x < 0.7) h.push(put(i, 'k', pickV() ?? 'a', call, ret));
        else h.push(cas(i, 'k', pickV(), pickV() ?? 'b', rnd() < 0.5, call, ret));
      }
      const expected = bruteForce(h);
      const got = checkKvHistory(h).result;
      assert.equal(got, expected ? 'ok' : 'illegal', JSON.stringify(h));
      if (expected) legal++;
      else illegal++;
    }
    assert.ok(legal > 300 && illegal > 300, `both outcomes exercised (${legal}/${illegal})`);
  });
});
