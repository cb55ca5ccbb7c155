// The operator commands (status, pull, ls, gc) as users run them: the built CLI as a child process
// against a real `layerd serve` node that mirrors a real docker-registry seed. The seed's access log is
// the ground truth for what the node fetched.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets, logSettled } from '../helpers/access-log.js';
import { NodeSet, type TestNode as Node } from '../helpers/nodes.js';
import { freePort, removeDir, repoRoot, runCli as cli, startDistribution, type CliRun as Run } from '../helpers/processes.js';
import { descriptor, digestOf, jsonBytes, MT, randomBlob, RegistryClient } from '../helpers/registry-client.js';

type Seed = Awaited<ReturnType<typeof startDistribution>>;

interface PullJson {
  image: string;
  digest: string;
  blobs: Array<{ digest: string; size: number; source: string }>;
  bytesBySource: { local: number; peer: number; upstream: number };
  seconds: number;
}

const nodes = new NodeSet('layerd-cli-ops-');
const VERSION = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const REPO = 'test/img';
const INDEX_REPO = 'test/multi';

let seed: Seed;
let node: Node;
/** The seed's name as clients write it (a host:port, so an image reference names it). */
let registry: string;
/** The image test/img:v1 at the seed: manifest digest and its blobs (config, 2 layers) with sizes. */
let image: { digest: string; blobs: Map<string, number> };
/** The 2-platform index test/multi:v1: its digest and each platform's blobs. */
let multi: { digest: string; platforms: Record<'linux/amd64' | 'linux/arm64', Map<string, number>> };

/** A run that must succeed; its output is in the failure message otherwise. */
async function ok(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await cli(args, env);
  expect(r.status, `layerd ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r;
}

/**
 * A failed run: exit code `code` and exactly one line of error on stderr, no stack trace. With
 * `progress`, the lines a pull prints for blobs that did finish may come before it.
 */
async function fails(args: string[], code: number, opts: { progress?: boolean } = {}): Promise<string> {
  const r = await cli(args);
  expect(r.status, `layerd ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(code);
  let lines = r.stderr.trimEnd().split('\n');
  if (opts.progress) lines = lines.filter((l) => !/^sha256:[0-9a-f]{64}  .* from \w+$/.test(l));
  expect(lines, `stderr of layerd ${args.join(' ')}`).toHaveLength(1);
  expect(lines[0]).toMatch(/^layerd: /);
  expect(r.stdout).toBe('');
  return lines[0]!;
}

const nodeArgs = () => ['--node', node.url];

/** Pushes a blob to the seed: an empty POST, then one PUT (distribution may close on a body sent with the POST). */
function pushToSeed(repo: string, data: Buffer): Promise<string> {
  return new RegistryClient(seed.url).putBlob(repo, data);
}

/** Pushes config + layers and an OCI manifest for them under `reference`; returns the manifest and blob sizes. */
async function pushImage(repo: string, reference: string, layerSizes: number[], platform = { os: 'linux', architecture: 'amd64' }) {
  const config = jsonBytes({ ...platform, rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
  const layers = layerSizes.map((n) => randomBlob(n));
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptor(MT.ociConfig, config), layers: layers.map((l) => descriptor(MT.ociLayer, l)) });
  const blobs = new Map<string, number>();
  for (const b of [config, ...layers]) blobs.set(await pushToSeed(repo, b), b.length);
  const digest = await new RegistryClient(seed.url).pushManifest(repo, reference, manifest, MT.ociManifest);
  return { manifest, digest, blobs };
}

function seedSettled(): Promise<void> {
  return logSettled(seed);
}

function seedGets(digest: string): number {
  return blobGets(seed.output()).filter((g) => g.digest === digest).length;
}

const total = (blobs: Map<string, number>) => [...blobs.values()].reduce((a, b) => a + b, 0);

beforeAll(async () => {
  seed = await startDistribution();
  registry = `127.0.0.1:${seed.port}`;
  image = await pushImage(REPO, 'v1', [300_000, 1_500_000]);
  const amd = await pushImage(INDEX_REPO, 'amd64', [200_000], { os: 'linux', architecture: 'amd64' });
  const arm = await pushImage(INDEX_REPO, 'arm64', [250_000], { os: 'linux', architecture: 'arm64' });
  const index = jsonBytes({
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [
      descriptor(MT.ociManifest, amd.manifest, { platform: { os: 'linux', architecture: 'amd64' } }),
      descriptor(MT.ociManifest, arm.manifest, { platform: { os: 'linux', architecture: 'arm64' } }),
    ],
  });
  multi = { digest: await new RegistryClient(seed.url).pushManifest(INDEX_REPO, 'v1', index, MT.ociIndex), platforms: { 'linux/amd64': amd.blobs, 'linux/arm64': arm.blobs } };
  node = await nodes.start('node', { mirror: { registry, url: seed.url }, logLevel: 'warn' });
});

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  await seed?.stop().catch(() => undefined);
  if (seed) await removeDir(seed.rootDir);
});

