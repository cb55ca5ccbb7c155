import { describe, expect, it } from 'vitest';
import { StripeWatch, type StripeView } from '../../../../src/distribution/index.js';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
const view = (...mib: number[]): StripeView[] => mib.map((m) => ({ have: Math.min(SIZE, m * MiB), size: SIZE }));

/** Feeds the watch a check every 100 ms from `from` to `to` ms, each stripe growing at its MiB/s; returns what it holds. */
function feed(watch: StripeWatch, have: number[], mibPerS: number[], from: number, to: number): number[] {
  const h = [...have];
  for (let t = from; t <= to; t += 100) {
    if (t > from) mibPerS.forEach((r, i) => (h[i] = Math.min(SIZE / MiB, h[i]! + r / 10)));
    watch.observe(t, view(...h));
  }
  return h;
}

describe('StripeWatch', () => {
  it('calls a parent stalled when the stripe got no byte for the stall time while the parent holds more', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 30, 30], 0, 1000);
    feed(w, h, [30, 30, 0, 30], 1000, 1400);
    expect(w.judge(1400, 2, view(60, 60, 60, 60))).toBe('ok');
    feed(w, h, [30, 30, 0, 30], 1500, 1500);
    expect(w.judge(1500, 2, view(60, 60, 60, 60))).toBe('stalled');
  });

  it('calls a silent parent (its reports stopped) stalled, even when it held no more than this node', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 30, 30], 0, 1000);
    const now = feed(w, h, [30, 30, 0, 30], 1000, 1600);
    expect(w.judge(1600, 2, view(...now.map((x, i) => (i === 2 ? x : x + 1))))).toBe('ok');
    expect(w.judge(1600, 2, undefined)).toBe('stalled');
  });

  it('finds a dead parent on the last unfinished stripe, which has no growing sibling to compare with', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [200, 200, 150, 200], [30, 30, 30, 30], 0, 2000);
    expect(h.filter((x) => x >= 256)).toHaveLength(3);
    feed(w, h, [0, 0, 0, 0], 2000, 2600);
    expect(w.judge(2600, 2, view(256, 256, 240, 256))).toBe('stalled');
  });

  it('calls a slow parent slow on the last stripe, against the rate the finished stripes arrived at', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [200, 200, 150, 200], [30, 30, 30, 30], 0, 2000);
    feed(w, h, [0, 0, 2, 0], 2000, 3000);
    // The parent is behind this node on every stripe: its link is slow.
    expect(w.judge(3000, 2, view(180, 180, 185, 180))).toBe('slow');
  });

  it('counts a finished stripe at the mean rate it arrived at, not a last burst alone on the link', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 30, 30], 0, 5000);
    // Stripe 0 ends in a burst (120 MiB/s), the others go on at 30 behind a parent that is a little behind.
    const end = feed(w, h, [120, 30, 30, 30], 5000, 6000);
    expect(end[0]).toBe(256);
    expect(w.judge(6000, 1, view(200, end[1]! - 10, end[2]! - 10, end[3]! - 10))).toBe('ok');
  });

  it('is not slow in the start-up grace, then is', () => {
    const w = new StripeWatch(4, { graceMs: 1500 });
    const h = feed(w, [0, 0, 0, 0], [30, 30, 3, 30], 0, 1000);
    expect(w.judge(1000, 2, view(h[2]! + 20, 40, h[2]! + 20, 40))).toBe('ok');
    const later = feed(w, h, [30, 30, 3, 30], 1000, 2000);
    expect(w.judge(2000, 2, view(later[2]! + 20, 60, later[2]! + 20, 60))).toBe('slow');
  });

  it('is not the parent when it is short of the stripe itself but keeps up otherwise (its own parent is the cause)', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 3, 30], 0, 3000);
    expect(w.judge(3000, 2, view(h[0]!, h[1]!, h[2]! + 0.5, h[3]!))).toBe('ok');
  });

  it('is not when the stripe grows at half the best rate or more (a busy parent, not a slow one)', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 18, 30], 0, 3000);
    expect(w.judge(3000, 2, undefined)).toBe('ok');
    expect(h[0]! - h[2]!).toBeGreaterThan(8);
  });

  it('gives a new parent a full stall time', () => {
    const w = new StripeWatch(4);
    const h = feed(w, [0, 0, 0, 0], [30, 30, 30, 30], 0, 1000);
    feed(w, h, [30, 30, 0, 30], 1000, 1500);
    w.followed(2, 1500);
    expect(w.judge(1500, 2, view(60, 60, 60, 60))).toBe('ok');
    feed(w, h, [30, 30, 0, 30], 1600, 2000);
    expect(w.judge(2000, 2, view(60, 60, 60, 60))).toBe('stalled');
  });
});
