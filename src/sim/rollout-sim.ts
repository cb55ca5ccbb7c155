// One simulated rollout, start to end: a cluster of N nodes and a seed, an image, a design (today's line,
// or the stripe trees prototype), slow hosts, crashes, and what came of it. Deterministic from the seed.
import { RolloutOrders } from '../p2p/index.js';
import { reportPace } from '../distribution/rollout/index.js';
import { Cluster, type ClusterSettings, type HostLink } from './cluster.js';
import { BOX_COSTS, CpuCost, type CpuCostSettings } from './cpu-cost.js';
import { makeImage } from './image.js';
import { LineNode } from './line-node.js';
import { ReportLoad, SpreadLoad } from './messages.js';
import { Rng } from './rng.js';
import { RunContext, type SimNode } from './run-context.js';
import { StripeNode, StripeSetup, type KeeperHearing } from './stripe-node.js';
import { summarize, type RolloutResult } from './summary.js';
import { VirtualClock } from './virtual-clock.js';

export interface RolloutScenario {
  nodes: number;
  imageBytes: number;
  layers: number;
  /** Every link's rate, bits per second each way (the seed's too). */
  rateBits: number;
  latencyMs: number;
  /** Share of nodes on links `slowFactor` times slower (never the origin). */
  slowFrac: number;
  slowFactor: number;
  /** Share of nodes (never the origin) that crash, each at a uniform time in [0.2, 0.8] of the link bound. */
  crashFrac: number;
  seed: number;
  cpu: 'pool' | 'host';
  cores: number;
  design: 'line' | 'stripes';
  /** Stripes (and the trees' arity) for the stripes design. */
  k: number;
  /** When the origin starts (request, manifests); the others start up to `startJitterMs` after it. */
  startMs: number;
  startJitterMs: number;
  relayLagBytes: number;
  crashDetectMs: number;
  overhead: number;
  linkEfficiency: number;
  peerEfficiency: number;
  stepMs?: number;
  /** The rollout protocol's messages cost CPU (messages.ts): the box's runs, where they were measured. */
  messages?: boolean;
  /**
   * How the stripe trees' keeper hears of failing parents (stripe-node.ts): 'direct' (the prototype's view,
   * the default), 'paced' (the daemon's paced reports), 'at-once' (paced, but suspects reported at once).
   */
  keeperHearing?: KeeperHearing['mode'];
  /** Stop once every node on a normal link is done (the slow ones' times are then not known). */
  stopWhenFastDone?: boolean;
  costs?: Partial<CpuCostSettings>;
}

/**
 * This box as the namespace benches ran (README "Cluster scale", calibration). Fitted to the 8-host runs:
 * the first host's time at 100 and 25 Mbit/s gives the start-up and the link efficiency, the last host's at
 * 25 Mbit/s (where CPU is not short) the peer streams' efficiency against the seed's HTTP. The start-up,
 * 0.57 s when the spread (55 offers at 8 hosts, 1.29 s of the pool) was held ahead of the bytes, is 1.86 s
 * with the spread beside them: the same request-to-first-byte those runs were fitted with. The pool is an
 * input: the cores the rollout bench's probe measured around the run to predict (`--cores`; box-share.mjs);
 * 1.84 is what the 32 hosts had on an otherwise idle box (430 CPU s over 234 s), and the 8-host runs hardly
 * depend on it. The rollout's messages cost CPU here (messages.ts), where they were measured.
 */
export const BOX_CPU = { cpu: 'pool', cores: 1.84, latencyMs: 0, messages: true, startMs: 1860 } as const;

export const SCENARIO_DEFAULTS: Omit<RolloutScenario, 'nodes' | 'imageBytes' | 'rateBits'> = {
  layers: 4,
  latencyMs: 0.2,
  slowFrac: 0,
  slowFactor: 10,
  crashFrac: 0,
  seed: 1,
  cpu: 'host',
  cores: 2,
  design: 'line',
  k: 4,
  startMs: 570,
  startJitterMs: 100,
  relayLagBytes: 64 * 1024,
  crashDetectMs: 45_000,
  overhead: 0.045,
  linkEfficiency: 0.959,
  peerEfficiency: 0.953,
};

/** The image's size over one host's link rate: no host can receive it sooner. */
export function linkBoundMs(s: Pick<RolloutScenario, 'imageBytes' | 'rateBits'>): number {
  return (s.imageBytes * 8 * 1000) / s.rateBits;
}

