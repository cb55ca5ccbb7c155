// The stripe trees of one rollout as the daemon runs them (stripe-trees.ts): the trees span the order after
// the origin, whose own download (from the seed, as a line's head) feeds every tree's root, so the seed
// sends each blob once. Every node works out its parents from the order alone; the origin keeps the trees
// from then on: a parent a child names as failing it (a suspect in its progress report) is demoted in that
// stripe, a node whose reports stopped is removed from every tree, and each node whose parent changed is
// told its new one (a Repoint). Pure: the caller sends the repoints and says who is silent.
import { StripeTrees, type HeldShare } from './stripe-trees.js';
import type { NodeProgress, Repoint, StripeShape } from './view.js';

/** A repoint and the node it goes to. */
export interface Addressed {
  node: string;
  repoint: Repoint;
}

export class StripeKeeper {
  private readonly trees: StripeTrees;
  private readonly members: Set<string>;
  /** `${stripe}/${parent}` already demoted, and nodes already removed: each is acted on once. */
  private readonly demoted = new Set<string>();
  private readonly removed = new Set<string>();

  constructor(
    private readonly rollout: string,
    private readonly origin: string,
    order: readonly string[],
    readonly shape: StripeShape,
  ) {
    const rest = order.filter((id) => id !== origin);
    this.trees = new StripeTrees(rest, shape.k);
    this.members = new Set(rest);
  }

  /** Whether `node` takes the rollout by stripes (the origin and nodes outside the order do not). */
  has(node: string): boolean {
    return this.members.has(node);
  }

  /** Whom `node` takes each stripe from: its parent, or the origin for a tree's root. */
  parentsOf(node: string): string[] {
    return Array.from({ length: this.shape.k }, (_, s) => this.trees.parent(s, node) ?? this.origin);
  }

  /**
   * A node's report: each parent it names as failing it is demoted in that stripe (once; the origin,
   * which is in no tree, never is). `held`: what the nodes last reported holding of a stripe.
   */
  heard(progress: NodeProgress, held: (stripe: number) => HeldShare): Addressed[] {
    const out: Addressed[] = [];
    for (const { stripe, parent } of progress.stripes?.suspects ?? []) {
      const key = `${stripe}/${parent}`;
      if (stripe >= this.shape.k || !this.members.has(parent) || this.removed.has(parent) || this.demoted.has(key)) continue;
      this.demoted.add(key);
      out.push(...this.tell(stripe, this.trees.demote(stripe, parent, held(stripe))));
    }
    return out;
  }

  /** A node gone silent: out of every tree, its children handed on. */
  lost(node: string, held: (stripe: number) => HeldShare): Addressed[] {
    if (!this.members.has(node) || this.removed.has(node)) return [];
    this.removed.add(node);
    return this.trees.remove(node, held).flatMap((moved, s) => this.tell(s, moved));
  }

  /** The repoints for the nodes that moved in a stripe (not the node demoted, if it moved itself). */
  private tell(stripe: number, moved: readonly string[]): Addressed[] {
    return moved.filter((node) => !this.removed.has(node)).map((node) => ({ node, repoint: { rollout: this.rollout, stripe, parent: this.trees.parent(stripe, node) ?? this.origin } }));
  }
}
