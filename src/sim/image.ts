// A simulated image: its blobs (a small config and equal layers) with digests made from the run's seed,
// and the streams each blob is cut into (one per stripe), numbered for the cluster.
import { digestOf, type Digest } from '../oci/index.js';

export interface SimBlob {
  digest: Digest;
  size: number;
  /** Cluster stream numbers, one per stripe (stripe i holds the blob's bytes of pieces i, i + k, ...). */
  streams: number[];
}

export interface SimImage {
  blobs: SimBlob[];
  /** Every stream's size, by stream number. */
  streamSizes: number[];
  bytes: number;
}

/** `layers` layers of `bytes` in all, after a 1 KiB config (as a manifest lists them); each cut into `stripes`. */
export function makeImage(bytes: number, layers: number, stripes: number, seed: number): SimImage {
  const sizes = [1024, ...Array.from({ length: layers }, (_, i) => Math.floor(bytes / layers) + (i < bytes % layers ? 1 : 0))];
  const streamSizes: number[] = [];
  const blobs = sizes.map((size, i) => {
    const digest = digestOf(new TextEncoder().encode(`sim ${seed} blob ${i}`));
    const k = size <= 1024 * 1024 ? 1 : stripes;
    const streams = Array.from({ length: k }, (_, s) => {
      streamSizes.push(stripeBytes(size, k, s));
      return streamSizes.length - 1;
    });
    return { digest, size, streams };
  });
  return { blobs, streamSizes, bytes: sizes.reduce((a, b) => a + b, 0) };
}

/** Pieces of a stripe: 1 MiB, dealt round-robin to the k stripes. */
const PIECE = 1024 * 1024;

function stripeBytes(size: number, k: number, s: number): number {
  if (k === 1) return size;
  const pieces = Math.ceil(size / PIECE);
  let bytes = 0;
  for (let p = s; p < pieces; p += k) bytes += Math.min(PIECE, size - p * PIECE);
  return bytes;
}
