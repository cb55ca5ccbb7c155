// The garbage bound (src/node/garbage-bound.ts): a full collection once what one could free is more than a slack
// above its lowest reading since the last; V8's own collections lower that floor; none for a node that keeps up.
import { describe, expect, it } from 'vitest';
import { boundGarbage, GarbageWatch } from '../../../src/node/garbage-bound.js';

const MiB = 1024 * 1024;

describe('GarbageWatch', () => {
  it('is due once a reading is more than the slack above the lowest so far', () => {
    const w = new GarbageWatch(24 * MiB);
    expect(w.due(40 * MiB)).toBe(false);
    expect(w.due(60 * MiB)).toBe(false);
    expect(w.due(64 * MiB)).toBe(false); // exactly the slack above
    expect(w.due(64 * MiB + 1)).toBe(true);
  });

  it('takes a lower reading (V8 collected on its own) as the floor', () => {
    const w = new GarbageWatch(24 * MiB);
    w.due(60 * MiB);
    w.due(30 * MiB);
    expect(w.due(50 * MiB)).toBe(false);
    expect(w.due(55 * MiB)).toBe(true);
  });

  it('counts from what was live after a collection, also when that is above the old floor', () => {
    const w = new GarbageWatch(24 * MiB);
    w.due(30 * MiB);
    expect(w.due(80 * MiB)).toBe(true);
    w.collected(50 * MiB); // live data grew: the next one waits for another slack above it
    expect(w.due(70 * MiB)).toBe(false);
    expect(w.due(75 * MiB)).toBe(true);
  });
});

describe('boundGarbage', () => {
  it('collects when the reading passes the bound, reads again after, and stops on stop()', async () => {
    const readings = [10, 20, 40, 12, 30, 39, 50];
    let at = 0;
    let collections = 0;
    const seen: Array<[number, number]> = [];
    const service = boundGarbage({
      everyMs: 1,
      slackBytes: 25,
      read: () => readings[Math.min(at++, readings.length - 1)]!,
      collect: () => collections++,
      onCollect: (before, after, ms) => {
        expect(ms).toBeGreaterThanOrEqual(0);
        seen.push([before, after]);
      },
    });
    await service.start!();
    try {
      const deadline = Date.now() + 10_000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    } finally {
      await service.stop!();
    }
    // 10, 20, 40 (> 10 + 25: collect, then 12 is the floor), 30, 39 (> 12 + 25: collect, 50 read after).
    expect(seen.slice(0, 2)).toEqual([
      [40, 12],
      [39, 50],
    ]);
    const after = collections;
    await new Promise((r) => setTimeout(r, 20));
    expect(collections).toBe(after);
  });

  it('runs a real full collection by default', async () => {
    let ran = false;
    const s = boundGarbage({ everyMs: 1, slackBytes: -1, onCollect: () => (ran = true) });
    await s.start!();
    try {
      const deadline = Date.now() + 10_000;
      while (!ran && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(ran).toBe(true);
      expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    } finally {
      await s.stop!();
    }
  });
});
