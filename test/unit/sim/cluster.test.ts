import { describe, expect, it } from 'vitest';
import { BOX_COSTS, Cluster, CpuCost, VirtualClock, type ClusterSettings } from '../../../src/sim/index.js';

const MB = 1_000_000;
const settings: ClusterSettings = {
  stepMs: 1,
  relayLagBytes: 64 * 1024,
  latencyMs: 0,
  overhead: 0,
  linkEfficiency: 1,
  peerEfficiency: 1,
  cpu: 'host',
  cores: 100,
  costs: new CpuCost({ ...BOX_COSTS, idleCores: 0 }),
  crashDetectMs: 500,
};

/** A seed and `hosts` hosts on 80 Mbit/s links (10 MB/s), one stream of `bytes`. */
function cluster(hosts: number, bytes: number, s: Partial<ClusterSettings> = {}) {
  const clock = new VirtualClock();
  const links = Array.from({ length: hosts + 1 }, () => ({ upBits: 80e6, downBits: 80e6 }));
  return new Cluster(clock, links, [bytes], { ...settings, ...s });
}

describe('Cluster', () => {
  it('moves a stream at the link rate, and counts what the sender uploaded', async () => {
    const c = cluster(1, 10 * MB);
    let doneAt = 0;
    c.open(0, 1, 0).onDone = () => (doneAt = c.clock.now());
    await c.run(() => doneAt > 0, 60_000);
    expect(doneAt).toBeGreaterThan(990);
    expect(doneAt).toBeLessThan(1010);
    expect(c.uploaded[0]).toBeCloseTo(10 * MB, -3);
  });

  it('a relay sends only what it holds: a chain of three finishes about together, each a lag behind', async () => {
    const c = cluster(3, 10 * MB);
    const done: number[] = [];
    for (let h = 1; h <= 3; h++) c.open(h - 1, h, 0).onDone = () => done.push(c.clock.now());
    await c.run(() => done.length === 3, 60_000);
    expect(done[2]! - done[0]!).toBeLessThan(50);
    expect(c.has(3, 0)).toBe(10 * MB);
  });

  it('two receivers of one sender share its uplink', async () => {
    const c = cluster(2, 10 * MB);
    const done: number[] = [];
    for (const h of [1, 2]) c.open(0, h, 0).onDone = () => done.push(c.clock.now());
    await c.run(() => done.length === 2, 60_000);
    // Each got half the seed's 10 MB/s: about 2 s, not 1.
    expect(done[0]).toBeGreaterThan(1900);
    expect(done[1]).toBeLessThan(2100);
  });

  it('a crashed sender stalls its receivers until they notice, after crashDetectMs', async () => {
    const c = cluster(2, 100 * MB);
    c.open(0, 1, 0);
    const t = c.open(1, 2, 0);
    let brokenAt = 0;
    t.onBroken = () => (brokenAt = c.clock.now());
    c.clock.after(1000, () => c.crash(1));
    await c.run(() => brokenAt > 0, 60_000);
    expect(brokenAt).toBe(1500);
    expect(c.has(2, 0)).toBeLessThan(10 * MB);
  });

  it('work beside the streams takes its CPU out of the pool, and is charged to its host', async () => {
    // From the seed a byte costs 2.8 CPU s/GiB both ends: 0.02 cores move ~7.7 MB/s, 0.01 half that.
    const run = async (besides: number) => {
      const c = cluster(1, 10 * MB, { cpu: 'pool', cores: 0.02 });
      c.setBesides(1, besides);
      let doneAt = 0;
      c.open(0, 1, 0).onDone = () => (doneAt = c.clock.now());
      await c.run(() => doneAt > 0, 60_000);
      return { doneAt, cpu: c.cpuUsed[1]! };
    };
    const [free, busy] = [await run(0), await run(0.01)];
    expect(busy.doneAt / free.doneAt).toBeGreaterThan(1.9);
    expect(busy.doneAt / free.doneAt).toBeLessThan(2.1);
    // The bytes' share plus 0.01 cores for the whole run.
    expect(busy.cpu - free.cpu).toBeCloseTo((0.01 * busy.doneAt) / 1000, 3);
  });
  it('adds up the kinds of work beside the streams, and tells a kind what the others leave it', () => {
    const c = cluster(2, MB, { cpu: 'pool', cores: 1 });
    c.setBesides(1, 0.2, 'reports');
    c.setBesides(1, 0.3, 'spread');
    c.setBesides(2, 0.1, 'spread');
    // The spread is told what the reports leave; the reports what the spread leaves.
    expect(c.freeCores('spread')).toBeCloseTo(0.8, 9);
    expect(c.freeCores('reports')).toBeCloseTo(0.6, 9);
    c.setBesides(1, 0, 'spread');
    expect(c.freeCores('reports')).toBeCloseTo(0.9, 9);
  });
});
