// registry: the registry a node is to its clients. Push rules (what a manifest may reference, what
// a repository may hold), blob uploads in sessions with limits, tag and catalog listings.
// It may import oci and store. It must never import download, peers, pull, seed or p2p: a push
// never waits on the network.

export { LocalRegistry, paginate, type Adopter, type Page } from './local-registry.js';
export { UploadSessions } from './upload-sessions.js';
