// The read path's one decision before the mirror: a local miss goes to the seed, any other failure of the
// registry is its own answer. Over memory stores and the seed's in-memory twin.
import { describe, expect, it } from 'vitest';
import { Distribution } from '../../../../src/distribution/pull/distribution.js';
import { Mirror, type MirrorOptions } from '../../../../src/distribution/pull/mirror.js';
import { MirrorListings } from '../../../../src/distribution/pull/mirror-listings.js';
import { LocalRegistry } from '../../../../src/distribution/registry/local-registry.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import type { RepositoryName, Tag } from '../../../../src/oci/reference.js';
import { MemorySeedRegistry } from '../../../../src/seed/memory-seed-registry.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';

const SEED = 'seed.test:5000';
const REPO = 'team/app' as RepositoryName;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const quiet = { info() {}, warn() {}, debug() {} } as unknown as MirrorOptions['log'];

/** A repository store whose disk has failed: every read throws, as an I/O error would. */
class BrokenRepositoryStore extends MemoryRepositoryStore {
  override async getTag(): Promise<Digest | undefined> {
    throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  }
  override async listTags(): Promise<Tag[] | undefined> {
    throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
  }
}

function distributionOver(repos: MemoryRepositoryStore) {
  const seed = new MemorySeedRegistry(SEED);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(Buffer.from('{}')), size: 2 }, layers: [] }));
  seed.putManifest(REPO, manifest, OCI_MANIFEST, 'v1');
  const blobs = new MemoryBlobStore();
  const cache = new MemoryRepositoryStore();
  const seeds = new Map([[SEED, seed]]);
  const mirror = new Mirror({ blobs, seeds, cacheFor: async () => cache, tagTtlMs: 60_000, serveStale: true, log: quiet });
  const listings = new MirrorListings({ seeds, cacheFor: async () => cache, tagTtlMs: 60_000, serveStale: true, log: quiet });
  return { seed, manifest, distribution: new Distribution(new LocalRegistry(blobs, repos), mirror, SEED, listings) };
}

describe('a local miss, and a local failure', () => {
  it('a manifest and a tag list this node does not have come from the seed', async () => {
    const { seed, manifest, distribution } = distributionOver(new MemoryRepositoryStore());
    const answer = await distribution.manifest(REPO, { kind: 'tag', tag: 'v1' as Tag }, null);
    expect(answer).toMatchObject({ source: 'upstream', registry: SEED });
    expect(answer.bytes.equals(manifest)).toBe(true);
    expect((await distribution.tags(REPO, undefined, undefined, null)).tags).toEqual(['v1']);
    expect(seed.calls).toEqual([`getManifest ${REPO} v1`, `listTags ${REPO}`]);
  });

  it('a registry that fails (not a miss) answers with its failure, and the seed is not asked', async () => {
    const { seed, distribution } = distributionOver(new BrokenRepositoryStore());
    await expect(distribution.manifest(REPO, { kind: 'tag', tag: 'v1' as Tag }, null)).rejects.toThrow(/EIO/);
    await expect(distribution.tags(REPO, undefined, undefined, null)).rejects.toThrow(/EIO/);
    expect(seed.calls).toEqual([]);
  });
});
