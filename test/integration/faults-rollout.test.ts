// The seed flapping during a rollout, with real processes: a docker-registry seed behind the fault
// proxy, three layerd nodes, and `POST /api/rollouts` while the proxy goes down and comes back every
// second or so (a restarting registry, a flaky link). Connections are refused while it is
// down and transfers in flight are cut when it goes down.
//
// The behaviour asserted: a rollout rides out a flapping seed. A node retries what failed (manifests
// and blobs, with backoff, within a bounded budget) instead of giving up at the first refused
// connection: an operator who asked for an image everywhere wants it everywhere, and a flap is
// transient. The rollout ends `done` on every node with bit-identical blobs. (A seed that stays down
// past the budget still fails the rollout, with the seed error per node: the unit tests cover that.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode } from '../helpers/nodes.js';
import { removeDir, startDistribution, until, nodeApi as api } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';
import { storeProblems } from '../helpers/store-check.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;
interface View {
  id: string;
  state: string;
  nodes: Array<{ node: string; status: string; error?: string; blobsDone?: number; blobsTotal?: number }>;
  summary: { nodes: number; done: number; failed: number; dead: number };
}

const MB = 1024 * 1024;
const MAX_FLAPS = 6;
let seed: Seed;
let proxy: FaultProxy;
let registry: string;
const launched = new NodeSet('layerd-flap-');
let nodes: TestNode[];

beforeAll(async () => {
  seed = await startDistribution();
  registry = `127.0.0.1:${seed.port}`;
  // Up means slow (4 MB/s), so a flap also cuts transfers in flight, not only new connections.
  proxy = await startFaultProxy(seed.url, { mode: 'slow', slowBytesPerSecond: 4 * MB });
  nodes = [...(await launched.cluster(['node1', 'node2', 'node3'], { mirror: { registry, url: proxy.url }, p2p: true, readyTimeoutMs: 60_000 }))];
  await Promise.all(
    // Joined: the origin finds the others through its peers when it creates the rollout (no full mesh needed).
    nodes.map((n) => until(`${n.name} to join the cluster`, async () => ((await api<{ connectedPeers: number }>(n, '/api/status')).body.connectedPeers >= 1 ? true : undefined), 60_000)),
  );
}, 180_000);

afterAll(async () => {
  await launched.stopAll('SIGKILL');
  await proxy?.close().catch(() => undefined);
  await seed?.stop().catch(() => undefined);
  if (seed) await removeDir(seed.rootDir);
});

describe('the seed flapping during a rollout', () => {
  it('the rollout completes on every node with bit-identical blobs', { timeout: 180_000 }, async () => {
    const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
    // The origin heads the rollout's order and takes its layers one at a time: 6 MiB at the proxy's 4 MiB/s
    // needs 1.5 s of the seed being up, more than its first up window (1 s), so the rollout cannot end
    // before the seed has gone down at least once more (with 1.5 MiB it once ended inside that window).
    const layers = [2 * MB, 2 * MB, MB, MB].map((s) => randomBlob(s));
    const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
    const up = new RegistryClient(seed.url);
    for (const b of [config, ...layers]) await up.putBlob('flap/app', b);
    await up.pushManifest('flap/app', 'v1', manifest, MT.ociManifest);

    // The seed is down when the rollout starts, for 1.5 s: longer than a node's own seed retries take to
    // give up (2 retries, at most 0.9 s of backoff), so the origin's first manifest fetch surely fails and
    // the rollout must retry it. Then it flaps, 300 ms down and 1 s up, until the rollout ends or it has
    // flapped MAX_FLAPS times (about 8 s: inside a node's retry budget, which a seed down for longer
    // than that exhausts by design).
    await proxy.setMode('down');
    const started = await api<View>(nodes[0]!, '/api/rollouts', { image: `${registry}/flap/app:v1` });
    expect(started.status).toBe(202);
    let flaps = 0;
    let ended: View | undefined;
    const flapping = (async () => {
      for (let first = true; !ended && flaps < MAX_FLAPS; first = false) {
        await new Promise((r) => setTimeout(r, first ? 1_500 : 300));
        await proxy.setMode('slow');
        await new Promise((r) => setTimeout(r, 1_000));
        if (ended) break;
        await proxy.setMode('down');
        flaps++;
      }
    })();
    try {
      ended = await until('the rollout to end', async () => {
        const v = (await api<View>(nodes[0]!, `/api/rollouts/${started.body.id}`)).body;
        return v.state !== 'running' ? v : undefined;
      }, 150_000);
    } finally {
      ended ??= { id: '', state: 'gave up', nodes: [], summary: { nodes: 0, done: 0, failed: 0, dead: 0 } };
      await flapping;
      await proxy.setMode('slow');
    }
    const retries = nodes.map((n) => n.output().split('\n').filter((l) => l.includes('rollout fetch failed: retrying')).length);
    console.log(JSON.stringify({ rolloutFlapping: { flaps, state: ended.state, summary: ended.summary, retriesPerNode: retries, seedBlobGets: proxy.count('blob-get'), seedManifestGets: proxy.count('manifest-get') } }));
    expect(flaps, 'the seed went down at least once during the rollout (besides at its start)').toBeGreaterThan(0);
    const retried = nodes[0]!.output().split('\n').filter((l) => l.includes('rollout fetch failed: retrying'));
    expect(retried.length, 'the origin retried what the down seed refused').toBeGreaterThan(0);
    const why = nodes.flatMap((n) => n.output().split('\n').filter((l) => /retrying|rollout failed/.test(l)).map((l) => l.slice(0, 300)));
    expect(ended.state, `${JSON.stringify(ended.nodes)}\n${why.join('\n')}`).toBe('done');
    expect(ended.summary).toMatchObject({ nodes: 3, done: 3, failed: 0, dead: 0 });
    for (const n of nodes) {
      const c = new RegistryClient(n.url);
      for (const b of [config, ...layers]) {
        const res = await c.req('GET', `/v2/flap/app/blobs/${digestOf(b)}`);
        expect(res.header('x-layerd-source'), `${n.url}: ${digestOf(b)} is local`).toBe('local');
        expect(digestOf(res.body), `${n.url}: bytes of ${digestOf(b)}`).toBe(digestOf(b));
      }
      expect(await storeProblems(n.url, n.dataDir), n.url).toEqual([]);
    }
  });
});
