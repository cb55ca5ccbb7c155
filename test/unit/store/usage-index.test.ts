// The usage index disk quota runs on: bytes add up, and the order of last use is kept through touches,
// re-adds and a load from disk in any order.
import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../src/oci/digest.js';
import { UsageIndex } from '../../../src/store/usage-index.js';

const d = (n: number): Digest => digestOf(Buffer.from(`b${n}`));
const order = (i: UsageIndex) => i.leastRecentlyUsed().map((e) => e.digest);

describe('UsageIndex', () => {
  it('adds up sizes, and a re-added blob counts once with its new size', () => {
    const i = new UsageIndex();
    i.add(d(1), 100, 1);
    i.add(d(2), 50, 2);
    expect([i.bytes, i.count]).toEqual([150, 2]);
    i.add(d(1), 70, 3);
    expect([i.bytes, i.count]).toEqual([120, 2]);
    expect(i.remove(d(2))?.size).toBe(50);
    expect(i.remove(d(2))).toBeUndefined();
    expect([i.bytes, i.count]).toEqual([70, 1]);
  });

  it('lists least recently used first; a touch or a re-add moves a blob to the end', () => {
    const i = new UsageIndex();
    for (const n of [1, 2, 3]) i.add(d(n), 10, n);
    expect(order(i)).toEqual([d(1), d(2), d(3)]);
    i.touch(d(1), 10);
    expect(order(i)).toEqual([d(2), d(3), d(1)]);
    i.add(d(2), 10, 11);
    expect(order(i)).toEqual([d(3), d(1), d(2)]);
    i.touch(d(9), 12); // unknown: nothing happens
    expect(i.count).toBe(3);
  });

  it('sorts what it loads from disk by last use, keeping what was added meanwhile', () => {
    const i = new UsageIndex();
    i.add(d(5), 1, 500, 'upstream');
    i.load([
      { digest: d(3), size: 3, lastUse: 300 },
      { digest: d(1), size: 1, lastUse: 100 },
      { digest: d(2), size: 2, lastUse: 200 },
    ]);
    expect(order(i)).toEqual([d(1), d(2), d(3), d(5)]);
    expect(i.bytes).toBe(7);
    expect(i.get(d(5))?.source).toBe('upstream');
  });

  it('hands out a snapshot: removing while walking it is safe', () => {
    const i = new UsageIndex();
    for (const n of [1, 2, 3, 4]) i.add(d(n), 1, n);
    for (const e of i.leastRecentlyUsed()) if (e.lastUse % 2 === 0) i.remove(e.digest);
    expect(order(i)).toEqual([d(1), d(3)]);
  });
});
