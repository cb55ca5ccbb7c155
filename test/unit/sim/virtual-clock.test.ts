import { describe, expect, it } from 'vitest';
import { Rng, VirtualClock } from '../../../src/sim/index.js';

describe('VirtualClock', () => {
  it('fires timers in due order, ties in the order set, and jumps time to each', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.after(30, () => seen.push(`c@${clock.now()}`));
    clock.after(10, () => seen.push(`a@${clock.now()}`));
    clock.after(10, () => seen.push(`b@${clock.now()}`));
    const gone = clock.after(20, () => seen.push('cancelled'));
    gone.cancel();
    await clock.run();
    expect(seen).toEqual(['a@10', 'b@10', 'c@30']);
    expect(clock.now()).toBe(30);
  });

  it('runs async code that awaits its sleeps, and stops at `until`', async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    void (async () => {
      for (let i = 0; i < 5; i++) {
        await clock.sleep(100);
        seen.push(clock.now());
      }
    })();
    await clock.run({ until: 250 });
    expect(seen).toEqual([100, 200]);
    await clock.run();
    expect(seen).toEqual([100, 200, 300, 400, 500]);
  });
});

describe('Rng', () => {
  it('gives the same draws for the same seed and different ones for another', () => {
    const draws = (seed: number) => Array.from({ length: 8 }, ((r) => () => r.u32())(new Rng(seed)));
    expect(draws(42)).toEqual(draws(42));
    expect(draws(42)).not.toEqual(draws(43));
  });

  it('is roughly uniform', () => {
    const r = new Rng(7);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[r.int(10)]++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
    expect(new Set(r.shuffled([1, 2, 3, 4, 5]))).toEqual(new Set([1, 2, 3, 4, 5]));
  });
});
