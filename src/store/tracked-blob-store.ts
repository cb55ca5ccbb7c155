// A BlobStore that keeps a UsageIndex of what it holds: sizes, order of last use, and which blobs are
// being read right now (those are never evicted). Commits and deletes reach the index through the
// store's change stream, whoever makes them; reads are seen because every layer above reads through
// this store. It also holds each commit's digest in its CollectionGuard (a guard, not an observer: a
// commit waits for a sweep's delete of the same digest).
import type { ByteRange, Digest } from '../oci/index.js';
import type { BlobInfo, BlobStore, BlobWriter, ByteSource, OpenBlob } from './blob-store.js';
import type { BlobChange, Listener, Unsubscribe } from './change-stream.js';
import { CollectionGuard } from './collection-guard.js';
import { UsageIndex } from './usage-index.js';

/** A blob's last use is written to disk at most this often (a use is an mtime update). */
const TOUCH_PERSIST_MS = 60_000;

export class TrackedBlobStore implements BlobStore {
  readonly index = new UsageIndex();
  /** What collections and evictions must spare; every commit through this store is held and marked. */
  readonly guard = new CollectionGuard();
  private readonly readers = new Map<Digest, number>();
  private readonly persisted = new Map<Digest, number>();

  constructor(
    private readonly inner: BlobStore,
    private readonly now: () => number = Date.now,
  ) {
    // Subscribed before anyone subscribes through this store: their listeners find the index current.
    inner.subscribe((change) => this.changed(change));
  }

  /** Builds the index from what the store holds. */
  async init(): Promise<this> {
    const found = [];
    for await (const info of this.inner.list()) found.push({ digest: info.digest, size: info.size, lastUse: info.accessedAt ?? 0 });
    this.index.load(found);
    return this;
  }

  isReading(digest: Digest): boolean {
    return (this.readers.get(digest) ?? 0) > 0;
  }

  /** Records where a blob came from (for the dashboard and /api/blobs). */
  setSource(digest: Digest, source: string): void {
    const e = this.index.get(digest);
    if (e) e.source = source;
  }


  async open(digest: Digest, range?: ByteRange): Promise<OpenBlob> {
    this.readers.set(digest, (this.readers.get(digest) ?? 0) + 1);
    let opened: OpenBlob;
    try {
      opened = await this.inner.open(digest, range);
    } catch (err) {
      this.release(digest);
      throw err;
    }
    this.used(digest);
    opened.stream.once('close', () => this.release(digest));
    return opened;
  }

  private release(digest: Digest): void {
    const n = (this.readers.get(digest) ?? 1) - 1;
    if (n <= 0) this.readers.delete(digest);
    else this.readers.set(digest, n);
  }

  private used(digest: Digest): void {
    const t = this.now();
    this.index.touch(digest, t);
    if (!this.inner.touch || t - (this.persisted.get(digest) ?? 0) < TOUCH_PERSIST_MS) return;
    this.persisted.set(digest, t);
    if (this.persisted.size > 100_000) this.persisted.clear();
    void this.inner.touch(digest).catch(() => undefined);
  }

  private changed(change: BlobChange): void {
    if (change.kind === 'committed') this.index.add(change.digest, change.size, this.now());
    else this.forget(change.digest);
  }

  private forget(digest: Digest): void {
    this.index.remove(digest);
    this.persisted.delete(digest);
  }

  subscribe(listener: Listener<BlobChange>): Unsubscribe {
    return this.inner.subscribe(listener);
  }

  stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.inner.stat(digest);
  }

  /** A commit waits for a sweep's delete of the same digest already under way, and no sweep starts one meanwhile. */
  put(source: ByteSource, expected: Digest): Promise<BlobInfo> {
    return this.guard.holding(expected, () => this.inner.put(source, expected));
  }

  async createWriter(opts?: { expectedSize?: number }): Promise<BlobWriter> {
    return this.held(await this.inner.createWriter(opts));
  }

  async resumeWriter(id: string): Promise<BlobWriter | undefined> {
    const writer = await this.inner.resumeWriter(id);
    return writer && this.held(writer);
  }

  /** The writer, its commit held in the guard as put's is. */
  private held(writer: BlobWriter): BlobWriter {
    return {
      id: writer.id,
      size: () => writer.size(),
      append: (source, opts) => writer.append(source, opts),
      ...(writer.writeAt && writer.landedFrom
        ? { writeAt: writer.writeAt.bind(writer), landedFrom: writer.landedFrom.bind(writer) }
        : {}),
      openReader: () => writer.openReader(),
      commit: (expected, opts) => this.guard.holding(expected, () => writer.commit(expected, opts)),
      abort: () => writer.abort(),
    };
  }

  freeBytes(): Promise<number> {
    return this.inner.freeBytes ? this.inner.freeBytes() : Promise.resolve(Infinity);
  }

  async delete(digest: Digest): Promise<boolean> {
    const existed = await this.inner.delete(digest);
    // A blob gone from under the store (so no change told of it) leaves the index too.
    if (!existed) this.forget(digest);
    return existed;
  }

  list(): AsyncIterable<BlobInfo> {
    return this.inner.list();
  }

  touch(digest: Digest): Promise<void> {
    return this.inner.touch?.(digest) ?? Promise.resolve();
  }
}
