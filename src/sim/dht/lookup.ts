// How long a fetcher waits for its first provider: blobs held by a few hosts are announced (by the sweep,
// or today's per-blob provide), then lookups from random other hosts walk toward each blob's key until a
// node answering holds a record. Latency is the simulated round trips only (no CPU, no dials).
import { regionBitsFor } from '../../p2p/index.js';
import { Rng } from '../rng.js';
import { SimDhtNetwork } from './network.js';
import { makeBlobs } from './provide-cost.js';
import { ChoiceCache, runSweepHost } from './sweep-host.js';
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
}

export interface LookupResult {
  nodes: number;
  placement: string;
  found: number;
  lookups: number;
  p50Ms: number;
  p99Ms: number;
  meanRequests: number;
}

export async function runLookups(opts: LookupOptions): Promise<LookupResult> {
  const o = { blobs: 100, holders: 3, lookups: 1000, replication: 20, intervalMs: 12 * 3_600_000, latencyMs: [0.2, 1] as [number, number], k: 20, alpha: 3, ...opts };
  const rng = new Rng(o.seed);
  const net = new SimDhtNetwork(o.nodes, o.k, rng.fork());
  const blobs = makeBlobs(o.blobs, rng.fork());
  const holdersOf = blobs.map(() => rng.shuffled(Array.from({ length: o.nodes }, (_, i) => i)).slice(0, Math.min(o.holders, o.nodes - 1)));
  const regionBits = regionBitsFor(o.nodes, o.k);
  const cache = new ChoiceCache();
  for (let h = 0; h < o.nodes; h++) {
    const held = blobs.filter((_, i) => holdersOf[i]!.includes(h));
    if (held.length === 0) continue;
    if (o.placement === 'sweep') {
      const run = { intervalMs: o.intervalMs, regionBits, replication: o.replication, maxRequestsPerSecond: 25, alpha: o.alpha, latencyMs: o.latencyMs, untilMs: 600_000, keepRecords: true };
      await runSweepHost(net, h, held, rng.fork(), run, () => undefined, cache);
    } else {
      for (const b of held) for (const p of simWalk(net, h, b.hi, b.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: 0 }).closest) net.addRecord(b.name, p);
    }
  }
  const times: number[] = [];
  let requests = 0;
  for (let i = 0; i < o.lookups; i++) {
    const b = rng.int(blobs.length);
    let from = rng.int(o.nodes);
    while (holdersOf[b]!.includes(from)) from = rng.int(o.nodes);
    const res = simWalk(net, from, blobs[b]!.hi, blobs[b]!.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: 0, providersOf: blobs[b]!.name });
    requests += res.requests;
    if (res.firstProviderMs !== undefined) times.push(res.firstProviderMs);
  }
  times.sort((a, b) => a - b);
  const pct = (p: number) => (times.length ? times[Math.min(times.length - 1, Math.floor(p * times.length))]! : NaN);
  return { nodes: o.nodes, placement: o.placement, found: times.length, lookups: o.lookups, p50Ms: pct(0.5), p99Ms: pct(0.99), meanRequests: requests / o.lookups };
}
