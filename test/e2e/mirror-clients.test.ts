// End-to-end: real clients pull through a layerd node configured as their MIRROR of a seed registry (CNCF
// distribution), each configured the way it is in production:
//   - containerd: hosts.toml names the node as a mirror host and sends `?ns=<registry>`;
//   - podman: a registries.conf [[registry.mirror]], no `?ns=` (the node's --default-registry decides);
//   - dockerd: `registry-mirrors` (docker.io only, no `?ns=`), inside a loopback-only network namespace,
//     because on a mirror miss dockerd falls back to Docker Hub.
// The seed's access log is the proof: every blob GET it served came from the node (User-Agent layerd/...),
// none from the client, and a second pull by a client with an empty cache costs the seed no blob GET.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets, parseAccessLog, type AccessLogEntry } from '../helpers/access-log.js';
import { emptyRegistriesConf, privatePodman, runTool, startContainerd } from '../helpers/clients.js';
import { startDockerd } from '../helpers/dockerd.js';
import { layerdNode, pushLayout, seedWithImage as seedWith, showLogOnFailure, useCleanups, type RunIn } from '../helpers/mirror-e2e.js';
import { createNetns, startDistributionIn } from '../helpers/netns.js';
import { type NodeSpec } from '../helpers/nodes.js';
import { buildTestLayout, reachableDigests, type TestLayout } from '../helpers/oci-image.js';
import { freePort, removeDir, tempDir } from '../helpers/processes.js';

const TEST_TIMEOUT = 90_000;
/** What layerd sends upstream; the clients send their own: containerd/1.6.20~ds1, containers/5.23.1 (podman), docker/20.10.24… */
const LAYERD_UA = /^layerd\//;

let work: string;
let layout: TestLayout;
let registriesConf: string;

beforeAll(async () => {
  work = await tempDir('layerd-mirror-e2e-');
  layout = await buildTestLayout(join(work, 'layout'));
  registriesConf = await emptyRegistriesConf(work);
});

afterAll(async () => {
  if (work) await removeDir(work);
});

const onCleanup = useCleanups();

/** Config and layers: the blobs a client GETs (it GETs the manifest from /manifests/). */
const imageBlobs = () => [layout.image.config.digest, ...layout.image.layers.map((l) => l.digest)].sort();

const show = (e: AccessLogEntry) => `${e.method} ${e.path} ${e.status} "${e.userAgent}"`;

/**
 * What the seed's access log proves since `mark` (a count of its lines): every request came from the node,
 * and the node GET each of `expected` blobs exactly once, all answered 200.
 */
function expectSeedServedNode(seedOutput: string, mark: number, expected: string[]): void {
  const since = parseAccessLog(seedOutput).slice(mark);
  expect(since.filter((e) => !LAYERD_UA.test(e.userAgent)).map(show), 'requests at the seed that did not come from layerd').toEqual([]);
  const gets = blobGets(since);
  expect(gets.map((g) => g.digest).sort(), `blob GETs at the seed:\n${gets.map(show).join('\n')}`).toEqual(expected);
  expect(gets.filter((g) => g.status !== 200).map(show)).toEqual([]);
}

/** No blob GET at the seed since `mark`: the node served everything from its own store. */
function expectNoSeedBlobGets(seedOutput: string, mark: number): void {
  const since = parseAccessLog(seedOutput).slice(mark);
  expect(since.filter((e) => !LAYERD_UA.test(e.userAgent)).map(show), 'requests at the seed that did not come from layerd').toEqual([]);
  expect(blobGets(since).map(show)).toEqual([]);
}

const accessLines = (output: string) => parseAccessLog(output).length;

/** Pushes the test image (tag v1 of the layout) to `dest` (`host/name:tag`); `runIn` runs skopeo where the seed is reachable. */
const pushImage = (dest: string, runIn: RunIn = runTool) => pushLayout(layout.dir, dest, registriesConf, runIn);
const seedWithImage = (repoTag: string) => seedWith(onCleanup, layout.dir, registriesConf, repoTag);
const layerdNodeFor = (spec: NodeSpec) => layerdNode(onCleanup, spec);

