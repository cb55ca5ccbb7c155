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
    // A grace past the stall, so the stall rule is seen on its own.
    const w = new StripeWatch(4, { graceMs: 1500 });
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

  it('calls a parent with a slow link slow within a window, though it holds no more and is not yet far behind', () => {
    const w = new StripeWatch(4);
    // This node takes 30 MiB/s a stripe but 3 on stripe 2; its parent there takes 3 on every stripe.
    let h = [0, 0, 0, 0];
    let p = [0, 0, 0, 0];
    let verdict = 'ok';
    for (let t = 0; t <= 700; t += 100) {
      if (t > 0) [h, p] = [h.map((x, i) => x + (i === 2 ? 0.3 : 3)), p.map((x) => x + 0.3)];
      w.observe(t, view(...h));
      verdict = w.judge(t, 2, view(...p.map((x, i) => (i === 2 ? x + 0.5 : x))));
    }
    // The parent holds 0.5 MiB more (under lagBytes) and is 19 MiB behind (under behindBytes).
    expect(verdict).toBe('slow');
    expect(w.linkSlow(2)).toBe(true);
  });

  it('does not call a parent starved in three stripes of four link-slow: its fourth comes at full rate', () => {
    const w = new StripeWatch(4);
    for (let t = 0, h = 0, p = 0; t <= 1500; t += 100, h += 3, p += 0.3) {
      w.observe(t, view(h, h, h, h));
      w.judge(t, 1, view(p, p, p, h));
    }
    expect(w.linkSlow(1)).toBe(false);
  });

  it('does not call a parent link-slow near its end, when it takes in little because it needs little', () => {
    const w = new StripeWatch(4);
    const p = [0, 0, 0, 0];
    for (let t = 0, h = 0; t <= 2000; t += 100, h += 3) {
      // The parent took in at this node's rate, then held three stripes whole and took its last slowly.
      if (t > 0) p.forEach((x, i) => (p[i] = t <= 1000 ? x + 3 : i === 3 ? x + 0.1 : x));
      w.observe(t, view(h, h, h, h));
      w.judge(t, 3, view(...p));
    }
    expect(w.linkSlow(3)).toBe(false);
  });

  it('judges a new parent\'s link afresh, over a whole window of its own reports', () => {
    const w = new StripeWatch(4);
    for (let t = 0, h = 0, p = 0; t <= 1000; t += 100, h += 3, p += 0.3) {
      w.observe(t, view(h, h, h, h));
      w.judge(t, 0, view(p, p, p, p));
    }
    expect(w.linkSlow(0)).toBe(true);
    w.followed(0, 1000);
    expect(w.linkSlow(0)).toBe(false);
    w.judge(1100, 0, view(50, 50, 50, 50));
    expect(w.linkSlow(0)).toBe(false);
  });
});
