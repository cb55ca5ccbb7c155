// A prototype of a rollout shape that holds at a thousand hosts (issue 16), not wired into the daemon:
// each blob is cut into k interleaved stripes, and each stripe goes down its own k-ary tree of the
// rollout's nodes. The nodes are dealt into k groups by their place in the origin's order; in stripe s's
// tree the nodes of group s are the interior ones (the root takes the stripe from the seed), every other
// node is a leaf. So each node relays one stripe to at most k children (it uploads about one image, as in
// a line), the seed sends each stripe once, and the depth is log_k N instead of N: a slow or dead node
// holds back its own subtree in one stripe, not every node behind it.
//
// A node takes each stripe through the blobs one after another, apart from its other stripes, so a stripe
// held back in one tree never holds back what the node relays in another. A node whose parent fails it in
// a stripe (stalled or slow: stripe-watch.ts judges) has the parent demoted: the parent's children are
// handed to the nodes with the most room on their uplinks (the demoted node's own parents first: it takes
// little of what they send), so only they change whom they follow. A node whose own link is slow is made
// a leaf in every tree (`remove`). Pure: no I/O, no clock.

/**
 * What the trees' keeper knows of how far each node is in a stripe, from the nodes' progress reports: the
 * share of the stripe held, or undefined for a node whose reports stopped (gone, or not heard from).
 */
export type HeldShare = (id: string) => number | undefined;

