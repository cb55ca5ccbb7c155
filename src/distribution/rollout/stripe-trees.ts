// A prototype of a rollout shape that holds at a thousand hosts (issue 16), not wired into the daemon:
// each blob is cut into k interleaved stripes, and each stripe goes down its own k-ary tree of the
// rollout's nodes. The nodes are dealt into k groups by their place in the origin's order; in stripe s's
// tree the nodes of group s are the interior ones (the root takes the stripe from the seed), every other
// node is a leaf. So each node relays one stripe to at most k children (it uploads about one image, as in
// a line), the seed sends each stripe once, and the depth is log_k N instead of N: a slow or dead node
// holds back its own subtree in one stripe, not every node behind it.
//
// A node whose stripe lags its others by its parent's fault (the parent holds the bytes and sends them
// slowly, or it is behind on every stripe: a slow link, or silent: dead) has its parent demoted: the
// parent's children are handed one each to the least loaded leaves of that tree, so only they change whom
// they follow and no node takes on more than one child more per tree. Pure: no I/O.

export interface StripeView {
  /** Bytes of the stripe held. */
  have: number;
  size: number;
  /** Bytes per second it grew by lately. */
  rate: number;
}

/** A stripe growing at less than this share of the node's fastest stripe counts as held back. */
const SLOW_SHARE = 0.5;

export class StripeTrees {
  /** Per stripe: each node's parent (undefined: the seed) and children. */
  private readonly parents: Array<Map<string, string | undefined>>;
  private readonly kids: Array<Map<string, string[]>>;
  /** Nodes demoted or gone: never given children again. */
  private readonly avoided = new Set<string>();

  constructor(
    private readonly order: readonly string[],
    readonly k: number,
  ) {
    if (k < 1 || !Number.isInteger(k)) throw new Error(`stripes must be a whole number ≥ 1, not ${k}`);
    this.parents = [];
    this.kids = [];
    for (let s = 0; s < k; s++) {
      // Heap order: the parent of place i > 0 is floor((i - 1) / k). When a group is short of the tree's
      // interior places, the first of the rest fill them: rotated per tree, so no one node fills them in every tree.
      const group = order.filter((_, j) => j % k === s);
      const others = order.filter((_, j) => j % k !== s);
      const turn = others.length > 0 ? (s * Math.ceil(others.length / k)) % others.length : 0;
      const at = [...group, ...others.slice(turn), ...others.slice(0, turn)];
      const parents = new Map<string, string | undefined>();
      const kids = new Map<string, string[]>(at.map((id) => [id, []]));
      at.forEach((id, i) => {
        const parent = i === 0 ? undefined : at[Math.floor((i - 1) / k)]!;
        parents.set(id, parent);
        if (parent !== undefined) kids.get(parent)!.push(id);
      });
      this.parents.push(parents);
      this.kids.push(kids);
    }
  }

  /** Whom `node` takes stripe s from: a node id, or undefined for the seed (it is the tree's root). */
  parent(stripe: number, node: string): string | undefined {
    const parents = this.tree(stripe);
    if (!parents.has(node)) throw new Error(`${node} is not in the rollout`);
    return parents.get(node);
  }

  children(stripe: number, node: string): string[] {
    this.tree(stripe);
    return [...(this.kids[stripe]!.get(node) ?? [])];
  }

  /**
   * `node` is too slow (or gone) to relay stripe s: each of its children is handed to a different leaf of
   * that tree, the least loaded (children in all trees) first, so no one takes on more than one more; a
   * slow root hands the tree to a leaf, which takes the stripe from the seed. Returns the nodes whose
   * parent changed (they must follow their new parent).
   */
  demote(stripe: number, node: string): string[] {
    this.avoided.add(node);
    const parents = this.tree(stripe);
    const kids = this.kids[stripe]!;
    const moved: string[] = [];
    if (parents.get(node) === undefined) {
      // Any leaf may take the root's place: it leaves its own parent, so no circle can close.
      const root = this.spare(stripe, node, false);
      if (root === undefined) return [];
      this.move(stripe, root, undefined);
      this.move(stripe, node, root);
      moved.push(root, node);
    }
    for (const child of [...kids.get(node)!]) {
      const to = this.spare(stripe, child);
      if (to === undefined) break;
      this.move(stripe, child, to);
      moved.push(child);
    }
    return moved;
  }

  /** A node gone for good: its children in every tree handed on. Returns, by stripe, the nodes to re-point. */
  remove(node: string): string[][] {
    return this.parents.map((_, s) => this.demote(s, node));
  }

  /**
   * Whether a node should have its parent in stripe s demoted: its stripe s lags its furthest stripe by
   * more than `lagBytes` and grows at under half the rate of its fastest, and the parent is the cause: it
   * holds more of the stripe than it sent (its sending is slow), or it is behind this node on every stripe
   * by twice as much (its link is slow), or it did not answer (`parent` undefined: dead or stuck). A parent
   * short of the stripe itself, fine otherwise, is not: its own parent is the cause, and is judged by it.
   */
  static parentIsSlow(mine: readonly StripeView[], stripe: number, parent: readonly StripeView[] | undefined, lagBytes: number): boolean {
    if (!lags(mine, stripe, lagBytes)) return false;
    if (mine[stripe]!.rate >= SLOW_SHARE * Math.max(...mine.map((x) => x.rate))) return false;
    if (parent === undefined) return true;
    const size = mine[stripe]!.size;
    if (parent[stripe]!.have - mine[stripe]!.have > lagBytes) return true;
    return (furthest(mine) - furthest(parent)) * size > 2 * lagBytes;
  }

  /**
   * The leaf of the tree with the fewest children in all trees (first in the order on a tie), outside
   * `not`'s subtree: a leaf below the node it is to adopt would close a circle, and neither would get a byte.
   */
  private spare(stripe: number, not: string, outside = true): string | undefined {
    const kids = this.kids[stripe]!;
    let best: string | undefined;
    let bestLoad = Infinity;
    for (const id of this.order) {
      if (id === not || this.avoided.has(id) || kids.get(id)!.length > 0 || (outside && this.below(stripe, id, not))) continue;
      const load = this.load(id);
      if (load < bestLoad) [best, bestLoad] = [id, load];
    }
    return best;
  }

  /** Whether `id` is in `top`'s subtree. */
  private below(stripe: number, id: string, top: string): boolean {
    const parents = this.parents[stripe]!;
    for (let p = parents.get(id); p !== undefined; p = parents.get(p)) if (p === top) return true;
    return false;
  }

  private load(id: string): number {
    let n = 0;
    for (const kids of this.kids) n += kids.get(id)!.length;
    return n;
  }

  private move(stripe: number, node: string, to: string | undefined): void {
    const parents = this.parents[stripe]!;
    const kids = this.kids[stripe]!;
    const from = parents.get(node);
    if (from !== undefined) kids.set(from, kids.get(from)!.filter((id) => id !== node));
    parents.set(node, to);
    if (to !== undefined) kids.get(to)!.push(node);
  }

  private tree(stripe: number): Map<string, string | undefined> {
    const t = this.parents[stripe];
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