describe('layerd status, pull, ls, gc', () => {
  it.each(['status', 'pull', 'ls', 'gc'])('%s --help exits 0 and names --node and --json', async (command) => {
    const r = await ok([command, '--help']);
    expect(r.stdout).toContain(`layerd ${command}`);
    expect(r.stdout).toContain('--node');
    expect(r.stdout).toContain('--json');
  });

  it('pulls an image from the seed through the node, then from the node alone', async () => {
    const first = JSON.parse((await ok(['pull', `${registry}/${REPO}:v1`, ...nodeArgs(), '--json'])).stdout) as PullJson;
    expect(first.image).toBe(`${registry}/${REPO}:v1`);
    expect(first.digest).toBe(image.digest);
    expect(new Map(first.blobs.map((b) => [b.digest, b.size]))).toEqual(image.blobs);
    expect(first.blobs).toHaveLength(image.blobs.size);
    expect(first.bytesBySource).toEqual({ local: 0, peer: 0, upstream: total(image.blobs) });
    expect(first.blobs.every((b) => b.source === 'upstream')).toBe(true);
    expect(typeof first.seconds).toBe('number');

    const second = JSON.parse((await ok(['pull', `${registry}/${REPO}:v1`, ...nodeArgs(), '--json'])).stdout) as PullJson;
    expect(second.digest).toBe(image.digest);
    expect(second.bytesBySource).toEqual({ local: total(image.blobs), peer: 0, upstream: 0 });

    // The node went to the seed once per blob, over both pulls.
    await seedSettled();
    for (const d of image.blobs.keys()) expect(seedGets(d), `seed GETs of ${d}`).toBe(1);
  });

  it('prints one line per finished blob and a summary line for humans; LAYERD_NODE names the node', async () => {
    const r = await ok(['pull', `${registry}/${REPO}:v1`], { LAYERD_NODE: node.url });
    expect(r.stdout.trim()).toMatch(new RegExp(`^pulled ${registry}/${REPO}:v1 ${image.digest}: 3 blobs, [\\d.]+ MiB \\(local [\\d.]+ MiB, peer 0 B, upstream 0 B\\) in [\\d.]+ s$`));
    // stderr is not a terminal here: plain lines, one per blob, no progress bars.
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(image.blobs.size);
    for (const d of image.blobs.keys()) expect(lines.filter((l) => l.startsWith(`${d}  `) && l.endsWith('from local'))).toHaveLength(1);
    expect(r.stderr).not.toContain('\x1b[');
  });

  it('pulls every platform of an index, or only the one --platform names', async () => {
    const all = JSON.parse((await ok(['pull', `${registry}/${INDEX_REPO}:v1`, ...nodeArgs(), '--json'])).stdout) as PullJson;
    expect(all.digest).toBe(multi.digest);
    const both = new Map([...multi.platforms['linux/amd64'], ...multi.platforms['linux/arm64']]);
    expect(new Map(all.blobs.map((b) => [b.digest, b.size]))).toEqual(both);
    expect(all.bytesBySource.upstream).toBe(total(both));

    const arm = JSON.parse((await ok(['pull', `${registry}/${INDEX_REPO}@${multi.digest}`, '--platform', 'linux/arm64', ...nodeArgs(), '--json'])).stdout) as PullJson;
    expect(arm.image).toBe(`${registry}/${INDEX_REPO}@${multi.digest}`);
    expect(new Map(arm.blobs.map((b) => [b.digest, b.size]))).toEqual(multi.platforms['linux/arm64']);
    expect(arm.bytesBySource.local).toBe(total(multi.platforms['linux/arm64']));

    const line = await fails(['pull', `${registry}/${INDEX_REPO}:v1`, '--platform', 'windows/amd64', ...nodeArgs()], 1);
    expect(line).toContain('linux/amd64, linux/arm64');
  });

  it.each([
    [['pull', 'Not A Reference!'], 'invalid image reference'],
    [['pull', 'test/img@sha256:1234'], 'invalid image reference'],
    [['pull'], 'missing IMAGE'],
    [['pull', 'test/img:v1', '--platform', 'linux'], '--platform'],
    [['status', '--bogus'], 'bogus'],
    [['ls', 'extra'], 'unexpected argument'],
    [['gc', '--node', 'ftp://example'], '--node'],
  ])('exits 2 with one line for bad usage: %j', async (args, mention) => {
    expect(await fails([...args, ...(args.includes('--node') ? [] : nodeArgs())], 2)).toContain(mention);
  });

  it('exits 1 with one line when the node cannot be reached', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [['status'], ['pull', `${registry}/${REPO}:v1`], ['ls'], ['gc']]) {
      expect(await fails([...args, '--node', url], 1)).toMatch(new RegExp(`^layerd: cannot reach node at ${url}: .*ECONNREFUSED`));
    }
  });

  it("exits 1 with the node's OCI error code and message when the node answers an error", async () => {
    const line = await fails(['pull', `${registry}/${REPO}:no-such-tag`, ...nodeArgs()], 1);
    expect(line).toMatch(/MANIFEST_UNKNOWN/);
  });

  it('status --json is the node\'s status document; status shows it in words', async () => {
    const doc = JSON.parse((await ok(['status', ...nodeArgs(), '--json'])).stdout) as { url: string; version: string; upstreams: string[] };
    expect(doc.url).toBe(node.url);
    expect(doc.version).toBe(VERSION);
    expect(doc.upstreams).toContain(registry);
    const text = (await ok(['status', ...nodeArgs()])).stdout;
    expect(text).toContain(node.url);
    expect(text).toContain(`layerd ${VERSION}`);
    expect(text).toMatch(/peer id\s+none \(peer-to-peer off\)/);
    expect(text).toContain(registry);
  });

  it('ls lists the pulled repository and its tag', async () => {
    await ok(['pull', `${registry}/${REPO}:v1`, ...nodeArgs(), '--json']);
    const text = (await ok(['ls', ...nodeArgs()])).stdout;
    const header = text.split('\n')[0]!;
    expect(header).toMatch(/^REGISTRY\/REPOSITORY\s+TAGS\s+DIGEST\s+SIZE\s+HELD$/);
    const row = text.split('\n').find((l) => l.startsWith(`${registry}/${REPO} `));
    expect(row, text).toBeDefined();
    expect(row).toMatch(new RegExp(`\\sv1\\s+${image.digest.slice(0, 'sha256:'.length + 12)}\\s+[\\d.]+ MiB\\s+100%$`));
    const doc = JSON.parse((await ok(['ls', ...nodeArgs(), '--json'])).stdout) as { images: Array<{ registry: string; repository: string; tags: string[]; digest: string }> };
    expect(doc.images).toContainEqual(expect.objectContaining({ registry, repository: REPO, tags: ['v1'], digest: image.digest }));
  });

  it('gc --json returns what it removed and freed; gc says it in words', async () => {
    const doc = JSON.parse((await ok(['gc', ...nodeArgs(), '--json'])).stdout) as Record<string, unknown>;
    for (const key of ['removedUploads', 'removedBlobs', 'freedBytes', 'evicted']) expect(typeof doc[key], `${key} in ${JSON.stringify(doc)}`).toBe('number');
    expect((await ok(['gc', ...nodeArgs()])).stdout).toMatch(/^gc: removed \d+ blobs and \d+ unfinished uploads, evicted \d+, freed [\d.]+ [KMGT]?i?B\n$/);
  });
});

