// What a node holds, as an operator asks about it: the images (tags and the manifests they name, with
// their sizes and how much of them is on disk) of content pushed here and of every seed's cache.
import { parseManifest, type Digest, type RepositoryName } from '../../oci/index.js';
import { readSmallBlob, type BlobStore, type RepositoryStore } from '../../store/index.js';

export interface ImageSummary {
  /** The seed registry it was mirrored from, or "local" for content pushed to this node. */
  registry: string;
  repository: string;
  tags: string[];
  digest: Digest;
  mediaType: string;
  /** Manifests and blobs of the image (every platform of an index that is held), in bytes. */
  size: number;
  /** Of which this node holds on disk. */
  heldBytes: number;
  blobs: number;
  heldBlobs: number;
}

export interface RepositorySource {
  registry: string;
  repos: RepositoryStore;
}

/** At most this many images are listed (a node is a cache, not a catalogue). */
const MAX_IMAGES = 1000;

export class Inventory {
  constructor(
    private readonly blobs: BlobStore,
    private readonly sources: () => Promise<RepositorySource[]>,
  ) {}

  async images(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for (const { registry, repos } of await this.sources()) {
      for (const repository of await repos.listRepositories()) {
        const byDigest = new Map<Digest, string[]>();
        for (const tag of (await repos.listTags(repository)) ?? []) {
          const digest = await repos.getTag(repository, tag);
          if (digest) byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
        }
        for (const [digest, tags] of byDigest) {
          const image = await this.summarize(repos, repository, digest);
          if (image) out.push({ registry, repository, tags, ...image });
          if (out.length >= MAX_IMAGES) return out;
        }
      }
    }
    return out;
  }

  /** Sizes of a manifest and what it references (an index: its children that are held). */
  private async summarize(repos: RepositoryStore, repository: RepositoryName, digest: Digest) {
    const record = await repos.getManifest(repository, digest);
    if (!record) return undefined;
    const acc = { size: 0, heldBytes: 0, blobs: 0, heldBlobs: 0 };
    const seen = new Set<Digest>();
    const count = async (d: Digest, size: number): Promise<boolean> => {
      if (seen.has(d)) return false;
      seen.add(d);
      acc.size += size;
      const held = (await this.blobs.stat(d)) !== undefined;
      if (held) acc.heldBytes += size;
      return held;
    };
    const walk = async (d: Digest, size: number, mediaType: string | undefined, depth: number): Promise<void> => {
      if (!(await count(d, size)) || depth > 2) return;
      let parsed;
      try {
        parsed = parseManifest(await readSmallBlob(this.blobs, d), mediaType);
      } catch {
        return;
      }
      for (const b of parsed.blobs) {
        acc.blobs++;
        if (await count(b.digest, b.size)) acc.heldBlobs++;
      }
      for (const m of parsed.manifests) await walk(m.digest, m.size, m.mediaType, depth + 1);
    };
    await walk(digest, record.size, record.mediaType, 0);
    return { digest, mediaType: record.mediaType, ...acc };
  }
}
