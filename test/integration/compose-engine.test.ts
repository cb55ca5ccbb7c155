// compose/: the image built and the compose network run by a real Docker engine (issue 17). Debian's
// dockerd runs in a loopback-only network namespace of the test's own, with its state in a temp dir
// (helpers/dockerd.ts; bridges on, iptables off: nothing is written outside the namespace).
//  1. No base image can be pulled here, so the test makes one offline: a minimal Debian 12 tree of this
//     machine's own files (sh, a few coreutils, their libraries) with Node 24 (the `node` dev dependency)
//     and npm, laid out as node:24-slim is (helpers/image-base.ts). compose/Dockerfile is built on it through its BASE build argument, as it is,
//     `npm ci` included: that reaches registry.npmjs.org, and nothing else, through a relay
//     (helpers/registry-relay.ts).
//  2. docker-compose 1.29 brings the network up: seed, node1..3 and the client, every healthcheck healthy.
//  3. An image pushed to the seed by the engine is pulled through every node with `layerd pull` from the
//     client container; the seed's log shows each of its blobs fetched once (the rest came peer to peer).
//  4. The engine pulls that image again through node2 as a docker.io image (registry-mirrors).
//  5. node3 recreated (a new container on the same volume) still has the image; `down -v` leaves no
//     container, volume or network on the engine.
// The timings and the image size are printed (measured here, not asserted).
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/clients.js';
import { composeOn, type ComposeRun } from '../helpers/compose-run.js';
import { DOCKER_CLI, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { importNodeBase } from '../helpers/image-base.js';
import { createNetns, type NetNamespace } from '../helpers/netns.js';
import { removeDir, repoRoot, tempDir } from '../helpers/processes.js';
import { startRegistryRelay, type RegistryRelay } from '../helpers/registry-relay.js';

const BASE_TAG = 'layerd-base:test';
const IMAGE_TAG = 'layerd:dev'; // what docker-compose.yml names
const RELAY_PORT = 3128;
/** node2's published port, in the namespace: the engine's registry mirror. */
const MIRROR = 'http://127.0.0.1:5102';
const SEED = '127.0.0.1:5000';
const TEST_USER = ['layerd', 'layerd-test-only'] as const; // compose/test-credentials
const APP = 'library/app:v1';
const LAYERD_SERVICES = ['seed', 'node1', 'node2', 'node3'];

interface PullSummary {
  digest: string;
  blobs: Array<{ digest: string; size: number; source: string }>;
  bytesBySource: { local: number; peer: number; upstream: number };
}

let ns: NetNamespace;
let dockerDir: string;
let work: string;
let dockerd: Dockerd;
let relay: RegistryRelay | undefined;
let compose: ComposeRun | undefined;
const timings: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = Date.now() - started;
  }
}

beforeAll(async () => {
  ns = await createNetns('limg');
  dockerDir = await tempDir('limg-'); // short: dockerd's socket path must be
  work = await tempDir('layerd-compose-engine-');
  dockerd = await timed('dockerd start', () => startDockerd(ns, dockerDir, { registryMirrors: [MIRROR], bridges: true }));
}, 120_000);

afterAll(async () => {
  await compose?.run(['down', '-v', '--timeout', '5'], 120_000).catch(() => undefined);
  await relay?.stop();
  await dockerd?.stop();
  await ns?.remove();
  for (const d of [dockerDir, work]) if (d) await removeDir(d);
  console.log(`compose-engine timings (ms): ${JSON.stringify(timings)}`);
}, 180_000);

/** `layerd pull` of the app image from the client container, through `node`. */
async function pullThrough(node: string): Promise<PullSummary> {
  const out = await compose!.run(['exec', '-T', 'client', 'layerd', 'pull', `seed:5000/${APP}`, '--node', `http://${node}:5000`, '--json'], 180_000);
  return JSON.parse(out) as PullSummary;
}

