// sim: a deterministic cluster simulator that runs layerd's own distribution policy (claims, rollout
// orders, range plans, provider scheduling) over simulated links, clocks and seeds, for clusters larger
// than one machine holds. Same seed, same run: every random choice comes from one seeded generator and
// every timer from one virtual clock. It may import oci, p2p and distribution; nothing in the daemon
// imports it, and it must never import http, node or cli.

export { Cluster, type ClusterSettings, type HostLink, type Transfer } from './cluster.js';
export { BOX_COSTS, CpuCost, type CpuCostSettings } from './cpu-cost.js';
export { FairShare, type FairFlow, type Use } from './fair-share.js';
export { makeImage, type SimBlob, type SimImage } from './image.js';
export { ReportLoad, SpreadLoad, spreadOffers } from './messages.js';
export { Rng } from './rng.js';
export { BOX_CPU, linkBoundMs, SCENARIO_DEFAULTS, simulateRollout, type RolloutScenario } from './rollout-sim.js';
export { type RolloutResult } from './summary.js';
export { VirtualClock, type Timer } from './virtual-clock.js';
export * as dht from './dht/index.js';