describe('real clients pull through a layerd node acting as their mirror of a seed registry', () => {
  it('containerd (hosts.toml mirror, ?ns=): the node fetches each blob from the seed once, a second pull none', { timeout: TEST_TIMEOUT }, async () => {
    const { seed, host: seedHost } = await seedWithImage('test/img:v1');
    // The registry name containerd sends as ?ns= is the image reference's host: the seed's host:port. No
    // --default-registry: the node's default (docker.io) has no upstream, so only ?ns= can route the pull.
    const node = await layerdNodeFor({ args: ['--upstream', `${seedHost}=${seed.url}`] });
    const ctd = await startContainerd(join(work, 'containerd'));
    onCleanup(() => ctd.stop());

    // `server` is a dead loopback port: if the node failed, containerd's fallback fails too, and never
    // reaches the seed itself.
    const hostsDir = join(work, 'containerd-hosts');
    await mkdir(join(hostsDir, seedHost), { recursive: true });
    await writeFile(
      join(hostsDir, seedHost, 'hosts.toml'),
      [`server = "http://localhost:${await freePort()}"`, `[host."http://127.0.0.1:${node.port}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    const ref = `${seedHost}/test/img:v1`;

    let mark = accessLines(seed.output());
    await ctd.ctr('first', 'images', 'pull', '--hosts-dir', hostsDir, ref);
    expect(await ctd.imageDigest('first', ref)).toBe(layout.image.digest);
    expect(await ctd.contentDigests('first')).toEqual(reachableDigests(layout.image));
    expectSeedServedNode(seed.output(), mark, imageBlobs());

    // Namespaces share no content (isolated), so this pull downloads every blob again: from the node's store.
    mark = accessLines(seed.output());
    await ctd.ctr('second', 'images', 'pull', '--hosts-dir', hostsDir, ref);
    expect(await ctd.imageDigest('second', ref)).toBe(layout.image.digest);
    expect(await ctd.contentDigests('second')).toEqual(reachableDigests(layout.image));
    expectNoSeedBlobGets(seed.output(), mark);
  });

  it('podman (registries.conf mirror, no ?ns=): the node fetches each blob from the seed once, a second pull none', { timeout: TEST_TIMEOUT }, async () => {
    const { seed, host: seedHost } = await seedWithImage('test/img:v1');
    // podman names no registry to the mirror, so the node's default registry must be the seed.
    const node = await layerdNodeFor({ args: ['--default-registry', seedHost, '--upstream', `${seedHost}=${seed.url}`] });
    const conf = join(work, 'podman-mirror.conf');
    await writeFile(
      conf,
      ['[[registry]]', `prefix = "${seedHost}"`, `location = "${seedHost}"`, 'insecure = true', '[[registry.mirror]]', `location = "127.0.0.1:${node.port}"`, 'insecure = true', ''].join('\n'),
    );
    const ref = `${seedHost}/test/img:v1`;

    // The primary is the live seed: podman would fall back to it silently if the mirror failed, which
    // the seed's access log would show (requests with podman's User-Agent).
    let mark = accessLines(seed.output());
    const first = await privatePodman(conf);
    onCleanup(() => first.remove());
    const id = (await first.pull(ref)).trim();
    // podman's image id is the config digest's hex; Digest is the manifest digest it pulled.
    expect(id).toBe(layout.image.config.digest.slice('sha256:'.length));
    const img = await first.inspect(ref);
    expect(img.Digest).toBe(layout.image.digest);
    expect(img.RepoTags).toContain(ref);
    expectSeedServedNode(seed.output(), mark, imageBlobs());

    // Fresh storage: every blob is downloaded again, from the node's store.
    mark = accessLines(seed.output());
    const second = await privatePodman(conf);
    onCleanup(() => second.remove());
    expect((await second.pull(ref)).trim()).toBe(id);
    expect((await second.inspect(ref)).Digest).toBe(layout.image.digest);
    expectNoSeedBlobGets(seed.output(), mark);
  });

  it('dockerd (registry-mirrors, docker.io): the node fetches each blob from the seed once, a pull after rmi none', { timeout: TEST_TIMEOUT }, async () => {
    // Everything dockerd can reach lives in this namespace's loopback, so its Docker Hub fallback has
    // nowhere to go. Ports are fixed: the namespace holds nothing else.
    const ns = await createNetns('lmc');
    onCleanup(() => ns.remove());
    const seed = await startDistributionIn(ns, 5000);
    onCleanup(() => removeDir(seed.rootDir));
    onCleanup(() => seed.stop());
    showLogOnFailure('seed (docker-registry)', seed.output);
    await pushImage('127.0.0.1:5000/library/foo:v1', ns.run);
    // The seed stands in for Docker Hub; the default registry is docker.io (layerd's default).
    const node = await layerdNodeFor({ netns: ns, port: 5100, args: ['--upstream', `docker.io=${seed.url}`] });
    const dockerDir = await tempDir('ldk-');
    onCleanup(() => removeDir(dockerDir));
    const dockerd = await startDockerd(ns, dockerDir, { registryMirrors: [node.url] });
    onCleanup(() => dockerd.stop());
    showLogOnFailure(`dockerd (storage driver ${dockerd.storageDriver})`, dockerd.output);

    const pullAndInspect = async () => {
      const out = await dockerd.docker('pull', 'foo:v1');
      expect(out).toContain(`Digest: ${layout.image.digest}`);
      const [img] = JSON.parse(await dockerd.docker('image', 'inspect', 'foo:v1')) as Array<{ Id: string; RepoDigests: string[]; RepoTags: string[] }>;
      // dockerd's image id is the config digest.
      expect(img!.Id).toBe(layout.image.config.digest);
      expect(img!.RepoDigests).toEqual([`foo@${layout.image.digest}`]);
      expect(img!.RepoTags).toEqual(['foo:v1']);
    };

    let mark = accessLines(seed.output());
    await pullAndInspect();
    expectSeedServedNode(seed.output(), mark, imageBlobs());

    // rmi deletes the layers (no container uses them), so the next pull downloads every blob again.
    await dockerd.docker('rmi', 'foo:v1');
    expect((await dockerd.docker('image', 'ls', '-q')).trim()).toBe('');
    mark = accessLines(seed.output());
    await pullAndInspect();
    expectNoSeedBlobGets(seed.output(), mark);
  });
});