/** The seed's GETs of each blob digest that answered 200, from its one-line-per-request log. */
async function seedBlobGets(): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const l of await compose!.logLines('seed')) {
    const m = l.msg === 'request' && l.method === 'GET' && l.status === 200 ? /\/blobs\/(sha256:[0-9a-f]{64})/.exec(String(l.url)) : null;
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

/** Waits until node1 has logged a finished DHT provide of every digest (its debug line "provided"). */
async function providedBy(service: string, digests: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = new Set((await compose!.logLines(service)).filter((l) => l.msg === 'provided').map((l) => l.digest));
    if (digests.every((d) => done.has(d))) return;
    if (Date.now() > deadline) throw new Error(`${service} did not announce ${digests.filter((d) => !done.has(d)).join(', ')} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('compose/ on a real Docker engine', () => {
  it('builds compose/Dockerfile on an offline Node 24 base (BASE build argument), npm ci reaching only the npm registry', async () => {
    await timed('base image (assemble + import)', () => importNodeBase([DOCKER_CLI, '-H', `unix://${dockerd.socket}`], BASE_TAG));
    relay = await startRegistryRelay(ns, dockerDir, RELAY_PORT);
    const args = ['build', '--network', 'host', '--build-arg', `BASE=${BASE_TAG}`, '--build-arg', `HTTPS_PROXY=${relay.proxyUrl}`, '-f', join(repoRoot, 'compose', 'Dockerfile'), '-t', IMAGE_TAG, repoRoot];
    // runTool directly: dockerd.docker's 90 s deadline is for quick commands, a build with npm ci takes minutes.
    // BuildKit (built into this engine and client) runs the two stages' `npm ci` at once; the classic builder
    // ran them one after the other.
    const env = { DOCKER_CONFIG: join(dockerDir, 'client'), DOCKER_BUILDKIT: '1' };
    await timed('docker build', () => runTool(DOCKER_CLI, ['-H', `unix://${dockerd.socket}`, ...args], env, 1_100_000));
    expect(new Set(relay.asked())).toEqual(new Set(['registry.npmjs.org:443']));

    const [user, healthcheck] = JSON.parse(await dockerd.docker('image', 'inspect', '--format', '[{{json .Config.User}}, {{json .Config.Healthcheck.Test}}]', IMAGE_TAG)) as [string, string[]];
    expect(user).toBe('node');
    expect(healthcheck.slice(0, 2)).toEqual(['CMD', 'node']);
    expect((await dockerd.docker('run', '--rm', '--entrypoint', 'node', IMAGE_TAG, '--version')).trim()).toMatch(/^v24\./);
    expect((await dockerd.docker('run', '--rm', IMAGE_TAG, '--version')).trim()).toMatch(/\d+\.\d+\.\d+/);
    const size = async (tag: string) => Number((await dockerd.docker('image', 'inspect', '--format', '{{.Size}}', tag)).trim());
    const [image, base] = [await size(IMAGE_TAG), await size(BASE_TAG)];
    console.log(`image ${IMAGE_TAG}: ${(image / 1e6).toFixed(1)} MB, of which base ${(base / 1e6).toFixed(1)} MB and layerd's own layers ${((image - base) / 1e6).toFixed(1)} MB`);
  }, 1_200_000);

  it('docker-compose up: seed, three nodes and the client start, and every healthcheck turns healthy', async () => {
    // Debug logs on node1 only: its "provided" lines tell when node2 can find it (what p2p.test.ts waits for).
    // Healthchecks every second rather than every 5 s (same command): each of the three depends_on steps
    // (seed, node1, node2+3) waits for its first healthy answer, and so does the recreate below.
    const override = join(work, 'test-overrides.yml');
    const service = (s: string) => `  ${s}:\n    healthcheck: { interval: 1s }\n${s === 'node1' ? '    environment: { LAYERD_LOG_LEVEL: debug }\n' : ''}`;
    await writeFile(override, `services:\n${LAYERD_SERVICES.map(service).join('')}`);
    compose = await composeOn(dockerd, join(dockerDir, 'client'), [override]);
    await timed('compose up (to all healthy)', async () => {
      await compose!.run(['up', '-d', '--no-build'], 600_000);
      await compose!.waitHealthy([...LAYERD_SERVICES, 'client'], 300_000);
    });
    const states = await compose.containers();
    expect(states.map((c) => c.service).sort()).toEqual(['client', 'node1', 'node2', 'node3', 'seed']);
    for (const c of states) expect(c.health, c.service).toBe(c.service === 'client' ? '' : 'healthy');
  }, 900_000);

  let pushed: { id: string; digest: string; blobs: string[] } | undefined;

  it('an image the engine pushes to the seed pulls through every node; the seed served each blob once', async () => {
    const ctx = join(work, 'app');
    await mkdir(ctx);
    await writeFile(join(ctx, 'a'), randomBytes(700_000));
    await writeFile(join(ctx, 'b'), randomBytes(500_000));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\nCOPY b /b\n');
    await dockerd.docker('build', '-t', `${SEED}/${APP}`, ctx);
    await dockerd.docker('login', '-u', TEST_USER[0], '-p', TEST_USER[1], SEED);
    await dockerd.docker('push', `${SEED}/${APP}`);
    const id = (await dockerd.docker('image', 'inspect', '--format', '{{.Id}}', `${SEED}/${APP}`)).trim();

    const first = await timed('pull via node1', () => pullThrough('node1'));
    expect(first.blobs).toHaveLength(3); // config and two layers
    const size = first.blobs.reduce((s, b) => s + b.size, 0);
    expect(first.bytesBySource.upstream).toBe(size);
    const blobs = first.blobs.map((b) => b.digest);
    await providedBy('node1', blobs);
    for (const node of ['node2', 'node3']) {
      const pull = await timed(`pull via ${node}`, () => pullThrough(node));
      expect(pull.digest, node).toBe(first.digest);
      expect(pull.bytesBySource, node).toEqual({ local: 0, peer: size, upstream: 0 });
    }
    const gets = await seedBlobGets();
    for (const d of blobs) expect(gets.get(d), `seed GETs of ${d}`).toBe(1);
    pushed = { id, digest: first.digest, blobs };
  }, 600_000);

  it('the engine pulls it as a docker.io image through node2 (registry-mirrors), and the seed serves no blob again', async () => {
    expect(pushed).toBeDefined();
    await dockerd.docker('rmi', `${SEED}/${APP}`);
    await timed('docker pull via node2', () => dockerd.docker('pull', 'app:v1'));
    expect((await dockerd.docker('image', 'inspect', '--format', '{{.Id}}', 'app:v1')).trim()).toBe(pushed!.id);
    // What node2 was asked besides its healthchecks. The engine's requests are those without `?ns=` (the
    // earlier `layerd pull` through node2 names its registry that way): Docker 20.10 asks HEAD by tag, then
    // GET by digest, then every blob (`rmi` removed the layers): all must have come from node2.
    const asked = (await compose!.logLines('node2')).filter((l) => l.msg === 'request' && l.url !== '/healthz').map((l) => `${String(l.method)} ${String(l.url)} ${String(l.status)}`);
    const engine = new Set(asked.filter((a) => !a.includes('?ns=')));
    const expected = [`GET /v2/library/app/manifests/${pushed!.digest} 200`, ...pushed!.blobs.map((d) => `GET /v2/library/app/blobs/${d} 200`)];
    expect(expected.filter((e) => !engine.has(e)), asked.join('\n')).toEqual([]);
    const gets = await seedBlobGets();
    for (const d of pushed!.blobs) expect(gets.get(d), `seed GETs of ${d}`).toBe(1);
  }, 300_000);

  it('node3, recreated as a new container on its volume, still holds the image', async () => {
    const before = (await compose!.containers()).find((c) => c.service === 'node3')!.id;
    await timed('node3 recreate', async () => {
      await compose!.run(['up', '-d', '--no-build', '--no-deps', '--force-recreate', 'node3'], 300_000);
      await compose!.waitHealthy(['node3'], 180_000);
    });
    const after = (await compose!.containers()).find((c) => c.service === 'node3')!.id;
    expect(after).not.toBe(before);
    const pull = await pullThrough('node3');
    const size = pull.blobs.reduce((s, b) => s + b.size, 0);
    expect(pull.bytesBySource).toEqual({ local: size, peer: 0, upstream: 0 });
  }, 600_000);

  it('down -v leaves no container, volume or network behind', async () => {
    await timed('compose down -v', () => compose!.run(['down', '-v', '--timeout', '10'], 300_000));
    expect((await dockerd.docker('ps', '-aq')).trim()).toBe('');
    expect((await dockerd.docker('volume', 'ls', '-q')).trim()).toBe('');
    expect((await dockerd.docker('network', 'ls', '--format', '{{.Name}}')).split('\n').filter(Boolean).sort()).toEqual(['bridge', 'host', 'none']);
    compose = undefined;
  }, 300_000);
});
