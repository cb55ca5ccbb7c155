import { describe, expect, it } from 'vitest';
import { BOX_COSTS, BOX_CPU, Cluster, CpuCost, ReportLoad, SCENARIO_DEFAULTS, simulateRollout, SpreadLoad, spreadOffers, VirtualClock } from '../../../src/sim/index.js';

describe('the rollout\'s messages', () => {
  it('counts the spread: the origin to every peer, each peer on to all but the origin and its sender, one hand-back each', () => {
    expect(spreadOffers(1)).toBe(0);
    expect(spreadOffers(2)).toBe(1);
    // 8 hosts: 7 + 7 × 6 + 6.
    expect(spreadOffers(8)).toBe(55);
    expect(spreadOffers(32)).toBe(31 + 31 * 30 + 30);
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

  it('runs the spread beside the streams: all the free pool with no transfer, N ÷ (N + transfers) of it with some', async () => {
    const costs = { ...BOX_COSTS, idleCores: 0, offerCpu: 0.01 };
    const spreadTime = async (transfers: number) => {
      const clock = new VirtualClock();
      const links = Array.from({ length: 5 }, () => ({ upBits: 1e6, downBits: 1e6 }));
      const c = new Cluster(clock, links, [1e9], { ...SCENARIO_DEFAULTS, stepMs: 1, cpu: 'pool', cores: 1, costs: new CpuCost(costs) });
      for (let h = 1; h <= transfers; h++) c.open(0, h, 0);
      let doneAt = 0;
      // 4 nodes: spreadOffers(4) = 11 offers, 0.11 CPU s in all.
      new SpreadLoad(c, costs, 4, () => (doneAt = clock.now()), 10).start();
      await c.run(() => doneAt > 0, 60_000);
      let cpu = 0;
      for (let h = 1; h <= 4; h++) cpu += c.cpuUsed[h]!;
      return { doneAt, cpu, moved: c.has(1, 0) };
    };
    const alone = await spreadTime(0);
    expect(alone.doneAt).toBeCloseTo(110, 0);
    expect(alone.cpu).toBeCloseTo(spreadOffers(4) * 0.01, 6);
    // Four transfers (link-bound, 125 kB/s each, with CPU to spare): the spread takes 4 ÷ 8 of the pool left.
    const beside = await spreadTime(4);
    expect(beside.doneAt).toBeGreaterThan(1.5 * alone.doneAt);
    expect(beside.moved).toBeGreaterThan(0);
  });

  it('on this box, starts a 32-host rollout\'s bytes beside the spread, and charges the spread and the reports', async () => {
    // Large enough that the spread (42.6 CPU s, about half the pool beside the streams) ends before the bytes do.
    const base = { ...SCENARIO_DEFAULTS, ...BOX_CPU, nodes: 32, imageBytes: 100 << 20, rateBits: 20e6, stepMs: 20 };
    const [quiet, counted] = [await simulateRollout({ ...base, messages: false }), await simulateRollout(base)];
    const spreadCpu = spreadOffers(32) * BOX_COSTS.offerCpu;
    // Held ahead of the bytes the spread would delay the first host by its CPU over the pool; beside them, less.
    expect(counted.firstMs - quiet.firstMs).toBeLessThan((spreadCpu / BOX_CPU.cores) * 1000);
    expect(counted.p50Ms).toBeGreaterThan(quiet.p50Ms);
    expect(counted.hostsCpuSeconds - quiet.hostsCpuSeconds).toBeGreaterThan(spreadCpu);
    expect(counted.makespanMs).toBeGreaterThan(quiet.makespanMs);
  });
});
