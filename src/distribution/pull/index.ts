// pull: the read path. A manifest or blob is answered from the store, else from peers, else from the
// seed registry, through one shared download. The mirror keeps tag and catalog listings of the seed.
// It may import oci, io, store, p2p, seed, ../answers, registry, download and peers. It must never
// import rollout, ops or sharing's announcing (pull is what they build on).

export { Distribution } from './distribution.js';
export { MirrorListings } from './mirror-listings.js';
export { Mirror } from './mirror.js';
