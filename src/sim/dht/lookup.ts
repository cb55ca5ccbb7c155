// How long a fetcher waits for its first provider: blobs held by a few hosts are announced (by the sweep,
// or today's per-blob provide), then lookups from random other hosts walk toward each blob's key until a
// node answering holds a record. Latency is the simulated round trips only (no CPU, no dials).
import { DEFAULT_PROVIDE_RATE, sweepRegionBits } from '../../p2p/index.js';
import { Rng } from '../rng.js';
import { SimDhtNetwork, nearest } from './network.js';
import { makeBlobs } from './provide-cost.js';
import { ChoiceCache, runSweepHost, type Blob } from './sweep-host.js';
import { simWalk } from './walk.js';

export interface LookupOptions {
  nodes: number;
  seed: number;
  /** Blobs announced, and hosts holding each. */
  blobs?: number;
  holders?: number;
  lookups?: number;
  replication?: number;
  intervalMs?: number;
  latencyMs?: [number, number];
  k?: number;
  alpha?: number;
  /** 'sweep': layerd's ProvideSweep places the records; 'per-key': a walk to each key and its k closest. */
  placement: 'sweep' | 'per-key';
  /**
   * Churn between the records' placing and the lookups: this fraction of the hosts not holding the blobs
   * is gone (their records with them, and a request to one times out after `deadTimeoutMs`).
   */
  churn?: number;
  deadTimeoutMs?: number;
}

export interface LookupResult {
  nodes: number;
  placement: string;
  found: number;
  lookups: number;
  p50Ms: number;
  p99Ms: number;
  meanRequests: number;
  churn: number;
  /** Records on one of the key's true k closest peers (where a lookup walks to), of all placed. */
  recordsInClosestK: number;
  /** Blobs whose true `replication` closest peers all got a record. */
  blobsExact: number;
}

export async function runLookups(opts: LookupOptions): Promise<LookupResult> {
  const o = { blobs: 100, holders: 3, lookups: 1000, replication: 20, intervalMs: 12 * 3_600_000, latencyMs: [0.2, 1] as [number, number], k: 20, alpha: 3, churn: 0, deadTimeoutMs: 1_000, ...opts };
  const rng = new Rng(o.seed);
  const net = new SimDhtNetwork(o.nodes, o.k, rng.fork());
  const blobs = makeBlobs(o.blobs, rng.fork());
  const holdersOf = blobs.map(() => rng.shuffled(Array.from({ length: o.nodes }, (_, i) => i)).slice(0, Math.min(o.holders, o.nodes - 1)));
  const regionBits = sweepRegionBits(o.nodes, o.k); // as the daemon sizes them (dht-router.ts)
  const cache = new ChoiceCache();
  for (let h = 0; h < o.nodes; h++) {
    const held = blobs.filter((_, i) => holdersOf[i]!.includes(h));
    if (held.length === 0) continue;
    if (o.placement === 'sweep') {
      const run = { intervalMs: o.intervalMs, regionBits, replication: o.replication, maxRequestsPerSecond: DEFAULT_PROVIDE_RATE, alpha: o.alpha, latencyMs: o.latencyMs, untilMs: 600_000, keepRecords: true };
      await runSweepHost(net, h, held, rng.fork(), run, () => undefined, cache);
    } else {
      for (const b of held) for (const p of simWalk(net, h, b.hi, b.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: 0 }).closest) net.addRecord(b.name, p);
    }
  }
  const placed = placementQuality(net, blobs, o.k, o.placement === 'sweep' ? o.replication : o.k);
  const dead = killHosts(net, holdersOf, o.churn, rng);
  const times: number[] = [];
  let requests = 0;
  for (let i = 0; i < o.lookups; i++) {
    const b = rng.int(blobs.length);
    let from = rng.int(o.nodes);
    while (holdersOf[b]!.includes(from) || dead[from]) from = rng.int(o.nodes);
    const res = simWalk(net, from, blobs[b]!.hi, blobs[b]!.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: 0, providersOf: blobs[b]!.name, dead, deadTimeoutMs: o.deadTimeoutMs });
    requests += res.requests;
    if (res.firstProviderMs !== undefined) times.push(res.firstProviderMs);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))]! : NaN);
  return { nodes: o.nodes, placement: o.placement, found: times.length, lookups: o.lookups, p50Ms: pct(0.5), p99Ms: pct(0.99), meanRequests: requests / o.lookups, churn: o.churn, ...placed };
}

/** How well the records sit: on the keys' true closest peers (computed over the whole network), or not. */
function placementQuality(net: SimDhtNetwork, blobs: Blob[], k: number, replication: number): { recordsInClosestK: number; blobsExact: number } {
  const all = Array.from({ length: net.size }, (_, i) => i);
  let records = 0;
  let inK = 0;
  let exact = 0;
  for (const b of blobs) {
    const holders = net.records.get(b.name) ?? new Set<number>();
    const closest = nearest(all, net.hi, net.lo, b.hi, b.lo, k);
    records += holders.size;
    inK += [...holders].filter((p) => closest.includes(p)).length;
    if (closest.slice(0, replication).every((p) => holders.has(p))) exact++;
  }
  return { recordsInClosestK: records ? inK / records : NaN, blobsExact: exact / blobs.length };
}

/** Takes `fraction` of the hosts that hold no blob out of the network, with the records they stored. */
function killHosts(net: SimDhtNetwork, holdersOf: number[][], fraction: number, rng: Rng): Uint8Array {
  const dead = new Uint8Array(net.size);
  const holders = new Set(holdersOf.flat());
  const others = rng.shuffled(Array.from({ length: net.size }, (_, i) => i).filter((i) => !holders.has(i)));
  for (const h of others.slice(0, Math.round(fraction * net.size))) dead[h] = 1;
  for (const set of net.records.values()) for (const h of [...set]) if (dead[h]) set.delete(h);
  return dead;
}
