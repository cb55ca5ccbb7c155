// The one way a store says it changed: a typed stream any number of parties subscribe to (usage
// accounting, quota enforcement, announcing, the sharing policy), none knowing of the others. A store
// emits synchronously once the change is durable, in the order its changes complete, so a listener
// sees the store as it is now and listeners run in the order they subscribed (the usage index, which
// the store's wrapper subscribes first, is up to date before a quota check that reads it).
import type { Digest, RepositoryName } from '../oci/index.js';

export type Unsubscribe = () => void;
export type Listener<E> = (change: E) => void;

export interface ChangeStream<E> {
  /** Calls `listener` with every change from now until the returned function is called. */
  subscribe(listener: Listener<E>): Unsubscribe;
}

/** A blob store's changes: a blob became readable under its digest, or stopped being. */
export type BlobChange = { readonly kind: 'committed'; readonly digest: Digest; readonly size: number } | { readonly kind: 'deleted'; readonly digest: Digest };

/**
 * A repository store's link changes: a blob link or a manifest record written (every write, even of a
 * link already there) or removed (only when there was one). Tags, referrers and uploads are not links.
 */
export type LinkChange = { readonly kind: 'linked'; readonly repository: RepositoryName; readonly digest: Digest } | { readonly kind: 'unlinked'; readonly repository: RepositoryName; readonly digest: Digest };

export class ChangeEmitter<E> implements ChangeStream<E> {
  /** Replaced, never mutated: an emit walks the list as it was, whoever (un)subscribes meanwhile. */
  private listeners: ReadonlyArray<{ listener: Listener<E> }> = [];

  subscribe(listener: Listener<E>): Unsubscribe {
    const entry = { listener };
    this.listeners = [...this.listeners, entry];
    return () => {
      this.listeners = this.listeners.filter((e) => e !== entry);
    };
  }

  /**
   * Tells every listener. The change has happened whatever a listener does: one that throws is a bug,
   * reported as an uncaught error once this returns, never as a failure of the change, and the listeners
   * after it are still told.
   */
  emit(change: E): void {
    for (const { listener } of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** What a repository store emits with: a removal that found no link tells nobody. */
export class LinkChanges extends ChangeEmitter<LinkChange> {
  /** Tells the subscribers of a link change (once it is durable); returns whether it happened. */
  changed(kind: LinkChange['kind'], repository: RepositoryName, digest: Digest, happened = true): boolean {
    if (happened) this.emit({ kind, repository, digest });
    return happened;
  }
}
