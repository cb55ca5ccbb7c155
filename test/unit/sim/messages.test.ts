import { describe, expect, it } from 'vitest';
import { BOX_COSTS, BOX_CPU, Cluster, CpuCost, ReportLoad, SCENARIO_DEFAULTS, simulateRollout, spreadMs, spreadOffers, VirtualClock } from '../../../src/sim/index.js';

describe('the rollout\'s messages', () => {
  it('counts the spread: the origin to every peer, each peer on to all but the origin and its sender, one hand-back each', () => {
    expect(spreadOffers(1)).toBe(0);
    expect(spreadOffers(2)).toBe(1);
    // 8 hosts: 7 + 7 × 6 + 6.
    expect(spreadOffers(8)).toBe(55);
    expect(spreadOffers(32)).toBe(31 + 31 * 30 + 30);
    expect(spreadMs(32, { messageCpu: 0.05 }, 2)).toBeCloseTo((991 * 0.05 * 1000) / 2, 6);
  });

  it('charges each running node half a report a report time, and the origin the other half of every report it hears', async () => {
    const clock = new VirtualClock();
    const links = Array.from({ length: 5 }, () => ({ upBits: 1e8, downBits: 1e8 }));
    const costs = { ...BOX_COSTS, idleCores: 0, messageCpu: 0.04, reportEveryMs: 1000 };
    const c = new Cluster(clock, links, [1], { ...SCENARIO_DEFAULTS, stepMs: 1, cpu: 'pool', cores: 2, costs: new CpuCost(costs) });
    new ReportLoad(c, costs, 1).update([1, 2, 3]);
    clock.after(10_000, () => undefined);
    await c.run(() => clock.now() >= 10_000, 20_000);
    // Over 10 s: nodes 2 and 3 sent 10 reports each (half of 0.04 s each), the origin heard 20; node 4 is not running.
    expect(c.cpuUsed[2]).toBeCloseTo(0.2, 6);
    expect(c.cpuUsed[3]).toBeCloseTo(0.2, 6);
    expect(c.cpuUsed[1]).toBeCloseTo(0.4, 6);
    expect(c.cpuUsed[4]).toBe(0);
  });

  it('on this box, holds back a 32-host rollout by the spread and slows it by the reports', async () => {
    const base = { ...SCENARIO_DEFAULTS, ...BOX_CPU, nodes: 32, imageBytes: 8 << 20, rateBits: 20e6, stepMs: 5 };
    const [quiet, counted] = [await simulateRollout({ ...base, messages: false }), await simulateRollout(base)];
    const spread = spreadMs(32, BOX_COSTS, BOX_CPU.cores);
    expect(counted.firstMs - quiet.firstMs).toBeGreaterThan(spread);
    expect(counted.makespanMs - quiet.makespanMs).toBeGreaterThan(spread);
    expect(counted.hostsCpuSeconds - quiet.hostsCpuSeconds).toBeGreaterThan(spreadOffers(32) * BOX_COSTS.messageCpu);
  });
});
