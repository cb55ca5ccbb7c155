// The rollout protocol's own messages, as CPU on a box whose hosts share its cores (--box). Each offer or
// progress report is one question on a new libp2p stream (p2p/rollout-protocol.ts: a stream opened and
// negotiated, Noise frames, JSON, the checks), and at 32 hosts they cost more CPU than the bytes did:
// - The spread (Rollouts.accept → spread): the origin offers the rollout to every peer, every peer offers
//   it on to every other but the origin and the one it came from, and each hands it back to the node before
//   it (handBack): (N − 1)² + N − 2 offers before the bytes start in earnest. The 32-host run's logs show
//   it: the hosts took the rollout 6.6–25.7 s after the request and the origin asked the seed for its first
//   blob at 26.7 s; at 8 hosts it is ~55 offers, about a second.
// - Reports: every running node but the origin reports its progress to the origin once a `reportEveryMs`
//   (Rollouts' default, 1 s), half the message's CPU at each end.
import type { Cluster } from './cluster.js';
import type { CpuCostSettings } from './cpu-cost.js';

/** Offers of the spread and the hand-backs for a rollout over `nodes` nodes (the origin among them). */
export function spreadOffers(nodes: number): number {
  if (nodes < 2) return 0;
  return (nodes - 1) ** 2 + Math.max(0, nodes - 2);
}

/**
 * How long the spread holds back the start of the bytes on one pool of `cores`: it takes the whole pool
 * (every host is busy offering and taking offers) until its CPU is done.
 */
export function spreadMs(nodes: number, costs: Pick<CpuCostSettings, 'messageCpu'>, cores: number): number {
  return (spreadOffers(nodes) * costs.messageCpu * 1000) / cores;
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
