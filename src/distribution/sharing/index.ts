// sharing: what a node may show its peers. Repository visibility (private prefixes), which blobs are
// shareable because a visible manifest references them, and announcing those blobs to content
// routing (and withdrawing them) as the store changes.
// It may import oci, store and p2p. It must never import pull, peers or seed.

export { Announcer } from './announcer.js';
export { BlobSharing, type SharingChange } from './blob-sharing.js';
export { RepositoryVisibility, parseRepositoryPrefix } from './repository-visibility.js';
