// A rollout on the namespace network (issue 7): a docker-registry seed and six layerd nodes, each host in its
// own network namespace with its link capped at 50 Mbit/s (scripts/cluster/netns-cluster-lib.mjs; needs root
// and iproute2, as CI has: without them the test fails with the reason, it never skips). A 3-layer image is
// rolled out from node 1; node 6 is killed in the middle. Every other node must end with the bit-identical
// image, node 6 must be reported dead rather than waited for, and the seed's access log must show each blob
// fetched at most twice in all. (test/integration/rollout.test.ts covers restarts, joins and asking twice, on
// loopback.)
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { startCluster, type Cluster, type ClusterHost } from '../../scripts/cluster/netns-cluster-lib.mjs';
import { blobGets } from '../helpers/access-log.js';
import { removeDir, tempDir, until } from '../helpers/processes.js';

const MB = 1024 * 1024;
const REPO = 'test/rollout';
let work: string;
let cluster: Cluster;

interface View {
  id: string;
  state: string;
  nodes: Array<{ node: string; status: string; blobsDone?: number; blobsTotal?: number }>;
  summary: { nodes: number; done: number; dead: number; failed: number; seedRatio: number };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function put(host: ClusterHost, path: string, body: Buffer, contentType: string) {
  const file = join(work, `body-${randomBytes(4).toString('hex')}`);
  await writeFile(file, body);
  return host.http(path, { method: 'PUT', headers: { 'content-type': contentType }, bodyFile: file, timeoutMs: 60_000 });
}

/** Pushes a config and three layers and their manifest to the seed, from inside the seed's namespace. */
async function pushImage(): Promise<{ blobs: Buffer[]; manifest: Buffer }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
  const layers = [randomBytes(6 * MB), randomBytes(4 * MB), randomBytes(2 * MB)];
  for (const b of [config, ...layers]) {
    const post = await cluster.seed.http(`/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    expect(post.status).toBe(202);
    const location = new URL(String(post.headers.location), cluster.seed.url);
    location.searchParams.set('digest', sha256(b));
    const res = await put(cluster.seed, `${location.pathname}${location.search}`, b, 'application/octet-stream');
    expect(res.status, res.body).toBe(201);
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
    }),
  );
  expect((await put(cluster.seed, `/v2/${REPO}/manifests/v1`, manifest, 'application/vnd.oci.image.manifest.v1+json')).status).toBe(201);
  return { blobs: [config, ...layers], manifest };
}

async function view(id: string): Promise<View> {
  const r = await cluster.nodes[0]!.http(`/api/rollouts/${id}`);
  expect(r.status, r.body).toBe(200);
  return JSON.parse(r.body!) as View;
}

beforeAll(async () => {
  work = await tempDir('layerd-rollout-netns-');
  cluster = await startCluster({ nodes: 6, rate: '50mbit', prefix: 'lcroll', timeoutMs: 120_000 });
  // Every node has joined (the cluster's set-up waited for each to reach its bootstrap peer): the origin finds
  // the others through its peers when it creates the rollout, as it would in a cluster that is not a full mesh.
  for (const n of cluster.nodes) {
    await until(`${n.name} to join the cluster`, async () => (JSON.parse((await n.http('/api/status')).body!).connectedPeers >= 1 ? true : undefined), 60_000);
  }
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  if (work) await removeDir(work);
});

describe('a rollout on a network of namespaces, links at 50 Mbit/s', () => {
  it('reaches every node with the bit-identical image and the seed about once; a node killed mid-way is reported dead', { timeout: 180_000 }, async () => {
    onTestFailed(() => {
      for (const h of [cluster.seed, ...cluster.nodes]) console.error(`--- ${h.name} ---\n${h.output().trimEnd().split('\n').slice(-20).join('\n')}`);
    });
    const image = await pushImage();
    const body = join(work, 'rollout.json');
    await writeFile(body, JSON.stringify({ image: `${REPO}:v1` }));
    const started = await cluster.nodes[0]!.http('/api/rollouts', { method: 'POST', headers: { 'content-type': 'application/json' }, bodyFile: body });
    expect(started.status, started.body).toBe(202);
    const { id } = JSON.parse(started.body!) as View;

    const victim = cluster.nodes[5]!;
    await until('node 6 to report progress', async () => ((await view(id)).nodes.find((n) => n.node === victim.peerId)?.status === 'running' ? true : undefined), 60_000);
    process.kill(victim.pid, 'SIGKILL');

    const ended = await until('the rollout to end', async () => {
      const v = await view(id);
      return v.state !== 'running' ? v : undefined;
    }, 120_000);
    expect(ended.summary).toMatchObject({ nodes: 6, done: 5, dead: 1, failed: 0 });
    expect(ended.nodes.find((n) => n.node === victim.peerId)?.status).toBe('dead');

    for (const n of cluster.nodes.slice(0, 5)) {
      for (const b of image.blobs) {
        const r = await n.http(`/v2/${REPO}/blobs/${sha256(b)}`, { outFile: '/dev/null' });
        expect(r.status, `${n.name} GET ${sha256(b)}`).toBe(200);
        expect(`sha256:${r.sha256}`, `${n.name}: bytes of ${sha256(b)}`).toBe(sha256(b));
        expect(r.headers['x-layerd-source'], `${n.name} holds ${sha256(b)}`).toBe('local');
      }
    }
    const gets = blobGets(cluster.seed.output());
    for (const b of image.blobs) {
      const n = gets.filter((g) => g.digest === sha256(b)).length;
      expect(n, `seed GETs of ${sha256(b)}`).toBeGreaterThanOrEqual(1);
      expect(n, `seed GETs of ${sha256(b)}`).toBeLessThanOrEqual(2);
    }
  });
});
