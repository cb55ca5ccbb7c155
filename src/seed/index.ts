// seed: the seed registries, where manifests (and blobs nobody near has) come from: any OCI registry,
// or a layerd node that was pushed to. SeedRegistry is the seam the read path asks through, with typed
// answers (not-found is an answer, never a status); HttpSeedRegistry speaks the distribution API over
// HTTP (auth: basic and bearer tokens; retries; timeouts), MemorySeedRegistry is its in-memory twin.
// It may import oci. It must never import store, p2p, distribution, http or node.

export { SeedError, type SeedFailure } from './errors.js';
export { HttpSeedRegistry } from './http-seed-registry.js';
export { MemorySeedRegistry, type HeldBody, type MemorySeedOptions } from './memory-seed-registry.js';
export type { SeedClientOptions } from './registry-client.js';
export type { SeedBlob, SeedManifest, SeedManifestHead, SeedReferrers, SeedRegistry, SeedTagPage, TagPageQuery } from './seed-registry.js';
