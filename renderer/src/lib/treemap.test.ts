import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { squarify } from './treemap';

describe('squarified treemap', () => {
  it('areas are proportional to the values, tiles fill the box without overlapping', () => {
    const values = [500, 300, 120, 50, 20, 7, 3, 0];
    const box = { x: 0, y: 0, w: 1000, h: 340 };
    const tiles = squarify(values, (v) => v, box);
    assert.equal(tiles.length, 7, 'a zero value gets no tile');
    const total = values.reduce((a, b) => a + b, 0);
    for (const t of tiles) {
      assert.ok(Math.abs(t.w * t.h - (t.item / total) * box.w * box.h) < 1e-6, `area of ${t.item}`);
      assert.ok(t.x >= -1e-9 && t.y >= -1e-9 && t.x + t.w <= box.w + 1e-6 && t.y + t.h <= box.h + 1e-6, `${t.item} inside the box`);
    }
    for (const a of tiles)
      for (const b of tiles) {
        if (a === b) continue;
        const overlapW = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
        const overlapH = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
        assert.ok(overlapW <= 1e-6 || overlapH <= 1e-6, `${a.item} and ${b.item} overlap`);
      }
    // Squarified: no tile is a sliver (the biggest aspect ratio stays moderate for these values).
    const worst = Math.max(...tiles.map((t) => Math.max(t.w / t.h, t.h / t.w)));
    assert.ok(worst < 6, `worst aspect ratio ${worst.toFixed(1)}`);
  });

  it('nothing to lay out: no tiles', () => {
    assert.deepEqual(squarify([0, 0], (v) => v, { x: 0, y: 0, w: 10, h: 10 }), []);
    assert.deepEqual(squarify([1], (v) => v, { x: 0, y: 0, w: 0, h: 10 }), []);
  });
});
