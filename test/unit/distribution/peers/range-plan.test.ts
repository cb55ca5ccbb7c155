// The range bookkeeping on its own, no network and no clock: which ranges are planned and when, who is
// asked for each, a failed range moved on, a lagging one hedged elsewhere, and nothing planned twice.
import { describe, expect, it } from 'vitest';
import { HolderLoad, RangePlan, type RangePlanSettings } from '../../../../src/distribution/peers/range-plan.js';
import type { Provider } from '../../../../src/p2p/content-router.js';

const RANGE = 100;
const holder = (id: string): Provider => ({ id, addrs: [] });
const a = holder('a');
const b = holder('b');
const c = holder('c');

function planOf(opts: Partial<RangePlanSettings> & { holders?: Provider[]; from?: number; load?: HolderLoad } = {}) {
  const settings: RangePlanSettings = { rangeBytes: RANGE, parallel: 2, perPeer: 2, hedgeAfterMs: 1_000, ...opts };
  const load = opts.load ?? new HolderLoad();
  // Ranking keeps the order given: the plan's own choices are what is under test.
  const plan = new RangePlan(opts.holders ?? [a, b, c], opts.from ?? 0, settings, load, (ps) => ps);
  return { plan, load };
}

/** Every range nextDue hands out while `emitting` is handed on. */
function due(plan: RangePlan, emitting: number): number[] {
  const out: number[] = [];
  for (let n = plan.nextDue(emitting); n !== undefined; n = plan.nextDue(emitting)) out.push(n);
  return out;
}

describe('RangePlan: planning', () => {
  it('plans the first range alone, then cuts the blob into ranges from the start offset, the last at its end', () => {
    const { plan } = planOf({ from: 50 });
    expect(plan.head()).toBe(0);
    expect(plan.range(0)).toEqual({ start: 50, end: 149 });
    plan.sized(50 + 3 * RANGE + 7);
    expect(plan.count).toBe(4);
    expect(plan.range(1)).toEqual({ start: 150, end: 249 });
    expect(plan.range(3)).toEqual({ start: 350, end: 356 });
    expect(() => plan.head()).toThrow();
  });

  it('runs at most `parallel` ranges ahead of the one being handed on, and plans each range once', () => {
    const { plan } = planOf({ parallel: 2 });
    plan.head();
    plan.sized(6 * RANGE);
    const planned = [0];
    for (let i = 0; i < plan.count; i++) {
      const now = due(plan, i);
      for (const n of now) expect(n).toBeLessThanOrEqual(i + 2);
      planned.push(...now);
    }
    expect(planned).toEqual([0, 1, 2, 3, 4, 5]);
    // Asked again for any position, nothing is planned a second time.
    expect(due(plan, 0)).toEqual([]);
    expect(due(plan, 5)).toEqual([]);
    expect(due(plan, 1)).toEqual([]);
    for (let i = 0; i < 6; i++) expect(plan.phase(i)).toBe('planned');
  });

  it('a blob of one range has nothing after the first', () => {
    const { plan } = planOf();
    plan.head();
    plan.sized(RANGE);
    expect(plan.count).toBe(1);
    expect(due(plan, 0)).toEqual([]);
  });
});

describe('RangePlan: holders', () => {
  it('asks the least-loaded holder, counting ranges in flight across plans, and none over its limit', () => {
    const load = new HolderLoad();
    const other = planOf({ load }).plan;
    other.asked(other.head(), a); // another download keeps a busy
    const { plan } = planOf({ load, perPeer: 1, parallel: 3 });
    plan.head();
    plan.sized(4 * RANGE);
    const [r1, r2, r3] = due(plan, 0);
    expect(plan.pick(0)).toBe(b);
    plan.asked(0, b);
    expect(plan.pick(r1!)).toBe(c);
    plan.asked(r1!, c);
    // a, b and c each at their limit of 1: nobody is free, but waiting for a slot is worth it.
    expect(plan.pick(r2!)).toBeUndefined();
    expect(plan.worthWaiting(r2!)).toBe(true);
    plan.arrived(0, b, 10);
    expect(load.of('b')).toBe(0);
    expect(plan.pick(r2!)).toBe(b);
    expect(plan.phase(0)).toBe('done');
    expect(plan.phase(r1!)).toBe('in-flight');
    expect(plan.phase(r3!)).toBe('planned');
  });

  it('moves a failed range to another holder, and gives up once every holder failed it', () => {
    const { plan, load } = planOf();
    const r = plan.head();
    // Each holder in turn fails the range: the next one asked is one not tried for it yet.
    for (const [failing, next] of [[a, b], [b, c], [c, undefined]] as const) {
      expect(plan.pick(r)).toBe(failing);
      plan.asked(r, failing);
      expect(plan.phase(r)).toBe('in-flight');
      plan.failed(r, failing, false);
      expect(plan.phase(r)).toBe('planned');
      expect(load.of(failing.id)).toBe(0);
      expect(plan.pick(r)).toBe(next);
    }
    expect(plan.worthWaiting(r)).toBe(false);
  });

  it('asks a busy holder again, but not without end', () => {
    const { plan } = planOf({ holders: [a] });
    const r = plan.head();
    // Up to 50 busy answers are waited out; the 51st gives up.
    for (let answers = 1; answers <= 51; answers++) {
      expect(plan.pick(r)).toBe(a);
      plan.asked(r, a);
      plan.failed(r, a, true);
      expect(plan.worthWaiting(r)).toBe(answers <= 50);
    }
  });
});

describe('RangePlan: hedging', () => {
  it('hedges a lagging range on another holder than the one sending it, and the first copy wins', () => {
    const { plan, load } = planOf();
    const r = plan.head();
    expect(plan.pick(r)).toBe(a);
    plan.asked(r, a);
    const spare = plan.hedge(r);
    expect(spare).toBe(b);
    plan.asked(r, spare!);
    expect(load.of('a') + load.of('b')).toBe(2);
    plan.arrived(r, b, 30);
    // The slow holder's copy is given up: its slot freed, and the range stays done.
    plan.failed(r, a, false);
    expect(plan.phase(r)).toBe('done');
    expect(load.of('a')).toBe(0);
    expect(load.of('b')).toBe(0);
  });

  it('has no hedge when every other holder is at its limit', () => {
    const load = new HolderLoad();
    for (let i = 0; i < 2; i++) load.take('b');
    const { plan } = planOf({ holders: [a, b], load, perPeer: 2 });
    const r = plan.head();
    plan.asked(r, a);
    expect(plan.hedge(r)).toBeUndefined();
  });

  it('counts a range as lagging after the setting, or twice the typical range time when that is longer', () => {
    const { plan } = planOf({ hedgeAfterMs: 1_000, parallel: 10 });
    plan.head();
    expect(plan.lagsAfterMs()).toBe(1_000);
    plan.sized(10 * RANGE);
    const ranges = [0, ...due(plan, 0)];
    // Typical (the median) 900 ms: a range lags after 1800 ms; one outlier does not move it.
    const times = [800, 900, 950, 20_000];
    times.forEach((ms, i) => {
      plan.asked(ranges[i]!, a);
      plan.arrived(ranges[i]!, a, ms);
    });
    expect(plan.lagsAfterMs()).toBe(2 * 950);
    plan.asked(ranges[4]!, b);
    plan.arrived(ranges[4]!, b, 100);
    expect(plan.lagsAfterMs()).toBe(2 * 900);
  });
});