export async function simulateRollout(s: RolloutScenario): Promise<RolloutResult> {
  const wallStart = performance.now();
  const rng = new Rng(s.seed);
  const clock = new VirtualClock();
  const image = makeImage(s.imageBytes, s.layers, s.design === 'stripes' ? s.k : 1, s.seed);
  const bound = linkBoundMs(s);
  const pick = (frac: number, r: Rng) => new Set(r.shuffled(Array.from({ length: s.nodes - 1 }, (_, i) => i + 2)).slice(0, Math.round(frac * s.nodes)));
  const slow = pick(s.slowFrac, rng.fork());
  const crashing = pick(s.crashFrac, rng.fork());
  const links: HostLink[] = Array.from({ length: s.nodes + 1 }, (_, h) => {
    const bits = slow.has(h) ? s.rateBits / s.slowFactor : s.rateBits;
    return { upBits: bits, downBits: bits };
  });
  const settings: ClusterSettings = {
    stepMs: s.stepMs ?? Math.max(0.5, Math.min(20, bound / 4000)),
    relayLagBytes: s.relayLagBytes,
    latencyMs: s.latencyMs,
    overhead: s.overhead,
    linkEfficiency: s.linkEfficiency,
    peerEfficiency: s.peerEfficiency,
    cpu: s.cpu,
    cores: s.cores,
    costs: new CpuCost({ ...BOX_COSTS, ...s.costs }),
    crashDetectMs: s.crashDetectMs,
  };
  const cluster = new Cluster(clock, links, image.streamSizes, settings);
  const ctx = new RunContext(cluster, image, s.nodes);
  const nodes = makeNodes(s, ctx);
  const jitter = rng.fork();
  const started = new Set<number>();
  const startAt = (i: number, ms: number) => clock.after(ms + (i === 0 ? 0 : jitter.next() * s.startJitterMs), () => {
    started.add(i + 1);
    nodes[i]!.start();
  });
  nodes.forEach((_, i) => startAt(i, s.startMs));
  if (s.messages === true) {
    // The spread from the request on, beside the bytes (every node has taken the rollout within the start).
    new SpreadLoad(cluster, settings.costs.s, s.nodes).start();
    startReports(s, ctx, settings.costs.s, started);
  }
  const crashRng = rng.fork();
  for (const h of crashing) {
    clock.after((0.2 + 0.6 * crashRng.next()) * bound, () => {
      if (ctx.doneAt[h] !== undefined) return;
      cluster.crash(h);
      ctx.gaveUp(h);
    });
  }
  const fastDone = () => [...ctx.doneAt.keys()].every((h) => h === 0 || slow.has(h) || !cluster.alive[h] || ctx.doneAt[h] !== undefined);
  await cluster.run(() => ctx.allDone || (s.stopWhenFastDone === true && fastDone()), 200 * bound + 600_000);
  return summarize(s, ctx, { bound, slow, crashing, wallMs: performance.now() - wallStart, events: clock.fired, steps: cluster.steps });
}

/** The reports' CPU from the origin's start on, for the nodes that started and are not done. */
function startReports(s: RolloutScenario, ctx: RunContext, costs: CpuCostSettings, started: ReadonlySet<number>): void {
  const cluster = ctx.cluster;
  // The daemon's own pace: reports grow sparser as the rollout grows (rollout/report-pace.ts).
  const everyMs = reportPace(s.nodes, { everyMs: costs.reportEveryMs, deadAfterMs: 0 }).everyMs;
  const reports = new ReportLoad(cluster, { ...costs, reportEveryMs: everyMs }, 1);
  const tick = () => {
    const running = [...started].filter((h) => cluster.alive[h] && ctx.doneAt[h] === undefined);
    reports.update(running);
    if (!ctx.allDone) cluster.clock.after(everyMs, tick);
  };
  cluster.clock.after(s.startMs, tick);
}

function makeNodes(s: RolloutScenario, ctx: RunContext): SimNode[] {
  // The origin's order: itself first, then the peers it is connected to (Rollouts.create).
  const order = ctx.ids.slice(1);
  const digests = ctx.image.blobs.map((b) => b.digest);
  if (s.design === 'line') {
    return order.map((id) => {
      const orders = new RolloutOrders();
      orders.place(digests, order);
      return new LineNode(ctx, ctx.hostOf(id), orders);
    });
  }
  // The daemon's pace: a rollout of N nodes reports every max(1 s, N ÷ 8 s), dead after 3 missed (≥ 15 s).
  const pace = reportPace(s.nodes, { everyMs: 1000, deadAfterMs: 15_000 });
  const mode = s.keeperHearing ?? 'direct';
  const setup = new StripeSetup(ctx, order, s.k, mode === 'direct' ? undefined : { mode, ...pace });
  return order.map((id) => new StripeNode(setup, ctx.hostOf(id)));
}
