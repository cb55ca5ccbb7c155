// A BlobStore that tells the content router about every blob it commits and every blob it loses, so
// "in the store" and "announced to the cluster" cannot drift apart whoever writes: a push, a mirror
// fetch, a peer fetch.
import type { Digest } from '../oci/digest.js';
import type { ContentRouter } from '../p2p/content-router.js';
import { ForwardingBlobStore, type BlobInfo, type BlobStore } from '../store/blob-store.js';

export class AnnouncingBlobStore extends ForwardingBlobStore {
  constructor(
    inner: BlobStore,
    private readonly router: ContentRouter,
  ) {
    super(inner);
  }

  protected override committed(info: BlobInfo): BlobInfo {
    void this.router.provide(info.digest).catch(() => undefined); // queued; failures are logged by the router
    return info;
  }

  protected override async deleted(digest: Digest, existed: boolean): Promise<void> {
    if (existed) await this.router.withdraw(digest).catch(() => undefined);
  }

  /** Announces everything already in the store (after a restart the DHT has forgotten this node). */
  async announceAll(): Promise<number> {
    let n = 0;
    for await (const info of this.inner.list()) {
      this.committed(info);
      n++;
    }
    return n;
  }
}
