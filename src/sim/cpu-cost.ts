// What moving a byte costs a host's CPU, from this box's measurements (README "Measured"). A peer byte
// received crosses TCP, noise and yamux (JavaScript), then is hashed and written; a byte sent crosses the
// stack the other way. The stack's cost per byte grows as the link slows (netns-hop: a 25 Mbit/s stream
// arrives in ~3.5 KB reads, each paying the per-read work): modelled as a + b / rate, with a and b fitted
// to the 8-host rollouts at 100 and 25 Mbit/s. A byte from the seed comes over plain HTTP (cheaper).

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
  /** Share of a core each layerd host spends with nothing to do (timers, DHT upkeep): ~1.2% measured at 8 hosts. */
  idleCores: number;
  /** CPU s a host spends on a rollout whatever its size (manifests, start-up, reports): fitted. */
  perRollout: number;
}

/** Fitted to the 8-host runs (see the calibration in scripts/sim/rollout-sim.mjs's report). */
export const BOX_COSTS: CpuCostSettings = {
  peerRecvBase: 4.65,
  peerRecvPerRate: 551,
  sendFraction: 0.55,
  hashWrite: 1.4,
  httpRecv: 1.0,
  seedSend: 0.4,
  idleCores: 0.012,
  perRollout: 0.77,
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
