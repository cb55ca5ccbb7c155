import { describe, expect, it } from 'vitest';
import { StripeTrees } from '../../../../src/distribution/index.js';

const nodes = (n: number) => Array.from({ length: n }, (_, i) => `n${i}`);

function depth(trees: StripeTrees, stripe: number, node: string): number {
  let d = 0;
  for (let p = trees.parent(stripe, node); p !== undefined; p = trees.parent(stripe, p)) d++;
  return d;
}

describe('StripeTrees', () => {
  it('gives each stripe one root (from the seed) and every other node one parent, log_k N deep', () => {
    const order = nodes(1000);
    const trees = new StripeTrees(order, 4);
    for (let s = 0; s < 4; s++) {
      expect(order.filter((id) => trees.parent(s, id) === undefined)).toHaveLength(1);
      expect(Math.max(...order.map((id) => depth(trees, s, id)))).toBeLessThanOrEqual(5);
    }
  });

  it('makes each node interior in at most one tree when N − 1 divides evenly, so it uploads about one image', () => {
    const order = nodes(401);
    const trees = new StripeTrees(order, 4);
    for (const id of order) {
      const feeding = [0, 1, 2, 3].filter((s) => trees.children(s, id).length > 0);
      expect(feeding.length).toBeLessThanOrEqual(1);
      for (const s of feeding) expect(trees.children(s, id).length).toBeLessThanOrEqual(4);
    }
  });

  it('demotes a slow interior node: its children go to nodes with room, no one else moves', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length > 0 && trees.parent(0, id) !== undefined)!;
    const kids = trees.children(0, interior);
    const moved = trees.demote(0, interior);
    expect(moved).toEqual(kids);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    // No adopter feeds more than k nodes that take what it sends (the demoted one takes little).
    const feeds = (id: string) => [0, 1, 2, 3].reduce((n, s) => n + trees.children(s, id).filter((kid) => kid !== interior).length, 0);
    for (const a of adopters) expect(feeds(a)).toBeLessThanOrEqual(4);
    expect(trees.children(0, interior)).toEqual([]);
    // Demoted again: nothing left to move.
    expect(trees.demote(0, interior)).toEqual([]);
  });

  it('a slow root hands its tree to a leaf, which takes the stripe from the seed', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const root = order.find((id) => trees.parent(1, id) === undefined)!;
    const moved = trees.demote(1, root);
    const next = moved[0]!;
    expect(trees.parent(1, next)).toBeUndefined();
    expect(trees.parent(1, root)).toBe(next);
  });

  it('never closes a circle, however many nodes are demoted: every node still reaches the seed', () => {
    const order = nodes(60);
    const trees = new StripeTrees(order, 4);
    for (const id of order.filter((_, i) => i % 7 === 3)) for (let s = 0; s < 4; s++) trees.demote(s, id);
    for (let s = 0; s < 4; s++) for (const id of order) expect(depth(trees, s, id)).toBeLessThan(60);
  });

  it('takes a dead node (not a root) out of every tree it was interior in', () => {
    const order = nodes(101);
    const trees = new StripeTrees(order, 4);
    const dead = order.find((id) => [0, 1, 2, 3].every((s) => trees.parent(s, id) !== undefined) && trees.children(1, id).length > 0)!;
    trees.remove(dead);
    for (let s = 0; s < 4; s++) expect(trees.children(s, dead)).toEqual([]);
  });

  it('among nodes with as much room, hands orphans to those that hold more of the stripe, passing over silent ones', () => {
    const order = nodes(100);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
    const kids = trees.children(0, interior);
    // The demoted node's parents in the trees are the ones with room (it takes little of their uplinks).
    const [p0, p1, p2, p3] = [0, 1, 2, 3].map((s) => trees.parent(s, interior)!);
    const held = (id: string) => (id === p3 ? undefined : id === p2 ? 0.9 : kids.includes(id) ? 0.5 : 0.1);
    trees.demote(0, interior, held);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    expect(adopters[0]).toBe(p2);
    expect(adopters).not.toContain(p3);
    // The rest to nodes with as much room but fewer nodes below them than p0 and p1 (see the next tests).
    expect(adopters.filter((a) => a !== p0 && a !== p1 && a !== p2).every((a) => [0, 1, 2, 3].reduce((n, s) => n + trees.children(s, a).length, 0) <= 4)).toBe(true);
  });

  it('gives orphans to nodes with room before ones that hold more but whose uplinks are full', () => {
    const order = nodes(100);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
    const kids = trees.children(0, interior);
    const feeds = (id: string) => [0, 1, 2, 3].reduce((n, s) => n + trees.children(s, id).filter((kid) => kid !== interior).length, 0);
    const roomy = order.filter((id) => id !== interior && !kids.includes(id) && feeds(id) < 4);
    expect(roomy.length).toBeGreaterThanOrEqual(4);
    // Every node without room is far ahead; the ones with room are behind the orphans.
    trees.demote(0, interior, (id) => (roomy.includes(id) ? 0.3 : kids.includes(id) ? 0.5 : 0.9));
    for (const kid of kids) expect(roomy).toContain(trees.parent(0, kid));
  });

  it('may hand an orphan to an interior node of the same tree (the demoted node\'s own parent has room)', () => {
    const order = nodes(100);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
    const parent = trees.parent(0, interior)!;
    const kids = trees.children(0, interior);
    // Only the parent has room, and it is an interior node of this tree: it adopts, and no circle closes.
    const held = (id: string) => (id === parent || kids.includes(id) ? 0.5 : undefined);
    trees.demote(0, interior, held);
    expect(kids.map((kid) => trees.parent(0, kid))).toContain(parent);
    expect(trees.children(0, parent)).toContain(interior);
    for (const id of order) expect(depth(trees, 0, id)).toBeLessThan(100);
  });

  it('with no uplink to spare, hangs an orphan under the node with the fewest nodes below it', () => {
    const order = nodes(400);
    const trees = new StripeTrees(order, 4);
    // A root's child: the root is slow, so its tree goes to this child, and its siblings need new parents.
    const root = order.find((id) => trees.parent(1, id) === undefined)!;
    const below = (id: string) => {
      let n = 0;
      for (let s = 0; s < 4; s++) for (const other of order) for (let p = trees.parent(s, other); p !== undefined; p = trees.parent(s, p)) if (p === id) n++;
      return n;
    };
    const siblings = trees.children(1, root);
    trees.demote(1, root, (id) => (id === siblings[0] ? 0.2 : 0.1));
    const heir = order.find((id) => trees.parent(1, id) === undefined)!;
    expect(heir).toBe(siblings[0]);
    for (const kid of siblings.slice(1)) {
      const adopter = trees.parent(1, kid)!;
      // Not the heir, though it holds most: the whole tree is below it.
      expect(adopter).not.toBe(heir);
      expect(below(adopter)).toBeLessThan(below(heir));
    }
  });

  it('makes a node too slow to relay a leaf in every tree, and never gives it a child again', () => {
    const order = nodes(100);
    const trees = new StripeTrees(order, 4);
    const slow = order.find((id) => trees.children(2, id).length === 4 && trees.parent(2, id) !== undefined)!;
    const moved = trees.remove(slow);
    expect(moved[2]).toHaveLength(4);
    const other = order.find((id) => trees.children(1, id).length === 4 && id !== trees.parent(1, slow))!;
    trees.demote(1, other);
    for (let s = 0; s < 4; s++) expect(trees.children(s, slow)).toEqual([]);
    // It still takes every stripe.
    for (let s = 0; s < 4; s++) expect(depth(trees, s, slow)).toBeLessThan(101);
  });

  it('hands orphans first to the slow node\'s own parents in every tree: its share of their uplink is idle', () => {
    const order = nodes(101);
    const trees = new StripeTrees(order, 4);
    const load = (id: string) => [0, 1, 2, 3].reduce((n, s) => n + trees.children(s, id).length, 0);
    const slow = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
    // Nodes that relay nothing (N − 1 does not divide evenly) have room too.
    const roomy = [...[0, 1, 2, 3].map((s) => trees.parent(s, slow)!), ...order.filter((id) => load(id) === 0)];
    const kids = trees.children(0, slow);
    trees.remove(slow);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    for (const a of adopters) expect(roomy).toContain(a);
  });

  it('counts a child demoted in one stripe only (idle false) as still taking its share of its parents\' uplinks', () => {
    const adoptersAfter = (idle: boolean) => {
      const order = nodes(401);
      const trees = new StripeTrees(order, 4);
      const slowToRelay = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
      const parents = [1, 2, 3].map((s) => trees.parent(s, slowToRelay)!);
      trees.demote(0, slowToRelay, undefined, idle);
      const other = order.find((id) => trees.children(2, id).length === 4 && trees.parent(2, id) !== undefined && !parents.includes(id) && ![0, 1, 2, 3].some((s) => trees.parent(s, id) !== undefined && parents.includes(trees.parent(s, id)!)))!;
      const kids = trees.children(2, other);
      trees.demote(2, other);
      return { parents, adopters: kids.map((kid) => trees.parent(2, kid)!) };
    };
    const idle = adoptersAfter(true);
    expect(idle.adopters.some((a) => idle.parents.includes(a))).toBe(true);
    const busy = adoptersAfter(false);
    expect(busy.adopters.some((a) => busy.parents.includes(a))).toBe(false);
  });

  it('finds a node that lags its parents in most stripes slow, and one that keeps up with them starved', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const node = order.find((id) => [0, 1, 2, 3].every((s) => trees.parent(s, id) !== undefined))!;
    const parents = [0, 1, 2, 3].map((s) => trees.parent(s, node)!);
    const shares = (mine: number[], theirs: number) => (s: number) => (id: string) => (id === node ? mine[s] : id === parents[s] ? theirs : 0.5);
    // Starved: little, but all its parents have.
    expect(trees.fallsBehind(node, shares([0.1, 0.1, 0.1, 0.1], 0.11), 0.03)).toBe(false);
    // Behind one slow-to-send parent only: its link is fine.
    expect(trees.fallsBehind(node, shares([0.5, 0.1, 0.1, 0.1], 0.11), 0.03)).toBe(false);
    // Behind its parents in three stripes of four (the fourth parent as slow as it): its own link.
    expect(trees.fallsBehind(node, (s) => (id) => (id === node ? 0.05 : id === parents[s] ? (s === 3 ? 0.05 : 0.5) : 0.5), 0.03)).toBe(true);
    // A silent parent counts as behind.
    expect(trees.fallsBehind(node, () => (id) => (id === node ? 0.05 : undefined), 0.03)).toBe(true);
  });

  it('gives a slow root\'s tree to its child holding most, whose uplink already serves that tree', () => {
    const order = nodes(100);
    const trees = new StripeTrees(order, 4);
    const root = order.find((id) => trees.parent(1, id) === undefined)!;
    const [a, b, c, d] = trees.children(1, root);
    trees.demote(1, root, (id) => (id === a ? undefined : id === c ? 0.3 : id === b || id === d ? 0.2 : 0.05));
    expect(trees.parent(1, c!)).toBeUndefined();
    expect(trees.parent(1, root)).toBe(c);
    // Its siblings went to nodes with room, outside their own subtrees; every node still reaches the seed.
    for (const id of order) expect(depth(trees, 1, id)).toBeLessThan(100);
  });

  it('gives a slow root\'s tree to a leaf that is not behind when it has no child to take it', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const root = order.find((id) => trees.parent(1, id) === undefined)!;
    const healthy = order.filter((id) => trees.children(1, id).length === 0).at(-1)!;
    const kids = trees.children(1, root);
    // The root's children went silent.
    trees.demote(1, root, (id) => (kids.includes(id) ? undefined : id === healthy ? 0.4 : 0.05));
    expect(trees.parent(1, healthy)).toBeUndefined();
  });
});
