// ops: keeping a node healthy. The disk keeper (quota, collection of what nothing references),
// the inventory of images held, and the node's statistics.
// It may import oci, store and ../answers. It must never import pull, peers or p2p.

export { DiskKeeper, type GcReport } from './disk-keeper.js';
export { Inventory, type ImageSummary } from './inventory.js';
export { Observations, type Observed } from './observations.js';
export { NodeStats, type PullEvent, type StatsSnapshot } from './stats.js';
