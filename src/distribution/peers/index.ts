// peers: fetching a blob from other nodes. Provider lookup (with a short cache), following a chain of
// fetch claims so one node fetches from the seed and the rest from each other, and ranged, hedged
// downloads from several holders with their scores kept apart from the I/O.
// It may import oci, store, p2p and download. It must never import pull, seed or http.

export { PeerFetcher } from './peer-fetcher.js';
export { PeerScores } from './peer-scores.js';
