import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyTree } from './key-tree';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const collect = (t: KeyTree<number>, lo: string, hi: string | null): string[] => {
  const out: string[] = [];
  t.forRange(lo, hi, (k) => {
    out.push(k);
  });
  return out;
};

describe('key tree', () => {
  it('matches a sorted array under random inserts, removals, scans and bulk loads', () => {
    const r = rand(1);
    const t = new KeyTree<number>();
    const ref = new Set<string>();
    const key = () => String.fromCharCode(...Array.from({ length: 1 + Math.floor(r() * 3) }, () => Math.floor(r() * 256)));
    for (let round = 0; round < 20000; round++) {
      const k = key();
      const x = r();
      if (x < 0.6) {
        if (!ref.has(k)) {
          t.insert(k, round);
          ref.add(k);
        }
      } else if (x < 0.9) {
        assert.equal(t.remove(k), ref.delete(k));
      } else if (x < 0.999) {
        const lo = key();
        const hi = r() < 0.2 ? null : key();
        const want = [...ref].filter((s) => s >= lo && (hi === null || s < hi)).sort();
        assert.deepEqual(collect(t, lo, hi), want);
      } else {
        const sorted = [...ref].sort();
        t.load(sorted, sorted.map((_, i) => i));
      }
      assert.equal(t.size, ref.size);
    }
    assert.deepEqual(collect(t, '', null), [...ref].sort());
  });

  it('bulk loads, then inserts and removes at scale', () => {
    const t = new KeyTree<number>();
    const keys = Array.from({ length: 50000 }, (_, i) => `k${String(i * 2).padStart(7, '0')}`);
    t.load(keys, keys.map((_, i) => i));
    for (let i = 0; i < 50000; i += 3) t.insert(`k${String(i * 2 + 1).padStart(7, '0')}`, -1);
    for (let i = 0; i < 50000; i += 2) assert.equal(t.remove(keys[i]), true);
    const all = collect(t, '', null);
    assert.equal(all.length, t.size);
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1] < all[i]);
    t.load([], []);
    assert.deepEqual(collect(t, '', null), []);
    t.insert('a', 1);
    assert.deepEqual(collect(t, '', null), ['a']);
  });
});
