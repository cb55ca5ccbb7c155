// Striped rollouts in the daemon: the trees the origin keeps (StripeKeeper: parents from the order alone,
// suspects demoted once, silent nodes removed, repoints for the nodes that moved), a node's route
// (NodeStripes), what the messages must look like, and Rollouts choosing stripes at the threshold.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobAnswer, ManifestAnswer } from '../../../../src/distribution/answers.js';
import type { Distribution } from '../../../../src/distribution/pull/distribution.js';
import {
  NodeStripes,
  progressFrom,
  repointFrom,
  Rollouts,
  specFrom,
  StripeKeeper,
  type NodeProgress,
  type Repoint,
  type RolloutNetwork,
  type StripeRoute,
} from '../../../../src/distribution/rollout/index.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';

const ORDER = ['o', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const SHAPE = { k: 2, chunkBytes: 1024 * 1024 };
const ID = '00000000-0000-4000-8000-000000000001';

function report(node: string, suspects: Array<{ stripe: number; parent: string }>): NodeProgress {
  return { rollout: ID, node, state: 'running', blobsTotal: 1, blobsDone: 0, bytesTotal: 100, bytesDone: 0, bySource: { local: 0, peer: 0, upstream: 0 }, startedAt: 0, stripes: { have: [0, 0], suspects } };
}
const nothingHeld = () => () => 0;

describe('StripeKeeper', () => {
  it('spans the order after the origin; a tree\'s root takes its stripe from the origin', () => {
    const keeper = new StripeKeeper(ID, 'o', ORDER, SHAPE);
    expect(keeper.has('o')).toBe(false);
    expect(keeper.has('a')).toBe(true);
    // Group of stripe s: places s, s+k, … of the order after the origin; the group's first is the root.
    expect(keeper.parentsOf('a')[0]).toBe('o');
    expect(keeper.parentsOf('b')[1]).toBe('o');
    for (const id of ORDER.slice(1)) for (const p of keeper.parentsOf(id)) expect(p).not.toBe(id);
    // Only the two roots take a stripe from the origin.
    const parentsOfAll = ORDER.slice(1).map((id) => keeper.parentsOf(id));
    expect(parentsOfAll.flat().filter((p) => p === 'o')).toHaveLength(2);
  });

  it('demotes a suspect once and repoints the children it had in that stripe', () => {
    const keeper = new StripeKeeper(ID, 'o', ORDER, SHAPE);
    const before = ORDER.slice(1).map((id) => keeper.parentsOf(id)[0]);
    const parent = keeper.parentsOf('e')[0]!; // e's parent in tree 0
    const child = 'e';
    const moves = keeper.heard(report(child, [{ stripe: 0, parent }]), nothingHeld);
    expect(moves.length).toBeGreaterThan(0);
    for (const m of moves) {
      expect(m.repoint).toEqual({ rollout: ID, stripe: 0, parent: keeper.parentsOf(m.node)[0] });
      expect(m.repoint.parent).not.toBe(m.node);
    }
    expect(keeper.parentsOf(child)[0]).not.toBe(parent);
    // Tree 1 is untouched, and the same suspect again moves no one.
    expect(keeper.heard(report('f', [{ stripe: 0, parent }]), nothingHeld)).toEqual([]);
    expect(ORDER.slice(1).filter((id, i) => keeper.parentsOf(id)[0] !== before[i]).sort()).toEqual(moves.map((m) => m.node).sort());
  });

  it('never demotes the origin, nor a stripe it does not have', () => {
    const keeper = new StripeKeeper(ID, 'o', ORDER, SHAPE);
    expect(keeper.heard(report('a', [{ stripe: 0, parent: 'o' }, { stripe: 5, parent: 'b' }, { stripe: 0, parent: 'stranger' }]), nothingHeld)).toEqual([]);
  });

  it('takes a silent node out of every tree: no one is left following it', () => {
    const keeper = new StripeKeeper(ID, 'o', ORDER, SHAPE);
    const followers = ORDER.slice(1).filter((id) => keeper.parentsOf(id).includes('a'));
    expect(followers.length).toBeGreaterThan(0);
    const moves = keeper.lost('a', nothingHeld);
    for (const id of ORDER.slice(1).filter((x) => x !== 'a')) expect(keeper.parentsOf(id)).not.toContain('a');
    for (const id of followers) expect(moves.map((m) => m.node)).toContain(id);
    expect(moves.map((m) => m.node)).not.toContain('a');
    expect(keeper.lost('a', nothingHeld)).toEqual([]);
  });
});

describe('NodeStripes', () => {
  it('counts bytes by stripe, names each failing parent once, and takes repoints', () => {
    const route = new NodeStripes(SHAPE, ['x', 'y']);
    route.got(1, 10);
    route.got(1, 5);
    let told = 0;
    route.onSuspect = () => told++;
    route.suspect(0, 'x');
    route.suspect(0, 'x');
    expect(told).toBe(1);
    expect(route.progress()).toEqual({ have: [0, 15], suspects: [{ stripe: 0, parent: 'x' }] });
    expect(route.repoint({ rollout: ID, stripe: 0, parent: 'z' })).toBe(true);
    expect(route.parent(0)).toBe('z');
    expect(route.repoint({ rollout: ID, stripe: 2, parent: 'z' })).toBe(false);
    expect(() => new NodeStripes(SHAPE, ['x'])).toThrow();
  });

  it('names a parent that fails a chunk now and then only once it fails three in a row', () => {
    const route = new NodeStripes(SHAPE, ['x', 'y']);
    route.failed(0, 'x');
    route.failed(0, 'x');
    route.served(0, 'x');
    route.failed(0, 'x');
    route.failed(0, 'x');
    route.failed(1, 'x');
    expect(route.progress().suspects).toEqual([]);
    route.failed(0, 'x');
    expect(route.progress().suspects).toEqual([{ stripe: 0, parent: 'x' }]);
  });
});

describe('striped rollout messages', () => {
  const base = { id: ID, origin: 'o', createdAt: 1, registry: 'seed.test:5000', repository: 'team/app', reference: 'v1', originAddrs: [], expected: ['a'], order: ['o', 'a'] };
  it('keeps a spec\'s stripes, and refuses a shape out of bounds', () => {
    expect(specFrom({ ...base, stripes: { k: 4, chunkBytes: 1048576 } }, () => true).stripes).toEqual({ k: 4, chunkBytes: 1048576 });
    expect(() => specFrom({ ...base, stripes: { k: 1, chunkBytes: 1048576 } }, () => true)).toThrow(/stripes/);
    expect(() => specFrom({ ...base, stripes: { k: 4, chunkBytes: 10 } }, () => true)).toThrow(/stripes/);
  });
  it('keeps a report\'s stripes and refuses bad ones', () => {
    const r = report('a', [{ stripe: 1, parent: 'b' }]);
    expect(progressFrom(JSON.parse(JSON.stringify(r)), 'a').stripes).toEqual(r.stripes);
    expect(() => progressFrom({ ...r, stripes: { have: [-1], suspects: [] } }, 'a')).toThrow();
    expect(() => progressFrom({ ...r, stripes: { have: [], suspects: [{ stripe: 'x', parent: 'b' }] } }, 'a')).toThrow();
  });
  it('reads a repoint', () => {
    expect(repointFrom({ rollout: ID, stripe: 1, parent: 'b' })).toEqual({ rollout: ID, stripe: 1, parent: 'b' });
    expect(() => repointFrom({ rollout: 'x', stripe: 1, parent: 'b' })).toThrow();
    expect(() => repointFrom({ rollout: ID, stripe: -1, parent: 'b' })).toThrow();
  });
});

describe('Rollouts with stripes', () => {
  const layer = Buffer.alloc(5000, 7);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(layer), size: layer.length }, layers: [] }));
  const readPath = (gate: Promise<void>) =>
    ({
      async manifest(): Promise<ManifestAnswer> {
        return { record: { digest: digestOf(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.length }, bytes: manifest, source: 'upstream', stale: false };
      },
      async blob(_r: string, digest: Digest): Promise<BlobAnswer> {
        await gate;
        return { digest, size: layer.length, source: 'peer', open: async () => Readable.from([layer]) };
      },
    }) as unknown as Distribution;

  /** `names` on an in-memory network, stripes from `from` nodes on; what each placed, and the repoints sent. */
  function cluster(names: string[], from: number, gate: Promise<void>, reportEveryMs = 10) {
    const nodes = new Map<string, Rollouts>();
    const routes = new Map<string, StripeRoute>();
    const sent: Array<{ node: string; repoint: Repoint }> = [];
    for (const name of names) {
      const net: RolloutNetwork = {
        self: name,
        selfAddrs: () => [],
        peers: async () => names.filter((n) => n !== name),
        offer: async (peer, spec) => void nodes.get(peer)!.accept(specFrom(JSON.parse(JSON.stringify(spec)), () => true), name),
        report: async (spec, progress) => nodes.get(spec.origin)!.onReport(progressFrom(JSON.parse(JSON.stringify(progress)), name)),
        followOrder: () => () => undefined,
        followStripes: (_digests, route) => {
          routes.set(name, route);
          return () => undefined;
        },
        repoint: async (node, repoint) => {
          sent.push({ node, repoint });
          nodes.get(node)!.onRepoint(repointFrom(JSON.parse(JSON.stringify(repoint))), name);
        },
      };
      nodes.set(name, new Rollouts(readPath(gate), net, { save: async () => undefined, remove: async () => undefined, load: async () => [] }, { defaultRegistry: 'seed.test:5000', reportEveryMs, stripesFrom: from, stripes: 2, isPeerId: () => true }));
    }
    return { nodes, routes, sent };
  }

  async function settle(check: () => boolean): Promise<void> {
    for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(check()).toBe(true);
  }

  it('stays a line below the threshold', async () => {
    const c = cluster(['o', 'a', 'b'], 4, Promise.resolve());
    const spec = await c.nodes.get('o')!.create('team/app:v1');
    expect(spec.stripes).toBeUndefined();
    await settle(() => c.nodes.get('o')!.view(spec.id)?.state === 'done');
    expect(c.routes.size).toBe(0);
  });

  it('at the threshold: every node but the origin takes stripes from the parents the trees give, and a suspect is repointed by the origin', async () => {
    let open!: () => void;
    const c = cluster(['o', 'a', 'b', 'c', 'd'], 5, new Promise<void>((r) => (open = r)));
    const spec = await c.nodes.get('o')!.create('team/app:v1');
    expect(spec.stripes).toEqual({ k: 2, chunkBytes: 1024 * 1024 });
    await settle(() => c.routes.size === 4);
    expect(c.routes.has('o')).toBe(false);
    const keeper = new StripeKeeper(spec.id, 'o', spec.order!, spec.stripes!);
    for (const [name, route] of c.routes) expect([route.parent(0), route.parent(1)]).toEqual(keeper.parentsOf(name));
    // A child names its stripe-0 parent as failing it: the origin demotes it and repoints whoever moved.
    const child = [...c.routes.keys()].find((n) => c.routes.get(n)!.parent(0) !== 'o')!;
    const parent = c.routes.get(child)!.parent(0);
    for (let i = 0; i < 3; i++) c.routes.get(child)!.failed!(0, parent);
    await settle(() => c.sent.length > 0);
    expect(c.routes.get(child)!.parent(0)).not.toBe(parent);
    for (const s of c.sent) expect(c.routes.get(s.node)!.parent(s.repoint.stripe)).toBe(s.repoint.parent);
    open();
    await settle(() => c.nodes.get('o')!.view(spec.id)?.state === 'done');
  });

  it('reports a suspect at once, not with the next paced report, so the origin repoints within moments', async () => {
    let open!: () => void;
    // Reports a minute apart: the first goes at the start, the next would come long after settle gives up.
    const c = cluster(['o', 'a', 'b', 'c', 'd'], 5, new Promise<void>((r) => (open = r)), 60_000);
    await c.nodes.get('o')!.create('team/app:v1');
    await settle(() => c.routes.size === 4);
    const child = [...c.routes.keys()].find((n) => c.routes.get(n)!.parent(0) !== 'o')!;
    const parent = c.routes.get(child)!.parent(0);
    for (let i = 0; i < 3; i++) c.routes.get(child)!.failed!(0, parent);
    await settle(() => c.sent.length > 0);
    expect(c.routes.get(child)!.parent(0)).not.toBe(parent);
    open();
  });

  it('refuses a repoint from anyone but the origin', async () => {
    const c = cluster(['o', 'a', 'b'], 3, new Promise(() => undefined));
    const spec = await c.nodes.get('o')!.create('team/app:v1');
    await settle(() => c.routes.size === 2);
    expect(() => c.nodes.get('a')!.onRepoint({ rollout: spec.id, stripe: 0, parent: 'b' }, 'b')).toThrow(/origin/);
  });
});
