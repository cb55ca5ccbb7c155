// Rollout policy over an in-memory network of nodes and a fake registry read path: how a rollout spreads,
// what the origin reports (done, failed, dead, waiting), its summary, and what a peer's messages must look
// like before they are believed.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobAnswer, ManifestAnswer, Source } from '../../../../src/distribution/answers.js';
import type { Distribution } from '../../../../src/distribution/pull/distribution.js';
import { progressFrom, Rollouts, specFrom, type NodeProgress, type RolloutJournal, type RolloutNetwork, type RolloutSpec } from '../../../../src/distribution/rollout/index.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import type { ManifestReference } from '../../../../src/oci/reference.js';

const SEED = 'seed.test:5000';
const layer = Buffer.alloc(5000, 7);
const config = Buffer.from('{"os":"linux"}');
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
  }),
);
const blobs = new Map<Digest, Buffer>([
  [digestOf(config), config],
  [digestOf(layer), layer],
]);

/** The read path of one node: every blob comes from `source`; `fail` makes blob fetches fail. */
function readPath(source: Source, opts: { fail?: boolean; failFirst?: number; gate?: Promise<void>; onBlob?: (digest: Digest) => void } = {}) {
  const asked: string[] = [];
  let failures = 0;
  const d = {
    async manifest(repo: string, ref: ManifestReference, ns: string): Promise<ManifestAnswer> {
      asked.push(`manifest ${ns}/${repo} ${ref.kind === 'tag' ? ref.tag : ref.digest}`);
      return { record: { digest: digestOf(manifest), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifest.length }, bytes: manifest, source: 'upstream', stale: false };
    },
    async blob(_repo: string, digest: Digest): Promise<BlobAnswer> {
      opts.onBlob?.(digest);
      await opts.gate;
      if (opts.fail || failures++ < (opts.failFirst ?? 0)) throw new Error('seed unreachable');
      const bytes = blobs.get(digest)!;
      return { digest, size: bytes.length, source, open: async () => Readable.from([bytes]) };
    },
  };
  return { distribution: d as unknown as Distribution, asked };
}

const journal = (): RolloutJournal & { saved: Map<string, RolloutSpec> } => {
  const saved = new Map<string, RolloutSpec>();
  return { saved, save: async (s) => void saved.set(s.id, s), remove: async (id) => void saved.delete(id), load: async () => [...saved.values()] };
};

/** The in-memory nodes' ids are short names, not libp2p peer ids. */
const isName = (id: string) => /^[a-z]+$/.test(id);

/** Nodes on an in-memory network: offers and reports are delivered by direct calls. */
function cluster(
  names: string[],
  opts: {
    sources?: Record<string, Source>;
    fail?: string[];
    failFirst?: number;
    gate?: Promise<void>;
    followOrder?: (node: string, digests: Digest[], order: string[]) => () => void;
    /** The peers a node is connected to (default: every other node that is up). */
    peersOf?: (name: string) => string[];
    /** An offer from `from` to `to` that never arrives (the offer itself succeeds). */
    lost?: (from: string, to: string) => boolean;
    /** Told of every blob a node's read path is asked for. */
    onBlob?: (node: string, digest: Digest) => void;
  } = {},
) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const nodes = new Map<string, Rollouts>();
  const down = new Set<string>();
  const asked = new Map<string, string[]>();
  for (const name of names) {
    const net: RolloutNetwork = {
      self: name,
      selfAddrs: () => [`/mem/${name}`],
      peers: async () => (opts.peersOf ? opts.peersOf(name) : names.filter((n) => n !== name && !down.has(n))),
      offer: async (peer, spec) => {
        if (down.has(peer)) throw new Error('unreachable');
        if (opts.lost?.(name, peer)) return;
        nodes.get(peer)!.accept(specFrom(JSON.parse(JSON.stringify(spec)), isName), name);
      },
      report: async (spec, progress) => {
        if (down.has(spec.origin)) throw new Error('unreachable');
        nodes.get(spec.origin)!.onReport(progressFrom(JSON.parse(JSON.stringify(progress)), name));
      },
      ...(opts.followOrder ? { followOrder: (digests: Digest[], order: string[]) => opts.followOrder!(name, digests, order) } : {}),
    };
    const path = readPath(opts.sources?.[name] ?? 'peer', { fail: opts.fail?.includes(name), failFirst: opts.failFirst, gate: opts.gate, onBlob: (d) => opts.onBlob?.(name, d) });
    asked.set(name, path.asked);
    nodes.set(name, new Rollouts(path.distribution, net, journal(), { defaultRegistry: SEED, reportEveryMs: 10, deadAfterMs: 5_000, retryBaseMs: 1, now: clock.now, isPeerId: isName }));
  }
  return { nodes, node: (n: string) => nodes.get(n)!, down, clock, asked };
}

