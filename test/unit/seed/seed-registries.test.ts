// The SeedRegistry contract, run against the in-memory twin: as a plain seed, and as one that pages its
// tag list and ignores offsets (both allowed by the contract, and both met by real seeds).
import { MemorySeedRegistry, type MemorySeedOptions } from '../../../src/seed/memory-seed-registry.js';
import { describeSeedRegistry, type SeedUnderTest } from './seed-registry.conformance.js';

function twin(opts: MemorySeedOptions = {}): () => Promise<SeedUnderTest> {
  return async () => {
    const seed = new MemorySeedRegistry('seed.test', opts);
    return {
      seed,
      referrers: true,
      push: {
        blob: async (repo, bytes) => void seed.putBlob(repo, bytes),
        manifest: async (repo, reference, bytes, mediaType) => void seed.putManifest(repo, bytes, mediaType, reference.startsWith('sha256:') ? undefined : reference),
      },
      close: async () => undefined,
    };
  };
}

describeSeedRegistry('memory', twin());
describeSeedRegistry('memory, paging its tags by 2 and ignoring offsets', twin({ tagPageSize: 2, ignoresRange: true }));
