// A BlobStore that tells the content router about every blob it commits and every blob it loses, so
// "in the store" and "announced to the cluster" cannot drift apart whoever writes: a push, a mirror
// fetch, a peer fetch.
import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';
import type { ContentRouter } from '../p2p/content-router.js';
import { onWriterCommit, type BlobInfo, type BlobStore, type BlobWriter, type ByteSource, type OpenBlob } from '../store/blob-store.js';

export class AnnouncingBlobStore implements BlobStore {
  constructor(
    private readonly inner: BlobStore,
    private readonly router: ContentRouter,
  ) {}

  private announce(info: BlobInfo): BlobInfo {
    void this.router.provide(info.digest).catch(() => undefined); // queued; failures are logged by the router
    return info;
  }

  stat(digest: Digest): Promise<BlobInfo | undefined> {
    return this.inner.stat(digest);
  }

  open(digest: Digest, range?: ByteRange): Promise<OpenBlob> {
    return this.inner.open(digest, range);
  }

  async put(source: ByteSource, expected: Digest): Promise<BlobInfo> {
    return this.announce(await this.inner.put(source, expected));
  }

  async createWriter(): Promise<BlobWriter> {
    return onWriterCommit(await this.inner.createWriter(), (info) => this.announce(info));
  }

  async resumeWriter(id: string): Promise<BlobWriter | undefined> {
    const writer = await this.inner.resumeWriter(id);
    return writer && onWriterCommit(writer, (info) => this.announce(info));
  }


  async delete(digest: Digest): Promise<boolean> {
    const deleted = await this.inner.delete(digest);
    if (deleted) await this.router.withdraw(digest).catch(() => undefined);
    return deleted;
  }

  list(): AsyncIterable<BlobInfo> {
    return this.inner.list();
  }

  /** Announces everything already in the store (after a restart the DHT has forgotten this node). */
  async announceAll(): Promise<number> {
    let n = 0;
    for await (const info of this.inner.list()) {
      this.announce(info);
      n++;
    }
    return n;
  }
}
