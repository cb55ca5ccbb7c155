// The sizes of blobs as the manifests that name them say: what a node trusts about a blob's size before
// it has the blob. A pull reads the manifest before its layers, so by the time peers are asked for a
// layer the node knows how big it is, and a peer claiming another size is lying (distribution/
// peer-fetcher.ts). Only manifests from a seed are noted (the mirror's), and memory is bounded.
import type { Digest } from './digest.js';
import { parseManifest } from './manifest.js';

/** Sizes remembered; past it the oldest are forgotten (a forgotten size only means a weaker check). */
const MAX_SIZES = 100_000;

export class DescriptorSizes {
  private readonly sizes = new Map<Digest, number>();

  /** Remembers the sizes of the blobs (config and layers) a manifest names; a manifest that does not parse adds nothing. */
  note(manifest: Uint8Array, mediaType: string | undefined): void {
    let blobs;
    try {
      blobs = parseManifest(manifest, mediaType).blobs;
    } catch {
      return;
    }
    for (const d of blobs) {
      if (!Number.isSafeInteger(d.size) || d.size < 0) continue;
      this.sizes.delete(d.digest); // re-inserted: the newest are kept longest
      this.sizes.set(d.digest, d.size);
      if (this.sizes.size > MAX_SIZES) this.sizes.delete(this.sizes.keys().next().value!);
    }
  }

  get(digest: Digest): number | undefined {
    return this.sizes.get(digest);
  }
}
