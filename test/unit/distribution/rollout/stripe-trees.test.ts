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

  it('demotes a slow interior node: its children go one each to the least loaded leaves, no one else moves', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length > 0 && trees.parent(0, id) !== undefined)!;
    const kids = trees.children(0, interior);
    const moved = trees.demote(0, interior);
    expect(moved).toEqual(kids);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    expect(new Set(adopters).size).toBe(kids.length);
    for (const a of adopters) expect(trees.children(0, a)).toHaveLength(1);
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

  it('hands orphans to leaves that hold more of the stripe, passing over silent and lagging ones', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const interior = order.find((id) => trees.children(0, id).length > 0 && trees.parent(0, id) !== undefined)!;
    const kids = trees.children(0, interior);
    // Leaves of tree 0 ahead of the orphans (0.5): two; one silent (gone); the rest behind (0.1).
    const leaves = order.filter((id) => trees.children(0, id).length === 0 && !kids.includes(id));
    const [ahead1, ahead2, silent] = leaves;
    const held = (id: string) => (id === silent ? undefined : id === ahead1 || id === ahead2 ? 0.9 : kids.includes(id) ? 0.5 : 0.1);
    trees.demote(0, interior, held);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    expect(adopters.slice(0, 2).sort()).toEqual([ahead1, ahead2].sort());
    expect(adopters).not.toContain(silent);
    // No more leaves ahead: the rest go to the least loaded, most advanced of the others, still one each.
    expect(new Set(adopters).size).toBe(kids.length);
  });

  it('hands orphans first to the slow node\'s own parents in the other trees: its share of their uplink is idle', () => {
    const order = nodes(101);
    const trees = new StripeTrees(order, 4);
    const load = (id: string) => [0, 1, 2, 3].reduce((n, s) => n + trees.children(s, id).length, 0);
    const slow = order.find((id) => trees.children(0, id).length === 4 && trees.parent(0, id) !== undefined)!;
    // Nodes that relay nothing (N − 1 does not divide evenly) have room too.
    const roomy = [...[1, 2, 3].map((s) => trees.parent(s, slow)!), ...order.filter((id) => load(id) === 0)];
    const kids = trees.children(0, slow);
    trees.demote(0, slow);
    const adopters = kids.map((kid) => trees.parent(0, kid)!);
    expect(roomy).toContain(adopters[0]);
    expect(adopters.filter((a) => roomy.includes(a)).length).toBeGreaterThanOrEqual(2);
  });

  it('gives a slow root\'s tree to a leaf that is not behind (a slow leaf would be as slow a root)', () => {
    const order = nodes(21);
    const trees = new StripeTrees(order, 4);
    const root = order.find((id) => trees.parent(1, id) === undefined)!;
    const healthy = order.filter((id) => trees.children(1, id).length === 0).at(-1)!;
    trees.demote(1, root, (id) => (id === healthy ? 0.4 : 0.05));
    expect(trees.parent(1, healthy)).toBeUndefined();
  });
});
