import { describe, expect, it } from 'vitest';
import { Rng, dht } from '../../../src/sim/index.js';

describe('sim/dht', () => {
  it('a walk finds the k closest peers of the whole network to its target', () => {
    const rng = new Rng(3);
    const net = new dht.SimDhtNetwork(200, 20, rng);
    const res = dht.simWalk(net, 0, 0x12345678, 0, rng, { alpha: 3, latencyMs: [0.2, 1], startMs: 0 });
    const all = Array.from({ length: 200 }, (_, i) => i).filter((i) => i !== 0);
    const truth = all.sort((a, b) => ((net.hi[a]! ^ 0x12345678) >>> 0) - ((net.hi[b]! ^ 0x12345678) >>> 0)).slice(0, 20);
    expect(new Set(res.closest)).toEqual(new Set(truth));
    expect(res.requests).toBeGreaterThan(0);
  });

  it('the sweep announces every blob each cycle for fewer requests than a provide per blob, and lookups find them', async () => {
    const cost = await dht.runProvideCost({ nodes: 60, blobs: 40, intervalMs: 600_000, seed: 5, baselineSample: 5, replication: 10 });
    // Each blob's record goes to its 10 closest peers every cycle, plus a share of the region walks.
    expect(cost.after.requestsPerBlobPerCycle).toBeGreaterThanOrEqual(10);
    expect(cost.after.requestsPerBlobPerCycle).toBeLessThan(cost.before.requestsPerBlobPerCycle);
    expect(cost.after.steady.sent.maxPerSecond).toBeLessThanOrEqual(50);
    const lookups = await dht.runLookups({ nodes: 60, seed: 5, placement: 'sweep', lookups: 100, blobs: 20, replication: 10 });
    expect(lookups.found).toBe(100);
    // The region walks put every record on its key's true 10 closest peers (the whole network's).
    expect(lookups.blobsExact).toBe(1);
    expect(lookups.recordsInClosestK).toBe(1);
  });

  it('lookups still find most blobs after churn takes hosts and their records away', async () => {
    const lookups = await dht.runLookups({ nodes: 100, seed: 5, placement: 'sweep', lookups: 200, blobs: 20, replication: 10, churn: 0.3 });
    expect(lookups.churn).toBe(0.3);
    expect(lookups.found).toBeGreaterThanOrEqual(195);
  });
});
