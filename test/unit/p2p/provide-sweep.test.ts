import { describe, expect, it } from 'vitest';
import { closestTo, estimateNetworkSize, kadKeyOf, keyRegion, regionBitsFor, sweepRegionBits, type KadKey } from '../../../src/p2p/keyspace.js';
import { ProvideSweep, type ProvideSweepOptions } from '../../../src/p2p/provide-sweep.js';
import { SweepDriver, type SweepExecutor } from '../../../src/p2p/provide-sweep-driver.js';
import { VirtualClock } from '../../../src/sim/index.js';

const S = 1000;
const key = (i: number): [string, KadKey] => [`k${i}`, kadKeyOf(Buffer.from(`key ${i}`))];

/** An executor that records what was sent when, on the virtual clock. */
function recorder(clock: VirtualClock, perKey = 20, walkCost = 10) {
  const log = { walks: [] as Array<{ at: number; region: number }>, announced: [] as Array<{ at: number; key: string }>, perSecond: new Map<number, number>() };
  const count = (n: number) => {
    const sec = Math.floor(clock.now() / S);
    log.perSecond.set(sec, (log.perSecond.get(sec) ?? 0) + n);
  };
  let failNext = 0;
  const exec: SweepExecutor & { failNext(n: number): void } = {
    failNext: (n) => void (failNext = n),
    async walk(region) {
      log.walks.push({ at: clock.now(), region });
      count(walkCost);
      return { peers: ['p1', 'p2'], requests: walkCost };
    },
    async announce(keys) {
      for (const k of keys) log.announced.push({ at: clock.now(), key: k });
      count(keys.length * perKey);
      const failed = failNext > 0 ? keys.slice(0, failNext) : [];
      failNext = Math.max(0, failNext - failed.length);
      return { failed, requests: keys.length * perKey };
    },
  };
  return { log, exec };
}

function setup(o: Partial<ProvideSweepOptions> & { rate?: number } = {}) {
  const clock = new VirtualClock();
  const sweep = new ProvideSweep({ intervalMs: 1000 * S, regionBits: 3, phase: 0, maxBatch: 2, ...o });
  const { log, exec } = recorder(clock);
  const driver = new SweepDriver(sweep, exec, clock, { maxRequestsPerSecond: o.rate ?? 100, requestsPerKey: 20, walkRequests: 10 });
  driver.start();
  return { clock, sweep, log, exec, driver };
}

