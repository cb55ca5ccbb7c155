import { describe, expect, it } from 'vitest';
import { MinHeap } from '../../../src/p2p/index.js';
import { Rng } from '../../../src/sim/index.js';

describe('MinHeap', () => {
  it('gives items back in the caller\'s order, however they went in', () => {
    const rng = new Rng(3);
    const values = Array.from({ length: 500 }, () => rng.int(100));
    const heap = new MinHeap<number>((a, b) => a < b);
    for (const v of values) heap.push(v);
    expect(heap.size).toBe(500);
    const out: number[] = [];
    for (let v = heap.pop(); v !== undefined; v = heap.pop()) out.push(v);
    expect(out).toEqual([...values].sort((a, b) => a - b));
    expect(heap.peek()).toBeUndefined();
  });
});
