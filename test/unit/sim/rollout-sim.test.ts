import { describe, expect, it } from 'vitest';
import { SCENARIO_DEFAULTS, simulateRollout, type RolloutScenario } from '../../../src/sim/index.js';

const base: RolloutScenario = { ...SCENARIO_DEFAULTS, nodes: 12, imageBytes: 64 << 20, rateBits: 1e9, stepMs: 2 };

describe('simulateRollout', () => {
  it('today\'s line: every node done, the seed sends the image once, each node uploads at most one', async () => {
    const r = await simulateRollout(base);
    expect(r.unfinished).toBe(0);
    expect(r.seedOverImage).toBeCloseTo(1, 1);
    expect(r.maxUploadOverImage).toBeLessThanOrEqual(1.01);
  });

  it('is the same run for the same seed', async () => {
    const s = { ...base, slowFrac: 0.2, crashFrac: 0.1, crashDetectMs: 200, seed: 7 };
    const [a, b] = [await simulateRollout(s), await simulateRollout(s)];
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
  });

  it('stripe trees: every survivor done after a crash, long before the 45 s idle timeout, the seed about once', async () => {
    const r = await simulateRollout({ ...base, nodes: 21, design: 'stripes', crashFrac: 0.05 });
    expect(r.crashed).toBe(1);
    expect(r.unfinished).toBe(0);
    // Virtual time: the orphans were found stalled and re-pointed, not left to the stream's idle timeout.
    expect(r.makespanMs).toBeLessThan(r.boundMs + 10_000);
    expect(r.seedOverImage).toBeLessThan(1.2);
  });

  it('stripe trees with the daemon\'s paced reports: the keeper acts on a dead parent only when a child\'s report names it', async () => {
    const s = { ...base, nodes: 21, design: 'stripes' as const, crashFrac: 0.05, crashDetectMs: 2_000 };
    const [direct, paced, atOnce] = [
      await simulateRollout(s),
      await simulateRollout({ ...s, keeperHearing: 'paced' }),
      await simulateRollout({ ...s, keeperHearing: 'at-once' }),
    ];
    for (const r of [direct, paced, atOnce]) expect(r.unfinished).toBe(0);
    // Virtual time: with reports paced (21 nodes: every 2.6 s) the orphans wait for the next one.
    expect(paced.makespanMs).toBeGreaterThanOrEqual(atOnce.makespanMs);
    expect(atOnce.makespanMs).toBeGreaterThanOrEqual(direct.makespanMs);
  });
});
