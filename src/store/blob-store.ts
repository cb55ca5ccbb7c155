// The BlobStore seam: one content-addressed copy per digest. Writes land in a writer's private area
// and become visible under their digest only after the digest verifies (commit), so nothing half
// written is ever readable under a real name. Implemented by FsBlobStore and MemoryBlobStore; both
// pass test/unit/store/blob-store.conformance.ts.
import type { Readable } from 'node:stream';
import type { ByteRange, Digest } from '../oci/index.js';
import type { BlobChange, ChangeStream } from './change-stream.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
  /** When the blob was last read or written (ms since the epoch), where the store keeps that. */
  accessedAt?: number;
}

export interface OpenBlob extends BlobInfo {
  /** The requested bytes (the whole blob when no range was asked for). */
  stream: Readable;
}

export type ByteSource = Readable | AsyncIterable<Uint8Array>;

export interface AppendOptions {
  /** The offset the bytes must start at. */
  at?: number;
  /** Called with the new size() each time bytes have reached the writer's storage. */
  onProgress?: (size: number) => void;
  /**
   * If the source fails part way, keep the bytes that reached storage whole (and the running hash over
   * them) instead of rolling back: a download goes on from size() with another source. Bytes of a write
   * that failed part way are never counted.
   */
  keepLanded?: boolean;
}

export interface WrittenReader {
  /**
   * Up to `length` bytes from `position`, which must lie below the writer's size(). With `into` (at least
   * `length` long) they are read into it and a view of it is returned: no new buffer per read.
   */
  read(position: number, length: number, into?: Buffer): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A blob being written, possibly over several calls (chunked uploads) and across restarts. */
export interface BlobWriter {
  readonly id: string;
  /** Bytes written so far. */
  size(): number;
  /**
   * Appends the source's bytes. With `at`, the chunk must start exactly there (OffsetMismatchError
   * otherwise, checked in turn with other appends). If the source fails part way, the writer is rolled
   * back to the size it had before the call, so a retried chunk starts from a known offset (unless
   * `keepLanded`). Either way another append may follow a failed one.
   */
  append(source: ByteSource, opts?: AppendOptions): Promise<number>;
  /**
   * Writes `data` at `position`, which may lie past size() (a striped download's chunks land out of
   * order): the bytes are on file and readable (landedFrom) at once, counted in size() and hashed once
   * the bytes before them are in. Refused (LandingRefusedError) below size(), over bytes landed already,
   * or past `limit` (the blob's size). Resolves with the new size(). An append drops whatever landed past
   * size(): it goes on from there in order. Optional: a store without it cannot take striped downloads.
   */
  writeAt?(position: number, data: readonly Buffer[], limit?: number): Promise<number>;
  /** Bytes on file in one run from `position` (below size(), or landed past it by writeAt); 0 when none. */
  landedFrom?(position: number): number;
  /**
   * A reader of the bytes written so far: how clients follow a download still being written. It stays
   * valid through the commit (the same bytes, now under their digest). Bytes read before the commit
   * are not verified yet.
   */
  openReader(): Promise<WrittenReader>;
  /**
   * Verifies the bytes against `expected` and makes them readable under it; the writer is then gone.
   * `onVerified` is called as soon as the digest matched, before the bytes are flushed and renamed.
   */
  commit(expected: Digest, opts?: { onVerified?: () => void }): Promise<BlobInfo>;
  /** Drops the bytes written; the writer is then gone. */
  abort(): Promise<void>;
}

/**
 * Every store tells its subscribers of each commit and each delete (see change-stream.ts): a commit once
 * the blob is durable and readable under its digest, a delete only when there was a blob to remove.
 * A failed or aborted write tells nothing.
 */
export interface BlobStore extends ChangeStream<BlobChange> {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Opens a blob for reading; throws BlobNotFoundError. The range is inclusive and must lie inside the blob. */
  open(digest: Digest, range?: ByteRange): Promise<OpenBlob>;
  /** Writes a whole blob from a stream and commits it under `expected`. */
  put(source: ByteSource, expected: Digest): Promise<BlobInfo>;
  /**
   * A new writer. `expectedSize`, when known, is checked against the free space first: a download that
   * cannot fit fails before a client is sent any header (InsufficientStorageError), not halfway.
   */
  createWriter(opts?: { expectedSize?: number }): Promise<BlobWriter>;
  /**
   * The free bytes createWriter checks `expectedSize` against, for a writer made before its size is known
   * (optional: a store without it never runs out of room).
   */
  freeBytes?(): Promise<number>;
  /** Reopens a writer by id (after a restart too); undefined if there is none. */
  resumeWriter(id: string): Promise<BlobWriter | undefined>;
  /** Removes a blob; false if it was not there. */
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
  /** Records a use of the blob, so the order of last use survives a restart (optional). */
  touch?(digest: Digest): Promise<void>;
}

/** Shared by the implementations: write, commit, and abort on any failure. */
export async function putViaWriter(store: BlobStore, source: ByteSource, expected: Digest): Promise<BlobInfo> {
  const writer = await store.createWriter();
  try {
    await writer.append(source);
    return await writer.commit(expected);
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
}

/** Reads a whole blob into memory: for manifests only, which the spec bounds (4 MiB). */
export async function readSmallBlob(store: BlobStore, digest: Digest): Promise<Buffer> {
  const { stream } = await store.open(digest);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
