// What keeps a garbage collection or an eviction from removing content that was committed or linked
// while it ran. A sweep first lists what the repositories link (seconds over a few thousand of them),
// then removes what is not in that list; anything linked after the listing began is missing from it.
// So the sweep does not trust its list alone:
//  - every commit and every link marks its digest in each sweep running when it completes (a sweep that
//    begins after that lists it from disk, so between the two nothing is missed);
//  - a push holds its digests from before the commit until its link is written: a sweep that begins in
//    between, when the blob is on disk but linked nowhere yet, leaves it alone;
//  - a sweep removes a digest only through `remove`, where the check and the start of the delete are one
//    synchronous step, and a commit or a link of that digest first waits for a delete already started
//    (else the rename of a fresh copy could land just before the unlink and be removed by it).
// No lock is taken on the push path: a hold is a counter, a mark a set insert.
import type { Descriptor, Digest, RepositoryName, Tag } from '../oci/index.js';
import type { LinkChange, Listener, Unsubscribe } from './change-stream.js';
import type { ManifestRecord, RepositoryStore } from './repository-store.js';

/** One collection's or eviction's view: what it must spare besides what its listing found. */
export interface Sweep {
  /** Held by a push right now, or committed or linked since the sweep began. */
  spares(digest: Digest): boolean;
  end(): void;
}

export class CollectionGuard {
  private readonly holds = new Map<Digest, number>();
  private readonly marks = new Set<Set<Digest>>();
  private readonly deleting = new Map<Digest, Promise<unknown>>();

  /** Starts a sweep: call before listing what the repositories link. */
  begin(): Sweep {
    const marked = new Set<Digest>();
    this.marks.add(marked);
    return {
      spares: (digest) => marked.has(digest) || this.holds.has(digest),
      end: () => void this.marks.delete(marked),
    };
  }

  /** The digest was committed or linked just now. */
  mark(digest: Digest): void {
    for (const marked of this.marks) marked.add(digest);
  }

  /** Keeps `digest` from every sweep until the returned release is called (which marks it once more). */
  hold(digest: Digest): () => void {
    this.holds.set(digest, (this.holds.get(digest) ?? 0) + 1);
    this.mark(digest);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.holds.get(digest) ?? 1) - 1;
      if (n <= 0) this.holds.delete(digest);
      else this.holds.set(digest, n);
      this.mark(digest);
    };
  }

  /** Runs `work` with `digest` held, after any delete of it already started has finished. */
  async holding<T>(digest: Digest, work: () => Promise<T>): Promise<T> {
    const release = this.hold(digest);
    try {
      await this.settled(digest);
      return await work();
    } finally {
      release();
    }
  }

  /** Resolves once no sweep is deleting `digest`. */
  async settled(digest: Digest): Promise<void> {
    for (let running = this.deleting.get(digest); running; running = this.deleting.get(digest)) await running.catch(() => undefined);
  }

  /**
   * Deletes `digest` with `del` unless the sweep must spare it: false without calling `del` when it
   * must. Nothing awaits between the check and the call, so no hold can slip in between.
   */
  async remove(sweep: Sweep, digest: Digest, del: () => Promise<boolean>): Promise<boolean> {
    if (sweep.spares(digest) || this.deleting.has(digest)) return false;
    const running = del();
    this.deleting.set(digest, running);
    try {
      return await running;
    } finally {
      if (this.deleting.get(digest) === running) this.deleting.delete(digest);
    }
  }
}

/**
 * A RepositoryStore whose link and manifest-record writes are held and marked in a CollectionGuard (see
 * above); everything else, its change stream too, is the inner store's. A guard, not an observer: a
 * link waits for a sweep's delete of its digest already under way, which no change event could do.
 */
export class GuardedRepositoryStore implements RepositoryStore {
  constructor(
    private readonly inner: RepositoryStore,
    private readonly guard: CollectionGuard,
  ) {}

  linkBlob(repo: RepositoryName, digest: Digest): Promise<void> {
    return this.guard.holding(digest, () => this.inner.linkBlob(repo, digest));
  }

  putManifest(repo: RepositoryName, record: ManifestRecord): Promise<void> {
    return this.guard.holding(record.digest, () => this.inner.putManifest(repo, record));
  }

  subscribe(listener: Listener<LinkChange>): Unsubscribe {
    return this.inner.subscribe(listener);
  }

  exists(repo: RepositoryName): Promise<boolean> {
    return this.inner.exists(repo);
  }

  listRepositories(): Promise<RepositoryName[]> {
    return this.inner.listRepositories();
  }

  hasBlob(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return this.inner.hasBlob(repo, digest);
  }

  unlinkBlob(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return this.inner.unlinkBlob(repo, digest);
  }

  listLinked(repo: RepositoryName): Promise<Digest[]> {
    return this.inner.listLinked(repo);
  }

  getManifest(repo: RepositoryName, digest: Digest): Promise<ManifestRecord | undefined> {
    return this.inner.getManifest(repo, digest);
  }

  deleteManifest(repo: RepositoryName, digest: Digest): Promise<boolean> {
    return this.inner.deleteManifest(repo, digest);
  }

  setTag(repo: RepositoryName, tag: Tag, digest: Digest): Promise<void> {
    return this.inner.setTag(repo, tag, digest);
  }

  getTag(repo: RepositoryName, tag: Tag): Promise<Digest | undefined> {
    return this.inner.getTag(repo, tag);
  }

  deleteTag(repo: RepositoryName, tag: Tag): Promise<boolean> {
    return this.inner.deleteTag(repo, tag);
  }

  listTags(repo: RepositoryName): Promise<Tag[] | undefined> {
    return this.inner.listTags(repo);
  }

  addReferrer(repo: RepositoryName, subject: Digest, referrer: Descriptor): Promise<void> {
    return this.inner.addReferrer(repo, subject, referrer);
  }

  removeReferrer(repo: RepositoryName, subject: Digest, referrer: Digest): Promise<void> {
    return this.inner.removeReferrer(repo, subject, referrer);
  }

  listReferrers(repo: RepositoryName, subject: Digest): Promise<Descriptor[]> {
    return this.inner.listReferrers(repo, subject);
  }

  addUpload(repo: RepositoryName, id: string): Promise<void> {
    return this.inner.addUpload(repo, id);
  }

  hasUpload(repo: RepositoryName, id: string): Promise<boolean> {
    return this.inner.hasUpload(repo, id);
  }

  removeUpload(repo: RepositoryName, id: string): Promise<void> {
    return this.inner.removeUpload(repo, id);
  }

  hasUploadInAnyRepository(id: string): Promise<boolean> {
    return this.inner.hasUploadInAnyRepository(id);
  }
}
