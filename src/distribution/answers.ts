// What the distribution layer hands the HTTP layer for a read: the bytes' source travels with them.
import type { Readable } from 'node:stream';
import type { ByteRange, Digest } from '../oci/index.js';
import type { ManifestRecord } from '../store/index.js';

export type Source = 'local' | 'peer' | 'upstream';

export interface ManifestAnswer {
  record: ManifestRecord;
  bytes: Buffer;
  source: Source;
  /** Served from cache because the seed could not confirm the tag. */
  stale: boolean;
  /** The seed registry the manifest belongs to; absent for content pushed to this node. */
  registry?: string;
}

export interface BlobAnswer {
  digest: Digest;
  size: number;
  source: Source;
  /** The seed registry the blob was asked for through; absent for content pushed to this node. */
  registry?: string;
  /**
   * For a blob being fetched: resolves once it is verified and kept (rejects if it never is). Lets a
   * caller that only wants the blob on disk (a rollout) wait without reading it back.
   */
  stored?: Promise<void>;
  /**
   * With `stored`: resolves once the bytes are all in and verified, while the commit may still be flushing
   * them (rejects if they never verify). A rollout starts its next blob here.
   */
  verified?: Promise<void>;
  /** The bytes in range (inclusive), or the whole blob. */
  open(range?: ByteRange): Promise<Readable>;
}
