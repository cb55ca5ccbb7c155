// Running a node for real (issue 6), with real processes on loopback and a docker-registry seed: metrics
// and /api answers that move with pulls, eviction under a small disk quota while pulls run, an index that
// agrees with the disk after kill -9 in the middle of a download, readiness that follows the peers,
// garbage collection on request, and a clean shutdown while a transfer is in flight.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobsAnswer, GcAnswer, ImagesAnswer, ProbeAnswer, PullsAnswer, StatusAnswer } from '../../src/http/api-schema.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { NodeSet, type TestNode as Proc } from '../helpers/nodes.js';
import { removeDir, stablePort, startDistribution, tempDir, until } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;

const MB = 1024 * 1024;
const ACCEPT = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

let seed: Seed;
let registry: string;
const launched = new NodeSet('layerd-ops-');
const dirs: string[] = [];
const proxies: FaultProxy[] = [];
/** The image at the seed: test/ops:v1, a config and three layers. */
let image: { manifest: Buffer; blobs: Buffer[] };
/** Twelve 1 MiB blobs at the seed in test/bulk, for the quota test. */
let bulk: Buffer[];

function pushToSeed(repo: string, data: Buffer): Promise<string> {
  return new RegistryClient(seed.url).putBlob(repo, data);
}

/** A node mirroring the seed (or `upstream` in its place). */
function node(args: string[] = [], opts: { dataDir?: string; upstream?: string } = {}): Promise<Proc> {
  return launched.start(`node${launched.nodes.length + 1}`, { dataDir: opts.dataDir, mirror: { registry, url: opts.upstream ?? seed.url }, args });
}

async function json<T = Record<string, unknown>>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as T };
}

/** The value of one sample of /metrics, 0 when it is not there. */
async function metric(n: Proc, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return 0;
}

async function getBlob(n: Proc, repo: string, digest: string) {
  const res = await new RegistryClient(n.url).req('GET', `/v2/${repo}/blobs/${digest}`);
  return { status: res.status, source: res.header('x-layerd-source'), sha: digestOf(res.body) };
}

async function pullImage(n: Proc): Promise<Array<{ status: number; source: string | undefined; sha: string }>> {
  const m = await new RegistryClient(n.url).req('GET', '/v2/test/ops/manifests/v1', { headers: { accept: ACCEPT } });
  expect(m.status).toBe(200);
  expect(m.body.equals(image.manifest)).toBe(true);
  return Promise.all(image.blobs.map((b) => getBlob(n, 'test/ops', digestOf(b))));
}

const status = async (n: Proc) => (await json<StatusAnswer>(`${n.url}/api/status`)).body;

/** Every file under the store's blobs/ folder, with its size, and whether its bytes hash to its name. */
async function blobFiles(dataDir: string): Promise<Array<{ digest: string; size: number; verifies: boolean }>> {
  const out = [];
  const base = join(dataDir, 'blobs', 'sha256');
  for (const prefix of await readdir(base).catch(() => [] as string[])) {
    for (const hex of await readdir(join(base, prefix))) {
      const bytes = await readFile(join(base, prefix, hex));
      out.push({ digest: `sha256:${hex}`, size: bytes.length, verifies: createHash('sha256').update(bytes).digest('hex') === hex });
    }
  }
  return out;
}

beforeAll(async () => {
  seed = await startDistribution();
  registry = `127.0.0.1:${seed.port}`;
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layers = [randomBlob(MB), randomBlob(MB + 17), randomBlob(300_000)];
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
  for (const b of [config, ...layers]) await pushToSeed('test/ops', b);
  await new RegistryClient(seed.url).pushManifest('test/ops', 'v1', manifest, MT.ociManifest);
  image = { manifest, blobs: [config, ...layers] };
  bulk = Array.from({ length: 12 }, () => randomBlob(MB));
  for (const b of bulk) await pushToSeed('test/bulk', b);
});

afterAll(async () => {
  await launched.stopAll('SIGKILL');
  for (const p of proxies) await p.close().catch(() => undefined);
  if (seed) await seed.stop().catch(() => undefined);
  for (const d of [...dirs, ...(seed ? [seed.rootDir] : [])]) await removeDir(d);
});

