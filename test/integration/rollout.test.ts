// Cluster-wide rollout (issue 7) on loopback, with real processes: a docker-registry seed behind a
// throttling proxy (so a rollout lasts long enough to kill a node in the middle of it) and six layerd
// nodes. The seed's access log is the ground truth for how often each blob left the seed.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorAnswer, RolloutAnswer, StatusAnswer } from '../../src/http/api-schema.js';
import { blobGets } from '../helpers/access-log.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { freePort, removeDir, runCli, startDistribution, until, nodeApi as api } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;

const MB = 1024 * 1024;
let seed: Seed;
let proxy: FaultProxy;
let registry: string;
let nodes: Node[];
/** Every node started here, whatever test started it. */
const launched = new NodeSet('layerd-rollout-');

/** Every node here runs P2P: its status has a peer id. */
type Status = StatusAnswer & { peerId: string };
type View = RolloutAnswer;

function pushToSeed(repo: string, data: Buffer): Promise<string> {
  return new RegistryClient(seed.url).putBlob(repo, data);
}

/** An image of a config and three layers at the seed; its manifest bytes and every blob. */
async function pushImage(repo: string, tag: string, sizes: number[]) {
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layers = sizes.map((s) => randomBlob(s));
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
  for (const b of [config, ...layers]) await pushToSeed(repo, b);
  await new RegistryClient(seed.url).pushManifest(repo, tag, manifest, MT.ociManifest);
  return { ref: `${registry}/${repo}:${tag}`, repo, manifest, blobs: [config, ...layers] };
}

/** A node mirroring the seed through the throttling proxy, on loopback P2P; given a data dir and arguments, one restarted alike. */
function startNode(name: string, bootstrap?: Node, dataDir?: string, args?: string[]): Promise<Node> {
  if (args) return launched.start(name, { dataDir, args });
  return launched.start(name, { dataDir, mirror: { registry, url: proxy.url }, p2p: true, bootstrap });
}

/**
 * Every node has joined (is connected to a peer). The cluster is not a full mesh (kad-dht connects a node to
 * the peers its queries reach): a rollout's origin finds the rest through its peers when it creates one.
 */
async function fullyConnected(): Promise<void> {
  await Promise.all(nodes.map((n) => until(`${n.name} to join the cluster`, async () => ((await api<Status>(n, '/api/status')).body.connectedPeers >= 1 ? true : undefined), 90_000)));
}

/** Runs the CLI; resolves with its exit code and output. */
const cli = (args: string[]) => runCli(args, {}, 120_000);

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

/** Whom a node says it followed for each of `digests`, by its 'rollout order: following' log lines, in order. */
function followed(n: Node, digests: string[]): Map<string, Array<{ follow: string; passedOver: number }>> {
  const out = new Map(digests.map((d) => [d, [] as Array<{ follow: string; passedOver: number }>]));
  for (const line of n.output().split('\n')) {
    if (!line.includes('rollout order: following')) continue;
    const doc = JSON.parse(line) as { digest: string; follow: string; passedOver: number };
    out.get(doc.digest)?.push({ follow: doc.follow, passedOver: doc.passedOver });
  }
  return out;
}

/** Bytes a node has fetched from each peer (its /api/status). */
async function downloadedFrom(n: Node): Promise<Map<string, number>> {
  return new Map((await api<Status>(n, '/api/status')).body.peers.map((p) => [p.id, p.downloaded]));
}

function seedGetsOf(digest: string): number {
  return blobGets(seed.output()).filter((g) => g.digest === digest).length;
}

beforeAll(async () => {
  seed = await startDistribution();
  registry = `127.0.0.1:${seed.port}`;
  // 8 MB/s per download: a node takes about a second per layer from the seed.
  proxy = await startFaultProxy(seed.url, { mode: 'slow', slowBytesPerSecond: 8 * MB });
  nodes = [...(await launched.cluster(['node1', 'node2', 'node3', 'node4', 'node5', 'node6'], { mirror: { registry, url: proxy.url }, p2p: true }))];
  await fullyConnected();
}, 180_000);

// A node that exits without a test stopping it has crashed: fail the test that was running, with why.
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

