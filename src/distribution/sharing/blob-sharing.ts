// Which held blobs this node may offer to peers (answer on the blob protocol, announce in the DHT). A
// blob is offered when some public repository links it, pushed or cached from a seed; a blob linked
// only by private repositories (--private-repos), or by none yet, is kept to this node, unless
// --share-private-blobs says otherwise. Content addressing makes a public link enough: whoever asks
// for a digest reachable through a public repository could read it over /v2 anyway.
//
// Links change through the repository stores, so those are watched (watch()): a new public link
// announces the blob, a removed one re-checks it. Answers are memoised per digest until a link of that
// digest changes, so a peer's range requests do not each walk the repositories.
import type { Digest } from '../../oci/index.js';
import type { RepositoryName } from '../../oci/index.js';
import type { ManifestRecord, RepositoryStore } from '../../store/index.js';
import type { RepositoryVisibility } from './repository-visibility.js';

export interface BlobSharingOptions {
  visibility: RepositoryVisibility;
  /** --share-private-blobs: offer everything, as if no repository were private. */
  sharePrivate: boolean;
  /** Every store whose links count: pushed content and each seed's cache. */
  stores: () => Promise<RepositoryStore[]>;
}

/** Told when a blob becomes offerable (a public link appeared) or may have stopped being (a link went). */
export interface SharingEvents {
  shared(digest: Digest): void;
  unshared(digest: Digest): void;
}

const MEMO_MAX = 10_000;

export class BlobSharing {
  private readonly memo = new Map<Digest, Promise<boolean>>();
  private events: SharingEvents | undefined;

  constructor(private readonly opts: BlobSharingOptions) {}

  /** Whether the policy filters anything: with no private repositories, or sharing on, every blob is offered. */
  get active(): boolean {
    return this.opts.visibility.hasPrivate && !this.opts.sharePrivate;
  }

  /** Where announcements and withdrawals go once links change (the content router). */
  onChange(events: SharingEvents): void {
    this.events = events;
  }

  /** Whether link changes must be watched (watch()): whenever some repository is private, for publiclyLinked()'s memo. */
  get watching(): boolean {
    return this.opts.visibility.hasPrivate;
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

  private linked(repo: RepositoryName, digest: Digest): void {
    this.memo.delete(digest);
    if (this.active && !this.opts.visibility.isPrivate(repo)) this.events?.shared(digest);
  }

  private async unlinked(digest: Digest): Promise<void> {
    this.memo.delete(digest);
    if (this.active && !(await this.shareable(digest))) this.events?.unshared(digest);
  }

  /** The store, with its link changes reported to this policy. */
  watch(store: RepositoryStore): RepositoryStore {
    const linkBlob = async (repo: RepositoryName, digest: Digest) => {
      await store.linkBlob(repo, digest);
      this.linked(repo, digest);
    };
    const putManifest = async (repo: RepositoryName, record: ManifestRecord) => {
      await store.putManifest(repo, record);
      this.linked(repo, record.digest);
    };
    const unlinkBlob = async (repo: RepositoryName, digest: Digest) => {
      const removed = await store.unlinkBlob(repo, digest);
      if (removed) await this.unlinked(digest);
      return removed;
    };
    const deleteManifest = async (repo: RepositoryName, digest: Digest) => {
      const removed = await store.deleteManifest(repo, digest);
      if (removed) await this.unlinked(digest);
      return removed;
    };
    return new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'linkBlob') return linkBlob;
        if (prop === 'putManifest') return putManifest;
        if (prop === 'unlinkBlob') return unlinkBlob;
        if (prop === 'deleteManifest') return deleteManifest;
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}
