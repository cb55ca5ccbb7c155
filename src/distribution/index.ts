// distribution: what a node does with blobs and manifests, as the subsystems below, each with its own
// face. http and node import this face only.
//   registry  push rules and upload sessions: the registry a node is to its clients
//   download  one download per blob, shared by every reader, written to the store as it is checked
//   peers     finding providers, following claim chains, ranged downloads from peers
//   sharing   which repositories a node may show to peers, and announcing what it holds
//   pull      the read path: local, then peers, then the seed, with the mirror's listings
//   rollout   spreading an image over a set of nodes ahead of their pulls
//   ops       the disk keeper (quota and collection), inventory and statistics
// It may import oci, io, store, p2p and seed. It must never import http or node.

export { type Source } from './answers.js';
export { DiskKeeper, Inventory, NodeStats, Observations, type Observed, type GcReport, type ImageSummary, type PullEvent, type StatsSnapshot } from './ops/index.js';
export { ChainPlace, PeerFetcher, PeerScores } from './peers/index.js';
export { Distribution, Mirror, MirrorListings } from './pull/index.js';
export { LocalRegistry, UploadSessions, type Page } from './registry/index.js';
export { blobLanes, STRIPE_WATCH_DEFAULTS, StripeTrees, StripeWatch, type HeldShare, type StripeView, Rollouts, progressFrom, repointFrom, specFrom, type Repoint, type RolloutJournal, type RolloutNetwork, type RolloutSpec, type RolloutView, type StripeRoute } from './rollout/index.js';
export { Announcer, BlobSharing, RepositoryVisibility, parseRepositoryPrefix } from './sharing/index.js';
