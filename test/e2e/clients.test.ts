// End-to-end: real clients (skopeo, podman, containerd's ctr) push to and pull from a real `layerd serve`
// process, and what comes back must be bit-identical to what went in. The same checks also run against CNCF
// distribution as a reference (about 10 s more; E2E_REGISTRIES=layerd limits the run to layerd): a check
// failing on both is a test or environment problem, failing only on layerd is a layerd bug.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyRegistriesConf, privatePodman, requireTool, runTool, startContainerd, type Containerd, type Podman } from '../helpers/clients.js';
import {
  buildTestLayout,
  layoutRef,
  readReachableBlobs,
  reachableDigests,
  sha256,
  type TestLayout,
} from '../helpers/oci-image.js';
import { NodeSet } from '../helpers/nodes.js';
import { freePort, removeDir, startDistribution, tempDir, type RunningProcess } from '../helpers/processes.js';

const TEST_TIMEOUT = 120_000;
const targets = (process.env.E2E_REGISTRIES ?? 'layerd,distribution').split(',').map((s) => s.trim()) as Array<'layerd' | 'distribution'>;

// ---------- shared fixtures: the image layout and a scratch dir, built once for the file ----------

let work: string;
let layout: TestLayout;
/** Empty registries.conf: skopeo must not pick up mirrors or short names from the machine. */
let registriesConf: string;
/** One containerd for the whole file, started on first use (see privateContainerd). */
let containerd: Containerd | undefined;
/** podman instances, each with its own storage dir, removed with the rest. */
const podmans: Podman[] = [];

beforeAll(async () => {
  work = await tempDir('layerd-e2e-');
  layout = await buildTestLayout(join(work, 'layout'));
  registriesConf = await emptyRegistriesConf(work);
});

afterAll(async () => {
  await containerd?.stop();
  if (work) await removeDir(work);
  for (const p of podmans) await p.remove();
});

const skopeo = (args: string[]) => runTool('skopeo', args, { CONTAINERS_REGISTRIES_CONF: registriesConf });

/** podman with storage of its own, so no test can reuse layers another one pulled. */
async function podmanWith(registriesConfFile: string): Promise<Podman> {
  const podman = await privatePodman(registriesConfFile);
  podmans.push(podman);
  return podman;
}

/** The file's containerd (root, state and socket in `work`), started on first use. */
async function privateContainerd(): Promise<Containerd> {
  return (containerd ??= await startContainerd(join(work, 'containerd')));
}

/** Both layouts hold exactly the same blobs under a tag, byte for byte, and the tag points at the same digest. */
async function expectSameImage(pushedDir: string, pulledDir: string, tag: string, pulledTag = tag): Promise<void> {
  expect((await layoutRef(pulledDir, pulledTag)).digest).toBe((await layoutRef(pushedDir, tag)).digest);
  const pushed = await readReachableBlobs(pushedDir, tag);
  const pulled = await readReachableBlobs(pulledDir, pulledTag);
  expect([...pulled.keys()].sort()).toEqual([...pushed.keys()].sort());
  for (const [digest, bytes] of pushed) expect(pulled.get(digest)!.equals(bytes), `blob ${digest} differs`).toBe(true);
}

// ---------- the checks, once per registry under test ----------