describe('metrics and the /api answers move with pulls', () => {
  it('counts a cold pull from the seed, then a warm one from the store, in /metrics, /api/status and /api/images', async () => {
    const n = await node();
    const total = image.blobs.reduce((s, b) => s + b.length, 0);
    expect(await metric(n, 'layerd_blob_served_total', { source: 'upstream' })).toBe(0);

    for (const p of await pullImage(n)) expect([p.status, p.source]).toEqual([200, 'upstream']);
    expect(await metric(n, 'layerd_blob_served_total', { source: 'upstream' })).toBe(4);
    expect(await metric(n, 'layerd_blob_served_bytes_total', { source: 'upstream' })).toBe(total);
    await until('the fetches to be counted', async () => ((await metric(n, 'layerd_blob_fetches_total', { source: 'upstream' })) === 4 ? true : undefined));
    expect(await metric(n, 'layerd_blob_fetched_bytes_total', { source: 'upstream' })).toBe(total);
    expect(await metric(n, 'layerd_http_requests_total', { method: 'GET', route: 'blob', status: '200' })).toBe(4);
    expect(await metric(n, 'layerd_http_requests_total', { method: 'GET', route: 'manifest', status: '200' })).toBe(1);
    expect(await metric(n, 'layerd_store_bytes')).toBe(total + image.manifest.length);
    expect(await metric(n, 'layerd_store_blobs')).toBe(5);
    expect(await metric(n, 'layerd_cache_hit_ratio')).toBe(0);

    for (const p of await pullImage(n)) expect([p.status, p.source]).toEqual([200, 'local']);
    expect(await metric(n, 'layerd_blob_served_total', { source: 'local' })).toBe(4);
    expect(await metric(n, 'layerd_cache_hit_ratio')).toBe(0.5);
    expect(await metric(n, 'layerd_bytes_saved_vs_seed')).toBe(total);
    const s = await status(n);
    expect(s.stats.hitRatio).toBe(0.5);
    expect(s.stats.bytesSavedVsSeed).toBe(total);
    expect(s.store).toMatchObject({ bytes: total + image.manifest.length, blobs: 5, maxBytes: null, evictions: 0 });

    const images = (await json<ImagesAnswer>(`${n.url}/api/images`)).body.images;
    expect(images).toEqual([
      expect.objectContaining({ registry, repository: 'test/ops', tags: ['v1'], digest: digestOf(image.manifest), blobs: 4, heldBlobs: 4, size: total + image.manifest.length, heldBytes: total + image.manifest.length }),
    ]);
    const pulls = (await json<PullsAnswer>(`${n.url}/api/pulls`)).body.pulls;
    expect(pulls).toHaveLength(10);
    expect(pulls.filter((p) => p.kind === 'manifest')).toEqual([
      expect.objectContaining({ repository: 'test/ops', reference: 'v1', source: 'local', registry }),
      expect.objectContaining({ repository: 'test/ops', reference: 'v1', source: 'upstream', registry }),
    ]);
    const blobs = (await json<BlobsAnswer>(`${n.url}/api/blobs`)).body.blobs;
    for (const b of image.blobs) expect(blobs).toContainEqual(expect.objectContaining({ digest: digestOf(b), size: b.length, source: 'upstream' }));

    const health = await json<ProbeAnswer>(`${n.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');
    expect(health.body.checks.store!.ok).toBe(true);
  });

  it('POST /api/gc removes an abandoned upload area and a half-written record, and says what it removed', async () => {
    const n = await node();
    const stale = join(n.dataDir, 'uploads', '0b7e7c38-5b7e-4c8a-9a8f-1f2e3d4c5b6a');
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'data'), randomBlob(1000));
    // A record a crash left half written (writeAtomic's temp name), a few minutes old.
    const tags = join(n.dataDir, 'repositories', 'team', 'app', '_manifests', 'tags');
    await mkdir(tags, { recursive: true });
    const temp = join(tags, '.tmp-0123456789ab-v1');
    await writeFile(temp, 'sha256:');
    await utimes(temp, new Date(Date.now() - 300_000), new Date(Date.now() - 300_000));
    const res = await json<GcAnswer>(`${n.url}/api/gc`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ removedUploads: 2, removedBlobs: 0, freedBytes: 0, evicted: 0 });
    await expect(stat(stale)).rejects.toThrow();
    await expect(stat(temp)).rejects.toThrow();
  });
});

describe("libp2p's own metrics", () => {
  it('are left out of /metrics unless --libp2p-metrics is on (they cost CPU on every connection)', async () => {
    const p2p = ['--p2p-listen', '/ip4/127.0.0.1/tcp/0'];
    const metricNames = async (n: Proc) => new Set([...(await (await fetch(`${n.url}/metrics`)).text()).matchAll(/^([a-z_:][a-z0-9_:]*)/gm)].map((m) => m[1]!));
    const plain = await metricNames(await node(p2p));
    expect(plain.has('layerd_peers_connected')).toBe(true);
    expect([...plain].filter((name) => name.startsWith('libp2p_'))).toEqual([]);
    const withLibp2p = await metricNames(await node([...p2p, '--libp2p-metrics', 'true']));
    expect(withLibp2p.has('layerd_peers_connected')).toBe(true);
    expect([...withLibp2p].filter((name) => name.startsWith('libp2p_')).length).toBeGreaterThan(0);
  });
});

describe('disk quota', () => {
  it('evicts under a small quota while pulls run: no pull fails, the store ends under the high watermark, pushed content stays', async () => {
    // 6 MiB quota: eviction above 5.4 MiB, down to 3 MiB. Twelve 1 MiB blobs go through it.
    const a = await node(['--max-disk-bytes', `${6 * MB}`, '--disk-high-watermark', '0.9', '--disk-low-watermark', '0.5', '--p2p-listen', '/ip4/127.0.0.1/tcp/0']);
    const own = randomBlob(2 * MB);
    const pushed = await new RegistryClient(a.url).req('POST', `/v2/mine/own/blobs/uploads/?digest=${digestOf(own)}`, { headers: { 'content-type': 'application/octet-stream' }, body: own });
    expect(pushed.status).toBe(201);
    const high = (await status(a)).store.highWatermarkBytes!;
    expect(high).toBe(Math.floor(6 * MB * 0.9));

    for (let i = 0; i < bulk.length; i += 3) {
      const got = await Promise.all(bulk.slice(i, i + 3).map((b) => getBlob(a, 'test/bulk', digestOf(b))));
      for (const [j, g] of got.entries()) expect([g.status, g.sha]).toEqual([200, digestOf(bulk[i + j]!)]);
    }
    // Blobs just written settle for 2 s before they may go: the store comes back under the mark then.
    // Eviction runs on down to the low mark in steps, so wait for a quiet moment in which the status,
    // the metric and the disk are read between two identical status answers, and must agree.
    const { s, files } = await until('the store to be under the high watermark and at rest', async () => {
      const before = await status(a);
      const evictedMetric = await metric(a, 'layerd_evictions_total');
      const onDisk = await blobFiles(a.dataDir);
      const after = await status(a);
      if (after.store.bytes > high || JSON.stringify(before.store) !== JSON.stringify(after.store)) return undefined;
      return { s: after, files: onDisk, evictedMetric };
    }).then((r) => {
      expect(r.evictedMetric).toBe(r.s.store.evictions);
      return r;
    });
    expect(s.store.evictions).toBeGreaterThan(0);
    // The index agrees with the disk.
    expect(files.reduce((sum, f) => sum + f.size, 0)).toBe(s.store.bytes);
    expect(files.length).toBe(s.store.blobs);
    // Content pushed to this node is never evicted.
    expect(files.map((f) => f.digest)).toContain(digestOf(own));
    const back = await getBlob(a, 'mine/own', digestOf(own));
    expect([back.status, back.sha, back.source]).toEqual([200, digestOf(own), 'local']);

    // An evicted blob is neither served nor offered: a peer that asks for it gets it from the seed.
    const held = new Set(files.map((f) => f.digest));
    const gone = bulk.map((b) => digestOf(b)).find((d) => !held.has(d))!;
    const b = await node(['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', (await status(a)).multiaddrs[0]!]);
    await until('b to connect to a', async () => ((await status(b)).connectedPeers > 0 ? true : undefined));
    const uploadedBefore = (await status(a)).stats.uploadedToPeers;
    const fromB = await getBlob(b, 'test/bulk', gone);
    expect([fromB.status, fromB.sha, fromB.source]).toEqual([200, gone, 'upstream']);
    expect((await status(a)).stats.uploadedToPeers).toBe(uploadedBefore);
  });
});

describe('crashes and shutdowns', () => {
  async function slowSeedNode(args: string[] = []) {
    const proxy = await startFaultProxy(seed.url, { mode: 'slow', slowBytesPerSecond: 2 * MB });
    proxies.push(proxy);
    const dataDir = await tempDir('layerd-ops-');
    dirs.push(dataDir);
    const big = randomBlob(24 * MB);
    const digest = await pushToSeed('test/big', big);
    const n = await node(args, { dataDir, upstream: proxy.url });
    // A client starts the download; its result is not awaited (the node dies under it).
    const client = getBlob(n, 'test/big', digest).catch((err: Error) => ({ status: -1, source: undefined, sha: err.message }));
    const uploads = join(dataDir, 'uploads');
    await until('the download to have written its first MiB', async () => {
      for (const id of await readdir(uploads).catch(() => [] as string[])) {
        const st = await stat(join(uploads, id, 'data')).catch(() => undefined);
        if (st && st.size > MB) return true;
      }
      return undefined;
    });
    return { n, dataDir, big, digest, client };
  }

  it('after kill -9 in the middle of a download, a restarted node collects the partial bytes, serves no partial blob, and its index agrees with the disk', async () => {
    const { n, dataDir, big, digest } = await slowSeedNode();
    await n.stop('SIGKILL');
    expect(await readdir(join(dataDir, 'uploads'))).not.toEqual([]);

    const again = await node([], { dataDir });
    expect(await readdir(join(dataDir, 'uploads'))).toEqual([]);
    const files = await blobFiles(dataDir);
    expect(files.map((f) => f.digest)).not.toContain(digest);
    for (const f of files) expect(f.verifies, `${f.digest} hashes to its name`).toBe(true);
    const s = await status(again);
    expect([s.store.blobs, s.store.bytes]).toEqual([files.length, files.reduce((sum, f) => sum + f.size, 0)]);
    const blobs = (await json<BlobsAnswer>(`${again.url}/api/blobs`)).body.blobs;
    expect(blobs.map((b) => b.digest)).not.toContain(digest);
    const got = await getBlob(again, 'test/big', digest);
    expect([got.status, got.sha]).toEqual([200, digestOf(big)]);
  });

  it('on SIGTERM during a transfer, the node cuts it after a grace period, exits 0, and leaves only whole blobs', async () => {
    const { n, dataDir, digest, client } = await slowSeedNode();
    await n.stop('SIGTERM');
    expect(n.child.exitCode).toBe(0);
    const res = await client;
    expect(res.sha, 'the client did not get the whole blob').not.toBe(digest);
    const files = await blobFiles(dataDir);
    expect(files.map((f) => f.digest)).not.toContain(digest);
    for (const f of files) expect(f.verifies, `${f.digest} hashes to its name`).toBe(true);
    expect(n.output()).toContain('shutting down');
  });
});

describe('readiness', () => {
  it('/readyz says not ready while no bootstrap peer is connected, and ready once one is; /healthz stays ok', async () => {
    // The peer to bootstrap to: started once to learn its address, then stopped.
    const peerDir = await tempDir('layerd-ops-peer-');
    dirs.push(peerDir);
    const p2pPort = await stablePort();
    const peerArgs = ['--p2p-listen', `/ip4/127.0.0.1/tcp/${p2pPort}`];
    const first = await node(peerArgs, { dataDir: peerDir });
    const addr = (await status(first)).multiaddrs.find((a) => a.includes(`/tcp/${p2pPort}/`))!;
    await first.stop('SIGTERM');

    const n = await node(['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', addr]);
    const notReady = await json<{ status: string; checks: Record<string, { ok: boolean; detail: string }> }>(`${n.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.body.status).toBe('not-ready');
    expect(notReady.body.checks.peers).toEqual({ ok: false, detail: expect.stringContaining('no peer connected') });
    expect((await json(`${n.url}/healthz`)).status).toBe(200);

    await node(peerArgs, { dataDir: peerDir });
    const ready = await until('/readyz to turn ready', async () => {
      const r = await json<{ status: string; checks: Record<string, { ok: boolean; detail: string }> }>(`${n.url}/readyz`);
      return r.status === 200 ? r : undefined;
    });
    expect(ready.body.status).toBe('ready');
    expect(ready.body.checks.peers!.ok).toBe(true);
  });
});

