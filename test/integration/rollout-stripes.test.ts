// Striped rollouts (issue 16) on loopback, with real processes: five layerd nodes whose origin is told to
// stripe from five nodes on, two stripes, so every node but the origin takes each blob as two stripes from
// its parents in two trees. A docker-registry seed behind a throttling proxy; its access log is the ground
// truth for how often each blob left the seed. Last, five more nodes whose uplinks but the origin's are
// throttled: a node with one slow parent and one fast takes its fast stripe on ahead of the slow one.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutAnswer, StatusAnswer } from '../../src/http/api-schema.js';
import { StripeKeeper } from '../../src/distribution/rollout/index.js';
import { blobGets } from '../helpers/access-log.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { removeDir, startDistribution, until, nodeApi as api } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;
type Status = StatusAnswer & { peerId: string };
type View = RolloutAnswer;

const MB = 1024 * 1024;
let seed: Seed;
let proxy: FaultProxy;
let registry: string;
let nodes: Node[];
const launched = new NodeSet('layerd-stripes-');
const STRIPED = ['--rollout-stripes-from', '5', '--rollout-stripes', '2'];

async function pushImage(repo: string, tag: string, sizes: number[]) {
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layers = sizes.map((s) => randomBlob(s));
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
  const client = new RegistryClient(seed.url);
  for (const b of [config, ...layers]) await client.putBlob(repo, b);
  await client.pushManifest(repo, tag, manifest, MT.ociManifest);
  return { ref: `${registry}/${repo}:${tag}`, repo, manifest, blobs: [config, ...layers] };
}

/** Every node holds every blob of the image, bit-identical, and serves it from its own store. */
async function expectImageEverywhere(image: { repo: string; blobs: Buffer[] }, on: Node[]): Promise<void> {
  for (const n of on) {
    for (const b of image.blobs) {
      const res = await new RegistryClient(n.url).req('GET', `/v2/${image.repo}/blobs/${digestOf(b)}`);
      expect(res.status, `${n.name} GET ${digestOf(b)}`).toBe(200);
      expect(res.header('x-layerd-source'), `${n.name} serves ${digestOf(b)} from its store`).toBe('local');
      expect(digestOf(res.body), `${n.name}: bytes of ${digestOf(b)}`).toBe(digestOf(b));
    }
  }
}

const seedGetsOf = (digest: string) => blobGets(seed.output()).filter((g) => g.digest === digest).length;

async function ended(origin: Node, id: string, ms: number): Promise<View> {
  return until('the rollout to end', async () => {
    const v = (await api<View>(origin, `/api/rollouts/${id}`)).body;
    return v.state !== 'running' ? v : undefined;
  }, ms);
}

beforeAll(async () => {
  seed = await startDistribution();
  registry = `127.0.0.1:${seed.port}`;
  // 4 MB/s per download: the origin takes a few seconds per image, long enough to kill a node mid-way.
  proxy = await startFaultProxy(seed.url, { mode: 'slow', slowBytesPerSecond: 4 * MB });
  nodes = [...(await launched.cluster(['node1', 'node2', 'node3', 'node4', 'node5'], { mirror: { registry, url: proxy.url }, p2p: true, logLevel: 'info', args: STRIPED, readyTimeoutMs: 90_000 }))];
  await Promise.all(
    // Joined: the origin finds the others through its peers when it creates a rollout (no full mesh needed).
    nodes.map((n) => until(`${n.name} to join the cluster`, async () => ((await api<Status>(n, '/api/status')).body.connectedPeers >= 1 ? true : undefined), 90_000)),
  );
}, 180_000);

afterEach(() => {
  expect(launched.crashReports()).toEqual([]);
  expect(launched.rejections()).toEqual([]);
});

afterAll(async () => {
  await launched.stopAll('SIGKILL');
  await proxy?.close().catch(() => undefined);
  if (seed) await seed.stop().catch(() => undefined);
  if (seed) await removeDir(seed.rootDir);
});

