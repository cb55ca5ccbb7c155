// p2p: the libp2p side of a node. The node itself (TCP, noise, yamux, an optional private network),
// content routing over the Kademlia DHT, and the wire protocols layerd speaks to peers: blobs, fetch
// claims and rollouts. Every peer message is validated here before anything believes it.
// It may import oci, io and store (a peer is served from the store). It must never import seed,
// distribution, http or node: what to fetch and from whom is distribution's call.

export { canonicalPeerId } from './allow-list.js';
export { BlobServer, PeerFetchError, fetchFromPeer, handleBlobProtocol, storeLookup, type BlobLookup, type PeerBlob, type ServableBlob } from './blob-protocol.js';
export { type ContentRouter, type Provider } from './content-router.js';
export { ConnectionWatch, connectionWatch, muxerOf, SWEEP_MS, type ConnectionSource, type ConnectionWatchOptions, type SilentPeer } from './connection-watch.js';
export { DEFAULT_PROVIDE_RATE, DEFAULT_REPLICATION, DEFAULT_REPROVIDE_INTERVAL_MS, DhtContentRouter, SWEEP_WALK_REQUESTS, ownProviderRecords } from './dht-router.js';
export { ClaimTable, coordinatorOf, FetchClaims, RolloutOrders } from './fetch-claims.js';
export { loadOrCreateIdentity } from './identity.js';
export { KAD_FIELDS, KadMessageType, KadWireError, addProviderMessage, decodeKadMessage, encodeKadMessage, frameKadMessage, readKadFrame, type KadMessage, type KadPeerInfo } from './kad-message.js';
export { sendAddProvider, type AddProviderOptions, type AddProviderTarget } from './kad-provide.js';
export { KadSweepExecutor, type KadSweepOptions } from './kad-sweep.js';
export { DEFAULT_LIVENESS, detectionBoundMs, IDLE_KEEPALIVE, verdict, type LinkState, type LivenessTimes, type Verdict } from './liveness.js';
export { MinHeap } from './min-heap.js';
export { blobKadKey, closestTo, compareDistance, estimateNetworkSize, kadKeyOf, keyPosition, keyRegion, regionBitsFor, regionTarget, sweepRegionBits, type KadKey } from './keyspace.js';
export { admitConnectedContactsOnly } from './routing-table-contacts.js';
export { createP2PNode, deferFirstTableRefresh, firstSelfQueryDelay, firstTableRefreshDelay, FIRST_SELF_QUERY_MS, queriesSkipFirstSelfQuery, slowDhtMaintenance, DHT_PROTOCOL, DHT_MAINTENANCE_MS, CLOSEST_PEER_TAGS_MS, TCP_OPTIONS, type LayerdLibp2p } from './libp2p-node.js';
export { ProvideSweep, type ProvideSweepOptions, type SweepBatch } from './provide-sweep.js';
export { SweepDriver, type SweepClock, type SweepDriverOptions, type SweepExecutor } from './provide-sweep-driver.js';
export { PeerAccess, type PeerAccessStatus } from './peer-access.js';
export { RolloutTransport } from './rollout-protocol.js';
export { gatherCluster, type GatherOptions, type NamedPeer } from './cluster-gather.js';
export { MEET_AFTER_MS, MEET_MAX_NODES, meetingDelay, scheduleMeeting } from './cluster-meeting.js';
export { SwarmKey, readSwarmKeyFile, type SwarmKeyFile } from './swarm-key.js';
export { UploadThrottle } from './upload-throttle.js';
