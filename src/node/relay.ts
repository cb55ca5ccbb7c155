// What a peer asking for a blob this node does not hold yet is given: the download of it running here,
// if any, to follow as its bytes land.
import type { Mirror } from '../distribution/index.js';
import type { Digest } from '../oci/index.js';
import type { BlobLookup } from '../p2p/index.js';

/**
 * How long a peer's request waits for this node's download of the blob to start writing before it is
 * answered "pending" (ask again). Well inside the asker's deadline for an answer (followAnswerMs, 40 s):
 * an answer is what tells the asker this node is alive, however slowly its own download starts.
 */
const RELAY_WAIT_MS = 10_000;
/**
 * How often a peer's question looks again for a download a rollout here is about to start. A poll, not
 * an event: the wait ends on the first of three things, each owned elsewhere, and none of them tells
 * when it happens today: the mirror's download of the blob beginning (SharedDownloads registers it and
 * tells no one), the blob landing in the store by another path (the store's one commit hook is the disk
 * keeper's), and the rollout moving past the blob or ending (Rollouts' pending set changes silently).
 * Once the store's change stream exists, the last two could be awaited; the first needs the mirror to
 * say "a download of this digest started". 50 ms is small beside a blob's download, and only a question
 * for a blob a running rollout here is to fetch polls at all.
 */
const RELAY_POLL_MS = 50;

export interface RelayDeps {
  mirror: Mirror;
  /** The blob, when held and offerable to peers. */
  heldShared: BlobLookup;
  /** Whether a running rollout here will fetch the blob. */
  willFetch: (digest: Digest) => boolean;
}

/**
 * The node after this one in a rollout's order asks for each blob as soon as it knows the image, maybe
 * before this node's own download of it has begun: while a rollout here is to fetch the blob, the
 * question waits for that download (or the blob held) instead of being answered not-found, which
 * would send the asker up the order, onto another node's uplink (and, with no one left, to the seed).
 * A download that has not begun within the wait (a starved host, a slow node before this one) is
 * answered 'pending': the asker keeps its place behind this node and asks again.
 */
export function relayWhileRolloutFetches({ mirror, heldShared, willFetch }: RelayDeps): BlobLookup {
  return async (digest) => {
    const deadline = Date.now() + RELAY_WAIT_MS;
    for (;;) {
      const found = await mirror.relay(digest, Math.max(0, deadline - Date.now()));
      if (found && found !== 'pending') return found;
      // A download running here but not writing yet: 'pending', whether or not a rollout asked for it.
      if (!willFetch(digest)) return (await heldShared(digest)) ?? found;
      if (Date.now() >= deadline) return (await heldShared(digest)) ?? 'pending';
      await new Promise((r) => setTimeout(r, RELAY_POLL_MS));
      const now = await heldShared(digest);
      if (now) return now;
    }
  };
}