describe.each(targets)('real clients against %s', (target) => {
  const nodes = new NodeSet('layerd-e2e-node-');
  let registry: RunningProcess;
  let host: string; // 127.0.0.1:PORT
  let dir: string;

  beforeAll(async () => {
    if (target === 'layerd') registry = await nodes.start('layerd');
    else if (target === 'distribution') registry = await startDistribution();
    else throw new Error(`unknown E2E_REGISTRIES entry ${String(target)}`);
    host = `127.0.0.1:${registry.port}`;
    dir = await tempDir(`layerd-e2e-${target}-`);
  });

  // Every test needs the images in the registry; pushing once, on first need, keeps each test runnable on
  // its own (vitest -t) and makes a missing skopeo fail every test with the same clear message.
  let pushed: Promise<void> | undefined;
  const pushImages = () =>
    (pushed ??= (async () => {
      await requireTool('skopeo');
      // --preserve-digests: skopeo must fail rather than rewrite a manifest, so any difference is the registry's.
      await skopeo(['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://${host}/test/img:v1`]);
      await skopeo(['copy', '--quiet', '--preserve-digests', '--all', '--dest-tls-verify=false', `oci:${layout.dir}:multi`, `docker://${host}/test/multi:v1`]);
    })());

  afterAll(async () => {
    await registry?.stop();
    // The node set removes the data dir it made; startDistribution made a root dir, ours to remove.
    await nodes.stopAll('SIGTERM');
    if (registry && 'rootDir' in registry) await removeDir(registry.rootDir as string);
    if (dir) await removeDir(dir);
  });

  it('skopeo pushes the image and the two-platform index, and pulls both back bit-identical', { timeout: TEST_TIMEOUT }, async () => {
    await pushImages();
    const out = join(dir, 'pulled');
    await skopeo(['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/test/img:v1`, `oci:${out}:v1`]);
    await skopeo(['copy', '--quiet', '--preserve-digests', '--all', '--src-tls-verify=false', `docker://${host}/test/multi:v1`, `oci:${out}:multi`]);

    await expectSameImage(layout.dir, out, 'v1');
    await expectSameImage(layout.dir, out, 'multi');
    // 1 manifest + 1 config + 3 layers; 1 index + 2 × (manifest + config + 2 layers)
    expect(reachableDigests(layout.image)).toHaveLength(5);
    expect(reachableDigests(layout.index)).toHaveLength(9);
  });

  it('skopeo inspect and list-tags see the pushed manifests, tags and digests', { timeout: TEST_TIMEOUT }, async () => {
    await pushImages();
    const tls = '--tls-verify=false';
    const raw = Buffer.from(await skopeo(['inspect', tls, '--raw', `docker://${host}/test/img:v1`]));
    expect(raw.equals(layout.image.manifest)).toBe(true);

    const img = JSON.parse(await skopeo(['inspect', tls, '--no-tags', `docker://${host}/test/img:v1`])) as { Digest: string; Layers: string[]; Architecture: string };
    expect(img.Digest).toBe(layout.image.digest);
    expect(img.Layers).toEqual(layout.image.layers.map((l) => l.digest));
    expect(img.Architecture).toBe('amd64');

    const rawIndex = Buffer.from(await skopeo(['inspect', tls, '--raw', `docker://${host}/test/multi:v1`]));
    expect(sha256(rawIndex)).toBe(layout.index.digest);
    expect(rawIndex.equals(layout.index.index)).toBe(true);

    // Through the index, skopeo resolves the arm64 entry and fetches its manifest and config.
    const arm = layout.index.manifests.find((m) => m.platform.architecture === 'arm64')!;
    const armInspect = JSON.parse(
      await skopeo(['inspect', tls, '--no-tags', '--override-os', 'linux', '--override-arch', 'arm64', `docker://${host}/test/multi:v1`]),
    ) as { Digest: string; Layers: string[]; Architecture: string };
    expect(armInspect.Digest).toBe(layout.index.digest);
    expect(armInspect.Architecture).toBe('arm64');
    expect(armInspect.Layers).toEqual(arm.layers.map((l) => l.digest));

    // A child manifest by digest.
    const rawArm = Buffer.from(await skopeo(['inspect', tls, '--raw', `docker://${host}/test/multi@${arm.digest}`]));
    expect(rawArm.equals(arm.manifest)).toBe(true);

    const tags = JSON.parse(await skopeo(['list-tags', tls, `docker://${host}/test/img`])) as { Tags: string[] };
    expect(tags.Tags).toEqual(['v1']);
  });

  it('podman pulls the image and the index (amd64 picked) from the registry', { timeout: TEST_TIMEOUT }, async () => {
    await requireTool('podman');
    await pushImages();
    const conf = join(dir, 'podman-direct.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
    const podman = await podmanWith(conf);

    const id = (await podman.pull(`${host}/test/img:v1`)).trim();
    const img = await podman.inspect(`${host}/test/img:v1`);
    // podman's image id is the config digest's hex; Digest is the manifest digest it pulled.
    expect(id).toBe(layout.image.config.digest.slice('sha256:'.length));
    expect(img.Id).toBe(id);
    expect(img.Digest).toBe(layout.image.digest);
    expect(img.RepoDigests).toContain(`${host}/test/img@${layout.image.digest}`);

    const amd = layout.index.manifests.find((m) => m.platform.architecture === 'amd64')!;
    await podman.pull(`${host}/test/multi:v1`);
    const multi = await podman.inspect(`${host}/test/multi:v1`);
    expect(multi.Id).toBe(amd.config.digest.slice('sha256:'.length));
    expect(multi.Architecture).toBe('amd64');
    expect(multi.RepoDigests).toEqual(expect.arrayContaining([`${host}/test/multi@${layout.index.digest}`, `${host}/test/multi@${amd.digest}`]));
  });

  it('podman pulls through the registry configured as a registries.conf mirror', { timeout: TEST_TIMEOUT }, async () => {
    await requireTool('podman');
    await pushImages();
    // The primary is a dead loopback port: the pull can only succeed through the mirror.
    const primary = `localhost:${await freePort()}`;
    const conf = join(dir, 'podman-mirror.conf');
    await writeFile(
      conf,
      ['[[registry]]', `prefix = "${primary}"`, `location = "${primary}"`, 'insecure = true', '[[registry.mirror]]', `location = "${host}"`, 'insecure = true', ''].join('\n'),
    );
    // Own storage, so no layer can be reused from the direct pull.
    const podman = await podmanWith(conf);
    const id = (await podman.pull(`${primary}/test/img:v1`)).trim();
    const img = await podman.inspect(`${primary}/test/img:v1`);
    expect(id).toBe(layout.image.config.digest.slice('sha256:'.length));
    expect(img.Digest).toBe(layout.image.digest);
    expect(img.RepoTags).toContain(`${primary}/test/img:v1`);
  });

  it('containerd (ctr) pulls the image directly over plain HTTP', { timeout: TEST_TIMEOUT }, async () => {
    const ctd = await privateContainerd();
    await pushImages();
    const ns = `${target}-direct`;
    await ctd.ctr(ns, 'images', 'pull', '--plain-http', `${host}/test/img:v1`);
    expect(await ctd.imageDigest(ns, `${host}/test/img:v1`)).toBe(layout.image.digest);
    expect(await ctd.contentDigests(ns)).toEqual(reachableDigests(layout.image));
  });

  it('containerd pulls one platform (linux/arm64) of the index, and only its blobs', { timeout: TEST_TIMEOUT }, async () => {
    const ctd = await privateContainerd();
    await pushImages();
    const ns = `${target}-arm64`;
    await ctd.ctr(ns, 'images', 'pull', '--plain-http', '--platform', 'linux/arm64', `${host}/test/multi:v1`);
    expect(await ctd.imageDigest(ns, `${host}/test/multi:v1`)).toBe(layout.index.digest);
    const arm = layout.index.manifests.find((m) => m.platform.architecture === 'arm64')!;
    // the index, the arm64 manifest, its config and layers; nothing of amd64
    expect(await ctd.contentDigests(ns)).toEqual([layout.index.digest, ...reachableDigests(arm)].sort());
  });

  it('containerd pulls through the registry as a hosts.toml mirror (requests carry ?ns=)', { timeout: TEST_TIMEOUT }, async () => {
    const ctd = await privateContainerd();
    await pushImages();
    const ns = `${target}-mirror`;
    // The upstream is a dead loopback port, so a miss at the mirror fails the pull instead of leaving the machine.
    const primary = `localhost:${await freePort()}`;
    const hostsDir = join(dir, 'containerd-hosts');
    await mkdir(join(hostsDir, primary), { recursive: true });
    await writeFile(
      join(hostsDir, primary, 'hosts.toml'),
      [`server = "http://${primary}"`, `[host."http://${host}"]`, '  capabilities = ["pull", "resolve"]', ''].join('\n'),
    );
    await ctd.ctr(ns, 'images', 'pull', '--hosts-dir', hostsDir, `${primary}/test/img:v1`);
    expect(await ctd.imageDigest(ns, `${primary}/test/img:v1`)).toBe(layout.image.digest);
    expect(await ctd.contentDigests(ns)).toEqual(reachableDigests(layout.image));
  });
});
