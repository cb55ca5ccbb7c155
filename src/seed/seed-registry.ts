// The seam between the read path and a seed registry: what the mirror asks a seed, with typed answers.
// "The seed does not have it" is an answer (undefined), never a status for the caller to check. A seed
// that cannot answer, or answers something that cannot be right, throws a SeedError (errors.ts); what
// either means to a client is the caller's to decide.
//
// Two implementations pass one contract (test/unit/seed/seed-registry.conformance.ts): HttpSeedRegistry,
// any OCI registry over HTTP (CNCF distribution, Docker Hub, a layerd node), and MemorySeedRegistry, the
// twin the unit tests of the mirror's policy run against.
import type { Readable } from 'node:stream';
import type { Descriptor, Digest, ManifestReference, RepositoryName, Tag } from '../oci/index.js';

export interface SeedManifestHead {
  /** The digest the reference names now, when the seed says (Docker-Content-Digest). */
  digest?: Digest;
}

export interface SeedManifest {
  bytes: Buffer;
  /** The media type to serve it with: the seed's Content-Type when it names a manifest type, else the body's. */
  mediaType: string;
  /** The digest of `bytes`: the one asked for, or the one the seed announced, checked against the bytes. */
  digest: Digest;
}

export interface SeedBlob {
  /** The blob's whole size, when the seed says it. */
  size?: number;
  /** The offset `stream` begins at: the offset asked for, or 0 from a seed that ignores ranges. Never later. */
  start: number;
  stream: Readable;
}

/** Where a page of a tag list starts: the `n` and `last` of the request. */
export interface TagPageQuery {
  n?: number;
  last?: Tag;
}

export interface SeedTagPage {
  /** Valid tags by the spec's grammar, each once, in the seed's order. */
  tags: Tag[];
  /** The seed's next page, when it said there is one. */
  next?: TagPageQuery;
}

export interface SeedReferrers {
  /** Checked descriptors, each digest once. */
  manifests: Descriptor[];
  /** Whether the seed says it applied an artifactType filter (OCI-Filters-Applied). */
  filtered: boolean;
  /** The query of the seed's next page, as the seed gave it: the caller decides what of it to pass on. */
  next?: URLSearchParams;
}

export interface SeedRegistry {
  /** The registry it is the seed of, as configured (messages name it). */
  readonly name: string;
  /** What a reference names now, without its body; undefined: no such manifest. */
  headManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifestHead | undefined>;
  /** A manifest's bytes, bounded and checked against its digest; undefined: no such manifest. */
  getManifest(repo: RepositoryName, ref: ManifestReference): Promise<SeedManifest | undefined>;
  /** Whether the repository has the blob, and its size; undefined: it has not. */
  statBlob(repo: RepositoryName, digest: Digest): Promise<{ size: number } | undefined>;
  /** The blob's bytes from `from` on (default 0); undefined: the repository has no such blob. */
  openBlob(repo: RepositoryName, digest: Digest, from?: number): Promise<SeedBlob | undefined>;
  /** One page of a repository's tags (the first without `page`); undefined: no such repository. */
  listTags(repo: RepositoryName, page?: TagPageQuery): Promise<SeedTagPage | undefined>;
  /**
   * The manifests that name `subject`; `query` is passed on as it is (artifactType, the seed's own paging).
   * Undefined: no such repository, or the seed has no referrers API (clients fall back to the tag schema).
   */
  referrers(repo: RepositoryName, subject: Digest, query: URLSearchParams): Promise<SeedReferrers | undefined>;
}
