// What moving a byte costs a host's CPU, from this box's measurements (README "Measured"). A peer byte
// received crosses TCP, noise and yamux (JavaScript), then is hashed and written; a byte sent crosses the
// stack the other way. The stack's cost per byte grows as the link slows (netns-hop: a 25 Mbit/s stream
// arrives in ~3.5 KB reads, each paying the per-read work): modelled as a + b / rate, with a and b fitted
// (below). A byte from the seed comes over plain HTTP (cheaper). Beside the bytes: each host's idle share
// of a core, and the rollout protocol's messages (messages.ts).

const GiB = 1024 ** 3;

export interface CpuCostSettings {
  /** Peer receive, stack only: CPU s per GiB at any rate (the a of a + b / Mbit/s). */
  peerRecvBase: number;
  /** Peer receive, stack only: the b of a + b / Mbit/s (CPU s per GiB × Mbit/s). */
  peerRecvPerRate: number;
  /** A byte sent to a peer costs this fraction of one received (netns-hop: sender 0.45–0.75 of the receiver). */
  sendFraction: number;
  /** sha256 and the disk write of every byte a host keeps (0.68 + 0.72 s/GiB measured). */
  hashWrite: number;
  /** A byte received from the seed over HTTP (node:http ~1.0 s/GiB). */
  httpRecv: number;
  /** A byte the seed sends (distribution, Go: ~0.4 s/GiB). */
  seedSend: number;
  /**
   * Share of a core each layerd host spends with nothing to do (timers, DHT upkeep): 0.2% today (README,
   * scripts/bench/idle.mjs at 8 hosts; the 32-host run's idle part, 15 CPU s over 234 s, is the same);
   * the 8-host calibration runs were made when it was 1.2%.
   */
  idleCores: number;
  /** CPU s of one progress report, both ends, on the cluster (messages.ts). */
  messageCpu: number;
  /** CPU s of one offer of the spread (or a hand-back), both ends (messages.ts). */
  offerCpu: number;
  /** How often a running node reports its progress to the origin (Rollouts' reportEveryMs default). */
  reportEveryMs: number;
}

/**
 * An offer, on the cluster: as a report (both are one question on a new stream; the fit below could not
 * tell them apart). Apart from any rollout the stack's offer costs 2.3 ms both ends and a report 1.7–2.8
 * (scripts/bench/rollout-messages.mjs, two nodes on loopback): on the 32 namespace hosts a message costs
 * ~20 times that (their kernel time is a third of their CPU; not profiled further). With offers at 2.3 ms the
 * simulator put the 32-host runs of 2026-12-05 at 132 CPU s against 159 and 176.
 */
const OFFER_CPU = 0.043;
const REPORT_CPU = 0.043;

/**
 * The stack's a and b and the message's CPU are solved together from three runs' hosts' CPU, each less
 * its idle part, its hash and write and its seed bytes (README "Cluster scale", calibration): 8 hosts at
 * 100 and at 25 Mbit/s (200 MiB) and 32 hosts at 20 Mbit/s (100 MiB), with each run's messages counted
 * (messages.ts). A message comes to ~43 ms; the 32-host spread checks it apart: ~1,000 offers took the
 * box's ~1.8 cores ~25 s (≈ 45 ms each). Before messages were counted the 8-host runs alone gave
 * a = 4.65, b = 551 and 0.77 CPU s a host a rollout, which put the 32-host run's CPU at 250 s of 430.
 */
export const BOX_COSTS: CpuCostSettings = {
  peerRecvBase: 6.2,
  peerRecvPerRate: 279,
  sendFraction: 0.55,
  hashWrite: 1.4,
  httpRecv: 1.0,
  seedSend: 0.4,
  idleCores: 0.002,
  messageCpu: REPORT_CPU,
  offerCpu: OFFER_CPU,
  reportEveryMs: 1000,
};

export class CpuCost {
  constructor(readonly s: CpuCostSettings) {}

  /** CPU seconds per byte a host spends receiving (and keeping) a byte over a link of `bitsPerSecond`. */
  recv(fromSeed: boolean, bitsPerSecond: number): number {
    const stack = fromSeed ? this.s.httpRecv : this.peerStack(bitsPerSecond);
    return (stack + this.s.hashWrite) / GiB;
  }

  /** CPU seconds per byte the sender spends. */
  send(bySeed: boolean, bitsPerSecond: number): number {
    return (bySeed ? this.s.seedSend : this.s.sendFraction * this.peerStack(bitsPerSecond)) / GiB;
  }

  private peerStack(bitsPerSecond: number): number {
    return this.s.peerRecvBase + this.s.peerRecvPerRate / (bitsPerSecond / 1e6);
  }
}