describe('layerd pull against a node that serves a corrupt blob', () => {
  let server: Server;
  let url: string;
  const requests: Array<{ url: string; accept: string | undefined }> = [];
  const good = randomBlob(10_000);
  const bad = randomBlob(20_000);
  const badDigest = digestOf(randomBlob(20_000)); // what the manifest promises, not what is sent
  const manifest = jsonBytes({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: descriptor(MT.ociConfig, good),
    layers: [{ mediaType: MT.ociLayer, digest: badDigest, size: bad.length }],
  });

  beforeAll(async () => {
    // A stand-in node: the manifest, a right config, and a layer whose bytes are not its digest.
    server = createServer((req, res) => {
      requests.push({ url: req.url!, accept: req.headers.accept });
      const path = req.url!.split('?')[0]!;
      if (path.endsWith('/manifests/v1')) return res.writeHead(200, { 'content-type': MT.ociManifest, 'x-layerd-source': 'local' }).end(manifest);
      if (path.endsWith(`/blobs/${digestOf(good)}`)) return res.writeHead(200, { 'x-layerd-source': 'local' }).end(good);
      if (path.endsWith(`/blobs/${badDigest}`)) return res.writeHead(200, { 'x-layerd-source': 'peer' }).end(bad);
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  it('exits 1 naming the blob whose bytes do not match, and asks as containerd does', async () => {
    const line = await fails(['pull', 'seed.example:5000/team/app:v1', '--node', url], 1, { progress: true });
    expect(line).toContain(badDigest);
    expect(line).toContain('digest mismatch');
    expect(line).not.toContain(digestOf(good));
    expect(requests.length).toBeGreaterThanOrEqual(3);
    for (const r of requests) expect(r.url, 'every /v2 request names the registry').toMatch(/^\/v2\/team\/app\/(manifests|blobs)\/[^?]+\?ns=seed\.example%3A5000$/);
    const accept = requests.find((r) => r.url.includes('/manifests/'))!.accept ?? '';
    for (const mt of [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList]) expect(accept).toContain(mt);
  });
});