async function settle(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

describe('Rollouts', () => {
  it('puts the origin first in the order, then the peers it expects; each node places every blob of the image in it while it runs', async () => {
    const placed: Array<{ node: string; digests: Digest[]; order: string[] }> = [];
    let undone = 0;
    let open!: () => void;
    const c = cluster(['a', 'b', 'c'], {
      gate: new Promise<void>((r) => (open = r)),
      followOrder: (node, digests, order) => {
        placed.push({ node, digests, order });
        return () => void undone++;
      },
    });
    const spec = await c.node('a').create('team/app:v1');
    expect(spec.order).toEqual(['a', 'b', 'c']);
    await settle(() => placed.length === 3);
    for (const p of placed) {
      expect(p.order).toEqual(['a', 'b', 'c']);
      expect(new Set(p.digests)).toEqual(new Set([digestOf(config), digestOf(layer)]));
    }
    // While its blobs are fetched, a node says it will fetch them (a peer asking it waits for them).
    expect(c.node('b').willFetch(digestOf(layer))).toBe(true);
    expect(c.node('b').willFetch(digestOf(Buffer.from('other')))).toBe(false);
    open();
    await settle(() => c.node('a').view(spec.id)?.state === 'done' && undone === 3);
    expect(c.node('b').willFetch(digestOf(layer))).toBe(false);
  });

  it('spreads from the origin to every node; each fetches the image; the origin sees all done with a summary', async () => {
    const c = cluster(['a', 'b', 'c'], { sources: { a: 'upstream', b: 'peer', c: 'local' } });
    const spec = await c.node('a').create('team/app:v1');
    expect(spec).toMatchObject({ image: `${SEED}/team/app:v1`, registry: SEED, repository: 'team/app', reference: 'v1', origin: 'a', expected: ['b', 'c'] });
    await settle(() => c.node('a').view(spec.id)?.state === 'done');
    const view = c.node('a').view(spec.id)!;
    expect(view.nodes.map((n) => [n.node, n.status, n.blobsDone, n.blobsTotal])).toEqual([
      ['a', 'done', 2, 2],
      ['b', 'done', 2, 2],
      ['c', 'done', 2, 2],
    ]);
    const imageBytes = manifest.length + config.length + layer.length;
    // The manifest always comes from the seed; a's blobs too: the seed sent one image and two manifests.
    expect(view.summary).toMatchObject({ nodes: 3, done: 3, failed: 0, dead: 0, imageBytes, seedBytes: imageBytes + 2 * manifest.length });
    expect(view.summary.makespanMs).toBeGreaterThanOrEqual(0);
    expect(c.asked.get('b')).toEqual([`manifest ${SEED}/team/app v1`]);
    // A node that is not the origin knows only its own part.
    expect(c.node('b').view(spec.id)?.nodes.map((n) => n.node)).toEqual(['b']);
  });

  it('joins the running rollout when asked again for the same image and platform', async () => {
    let open!: () => void;
    const c = cluster(['a', 'b'], { gate: new Promise<void>((r) => (open = r)) });
    const first = await c.node('a').create('team/app:v1');
    expect((await c.node('a').create('seed.test:5000/team/app:v1')).id).toBe(first.id);
    expect((await c.node('a').create('team/app:v1', 'linux/arm64')).id).not.toBe(first.id);
    open();
    await settle(() => c.node('a').view(first.id)?.state === 'done');
    expect((await c.node('a').create('team/app:v1')).id).not.toBe(first.id);
  });

  it('reports a node that fails as failed, with its reason, and the rollout as failed once the rest are done', async () => {
    const c = cluster(['a', 'b'], { fail: ['b'] });
    const spec = await c.node('a').create('team/app:v1');
    await settle(() => c.node('a').view(spec.id)?.state !== 'running');
    const view = c.node('a').view(spec.id)!;
    expect(view.state).toBe('failed');
    expect(view.nodes.find((n) => n.node === 'b')).toMatchObject({ status: 'failed', error: expect.stringMatching(/^blob sha256:[0-9a-f]{64}: seed unreachable \(after 6 attempts\)$/) });
  });

  it('retries blobs whose fetch failed (a flapping seed): the rollout ends done on every node', async () => {
    const c = cluster(['a', 'b'], { failFirst: 3 });
    const spec = await c.node('a').create('team/app:v1');
    await settle(() => c.node('a').view(spec.id)?.state !== 'running');
    expect(c.node('a').view(spec.id)).toMatchObject({ state: 'done', summary: { done: 2, failed: 0 } });
  });

  it('calls a node that stops reporting dead after deadAfterMs, and one expected but never heard from too', async () => {
    let open!: () => void;
    const c = cluster(['a', 'b', 'c'], { gate: new Promise<void>((r) => (open = r)) });
    c.down.add('c'); // c never gets the offer
    const spec = await c.node('a').create('team/app:v1');
    expect(spec.expected).toEqual(['b']);
    spec.expected.push('c'); // as if a was connected to c when it started
    await settle(() => c.node('a').view(spec.id)?.nodes.find((n) => n.node === 'b')?.status === 'running');
    expect(c.node('a').view(spec.id)!.nodes.find((n) => n.node === 'c')?.status).toBe('waiting');
    c.down.add('a'); // b's reports no longer arrive
    c.clock.advance(5_001);
    const view = c.node('a').view(spec.id)!;
    expect(view.nodes.map((n) => [n.node, n.status])).toEqual([
      ['a', 'running'],
      ['b', 'dead'],
      ['c', 'dead'],
    ]);
    open();
    await settle(() => c.node('a').view(spec.id)?.state !== 'running');
    expect(c.node('a').view(spec.id)!.summary).toMatchObject({ done: 1, dead: 2 });
  });

  it('hands the rollout to the node before it in the order before asking for a blob, when the spread has not reached that node', async () => {
    // a's offer to b is lost and c is not connected to b: only c itself, following b, can tell b.
    const predecessorRuns: boolean[] = [];
    const c = cluster(['a', 'b', 'c'], {
      followOrder: () => () => undefined,
      peersOf: (name) => (name === 'a' ? ['b', 'c'] : name === 'b' ? ['a'] : ['a']),
      lost: (from, to) => from === 'a' && to === 'b',
      onBlob: (node, digest) => {
        if (node === 'c') predecessorRuns.push(c.node('b').willFetch(digest) || c.node('b').view(spec.id)?.nodes[0]?.state === 'done');
      },
    });
    const spec = await c.node('a').create('team/app:v1');
    expect(spec.order).toEqual(['a', 'b', 'c']);
    await settle(() => c.node('a').view(spec.id)?.state === 'done');
    expect(predecessorRuns.length).toBeGreaterThan(0);
    expect(predecessorRuns.every(Boolean)).toBe(true);
  });

  it('offers running rollouts to a node that joins, and never one it has finished', async () => {
    let open!: () => void;
    const c = cluster(['a', 'b', 'late'], { gate: new Promise<void>((r) => (open = r)) });
    c.down.add('late');
    const spec = await c.node('a').create('team/app:v1');
    c.down.delete('late');
    c.node('b').offerRunning('late');
    await settle(() => c.node('a').view(spec.id)?.nodes.some((n) => n.node === 'late') === true);
    open();
    await settle(() => c.node('a').view(spec.id)?.state === 'done');
    expect(c.node('a').view(spec.id)!.summary).toMatchObject({ nodes: 3, done: 3 });
  });

  it('resumes what its journal kept (a restart) and skips a record it cannot read', async () => {
    const c = cluster(['a', 'b']);
    const spec = await c.node('a').create('team/app:v1');
    await settle(() => c.node('a').view(spec.id)?.state === 'done');
    const j = journal();
    const rollouts = new Rollouts(readPath('peer').distribution, { self: 'b', selfAddrs: () => [], peers: async () => [], offer: async () => undefined, report: async () => undefined }, { ...j, load: async () => [spec, { id: 'junk' }] }, { defaultRegistry: SEED, isPeerId: isName });
    expect(await rollouts.resume()).toBe(1);
    await settle(() => rollouts.view(spec.id)?.state === 'done');
  });
});

describe('an ordered rollout on one node', () => {
  const MiB = 1024 * 1024;
  const big = (n: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(Buffer.from(`layer ${n}`)), size: 2 * MiB });
  const layers = [big(1), big(2)];
  const image = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers,
    }),
  );
  const deferred = () => {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined);
    return { promise, resolve, reject };
  };

  /** A read path whose downloads are verified and kept when the test says so; every request is recorded. */
  function downloads() {
    const asked: Array<{ digest: Digest; verified: ReturnType<typeof deferred>; stored: ReturnType<typeof deferred> }> = [];
    const d = {
      async manifest(): Promise<ManifestAnswer> {
        return { record: { digest: digestOf(image), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: image.length }, bytes: image, source: 'upstream', stale: false };
      },
      async blob(_repo: string, digest: Digest): Promise<BlobAnswer> {
        const size = digest === digestOf(config) ? config.length : 2 * MiB;
        const a = { digest, verified: deferred(), stored: deferred() };
        asked.push(a);
        return { digest, size, source: 'upstream', stored: a.stored.promise, verified: a.verified.promise, open: async () => Readable.from([]) };
      },
    };
    return { distribution: d as unknown as Distribution, asked };
  }

  it('fetches the small config beside the first layer, takes the next layer once the one before verified, and counts a layer only once kept', async () => {
    const path = downloads();
    const net: RolloutNetwork = { self: 'a', selfAddrs: () => [], peers: async () => [], offer: async () => undefined, report: async () => undefined, followOrder: () => () => undefined };
    const rollouts = new Rollouts(path.distribution, net, journal(), { defaultRegistry: SEED, isPeerId: isName, retryBaseMs: 1 });
    const spec = await rollouts.create('team/app:v1');
    expect(spec.order).toEqual(['a']);
    // The config does not wait in line ahead of the first layer.
    await settle(() => path.asked.length === 2);
    expect(new Set(path.asked.map((a) => a.digest))).toEqual(new Set([digestOf(config), layers[0]!.digest]));
    const [cfg, first] = [path.asked.find((a) => a.digest === digestOf(config))!, path.asked.find((a) => a.digest === layers[0]!.digest)!];
    cfg.verified.resolve();
    cfg.stored.resolve();
    // One layer at a time: the second is asked for once the first verified, while the first is still being kept.
    await new Promise((r) => setTimeout(r, 20));
    expect(path.asked).toHaveLength(2);
    first.verified.resolve();
    await settle(() => path.asked.length === 3);
    expect(path.asked[2]!.digest).toBe(layers[1]!.digest);
    expect(rollouts.view(spec.id)?.nodes[0]).toMatchObject({ status: 'running', blobsDone: 1 });
    // The first layer's commit fails after its bytes verified: it is fetched again, and the rollout waits for it.
    first.stored.reject(new Error('no space left on device'));
    await settle(() => path.asked.length === 4);
    expect(path.asked[3]!.digest).toBe(layers[0]!.digest);
    const second = path.asked[2]!;
    second.verified.resolve();
    second.stored.resolve();
    await new Promise((r) => setTimeout(r, 20));
    expect(rollouts.view(spec.id)?.state).toBe('running');
    path.asked[3]!.verified.resolve();
    path.asked[3]!.stored.resolve();
    await settle(() => rollouts.view(spec.id)?.state === 'done');
    expect(rollouts.view(spec.id)?.nodes[0]).toMatchObject({ status: 'done', blobsDone: 3, blobsTotal: 3 });
  });
});

