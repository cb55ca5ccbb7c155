// A bare libp2p peer's question to a node over the blob protocol, as an outsider on the peer network
// would ask it: the bytes the node gives, or the status it refuses with.
import type { LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { fetchFromPeer, PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { parseDigest } from '../../src/oci/digest.js';

export async function askPeerDirectly(probe: LayerdLibp2p, node: { peerId: string; multiaddrs: string[] }, digest: string): Promise<Buffer | string> {
  try {
    const blob = await fetchFromPeer(probe, { id: node.peerId, addrs: [node.multiaddrs[0]!] }, parseDigest(digest), undefined, AbortSignal.timeout(15_000));
    const chunks: Buffer[] = [];
    for await (const c of blob.body) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof PeerFetchError) return err.status;
    throw err;
  }
}
