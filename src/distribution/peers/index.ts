// peers: fetching a blob from other nodes. Provider lookup (with a short cache: provider-lookup.ts),
// following a chain of fetch claims so one node fetches from the seed and the rest from each other
// (chain-follower.ts), and ranged, hedged downloads from several holders (range-download.ts), whose
// bookkeeping, which range goes to whom and when one is hedged, is kept apart from the I/O (range-plan.ts);
// in a striped rollout, each stripe of a blob from its own parent (stripe-download.ts).
// It may import oci, store, p2p and download. It must never import pull, seed or http.

export { ChainPlace, MAX_FOLLOW_RETRIES } from './chain-place.js';
export { PeerFetcher, type StripeRoute } from './peer-fetcher.js';
export { StripeLayout } from './stripe-download.js';
export { PeerScores } from './peer-scores.js';
