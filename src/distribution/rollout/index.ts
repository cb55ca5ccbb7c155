// rollout: spreading an image over a set of nodes before they pull it. Nodes fetch blobs in an order
// that lets each serve the next; progress is reported to the node that started it.
// It may import oci, ../answers and pull. It must never import p2p directly: it talks through the
// RolloutNetwork seam the node provides.

export { blobLanes, SMALL_BLOB_BYTES, type BlobLanes } from './blob-lanes.js';
export { StripeTrees, type HeldShare } from './stripe-trees.js';
export { StripeKeeper, type Addressed } from './stripe-keeper.js';
export { NodeStripes, type StripeRoute } from './stripe-route.js';
export { STRIPE_WATCH_DEFAULTS, StripeWatch, type ParentVerdict, type StripeView, type StripeWatchSettings } from './stripe-watch.js';
export { reportPace, ORIGIN_REPORTS_PER_S, type ReportPace } from './report-pace.js';
export { Rollouts, type RolloutJournal, type RolloutNetwork } from './rollout.js';
export { type NodeProgress, type Repoint, type RolloutSpec, type RolloutView, type StripeShape } from './view.js';
export { progressFrom, repointFrom, specFrom } from './wire.js';