describe('layerd rollout', () => {
  it('rolls a 3-layer image out to six nodes: all end bit-identical, the seed sends each blob at most twice', async () => {
    const image = await pushImage('test/rollout', 'v1', [6 * MB, 4 * MB, 2 * MB]);
    const run = await cli(['rollout', image.ref, '--node', nodes[0]!.url, '--wait', '--json']);
    expect(run.status, run.stderr).toBe(0);
    const view = JSON.parse(run.stdout) as View;
    expect(view.state).toBe('done');
    expect(view.summary).toMatchObject({ nodes: 6, done: 6, failed: 0, dead: 0 });
    const size = image.manifest.length + image.blobs.reduce((s, b) => s + b.length, 0);
    expect(view.summary.imageBytes).toBe(size);
    expect(view.summary.makespanMs).toBeGreaterThan(0);
    for (const n of view.nodes) expect([n.status, n.blobsDone, n.blobsTotal]).toEqual(['done', 4, 4]);

    await expectImageEverywhere(image, nodes);
    for (const b of image.blobs) {
      const gets = seedGetsOf(digestOf(b));
      expect(gets, `seed GETs of ${digestOf(b)}`).toBeGreaterThanOrEqual(1);
      expect(gets, `seed GETs of ${digestOf(b)}`).toBeLessThanOrEqual(2);
    }
    // What the nodes say they took from the seed agrees with the seed: about one image's worth.
    expect(view.summary.seedRatio).toBeLessThanOrEqual(2);
  });

  it('runs every blob\'s chain in one order: the origin takes the image from the seed, each other node from the node before it', async () => {
    const image = await pushImage('test/order', 'v1', [6 * MB, 4 * MB, 2 * MB]);
    const digests = image.blobs.map((b) => digestOf(b));
    const blobBytes = image.blobs.reduce((s, b) => s + b.length, 0);
    const ids = await Promise.all(nodes.map(async (n) => (await api<Status>(n, '/api/status')).body.peerId));
    const before = await Promise.all(nodes.map(downloadedFrom));
    const { body: startedView } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    const order = startedView.order!;
    expect(order[0], 'the origin heads the order').toBe(ids[0]);
    expect(new Set(order)).toEqual(new Set(ids));
    const done = await until('the rollout to end', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
      return v.state !== 'running' ? v : undefined;
    }, 60_000);
    expect(done.state).toBe('done');
    await expectImageEverywhere(image, nodes);

    for (const [place, id] of order.entries()) {
      const i = ids.indexOf(id);
      const n = nodes[i]!;
      const expected = place === 0 ? 'seed' : order[place - 1]!;
      // Every blob, the same predecessor, at the first try.
      for (const [digest, lines] of followed(n, digests)) expect(lines, `${n.name} (place ${place}) for ${digest}`).toEqual([{ follow: expected, passedOver: 0 }]);
      // And the bytes came from there: all of the image from the node before, none from any other peer.
      const after = await downloadedFrom(n);
      for (const peer of ids.filter((p) => p !== id)) {
        const got = (after.get(peer) ?? 0) - (before[i]!.get(peer) ?? 0);
        expect(got, `${n.name} (place ${place}) fetched from ${peer}`).toBe(peer === expected ? blobBytes : 0);
      }
    }
    for (const d of digests) expect(seedGetsOf(d), `seed GETs of ${d}`).toBe(1);
  });

  it('answers a second request for a running rollout with the same rollout', async () => {
    const image = await pushImage('test/twice', 'v1', [4 * MB, MB, MB]);
    const a = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    const b = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    expect(a.status).toBe(202);
    expect(b.body.id).toBe(a.body.id);
    const done = await until('the rollout to end', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${a.body.id}`)).body;
      return v.state !== 'running' ? v : undefined;
    }, 60_000);
    expect(done.state).toBe('done');
    await expectImageEverywhere(image, nodes);
  });

  // A node is called dead after 15 s of silence, and a restart follows: longer than the default timeout.
  it('reports a node killed mid-rollout as dead while the rest complete; restarted, it resumes and finishes', { timeout: 240_000 }, async () => {
    const image = await pushImage('test/kill', 'v1', [8 * MB, 6 * MB, 4 * MB]);
    const victim = nodes[5]!;
    const victimId = (await api<Status>(victim, '/api/status')).body.peerId;
    const { body: startedView } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    await until('the victim to report progress', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
      return v.nodes.find((n) => n.node === victimId)?.status === 'running' ? true : undefined;
    }, 30_000);
    await victim.stop('SIGKILL');

    const ended = await until('the rollout to end without the victim', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
      return v.state !== 'running' ? v : undefined;
    }, 90_000);
    expect(ended.state).toBe('failed');
    expect(ended.summary).toMatchObject({ nodes: 6, done: 5, dead: 1 });
    expect(ended.nodes.find((n) => n.node === victimId)?.status).toBe('dead');
    await expectImageEverywhere(image, nodes.slice(0, 5));

    // The victim comes back on its data dir: it resumes the rollout from its journal and reports done.
    const back = await startNode('node6-again', undefined, victim.dataDir, victim.args);
    nodes[5] = back;
    let last: View | undefined;
    const resumed = await until('the restarted node to finish the rollout', async () => {
      last = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
      return last.nodes.find((n) => n.node === victimId)?.status === 'done' ? last : undefined;
    }, 90_000).catch((err: Error) => {
      const lines = back.output().split('\n').filter((l) => /rollout|warn|error/i.test(l)).slice(-30);
      throw new Error(`${err.message}\nlast view: ${JSON.stringify(last?.nodes.find((n) => n.node === victimId))}\n--- restarted node ---\n${lines.join('\n')}`);
    });
    expect(resumed.state).toBe('done');
    await expectImageEverywhere(image, [back]);
  });

  it('offers a running rollout to a node that joins in the middle of it: it reports and ends with the image', { timeout: 180_000 }, async () => {
    const image = await pushImage('test/join', 'v1', [8 * MB, 6 * MB, 4 * MB]);
    // A much slower seed (the 8 MB layer takes 16 s), so the rollout is surely still running when the new
    // node has started and met its peers, even on a loaded machine.
    proxy.slowBytesPerSecond = MB / 2;
    const { body: startedView } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    expect(startedView.nodes.length).toBe(nodes.length);
    const late = await startNode('node7', nodes[2]);
    const lateId = (await api<Status>(late, '/api/status')).body.peerId;
    const ended = await until('the rollout to end, with the late node in it', async () => {
      const v = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
      return v.state !== 'running' && v.nodes.some((n) => n.node === lateId) ? v : undefined;
    }, 90_000);
    proxy.slowBytesPerSecond = 8 * MB;
    expect(ended.state).toBe('done');
    expect(ended.summary).toMatchObject({ nodes: 7, done: 7 });
    await expectImageEverywhere(image, [...nodes, late]);
    await late.stop('SIGTERM');
  });

  // A node silent in the order makes its follower wait out the answer deadline (40 s) or the idle timeout (45 s).
  it('passes over a node in the order that stops answering: everyone else ends with the image, the seed sends each blob once', { timeout: 240_000 }, async () => {
    const image = await pushImage('test/order-stopped', 'v1', [6 * MB, 4 * MB, 2 * MB]);
    const digests = image.blobs.map((b) => digestOf(b));
    const ids = await Promise.all(nodes.map(async (n) => (await api<Status>(n, '/api/status')).body.peerId));
    const { body: startedView } = await api<View>(nodes[0]!, '/api/rollouts', { image: image.ref });
    const order = startedView.order!;
    // The third in the order stops at once (SIGSTOP: its connections stay open, it answers nothing), maybe
    // before its follower asks it, maybe while following it: either way the follower must move up the order.
    const victim = nodes[ids.indexOf(order[2]!)]!;
    const follower = nodes[ids.indexOf(order[3]!)]!;
    victim.child.kill('SIGSTOP');
    try {
      const ended = await until('the rollout to end without the stopped node', async () => {
        const v = (await api<View>(nodes[0]!, `/api/rollouts/${startedView.id}`)).body;
        return v.state !== 'running' ? v : undefined;
      }, 200_000);
      expect(ended.summary).toMatchObject({ nodes: nodes.length, done: nodes.length - 1, dead: 1, failed: 0 });
      expect(ended.nodes.find((n) => n.node === order[2])?.status).toBe('dead');
      await expectImageEverywhere(image, nodes.filter((n) => n !== victim));
      // The follower ends up following the node before the stopped one, for every blob.
      for (const [digest, lines] of followed(follower, digests)) {
        expect(lines.at(-1), `${follower.name} for ${digest}: ${JSON.stringify(lines)}`).toEqual({ follow: order[1], passedOver: expect.any(Number) });
        expect(lines.at(-1)!.passedOver, `${follower.name} for ${digest}`).toBeGreaterThan(0);
      }
      for (const d of digests) expect(seedGetsOf(d), `seed GETs of ${d}`).toBe(1);
    } finally {
      await victim.stop('SIGKILL');
    }
  });

  it('refuses bad requests with a clear error: the CLI exits 2 for a bad reference, 1 for an unreachable node', async () => {
    const bad = await api<ErrorAnswer>(nodes[0]!, '/api/rollouts', { image: 'UPPER/Case!!' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]!.code).toBe('NAME_INVALID');
    const unknown = await api<ErrorAnswer>(nodes[0]!, '/api/rollouts/00000000-0000-0000-0000-000000000000');
    expect(unknown.status).toBe(404);

    const usage = await cli(['rollout', '--node', nodes[0]!.url]);
    expect(usage.status).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    const refused = await cli(['rollout', `${registry}/test/rollout:v1`, '--node', `http://127.0.0.1:${await freePort()}`]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('cannot reach node');
  });
});