describe('ProvideSweep', () => {
  it('spreads re-provides evenly over the interval and announces every key once a cycle', async () => {
    const { clock, log, driver } = setup();
    for (let i = 0; i < 1000; i++) driver.add(...key(i), false);
    await clock.run({ until: 2000 * S });
    driver.stop();
    const cycle = log.announced.filter((a) => a.at >= 1000 * S);
    expect(new Set(cycle.map((a) => a.key)).size).toBe(1000);
    expect(cycle.length).toBe(1000);
    // Tenths of the cycle each carry about a tenth of the keys (hashed keys are uniform in the keyspace).
    const tenths = Array.from({ length: 10 }, (_, t) => cycle.filter((a) => Math.floor((a.at - 1000 * S) / (100 * S)) === t).length);
    for (const n of tenths) expect(n).toBeGreaterThan(60), expect(n).toBeLessThan(140);
    // The worst second holds the few keys that happened to be due together, within the rate and its burst.
    expect(Math.max(...log.perSecond.values())).toBeLessThanOrEqual(100 + 50);
    expect(log.perSecond.size).toBeGreaterThan(500);
  });

  it('walks each region once per cycle, reusing the walk for all its keys', async () => {
    const { clock, log, driver } = setup({ regionBits: 3 });
    for (let i = 0; i < 400; i++) driver.add(...key(i), false);
    await clock.run({ until: 1000 * S - 1 });
    driver.stop();
    expect(log.announced.length).toBe(400);
    expect(log.walks.length).toBe(8);
    expect(new Set(log.walks.map((w) => w.region)).size).toBe(8);
  });

  it('announces new keys promptly, one walk per region they fall in', async () => {
    const { clock, log, driver } = setup({ regionBits: 2, maxBatch: 50 });
    const keys = Array.from({ length: 12 }, (_, i) => key(i));
    const done = Promise.all(keys.map(([k, kad]) => driver.add(k, kad)));
    await clock.run({ until: 5 * S });
    await done;
    expect(log.announced.map((a) => a.key).sort()).toEqual(keys.map(([k]) => k).sort());
    expect(log.walks.length).toBe(new Set(keys.map(([, kad]) => keyRegion(kad, 2))).size);
    driver.stop();
  });

  it('bounds the request rate however many new keys arrive at once', async () => {
    const { clock, log, driver } = setup({ maxBatch: 2, rate: 100 });
    const all = Promise.all(Array.from({ length: 500 }, (_, i) => driver.add(...key(i))));
    let finished = -1;
    void all.then(() => (finished = clock.now()));
    await clock.run({ until: 500 * S });
    driver.stop();
    expect(log.announced.length).toBe(500);
    // 500 keys × 20 requests + 8 walks × 10 at 100 a second: about 100 s, never faster than the rate.
    expect(finished).toBeGreaterThanOrEqual(100 * S);
    for (const n of log.perSecond.values()) expect(n).toBeLessThanOrEqual(100 + 50);
  });

  it('drops a withdrawn key from the schedule and settles its pending provide', async () => {
    const { clock, log, driver } = setup();
    const [k, kad] = key(1);
    driver.add(...key(2), false);
    const pending = driver.add(k, kad);
    driver.remove(k);
    await pending;
    await clock.run({ until: 3000 * S });
    driver.stop();
    expect(log.announced.some((a) => a.key === k)).toBe(false);
    expect(log.announced.filter((a) => a.key === 'k2').length).toBe(3);
  });

  it('tries a failed announcement again after the retry delay, not a cycle later', async () => {
    const { clock, log, exec, driver } = setup({ retryMs: 30 * S });
    exec.failNext(1);
    const [k, kad] = key(7);
    await Promise.all([driver.add(k, kad), clock.run({ until: 10 * S })]);
    await clock.run({ until: 100 * S });
    driver.stop();
    const times = log.announced.filter((a) => a.key === k).map((a) => a.at);
    expect(times.length).toBe(2);
    expect(times[1]! - times[0]!).toBe(30 * S);
  });

  it('tells when a key queued behind others has had its first announcement', async () => {
    const { clock, log, driver } = setup({ rate: 20 });
    for (let i = 0; i < 5; i++) void driver.add(...key(i));
    let at: number | undefined;
    void driver.announced('k4').then(() => (at = clock.now()));
    await clock.run({ until: 100 * S });
    const sent = log.announced.find((a) => a.key === 'k4')!.at;
    expect(at).toBeGreaterThanOrEqual(sent);
    expect(at).toBeGreaterThan(0); // it waited for its turn behind four others
    let none: number | undefined;
    void driver.announced('never-added').then(() => (none = 1));
    await Promise.resolve();
    expect(none).toBe(1);
  });

  it('sizes regions so each holds about the replication factor of peers', () => {
    expect(regionBitsFor(10, 20)).toBe(0);
    expect(regionBitsFor(1000, 20)).toBe(5);
    expect(regionBitsFor(100_000, 20)).toBe(12);
  });

  it("sizes the daemon's regions at k/2 to k peers, so a walk's k closest hold the whole region", () => {
    expect(sweepRegionBits(15, 20)).toBe(0);
    expect(sweepRegionBits(1000, 20)).toBe(6); // 64 regions of ~16 peers
    // Every peer of a prefix region is closer to any key of it than every peer outside: the k closest to a key
    // of a region of at most k peers hold all of it, so each key's closest peers are among them.
    const peers = Array.from({ length: 1000 }, (_, i) => ({ key: kadKeyOf(Buffer.from(`peer ${i}`)) }));
    const bits = sweepRegionBits(peers.length, 20);
    for (let i = 0; i < 50; i++) {
      const [, k] = key(i);
      const region = keyRegion(k, bits);
      const members = peers.filter((p) => keyRegion(p.key, bits) === region);
      if (members.length > 20) continue;
      const found = new Set(closestTo(k, peers, 20));
      for (const m of members) expect(found.has(m)).toBe(true);
    }
  });

  it("estimates the network's size from a walk's k closest peers", () => {
    for (const n of [200, 1000, 5000]) {
      const peers = Array.from({ length: n }, (_, i) => ({ key: kadKeyOf(Buffer.from(`net ${n} peer ${i}`)) }));
      const estimates = Array.from({ length: 9 }, (_, i) => {
        const target = kadKeyOf(Buffer.from(`target ${i}`));
        return estimateNetworkSize(target, closestTo(target, peers, 20).map((p) => p.key), 20);
      }).sort((a, b) => a - b);
      const median = estimates[4]!;
      expect(median).toBeGreaterThan(n * 0.6);
      expect(median).toBeLessThan(n * 1.6);
      // One bit of region off at most: the regions stay within twice or half the size meant.
      expect(Math.abs(sweepRegionBits(median, 20) - sweepRegionBits(n, 20))).toBeLessThanOrEqual(1);
    }
    // A walk that met fewer than k peers met them all.
    expect(estimateNetworkSize(kadKeyOf(Buffer.from('t')), [kadKeyOf(Buffer.from('a'))], 20)).toBe(2);
  });

  it('moves every key to its region of a new size, and forgets the walks of the old ones', async () => {
    const clock = new VirtualClock();
    const sweep = new ProvideSweep({ intervalMs: 1000 * S, regionBits: 0, phase: 0, maxBatch: 100 });
    const { log, exec } = recorder(clock);
    const batches: string[][] = [];
    const announce = exec.announce.bind(exec);
    exec.announce = (keys, peers) => (batches.push(keys), announce(keys, peers));
    const driver = new SweepDriver(sweep, exec, clock, { maxRequestsPerSecond: 10_000, requestsPerKey: 20, walkRequests: 10 });
    driver.start();
    for (let i = 0; i < 64; i++) driver.add(...key(i));
    await clock.run({ until: 10 * S });
    expect(log.walks.map((w) => w.region)).toEqual([0]); // one region: one walk for all
    sweep.setRegionBits(2);
    expect(sweep.currentRegionBits).toBe(2);
    expect(sweep.walkOf(0, clock.now())).toBeUndefined();
    const before = batches.length;
    for (let i = 64; i < 128; i++) driver.add(...key(i));
    await clock.run({ until: 20 * S });
    driver.stop();
    // The new keys went by the four regions of two bits, each batch from one region only.
    expect(log.walks.slice(1).map((w) => w.region).sort()).toEqual([0, 1, 2, 3]);
    const regionOf = new Map(Array.from({ length: 128 }, (_, i) => [key(i)[0], keyRegion(key(i)[1], 2)]));
    const late = batches.slice(before);
    expect(late.flat()).toHaveLength(64);
    for (const b of late) expect(new Set(b.map((k) => regionOf.get(k))).size).toBe(1);
  });
});
