// One simulated host running layerd's own provide schedule (ProvideSweep and its SweepDriver, the classes
// the daemon runs) against the simulated DHT: a region walk is a simulated walk toward the region's
// middle, an announcement is ADD_PROVIDER to the `replication` peers of the region closest to each key.
import { ProvideSweep, SWEEP_WALK_REQUESTS, SweepDriver, keyRegion, type SweepExecutor } from '../../p2p/index.js';
import type { Rng } from '../rng.js';
import { VirtualClock } from '../virtual-clock.js';
import { nearest, type SimDhtNetwork } from './network.js';
import { simWalk } from './walk.js';

export interface Blob {
  name: string;
  key: Uint8Array;
  hi: number;
  lo: number;
}

export interface SweepHostOptions {
  intervalMs: number;
  regionBits: number;
  /** Peers each key's record goes to. */
  replication: number;
  maxRequestsPerSecond: number;
  alpha: number;
  latencyMs: [number, number];
  /** Run until this virtual time. */
  untilMs: number;
  /** Keep the records placed (for lookups afterwards). */
  keepRecords: boolean;
}

export type RequestSink = (from: number, to: number, atMs: number) => void;

/** Which peers get a key's record: the `n` of the region's peers closest to it. */
export class ChoiceCache {
  /** Only the last peer set's choices are kept: a host's batches come region by region. */
  private last: { sig: string; chosen: Map<string, number[]> } = { sig: '', chosen: new Map() };

  choose(net: SimDhtNetwork, peers: number[], blob: Blob, n: number): number[] {
    const sig = peers.join(',');
    if (sig !== this.last.sig) this.last = { sig, chosen: new Map() };
    let chosen = this.last.chosen.get(blob.name);
    if (!chosen) this.last.chosen.set(blob.name, (chosen = nearest(peers, net.hi, net.lo, blob.hi, blob.lo, n)));
    return chosen;
  }
}

/** Runs one host's provide schedule from a cold start (every blob new) until `untilMs`; returns its driver's counts. */
export async function runSweepHost(net: SimDhtNetwork, host: number, blobs: Blob[], rng: Rng, o: SweepHostOptions, sink: RequestSink, cache: ChoiceCache) {
  const clock = new VirtualClock();
  const sweep = new ProvideSweep({ intervalMs: o.intervalMs, regionBits: o.regionBits, phase: rng.next(), maxBatch: Math.max(1, Math.floor(o.maxRequestsPerSecond / 2 / o.replication)) });
  const byName = new Map(blobs.map((b) => [b.name, b]));
  // What each walk surely found (the daemon's walkCovers, on the simulator's 64-bit ids), by the very
  // peer list the sweep hands back; walks made for keys no region walk covered, kept for the next keys.
  const balls = new WeakMap<readonly string[], Ball>();
  const own: string[][] = [];
  let ownWalks = 0;
  const walkToward = (b: Blob) => {
    const res = simWalk(net, host, b.hi, b.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: clock.now(), onRequest: sink });
    return { res, ball: { th: b.hi, tl: b.lo, found: res.closest, complete: res.closest.length < net.k, fits: false } };
  };
  const exec: SweepExecutor = {
    async walk(region, key) {
      // Toward a key of the region, as the daemon walks (kad-dht walks only toward keys it hashes itself).
      const { res, ball } = walkToward(byName.get(key)!);
      await clock.sleep(res.ms);
      // The walk hears of most of the region's peers on its way in: they are the candidates for its keys.
      const inRegion = res.seen.filter((p) => keyRegion(net.keys[p]!, o.regionBits) === region);
      const peers = [...new Set([...res.closest, ...inRegion])].sort((a, b) => a - b).map(String);
      balls.set(peers, { ...ball, fits: res.closest.some((p) => keyRegion(net.keys[p]!, o.regionBits) !== region) });
      return { peers, requests: res.requests };
    },
    async announce(keys, peers) {
      let requests = 0;
      let prepaid = 0;
      for (const name of keys) {
        const blob = byName.get(name)!;
        let ids = [peers ?? [], ...own].find((list) => covers(net, balls.get(list), blob, o.replication));
        if (!ids) {
          await driver.pay(SWEEP_WALK_REQUESTS);
          prepaid += SWEEP_WALK_REQUESTS;
          const { res, ball } = walkToward(blob);
          ownWalks++;
          await clock.sleep(res.ms);
          requests += res.requests;
          ids = res.closest.map(String);
          balls.set(ids, ball);
          own.unshift(ids);
          own.length = Math.min(own.length, 4);
        }
        for (const p of cache.choose(net, ids.map(Number), blob, o.replication)) {
          sink(host, p, clock.now());
          requests++;
          if (o.keepRecords) net.addRecord(name, p);
        }
      }
      return { failed: [], requests, prepaid: Math.min(prepaid, requests) };
    },
  };
  const driver = new SweepDriver(sweep, exec, clock, { maxRequestsPerSecond: o.maxRequestsPerSecond, requestsPerKey: o.replication, walkRequests: SWEEP_WALK_REQUESTS });
  driver.start();
  for (const b of blobs) void driver.add(b.name, b.key);
  await clock.run({ until: o.untilMs });
  driver.stop();
  return { walks: sweep.counts.walks + ownWalks, ownWalks, batches: sweep.counts.batches, announced: sweep.counts.announced, requests: driver.requests };
}

interface Ball {
  th: number;
  tl: number;
  found: number[];
  complete: boolean;
  /** A region walk that reached past its region (see the daemon's kad-sweep.ts). */
  fits: boolean;
}

/** walkCovers (p2p/keyspace.ts) on 64-bit ids: the walk surely found the blob's `n` closest peers. */
function covers(net: SimDhtNetwork, ball: Ball | undefined, blob: Blob, n: number): boolean {
  if (!ball) return false;
  if (ball.complete || ball.fits) return true;
  if (ball.found.length < n) return false;
  let rh = 0;
  let rl = 0;
  for (const p of ball.found) {
    const h = (net.hi[p]! ^ ball.th) >>> 0;
    const l = (net.lo[p]! ^ ball.tl) >>> 0;
    if (h > rh || (h === rh && l > rl)) [rh, rl] = [h, l];
  }
  const nth = nearest(ball.found, net.hi, net.lo, blob.hi, blob.lo, n)[n - 1]!;
  const nh = (net.hi[nth]! ^ blob.hi) >>> 0;
  const nl = (net.lo[nth]! ^ blob.lo) >>> 0;
  // Every distance below the n-th's lies under 2^(its bit length): a conservative spread.
  const spreadH = nh > 0 ? 2 ** (32 - Math.clz32(nh)) - 1 : 0;
  const spreadL = nh > 0 ? 0xffffffff : 2 ** (32 - Math.clz32(nl)) - 1;
  const vh = ((blob.hi ^ ball.th) | spreadH) >>> 0;
  const vl = ((blob.lo ^ ball.tl) | spreadL) >>> 0;
  return vh < rh || (vh === rh && vl < rl);
}
