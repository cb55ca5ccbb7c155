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
    expect(adopters).toEqual(expect.arrayContaining([p0, p1]));
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
    trees.demote(0, interior);
    expect(kids.map((kid) => trees.parent(0, kid))).toContain(parent);
    expect(trees.children(0, parent)).toContain(interior);
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
    trees.demote(0, slow);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    for (const a of adopters) expect(roomy).toContain(a);
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
