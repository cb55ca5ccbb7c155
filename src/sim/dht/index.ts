// dht: what keeping provider records costs at cluster scale. A simulated Kademlia network (k-buckets,
// XOR distance, α parallel requests, LAN latencies) on which every host runs layerd's own provide
// schedule (p2p/ProvideSweep), counting each host's DHT requests per second; and first-provider lookups.
// It may import p2p (and the clock and generator of sim); it must never import distribution, http or node.

export { runLookups, type LookupOptions, type LookupResult } from './lookup.js';
export { SimDhtNetwork } from './network.js';
export { runProvideCost, type ProvideCostOptions, type ProvideCostResult } from './provide-cost.js';
export { TrafficWindow, type RateSummary } from './traffic.js';
export { simWalk, type WalkOptions, type WalkResult } from './walk.js';
