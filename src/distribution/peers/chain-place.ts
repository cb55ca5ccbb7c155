// A node's place in one blob's chain during one download: whom it follows, and the predecessors that
// failed it part way (the coordinator or the rollout's order is told, and hands the node on to the one
// before them, instead of this node, and every node after it, going to the seed). Pure, so the cluster
// simulator (src/sim) gives up on a predecessor exactly when the daemon does.

/** Chain predecessors that may fail mid-download before a node gives up on peers for the blob. */
export const MAX_FOLLOW_RETRIES = 3;

export class ChainPlace {
  /** Predecessors that failed this download, in the order they did. */
  readonly failed: string[] = [];
  private following: string | undefined;

  /** The node now follows `id`'s download. */
  follow(id: string): void {
    this.following = id;
  }

  /** The node heads the chain (or takes the blob from holders): it follows no one. */
  lead(): void {
    this.following = undefined;
  }

  /** Whether it follows a predecessor now. */
  get follows(): string | undefined {
    return this.following;
  }

  /**
   * The download broke: true when the node is to ask again for a predecessor (the one it followed now
   * counted failed), false when it leads (nothing to pass over) or too many have failed it already.
   */
  retry(): boolean {
    if (!this.following || this.failed.length >= MAX_FOLLOW_RETRIES) return false;
    this.failed.push(this.following);
    this.following = undefined;
    return true;
  }
}
