// The rollout protocol's own messages, as CPU on a box whose hosts share its cores (--box). Each offer or
// progress report is one question on a new libp2p stream (p2p/rollout-protocol.ts: a stream opened and
// negotiated, Noise frames, JSON, the checks):
// - The spread (Rollouts.accept → spread): the origin offers the rollout to every peer, every peer offers
//   it on to every other but the origin and the one it came from, and each hands it back to the node before
//   it (handBack): (N − 1)² + N − 2 offers. It runs beside the bytes, not before them: in the 32-host runs
//   of the paced daemon (2026-12-05) every host took the rollout within 2 s of the request, the origin
//   asked the seed for its first blob at 3 s and the others their predecessors at 4–6 s, and a follower's
//   first layer took as long as its second (SpreadLoad).
// - Reports: every running node but the origin reports its progress to the origin once a `reportEveryMs`
//   (the daemon's pace, rollout/report-pace.ts), half the report's CPU at each end.
import type { Cluster } from './cluster.js';
import type { CpuCostSettings } from './cpu-cost.js';

/** Offers of the spread and the hand-backs for a rollout over `nodes` nodes (the origin among them). */
export function spreadOffers(nodes: number): number {
  if (nodes < 2) return 0;
  return (nodes - 1) ** 2 + Math.max(0, nodes - 2);
}

const SPREAD = 'spread';

/**
 * The spread's CPU beside the bytes, which start as soon as a node has taken the rollout. Each host's
 * event loop takes its offers as one more task beside its transfers, so while the spread lasts it gets
 * N ÷ (N + transfers) of the CPU the streams would have (the rest of the pool stays with the bytes),
 * charged evenly to the hosts. `done` is called when its CPU is spent.
 */
export class SpreadLoad {
  private left: number;

  constructor(
    private readonly cluster: Cluster,
    costs: Pick<CpuCostSettings, 'offerCpu'>,
    private readonly nodes: number,
    private readonly done: () => void = () => undefined,
    private readonly tickMs = 50,
  ) {
    this.left = spreadOffers(nodes) * costs.offerCpu;
  }

  /** From now on (the request). */
  start(): void {
    this.tick();
  }

  private tick(): void {
    const c = this.cluster;
    const N = this.nodes;
    const share = N / (N + c.activeTransfers);
    let cores = 0;
    const each: number[] = [];
    for (let h = 1; h <= N; h++) {
      const mine = c.s.cpu === 'pool' ? (c.freeCores(SPREAD) * share) / N : c.freeCores(SPREAD, h) * share;
      each.push(mine);
      cores += mine;
    }
    each.forEach((mine, i) => c.setBesides(i + 1, mine, SPREAD));
    const spent = (cores * this.tickMs) / 1000;
    if (spent < this.left) {
      this.left -= spent;
      c.clock.after(this.tickMs, () => this.tick());
      return;
    }
    // Its last CPU runs out within this tick: stop there.
    c.clock.after((this.left / Math.max(cores, 1e-9)) * 1000, () => {
      for (let h = 1; h <= N; h++) c.setBesides(h, 0, SPREAD);
      this.done();
    });
    this.left = 0;
  }
}

/** The reports' CPU while a rollout runs: each running node's share, and the origin's for all it hears. */
export class ReportLoad {
  constructor(
    private readonly cluster: Cluster,
    private readonly costs: Pick<CpuCostSettings, 'messageCpu' | 'reportEveryMs'>,
    private readonly origin: number,
  ) {}

  /** Sets the CPU the hosts spend on reports from now on, given which hosts are running the rollout. */
  update(running: readonly number[]): void {
    const perSecond = 1000 / this.costs.reportEveryMs;
    const half = (this.costs.messageCpu / 2) * perSecond;
    let heard = 0;
    for (let h = 1; h < this.cluster.hosts; h++) {
      const on = h !== this.origin && running.includes(h);
      this.cluster.setBesides(h, h === this.origin ? 0 : on ? half : 0);
      if (on) heard++;
    }
    this.cluster.setBesides(this.origin, heard * half);
  }
}
