import { describe, expect, it } from 'vitest';
import { FairShare, type FairFlow } from '../../../src/sim/index.js';

const flow = (uses: Array<[number, number]>, cap = Infinity): FairFlow => ({ uses: uses.map(([resource, weight]) => ({ resource, weight })), cap, rate: 0 });

function solve(caps: number[], flows: FairFlow[]): number[] {
  const share = new FairShare(new Float64Array(caps));
  share.index(flows);
  share.allocate(flows);
  return flows.map((f) => Math.round(f.rate * 1000) / 1000);
}

describe('FairShare', () => {
  it('splits a resource equally, and gives what a capped flow leaves to the rest', () => {
    expect(solve([90], [flow([[0, 1]]), flow([[0, 1]]), flow([[0, 1]])])).toEqual([30, 30, 30]);
    expect(solve([90], [flow([[0, 1]], 10), flow([[0, 1]]), flow([[0, 1]])])).toEqual([10, 40, 40]);
  });

  it('is max-min fair across resources: a flow held back on one link leaves its share on the other', () => {
    // Flows a and b share link 0 (100); b also crosses link 1 (20), which holds it to 20, so a gets 80.
    expect(solve([100, 20], [flow([[0, 1]]), flow([[0, 1], [1, 1]])])).toEqual([80, 20]);
  });

  it('settles when the wants sum to the capacity exactly (no swinging between full and free)', () => {
    expect(solve([100, 100, 2], [flow([[0, 1], [1, 1], [2, 0.01]])])).toEqual([100]);
  });

  it('shares CPU by time: a flow cheap per byte gets more bytes for the same CPU', () => {
    // One core; flow a costs 0.01 s per byte, b 0.04: each gets half the core.
    expect(solve([1], [flow([[0, 0.01]]), flow([[0, 0.04]])])).toEqual([50, 12.5]);
  });

  it('never overfills a resource', () => {
    const flows = [flow([[0, 1], [1, 1]]), flow([[1, 1], [2, 1]]), flow([[0, 1], [2, 1]]), flow([[0, 2], [1, 0.5], [2, 1]])];
    solve([10, 7, 13], flows);
    for (const [r, cap] of [10, 7, 13].entries()) {
      const used = flows.reduce((sum, f) => sum + f.rate * (f.uses.find((u) => u.resource === r)?.weight ?? 0), 0);
      expect(used).toBeLessThanOrEqual(cap * (1 + 1e-9));
    }
  });
});