describe('what peers send', () => {
  const good = (): Record<string, unknown> => ({
    id: '0f6c2d9e-1a2b-4c3d-8e9f-0a1b2c3d4e5f',
    image: 'ignored',
    registry: 'seed',
    repository: 'team/app',
    reference: 'v1',
    origin: 'a',
    originAddrs: ['/ip4/10.0.0.1/tcp/5001'],
    createdAt: 1,
    expected: ['b'],
  });

  it('takes a well-formed offer, rebuilding the image name from its checked parts', () => {
    expect(specFrom(good())).toMatchObject({ image: 'seed/team/app:v1', registry: 'seed', repository: 'team/app', reference: 'v1' });
    const pinned = specFrom({ ...good(), reference: digestOf(layer) });
    expect(pinned.image).toBe(`seed/team/app@${digestOf(layer)}`);
  });

  it.each([
    ['a bad id', { id: '../../etc' }],
    ['a bad repository', { repository: '../up' }],
    ['a bad reference', { reference: 'not a tag!' }],
    ['a bad registry', { registry: 'UPPER CASE' }],
    ['a bad platform', { platform: 'linux' }],
    ['no addresses list', { originAddrs: 'x' }],
    ['a missing image', { registry: undefined }],
  ])('refuses an offer with %s', (_what, change) => {
    expect(() => specFrom({ ...good(), ...change })).toThrow();
  });

  const ids = ['12D3KooWCyaMByyJtucvG9r6NWMtp1gtiFXStfcEWWRz8EbhEHPj', '12D3KooWKJ4kujcAZEyeYRKsc4EJWv5183Y5Xvwo2NV2TLQppCxP', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'];

  it('takes an order of distinct peer ids, and an offer without one (an older origin: claims chain its blobs)', () => {
    expect(specFrom({ ...good(), order: ids }).order).toEqual(ids);
    expect(specFrom(good()).order).toBeUndefined();
  });

  it.each([
    ['not a list', 'x'],
    ['an empty list', []],
    ['a node twice', [ids[0], ids[1], ids[0]]],
    ['something not a peer id', [ids[0], '../../etc/passwd']],
    ['an id that is not text', [ids[0], 7]],
    ['an over-long id', ['1'.repeat(101)]],
    ['more nodes than a rollout may have', Array.from({ length: 10_001 }, (_, i) => `12D3KooW${String(i).padStart(44, '1').replace(/0/g, 'z')}`)],
  ])('refuses an offer whose order is %s', (_what, order) => {
    expect(() => specFrom({ ...good(), order })).toThrow(/bad order/);
  });

  it('believes a report only from the node it is about', () => {
    const p: NodeProgress = { rollout: 'r', node: 'b', state: 'running', blobsTotal: 2, blobsDone: 1, bytesTotal: 10, bytesDone: 5, bySource: { local: 0, peer: 5, upstream: 0 }, startedAt: 1 };
    expect(progressFrom(p, 'b')).toEqual(p);
    expect(() => progressFrom(p, 'c')).toThrow('bad report');
    expect(() => progressFrom({ ...p, state: 'winning' }, 'b')).toThrow();
    expect(() => progressFrom({ ...p, bytesDone: -1 }, 'b')).toThrow();
    expect(() => progressFrom({ ...p, bySource: { local: 0, peer: 0 } }, 'b')).toThrow();
  });
});
