// Squarified treemap layout (Bruls, Huizing, van Wijk): rectangles whose areas
// are proportional to the values, laid out in rows that keep them close to
// square, so small prefixes stay readable next to big ones.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Tile<T> extends Rect {
  item: T;
}

/** Lays out items (any order; values ≤ 0 are left out) in the rectangle. */
export function squarify<T>(items: T[], value: (t: T) => number, box: Rect): Tile<T>[] {
  const list = items.filter((t) => value(t) > 0).sort((a, b) => value(b) - value(a));
  const total = list.reduce((s, t) => s + value(t), 0);
  const out: Tile<T>[] = [];
  if (!total || box.w <= 0 || box.h <= 0) return out;
  const scale = (box.w * box.h) / total;
  let { x, y, w, h } = box;
  let row: T[] = [];
  let rowArea = 0;

  /** The worst aspect ratio of a row laid along a side of length `side`. */
  const worst = (areas: number[], sum: number, side: number): number => {
    let max = 0;
    const s2 = side * side;
    const sum2 = sum * sum;
    for (const a of areas) max = Math.max(max, (s2 * a) / sum2, sum2 / (s2 * a));
    return max;
  };
  const flush = (): void => {
    const horizontal = w >= h;
    const side = horizontal ? h : w;
    const thick = rowArea / side;
    let off = 0;
    for (const t of row) {
      const len = (value(t) * scale) / thick;
      out.push(horizontal ? { item: t, x, y: y + off, w: thick, h: len } : { item: t, x: x + off, y, w: len, h: thick });
      off += len;
    }
    if (horizontal) {
      x += thick;
      w -= thick;
    } else {
      y += thick;
      h -= thick;
    }
    row = [];
    rowArea = 0;
  };

  for (const t of list) {
    const a = value(t) * scale;
    const side = Math.min(w, h);
    if (row.length) {
      const areas = row.map((r) => value(r) * scale);
      if (worst([...areas, a], rowArea + a, side) > worst(areas, rowArea, side)) flush();
    }
    row.push(t);
    rowArea += a;
  }
  if (row.length) flush();
  return out;
}
