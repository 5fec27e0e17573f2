// MemoryStorage keeps entries until compaction, so it must not share their
// data with the buffers they arrived in (a pooled encode buffer, a network
// frame, a WAL read chunk): those are reused, and pinning them costs memory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from './storage';
import { EntryType } from './types';

describe('MemoryStorage entry data', () => {
  it('keeps its own copy of entry data that is a view into a larger buffer', () => {
    const frame = new Uint8Array(64 * 1024);
    const s = new MemoryStorage();
    const ents = [1, 2, 3].map((i) => {
      const data = frame.subarray(i * 100, i * 100 + 10);
      data.fill(i);
      return { term: 1, index: i, type: EntryType.Normal, data };
    });
    s.append(ents);
    frame.fill(0xee); // the sender reuses its buffer
    const got = s.entries(1, 4);
    assert.deepEqual(
      got.map((e) => [...e.data]),
      [1, 2, 3].map((i) => new Array<number>(10).fill(i)),
    );
    for (const e of got) assert.ok(e.data.buffer !== frame.buffer, 'entry data must not pin the frame it came in');
  });

  it('keeps large entries whole and exact', () => {
    const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
    const s = new MemoryStorage();
    s.append([{ term: 1, index: 1, type: EntryType.Normal, data: big.subarray(10, 90_010) }]);
    big.fill(0);
    const [e] = s.entries(1, 2);
    assert.equal(e.data.length, 90_000);
    assert.equal(e.data[0], 10);
    assert.equal(e.data[89_999], (89_999 + 10) & 0xff);
  });
});
