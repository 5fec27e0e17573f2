import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goSort } from './go-sort';

// Permutations Go 1.19's sort.Sort (and sort.Reverse) produced for these
// inputs (items carry their index; Less compares values only).
const VECTORS: [boolean, string, string][] = [
  [
    false,
    '3 1 2 3 1 2 3 1 2 0 0 1 2 3 1 2 3 1 2 0 3 3 1 1 2 2 0 0 1 2 3 1 2 3 1 2 0 0 1 2',
    '9 27 26 19 36 37 10 14 34 7 38 11 28 1 31 23 4 17 22 5 35 39 18 15 24 25 2 8 12 29 32 20 30 33 21 0 16 13 6 3',
  ],
  [
    true,
    '5 5 4 4 3 3 2 2 1 1 0 0 5 4 3 2 1 0 0 1 2 3 4 5 5 4 3 2 1 0 1 1 1 2 2 2 3 3 3 9 9 9 0 0 0 5 5 5 4 4 4 3 3 3 2 2 2 1',
    '41 39 40 47 1 23 24 0 12 46 45 2 22 3 50 48 25 49 13 37 36 4 5 14 51 26 52 53 21 38 15 27 20 33 34 35 55 56 54 6 7 19 28 31 57 8 9 16 30 32 18 44 43 42 29 17 11 10',
  ],
];

describe('go sort', () => {
  it('reproduces the order of ties of Go 1.19 sort.Sort', () => {
    for (const [reverse, input, want] of VECTORS) {
      const items = input.split(' ').map((v, idx) => ({ v: Number(v), idx }));
      const less = (a: { v: number }, b: { v: number }) => a.v < b.v;
      goSort(items, reverse ? (a, b) => less(b, a) : less);
      assert.equal(items.map((x) => x.idx).join(' '), want);
    }
  });

  it('sorts any input', () => {
    let s = 99;
    const r = () => (s = (s * 1664525 + 1013904223) >>> 0) / 4294967296;
    for (let t = 0; t < 300; t++) {
      const n = Math.floor(r() * 500);
      const a = Array.from({ length: n }, (_, i) => (t % 3 === 0 ? i : t % 3 === 1 ? n - i : Math.floor(r() * 20)));
      const b = [...a];
      goSort(b, (x, y) => x < y);
      assert.deepEqual(b, [...a].sort((x, y) => x - y));
    }
  });
});