describe('layerd rollout by stripe trees', () => {
  it('rolls an image out to five nodes by two stripes: all end bit-identical, the seed sends each blob once', { timeout: 120_000 }, async () => {
    const image = await pushImage('test/stripes', 'v1', [6 * MB, 4 * MB, 2 * MB]);
    const { body: started } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    const done = await ended(nodes[0]!, started.id, 90_000);
    expect(done.state).toBe('done');
    expect(done.summary).toMatchObject({ nodes: 5, done: 5, failed: 0, dead: 0 });
    await expectImageEverywhere(image, nodes);
    for (const b of image.blobs) expect(seedGetsOf(digestOf(b)), `seed GETs of ${digestOf(b)}`).toBe(1);
    // Every node but the origin took the layers by stripes, some of each stripe.
    const origin = (await api<Status>(nodes[0]!, '/api/status')).body.peerId;
    const layerBytes = image.blobs.reduce((s, b) => s + b.length, 0);
    for (const n of done.nodes.filter((x) => x.node !== origin)) {
      const have = n.stripes?.have ?? [];
      expect(have, `${n.node}'s bytes by stripe`).toHaveLength(2);
      for (const h of have) expect(h, `${n.node}'s bytes of a stripe`).toBeGreaterThan(0);
      expect(have[0]! + have[1]!, `${n.node}'s striped bytes`).toBe(layerBytes);
    }
  });

  // A node is called dead after 15 s of silence: longer than the default timeout.
  it('finishes on every survivor when a stripe parent is killed mid-rollout', { timeout: 180_000 }, async () => {
    const image = await pushImage('test/stripes-kill', 'v1', [12 * MB, 8 * MB, 4 * MB]);
    const ids = await Promise.all(nodes.map(async (n) => (await api<Status>(n, '/api/status')).body.peerId));
    const { body: started } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    // The victim: a node some other node takes a stripe from.
    const keeper = new StripeKeeper(started.id, started.order![0]!, started.order!, { k: 2, chunkBytes: MB });
    const parents = new Set(started.order!.slice(1).flatMap((id) => keeper.parentsOf(id)));
    const victimId = started.order!.slice(1).find((id) => parents.has(id))!;
    const victim = nodes[ids.indexOf(victimId)]!;
    await until('the victim to take some of the layers', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${started.id}`)).body;
      const n = v.nodes.find((x) => x.node === victimId);
      return n?.stripes && n.stripes.have.some((h) => h > 0) ? true : undefined;
    }, 60_000);
    await victim.stop('SIGKILL');

    const done = await ended(nodes[0]!, started.id, 150_000);
    expect(done.summary).toMatchObject({ nodes: 5, done: 4, dead: 1 });
    expect(done.nodes.find((n) => n.node === victimId)?.status).toBe('dead');
    await expectImageEverywhere(image, nodes.filter((n) => n !== victim));
    // The victim's children found it gone and took its chunks from another parent.
    const passedOver = nodes.filter((n) => n !== victim).some((n) => n.output().split('\n').some((l) => l.includes('a stripe parent could not send a chunk') && l.includes(victimId)));
    expect(passedOver, 'a survivor passed the dead parent over').toBe(true);
  });
});

describe('layerd rollout by stripe trees, one parent slow', () => {
  const slowSet = new NodeSet('layerd-stripes-slow-');
  let slow: Node[];
  const SLOW_RATE = '1MB/s';

  beforeAll(async () => {
    // Every uplink but the origin's is throttled: the third in the order takes stripe 0 from the second
    // (slow) and stripe 1 from the origin (fast), whatever order the origin gives.
    const spec = { mirror: { registry, url: proxy.url }, p2p: true, logLevel: 'info' as const, readyTimeoutMs: 90_000 };
    const origin = await slowSet.start('origin', { ...spec, args: STRIPED });
    const rest = await Promise.all(['s1', 's2', 's3', 's4'].map((n) => slowSet.start(n, { ...spec, bootstrap: origin, args: [...STRIPED, '--max-upload-rate', SLOW_RATE] })));
    slow = [origin, ...rest];
    await Promise.all(
      slow.map((n) => until(`${n.name} to join the cluster`, async () => ((await api<Status>(n, '/api/status')).body.connectedPeers >= 1 ? true : undefined), 90_000)),
    );
  }, 180_000);

  afterEach(() => {
    expect(slowSet.crashReports()).toEqual([]);
    expect(slowSet.rejections()).toEqual([]);
  });

  afterAll(async () => {
    await slowSet.stopAll('SIGKILL');
  });

  it('a node with a slow parent in one stripe takes its other stripe on ahead, and all end bit-identical', { timeout: 150_000 }, async () => {
    const image = await pushImage('test/stripes-slow', 'v1', [24 * MB]);
    const { body: started } = await api<View>(slow[0]!, '/api/rollouts', { image: image.ref });
    const order = started.order!;
    const keeper = new StripeKeeper(started.id, order[0]!, order, { k: 2, chunkBytes: MB });
    const child = order[2]!;
    expect(keeper.parentsOf(child)).toEqual([order[1], order[0]]);
    // How far the child's fast stripe (1) got ahead of its slow one (0), at most, as the origin saw it.
    let lead = 0;
    const done = await until('the rollout to end', async () => {
      const v = (await api<View>(slow[0]!, `/api/rollouts/${started.id}`)).body;
      const have = v.nodes.find((n) => n.node === child)?.stripes?.have;
      if (have) lead = Math.max(lead, have[1]! - have[0]!);
      return v.state !== 'running' ? v : undefined;
    }, 120_000);
    expect(done.state).toBe('done');
    expect(done.summary).toMatchObject({ nodes: 5, done: 5, failed: 0, dead: 0 });
    await expectImageEverywhere(image, slow);
    // Handed on in order, the fast stripe could lead by the window of chunks asked ahead (2 per stripe);
    // landing out of order, it runs on to its end while the slow one trails.
    expect(lead, 'the fast stripe\'s lead over the slow one').toBeGreaterThan(6 * MB);
  });
});
