// A prototype of a rollout shape that holds at a thousand hosts (issue 16), not wired into the daemon:
// each blob is cut into k interleaved stripes, and each stripe goes down its own k-ary tree of the
// rollout's nodes. The nodes are dealt into k groups by their place in the origin's order; in stripe s's
// tree the nodes of group s are the interior ones (the root takes the stripe from the seed), every other
// node is a leaf. So each node relays one stripe to at most k children (it uploads about one image, as in
// a line), the seed sends each stripe once, and the depth is log_k N instead of N: a slow or dead node
// holds back its own subtree in one stripe, not every node behind it.
//
// A node whose stripe lags its others by its parent's fault (the parent holds the bytes and sends them
// slowly, or it is behind on every stripe: a slow link, or silent: dead) has its parent demoted: the parent swaps places with a healthy leaf of
// that tree, which takes over its children, so only the parent, the leaf and the children change whom
// they follow. A leaf taken over is interior in two trees at most (uploads ≤ 2 images). Pure: no I/O.

export interface StripeView {
  /** Bytes of the stripe held. */
  have: number;
  size: number;
}

interface Tree {
  /** Heap order: the parent of position i > 0 is floor((i - 1) / k). */
  at: string[];
  pos: Map<string, number>;
}

export class StripeTrees {
  private readonly trees: Tree[];
  /** Trees each node is interior in. */
  private readonly interior = new Map<string, number>();
  /** Nodes demoted or gone: never made interior again. */
  private readonly avoided = new Set<string>();

  constructor(
    order: readonly string[],
    readonly k: number,
  ) {
    if (k < 1 || !Number.isInteger(k)) throw new Error(`stripes must be a whole number ≥ 1, not ${k}`);
    this.trees = Array.from({ length: k }, (_, s) => {
      const group = order.filter((_, j) => j % k === s);
      // When a group is short of the tree's interior places, the first of the rest fill them: rotated
      // per tree, so no one node fills them in every tree.
      const others = order.filter((_, j) => j % k !== s);
      const turn = others.length > 0 ? (s * Math.ceil(others.length / k)) % others.length : 0;
      const at = [...group, ...others.slice(turn), ...others.slice(0, turn)];
      return { at, pos: new Map(at.map((id, i) => [id, i])) };
    });
    for (let s = 0; s < k; s++) for (let i = 0; i < this.interiorCount(); i++) this.countInterior(this.trees[s]!.at[i]!, 1);
  }

  /** Whom `node` takes stripe s from: a node id, or undefined for the seed (it is the tree's root). */
  parent(stripe: number, node: string): string | undefined {
    const t = this.tree(stripe);
    const i = t.pos.get(node);
    if (i === undefined) throw new Error(`${node} is not in the rollout`);
    return i === 0 ? undefined : t.at[Math.floor((i - 1) / this.k)];
  }

  children(stripe: number, node: string): string[] {
    const t = this.tree(stripe);
    const i = t.pos.get(node)!;
    return t.at.slice(this.k * i + 1, this.k * i + this.k + 1);
  }

  /**
   * `node` is too slow (or gone) to relay stripe s: swapped with a healthy leaf, if it is interior.
   * Returns the nodes whose parent in that tree changed (they must follow their new parent).
   */
  demote(stripe: number, node: string): string[] {
    this.avoided.add(node);
    const t = this.tree(stripe);
    const p = t.pos.get(node)!;
    if (p >= this.interiorCount()) return [];
    const q = this.spareLeaf(t);
    if (q === undefined) return [];
    const spare = t.at[q]!;
    t.at[p] = spare;
    t.at[q] = node;
    t.pos.set(spare, p);
    t.pos.set(node, q);
    this.countInterior(node, -1);
    this.countInterior(spare, 1);
    return [spare, node, ...this.children(stripe, spare)];
  }

  /** A node gone for good: taken out of every tree's interior. Returns, by stripe, the nodes to re-point. */
  remove(node: string): string[][] {
    return this.trees.map((_, s) => this.demote(s, node));
  }

  /**
   * Whether a node should have its parent in stripe s demoted: its stripe s lags its best stripe by more
   * than `lagBytes`, and the parent is the cause: it holds more of the stripe than it sent (its sending is
   * slow), or it is behind this node on every stripe by twice as much (its link is slow), or it did not
   * answer (`parent` undefined: dead or stuck). A parent short of the stripe itself, fine otherwise, is
   * not: its own parent is the cause, and is judged by it.
   */
  static parentIsSlow(mine: readonly StripeView[], stripe: number, parent: readonly StripeView[] | undefined, lagBytes: number): boolean {
    if (!lags(mine, stripe, lagBytes)) return false;
    if (parent === undefined) return true;
    const size = mine[stripe]!.size;
    if (parent[stripe]!.have - mine[stripe]!.have > lagBytes) return true;
    return (furthest(mine) - furthest(parent)) * size > 2 * lagBytes;
  }

  private interiorCount(): number {
    const n = this.trees[0]!.at.length;
    return Math.ceil((n - 1) / this.k);
  }

  /** The last leaf that is usable: not avoided, interior in at most one tree. */
  private spareLeaf(t: Tree): number | undefined {
    for (let q = t.at.length - 1; q >= this.interiorCount(); q--) {
      const id = t.at[q]!;
      if (!this.avoided.has(id) && (this.interior.get(id) ?? 0) <= 1) return q;
    }
    return undefined;
  }

  private countInterior(id: string, by: number): void {
    this.interior.set(id, (this.interior.get(id) ?? 0) + by);
  }

  private tree(stripe: number): Tree {
    const t = this.trees[stripe];
    if (!t) throw new Error(`no stripe ${stripe}`);
    return t;
  }
}

/** Stripe s is unfinished and behind the node's furthest stripe (as a share of the stripe) by more than `lagBytes`. */
function lags(v: readonly StripeView[], s: number, lagBytes: number): boolean {
  const mine = v[s]!;
  if (mine.have >= mine.size) return false;
  return (furthest(v) - mine.have / mine.size) * mine.size > lagBytes;
}

/** The share held of the furthest stripe. */
function furthest(v: readonly StripeView[]): number {
  return Math.max(...v.map((x) => x.have / x.size));
}
