// Tells the content router about every blob the store commits and every blob it loses, so "in the
// store" and "announced to the cluster" cannot drift apart whoever writes: a push, a mirror fetch, a
// peer fetch. It follows the store's change stream, and the sharing policy's while one is active.
import type { Digest } from '../../oci/index.js';
import type { ContentRouter } from '../../p2p/index.js';
import type { BlobChange, BlobStore, Unsubscribe } from '../../store/index.js';
import type { BlobSharing, SharingChange } from './blob-sharing.js';

export class Announcer {
  private readonly unsubscribe: Unsubscribe[];
  /**
   * Withdrawals under way. A provide of the same digest (a fresh copy committed) goes after its
   * withdrawal, or the late withdrawal could cancel the new announcement.
   */
  private readonly withdrawing = new Map<Digest, Promise<void>>();

  constructor(
    private readonly store: BlobStore,
    private readonly router: ContentRouter,
    /** Which blobs may be offered to peers; absent: all. */
    private readonly sharing?: BlobSharing,
  ) {
    this.unsubscribe = [store.subscribe((change) => this.blobChanged(change))];
    // A blob committed for a private repository is announced later, if ever: when a public one links it.
    if (sharing) this.unsubscribe.push(sharing.subscribe((change) => this.sharingChanged(change)));
  }

  /** Stops following the store and the policy: nothing more is announced or withdrawn. */
  stop(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
  }

  private blobChanged(change: BlobChange): void {
    const { digest } = change;
    if (change.kind === 'deleted') this.withdraw(digest);
    else if (!this.sharing?.active) void this.provide(digest);
    else void this.sharing.shareable(digest).then((ok) => (ok ? this.provide(digest) : undefined)).catch(() => undefined);
  }

  private sharingChanged(change: SharingChange): void {
    if (change.kind === 'shared') void this.provideHeld(change.digest);
    else this.withdraw(change.digest);
  }

  /** Announces a blob that a link made offerable, if it is still here (a link may outlive an evicted blob). */
  private async provideHeld(digest: Digest): Promise<void> {
    if (await this.store.stat(digest).catch(() => undefined)) await this.provide(digest);
  }

  private async provide(digest: Digest): Promise<void> {
    const withdrawal = this.withdrawing.get(digest);
    if (withdrawal) await withdrawal;
    await this.router.provide(digest).catch(() => undefined); // queued; failures are logged by the router
  }

  private withdraw(digest: Digest): void {
    const done: Promise<void> = this.router
      .withdraw(digest)
      .catch(() => undefined)
      .finally(() => {
        if (this.withdrawing.get(digest) === done) this.withdrawing.delete(digest);
      });
    this.withdrawing.set(digest, done);
  }

  /** Announces everything already in the store (after a restart the DHT has forgotten this node). */
  async announceAll(): Promise<number> {
    const offered = this.sharing?.active ? await this.sharing.publicDigests() : undefined;
    let n = 0;
    for await (const info of this.store.list()) {
      if (offered && !offered.has(info.digest)) continue;
      void this.router.provide(info.digest).catch(() => undefined);
      n++;
    }
    return n;
  }
}
