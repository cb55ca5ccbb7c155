// download: one download per blob, however many readers ask for it. Its bytes are checked against
// the digest and written to the store as they arrive, and readers are served from what has landed.
// Sources (a peer, the seed) meet the DownloadSource contract declared here.
// It may import oci, io, store and ../answers. It must never import peers, pull, seed or p2p: it
// does not know where its bytes come from.

export { SharedDownloads, NoSourceError, SizeConflictError, UnconfirmedClaimError, type DownloadSource, type FetchedBody, type PositionalSink } from './shared-download.js';
export { SingleFlight } from './single-flight.js';