export class StripeTrees {
  /** Per stripe: each node's parent (undefined: the seed) and children. */
  private readonly parents: Array<Map<string, string | undefined>>;
  private readonly kids: Array<Map<string, string[]>>;
  /** Nodes demoted or gone: never given children again. */
  private readonly avoided = new Set<string>();
  /**
   * Nodes demoted as slow or gone: as children they take little or nothing of their parents' uplinks. Not
   * those demoted only for relaying one stripe too slowly: they still take their full share as children.
   */
  private readonly idle = new Set<string>();

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
   * `node` is too slow (or gone) to relay stripe s: each of its children is handed to the node with the
   * most room, outside the child's subtree: the fewest children in all trees (demoted ones not counted:
   * they leave their parents' uplinks idle), then, with `held` (the nodes' reported progress), one that
   * holds more of the stripe than the child (it can feed it at once; a silent one is never chosen), then
   * the fewest nodes below (see fed), then the one holding most. Never the tree's root: a fifth child on
   * it slows the whole tree (a slow root's heir took its siblings, 1,000 hosts, 5% slow, seed 3: every
   * node at 80%). Room comes before what is held: every uplink is busy in a tree of full nodes, and
   * a fifth child on one slowed the orphan and the four it fed by a fifth, for the rest of the rollout
   * (1,000 hosts, 5% slow: 1.55–1.65× the bound). A slow root hands the tree to one of its children (else
   * a leaf), which takes the stripe from the seed. Returns the nodes whose parent changed (they must
   * follow their new parent). `idle` false: the node is slow to relay this stripe only (its uplink is
   * shared too thin), and as a child it still takes its full share of its parents' uplinks.
   */
  demote(stripe: number, node: string, held?: HeldShare, idle = true): string[] {
    this.avoided.add(node);
    if (idle) this.idle.add(node);
    const parents = this.tree(stripe);
    const kids = this.kids[stripe]!;
    const moved: string[] = [];
    if (parents.get(node) === undefined) {
      // One of the root's own children takes its place: its uplink already serves this tree. A leaf's serves
      // four children of another tree, and this whole tree ran at a fifth of it (1,000 hosts, 5% slow, seed 3:
      // 1.8× the bound). Else any leaf: it leaves its own parent, so no circle can close.
      const root = this.heir(stripe, node, held) ?? this.spare(stripe, node, held, false);
      if (root === undefined) return [];
      this.move(stripe, root, undefined);
      this.move(stripe, node, root);
      moved.push(root, node);
    }
    for (const child of [...kids.get(node)!]) {
      // No node outside the child's subtree with a report (the ones before it went below it): the node's
      // own parent, above the child so no circle, takes it (left under a slow node, 100 hosts with a slow
      // root took 11×).
      const to = this.spare(stripe, child, held) ?? parents.get(node);
      if (to === undefined) break;
      this.move(stripe, child, to);
      moved.push(child);
    }
    return moved;
  }

  /**
   * A node gone for good, or whose own link is too slow to relay any stripe: its children in every tree
   * handed on, and it is never given one again. Returns, by stripe, the nodes to re-point.
   */
  remove(node: string, held?: (stripe: number) => HeldShare): string[][] {
    return this.parents.map((_, s) => this.demote(s, node, held?.(s)));
  }

  /**
   * Whether `node` falls behind its own parents: in most of the stripes it takes from other nodes it holds
   * over `margin` (a share of the stripe) less than its parent there, so its own link is what holds it
   * back. A node that keeps up with its parents takes all it is offered: starved by them, not slow,
   * however little it takes in, and making it a leaf everywhere moves its children for nothing (two
   * healthy nodes under a slow root were, 1,000 hosts, 5% slow, seed 3). Most, not every: a slow node
   * keeps up with a parent as slow as itself. A stripe from the seed says nothing (the seed holds it all
   * from the start); a silent node or parent counts as behind.
   */
  fallsBehind(node: string, held: (stripe: number) => HeldShare, margin: number): boolean {
    let from = 0;
    let behind = 0;
    for (let s = 0; s < this.k; s++) {
      const parent = this.parent(s, node);
      if (parent === undefined) continue;
      from++;
      const mine = held(s)(node);
      const theirs = held(s)(parent);
      if (mine === undefined || theirs === undefined || theirs - mine > margin) behind++;
    }
    return behind * 2 > from;
  }

  /**
   * The best node to adopt `child` (see demote), outside the child's subtree: one below the node it is to
   * adopt would close a circle, and neither would get a byte. `outside` false: a leaf of the tree for a
   * new root, which takes the stripe from the seed, so what it holds matters only as a sign of a healthy link.
   */
  private spare(stripe: number, child: string, held: HeldShare | undefined, outside = true): string | undefined {
    const kids = this.kids[stripe]!;
    const need = outside ? (held?.(child) ?? 0) : 0;
    const fed = this.fed();
    let best: string | undefined;
    let bestKey: number[] = [];
    for (const id of this.order) {
      if (id === child || this.avoided.has(id) || (outside ? this.below(stripe, id, child) || this.parents[stripe]!.get(id) === undefined : kids.get(id)!.length > 0)) continue;
      const h = held ? held(id) : 0;
      if (h === undefined) continue;
      const key = [this.load(id), h > need ? 0 : 1, fed.get(id) ?? 0, -h];
      if (best === undefined || before(key, bestKey)) [best, bestKey] = [id, key];
    }
    return best;
  }

  /**
   * How many nodes below each node, in all trees: those an extra child on its uplink would slow. With no
   * uplink to spare anywhere (every node feeding k) and none ahead of the orphan (a slow root's tree is
   * starved all through), an orphan is best hung near the leaves.
   */
  private fed(): Map<string, number> {
    const fed = new Map<string, number>();
    for (const parents of this.parents) {
      for (const id of parents.keys()) for (let p = parents.get(id); p !== undefined; p = parents.get(p)) fed.set(p, (fed.get(p) ?? 0) + 1);
    }
    return fed;
  }

  /** The child of `node` to take its place as the tree's root: the one holding most (never a silent or demoted one). */
  private heir(stripe: number, node: string, held: HeldShare | undefined): string | undefined {
    let best: string | undefined;
    let most = -1;
    for (const kid of this.kids[stripe]!.get(node)!) {
      const h = held ? held(kid) : 0;
      if (h === undefined || this.avoided.has(kid) || h <= most) continue;
      [best, most] = [kid, h];
    }
    return best;
  }

  /** Whether `id` is in `top`'s subtree. */
  private below(stripe: number, id: string, top: string): boolean {
    const parents = this.parents[stripe]!;
    for (let p = parents.get(id); p !== undefined; p = parents.get(p)) if (p === top) return true;
    return false;
  }

  /**
   * Children in all trees that take what this node can send: a removed one (slow by its own link, or gone)
   * leaves most of its share of the node's uplink idle, so the parent of a slow or dead node is the first
   * to adopt. One demoted only for relaying a stripe too slowly still takes its share: counted as idle,
   * its parents would take a fifth child each and run their four others at a fifth less.
   */
  private load(id: string): number {
    let n = 0;
    for (const kids of this.kids) for (const kid of kids.get(id)!) if (!this.idle.has(kid)) n++;
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

/** Whether key a sorts before key b (the first place they differ decides). */
function before(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}
