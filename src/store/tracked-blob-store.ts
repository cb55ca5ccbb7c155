// A BlobStore that keeps a UsageIndex of what it holds: sizes, order of last use, and which blobs are
// being read right now (those are never evicted). Every layer above reads and writes through it, so
// the index sees each commit, read and delete whoever makes it.
import type { Digest } from '../oci/index.js';
import type { ByteRange } from '../oci/index.js';
import { ForwardingBlobStore, type BlobInfo, type BlobStore, type OpenBlob } from './blob-store.js';
import { CollectionGuard } from './collection-guard.js';
import { UsageIndex } from './usage-index.js';

/** A blob's last use is written to disk at most this often (a use is an mtime update). */
const TOUCH_PERSIST_MS = 60_000;

export class TrackedBlobStore extends ForwardingBlobStore {
  readonly index = new UsageIndex();
  /** What collections and evictions must spare; every commit through this store is held and marked. */
  readonly guard = new CollectionGuard();
  private readonly readers = new Map<Digest, number>();
  private readonly persisted = new Map<Digest, number>();
  /** Told after every commit (with the index already updated): where a quota check hooks in. */
  onCommit: ((info: BlobInfo) => void) | undefined;

  constructor(
    inner: BlobStore,
    private readonly now: () => number = Date.now,
  ) {
    super(inner);
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


  override async open(digest: Digest, range?: ByteRange): Promise<OpenBlob> {
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

  protected override committed(info: BlobInfo): BlobInfo {
    this.index.add(info.digest, info.size, this.now());
    this.onCommit?.(info);
    return info;
  }

  /** A commit waits for a sweep's delete of the same digest already under way, and no sweep starts one meanwhile. */
  protected override committing<T>(expected: Digest, commit: () => Promise<T>): Promise<T> {
    return this.guard.holding(expected, commit);
  }

  protected override async deleted(digest: Digest): Promise<void> {
    this.index.remove(digest);
    this.persisted.delete(digest);
  }
}
