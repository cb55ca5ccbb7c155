// Which held blobs this node may offer to peers (answer on the blob protocol, announce in the DHT). A
// blob is offered when some public repository links it, pushed or cached from a seed; a blob linked
// only by private repositories (--private-repos), or by none yet, is kept to this node, unless
// --share-private-blobs says otherwise. Content addressing makes a public link enough: whoever asks
// for a digest reachable through a public repository could read it over /v2 anyway.
//
// Links change through the repository stores, so their change streams are followed (follow()): a new
// public link tells subscribers the blob is shared, a removed one re-checks it. Answers are memoised per
// digest until a link of that digest changes, so a peer's range requests do not each walk the repositories.
import type { Digest, RepositoryName } from '../../oci/index.js';
import { ChangeEmitter, type ChangeStream, type LinkChange, type Listener, type RepositoryStore, type Unsubscribe } from '../../store/index.js';
import type { RepositoryVisibility } from './repository-visibility.js';

export interface BlobSharingOptions {
  visibility: RepositoryVisibility;
  /** --share-private-blobs: offer everything, as if no repository were private. */
  sharePrivate: boolean;
  /** Every store whose links count: pushed content and each seed's cache. */
  stores: () => Promise<RepositoryStore[]>;
}

/** A blob became offerable (a public link appeared), or stopped being (its last public link went). */
export type SharingChange = { readonly kind: 'shared'; readonly digest: Digest } | { readonly kind: 'unshared'; readonly digest: Digest };

const MEMO_MAX = 10_000;

export class BlobSharing implements ChangeStream<SharingChange> {
  private readonly memo = new Map<Digest, Promise<boolean>>();
  private readonly changes = new ChangeEmitter<SharingChange>();

  constructor(private readonly opts: BlobSharingOptions) {}

  /** Whether the policy filters anything: with no private repositories, or sharing on, every blob is offered. */
  get active(): boolean {
    return this.opts.visibility.hasPrivate && !this.opts.sharePrivate;
  }

  /** Told of blobs becoming offerable or not as links change (announcing follows this), while the policy is active. */
  subscribe(listener: Listener<SharingChange>): Unsubscribe {
    return this.changes.subscribe(listener);
  }

  /** Whether peers may have the blob: it is linked by a public repository (or the policy is off). */
  shareable(digest: Digest): Promise<boolean> {
    if (!this.active) return Promise.resolve(true);
    return this.publiclyLinked(digest);
  }

  /**
   * Whether a public repository links the blob, whatever --share-private-blobs says: what decides if
   * bytes held here may answer a /v2 request by digest alone. Sharing private blobs makes the peer
   * network the trust boundary; it does not open them to anonymous HTTP clients.
   */
  publiclyLinked(digest: Digest): Promise<boolean> {
    if (!this.opts.visibility.hasPrivate) return Promise.resolve(true);
    let answer = this.memo.get(digest);
    if (!answer) {
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
      answer = this.linkedPublicly(digest);
      this.memo.set(digest, answer);
      answer.catch(() => this.memo.delete(digest));
    }
    return answer;
  }

  /** The digests public repositories link: for announcing a whole store at once (one walk, not one per blob). */
  async publicDigests(): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    for (const store of await this.opts.stores()) {
      for (const repo of await store.listRepositories()) {
        if (this.opts.visibility.isPrivate(repo)) continue;
        for (const digest of await store.listLinked(repo)) out.add(digest);
      }
    }
    return out;
  }

  private async linkedPublicly(digest: Digest): Promise<boolean> {
    for (const store of await this.opts.stores()) {
      for (const repo of await store.listRepositories()) {
        if (this.opts.visibility.isPrivate(repo)) continue;
        if ((await store.hasBlob(repo, digest)) || (await store.getManifest(repo, digest))) return true;
      }
    }
    return false;
  }

  /**
   * Follows a store's link changes (each of `opts.stores`, as it is opened). With no private repository
   * there is nothing to memoise nor to announce apart from commits, so nothing is followed.
   */
  follow(store: RepositoryStore): Unsubscribe {
    if (!this.opts.visibility.hasPrivate) return () => undefined;
    return store.subscribe((change) => this.linkChanged(change));
  }

  private linkChanged(change: LinkChange): void {
    if (change.kind === 'linked') this.linked(change.repository, change.digest);
    else void this.unlinked(change.digest).catch(() => undefined); // a failed re-check leaves it announced until the next change
  }

  private linked(repo: RepositoryName, digest: Digest): void {
    this.memo.delete(digest);
    if (this.active && !this.opts.visibility.isPrivate(repo)) this.changes.emit({ kind: 'shared', digest });
  }

  private async unlinked(digest: Digest): Promise<void> {
    this.memo.delete(digest);
    if (this.active && !(await this.shareable(digest))) this.changes.emit({ kind: 'unshared', digest });
  }
}
