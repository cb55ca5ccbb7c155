// A BlobStore that tells the content router about every blob it commits and every blob it loses, so
// "in the store" and "announced to the cluster" cannot drift apart whoever writes: a push, a mirror
// fetch, a peer fetch.
import type { Digest } from '../../oci/index.js';
import type { ContentRouter } from '../../p2p/index.js';
import { ForwardingBlobStore, type BlobInfo, type BlobStore } from '../../store/index.js';
import type { BlobSharing } from './blob-sharing.js';

export class AnnouncingBlobStore extends ForwardingBlobStore {
  constructor(
    inner: BlobStore,
    private readonly router: ContentRouter,
    /** Which blobs may be offered to peers; absent: all. */
    private readonly sharing?: BlobSharing,
  ) {
    super(inner);
    // A blob committed for a private repository is announced later, if ever: when a public one links it.
    sharing?.onChange({
      shared: (digest) => void this.provide(digest),
      unshared: (digest) => void this.router.withdraw(digest).catch(() => undefined),
    });
  }

  private async provide(digest: Digest): Promise<void> {
    if (!(await this.inner.stat(digest))) return; // a link to a blob evicted since
    await this.router.provide(digest).catch(() => undefined); // queued; failures are logged by the router
  }

  protected override committed(info: BlobInfo): BlobInfo {
    if (!this.sharing?.active) void this.router.provide(info.digest).catch(() => undefined);
    else void this.sharing.shareable(info.digest).then((ok) => (ok ? this.router.provide(info.digest) : undefined)).catch(() => undefined);
    return info;
  }

  protected override async deleted(digest: Digest, existed: boolean): Promise<void> {
    if (existed) await this.router.withdraw(digest).catch(() => undefined);
  }

  /** Announces everything already in the store (after a restart the DHT has forgotten this node). */
  async announceAll(): Promise<number> {
    const offered = this.sharing?.active ? await this.sharing.publicDigests() : undefined;
    let n = 0;
    for await (const info of this.inner.list()) {
      if (offered && !offered.has(info.digest)) continue;
      void this.router.provide(info.digest).catch(() => undefined);
      n++;
    }
    return n;
  }
}
