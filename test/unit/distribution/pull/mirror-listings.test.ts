// MirrorListings' policy over the seed's in-memory twin: the seed's pages are followed into one list,
// and while the seed is down the node answers with what it last knew, marked stale.
import { describe, expect, it } from 'vitest';
import { MirrorListings } from '../../../../src/distribution/pull/mirror-listings.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemorySeedRegistry } from '../../../../src/seed/memory-seed-registry.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';

const SEED = 'seed.test:5000';
const REPO = 'team/app' as RepositoryName;

function listingsOf(opts: { serveStale: boolean }) {
  const seed = new MemorySeedRegistry(SEED, { tagPageSize: 2 });
  for (const tag of ['v3', 'v1', 'v2', 'latest', 'alpha']) seed.putManifest(REPO, Buffer.from(`{"schemaVersion":2,"tag":"${tag}"}`), 'application/vnd.oci.image.manifest.v1+json', tag);
  const cache = new MemoryRepositoryStore();
  // A TTL of 0: every listing asks the seed again.
  const listings = new MirrorListings({ seeds: new Map([[SEED, seed]]), cacheFor: async () => cache, tagTtlMs: 0, serveStale: opts.serveStale, log: { warn() {} } });
  return { seed, listings };
}

describe('tag lists of a seed', () => {
  it("follows the seed's pages into one list, then pages it in this node's order", async () => {
    const { seed, listings } = listingsOf({ serveStale: true });
    expect(await listings.tags(SEED, REPO, 3)).toEqual({ tags: ['alpha', 'latest', 'v1'], next: { n: 3, last: 'v1' }, stale: false });
    expect(seed.calls).toEqual([`listTags ${REPO}`, `listTags ${REPO} last=latest`, `listTags ${REPO} last=v2`]);
  });

  it('while the seed is down, answers with the last list it had, marked stale; without serve-stale, an error', async () => {
    const { seed, listings } = listingsOf({ serveStale: true });
    await listings.tags(SEED, REPO);
    seed.down = true;
    expect(await listings.tags(SEED, REPO)).toMatchObject({ tags: ['alpha', 'latest', 'v1', 'v2', 'v3'], stale: true });

    const strict = listingsOf({ serveStale: false });
    await strict.listings.tags(SEED, REPO);
    strict.seed.down = true;
    await expect(strict.listings.tags(SEED, REPO)).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 503 });
  });

  it('a repository the seed does not have is NAME_UNKNOWN', async () => {
    const { listings } = listingsOf({ serveStale: true });
    await expect(listings.tags(SEED, 'team/none' as RepositoryName)).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
  });
});
