// How a node of a rollout takes the image's blobs: which go in line and how many at once. Pure, so the
// cluster simulator (src/sim) runs the same decision the daemon does.
//
// In a rollout's order every node takes the blobs in the same sequence, one at a time: each blob then
// has the whole link at every hop, so a hop's lag (the bytes buffered in it over the stream's rate) is
// a fraction of what four blobs sharing the link give. Rollout bench, 25 Mbit/s: the last host 9% after
// the first instead of 35%, 1.24x the link bound instead of 1.47x. (The head takes each next blob from
// the seed at once, with no claim or DHT walk in between, which is what made one-at-a-time slow before.)
// Small blobs (an image's config, a tiny layer) are no load on a link: they are fetched beside the large
// ones, not ahead of them in the line. Taken first, a 115-byte config held the head's first layer back
// 0.4-0.7 s at a rollout's start, when every node is busy at once, and every host behind it waited as long.

/** In a rollout's order, blobs this small are fetched beside the large ones. */
export const SMALL_BLOB_BYTES = 1024 * 1024;

export interface BlobLanes<T> {
  /** Taken in this sequence by `largeWorkers` workers sharing the queue. */
  large: T[];
  largeWorkers: number;
  /** Taken by one worker of their own (none when empty). */
  small: T[];
}

/**
 * The lanes for `todo` (the manifest's sequence): `ordered` when this node is placed in the rollout's
 * order, which takes `orderedParallel` blobs at once, else `parallel`.
 */
export function blobLanes<T extends { size: number }>(todo: readonly T[], ordered: boolean, parallel: number, orderedParallel: number): BlobLanes<T> {
  const workers = ordered ? orderedParallel : parallel;
  const isSmall = (b: T) => ordered && b.size <= SMALL_BLOB_BYTES;
  const large = todo.filter((b) => !isSmall(b));
  return { large, largeWorkers: Math.min(workers, Math.max(1, large.length)), small: todo.filter(isSmall) };
}
