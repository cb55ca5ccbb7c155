// The DHT cost of keeping every blob announced: N hosts each holding the same `blobs` blobs start cold
// together (every blob new), then re-provide for a cycle. Counted per host per second, sent and received,
// in two windows: the cold start (the first interval) and the steady cycle (the second). "after" runs
// layerd's ProvideSweep on every host; "before" models today's one-provide-per-blob on a sample of hosts
// (sent only: a full provide per blob costs ~100x the walks the sweep makes, so a sample keeps it short).
import { DEFAULT_PROVIDE_RATE, DEFAULT_REPLICATION, sweepRegionBits } from '../../p2p/index.js';
import { Rng } from '../rng.js';
import { SimDhtNetwork, randomKey, word } from './network.js';
import { runBaselineHost } from './baseline-host.js';
import { ChoiceCache, runSweepHost, type Blob } from './sweep-host.js';
import { TrafficWindow, type RateSummary } from './traffic.js';

export interface ProvideCostOptions {
  nodes: number;
  blobs: number;
  intervalMs: number;
  seed: number;
  replication?: number;
  maxRequestsPerSecond?: number;
  /** Hosts simulated for "before". */
  baselineSample?: number;
  latencyMs?: [number, number];
  k?: number;
  alpha?: number;
  onProgress?: (what: string) => void;
}

export interface WindowCost {
  sent: RateSummary;
  received?: RateSummary;
}

export interface ProvideCostResult {
  options: Omit<Required<ProvideCostOptions>, 'onProgress'>;
  regionBits: number;
  after: { cold: WindowCost; steady: WindowCost; walksPerHostPerCycle: number; requestsPerBlobPerCycle: number };
  before: { cold: WindowCost; steady: WindowCost; hosts: number; requestsPerBlobPerCycle: number };
}

export function makeBlobs(n: number, rng: Rng): Blob[] {
  return Array.from({ length: n }, (_, i) => {
    const key = randomKey(rng);
    return { name: `b${i}`, key, hi: word(key, 0), lo: word(key, 4) };
  });
}

export async function runProvideCost(opts: ProvideCostOptions): Promise<ProvideCostResult> {
  const o: Required<ProvideCostOptions> = { onProgress: () => undefined, replication: DEFAULT_REPLICATION, maxRequestsPerSecond: DEFAULT_PROVIDE_RATE, baselineSample: 20, latencyMs: [0.2, 1], k: 20, alpha: 3, ...opts };
  const rng = new Rng(o.seed);
  const net = new SimDhtNetwork(o.nodes, o.k, rng.fork());
  const blobs = makeBlobs(o.blobs, rng.fork());
  const regionBits = sweepRegionBits(o.nodes, o.k); // as the daemon sizes them (dht-router.ts)
  const after = await runAfter(net, blobs, rng.fork(), o, regionBits);
  const before = runBefore(net, blobs, rng.fork(), o);
  const { onProgress: _, ...options } = o;
  return { options, regionBits, after, before };
}

async function runAfter(net: SimDhtNetwork, blobs: Blob[], rng: Rng, o: Required<ProvideCostOptions>, regionBits: number) {
  const I = o.intervalMs;
  const cold = new TrafficWindow(o.nodes, 0, I, false);
  const steady = new TrafficWindow(o.nodes, I, 2 * I, true);
  const sink = (from: number, to: number, at: number) => (at < I ? cold : steady).request(from, to, at);
  const cache = new ChoiceCache();
  let walks = 0;
  for (let h = 0; h < o.nodes; h++) {
    const counts = await runSweepHost(net, h, blobs, rng.fork(), { intervalMs: I, regionBits, replication: o.replication, maxRequestsPerSecond: o.maxRequestsPerSecond, alpha: o.alpha, latencyMs: o.latencyMs, untilMs: 2 * I, keepRecords: false }, sink, cache);
    walks += counts.walks;
    if (o.onProgress && (h + 1) % 50 === 0) o.onProgress(`after: ${h + 1}/${o.nodes} hosts`);
  }
  const steadySent = steady.sentSummary();
  return {
    cold: { sent: cold.sentSummary() },
    steady: { sent: steadySent, received: steady.receivedSummary() },
    walksPerHostPerCycle: walks / o.nodes / 2,
    requestsPerBlobPerCycle: steadySent.total / o.nodes / blobs.length,
  };
}

function runBefore(net: SimDhtNetwork, blobs: Blob[], rng: Rng, o: Required<ProvideCostOptions>) {
  const I = o.intervalMs;
  const cold = new TrafficWindow(o.nodes, 0, I, false);
  const steady = new TrafficWindow(o.nodes, I, 2 * I, false);
  const sink = (from: number, to: number, at: number) => (at < I ? cold : steady).request(from, to, at);
  const hosts = rng.shuffled(Array.from({ length: o.nodes }, (_, i) => i)).slice(0, Math.min(o.nodes, o.baselineSample));
  // layerd's settings (libp2p-node.ts): records live 2 intervals, re-provided past half of that, checked every min(1 h, ttl / 4).
  const checkMs = Math.min(3_600_000, (2 * I) / 4);
  for (const h of hosts) {
    runBaselineHost(net, h, blobs, rng.fork(), { intervalMs: I, checkMs, provideConcurrency: 4, reprovideConcurrency: 10, alpha: o.alpha, latencyMs: o.latencyMs, untilMs: 2 * I }, sink);
  }
  const steadySent = steady.sentSummary(hosts);
  return {
    cold: { sent: cold.sentSummary(hosts) },
    steady: { sent: steadySent },
    hosts: hosts.length,
    requestsPerBlobPerCycle: steadySent.total / hosts.length / blobs.length,
  };
}
