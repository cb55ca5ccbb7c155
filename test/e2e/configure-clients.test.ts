// End-to-end: `layerd configure` points the real runtimes at a node, and `--undo` takes them off it.
// Each runtime's config lives in a temp dir (configure's path flags point there): after configure, a pull
// by the runtime shows up in the node's request log (the manifest and every blob), and the seed saw only
// the node; after --undo the file is byte-identical to what it was, and a pull never reaches the node.
//   - containerd: `ctr --hosts-dir` the configured certs.d; after undo it pulls from the seed itself;
//   - podman: CONTAINERS_REGISTRIES_CONF, a registries.conf that already had the seed's [[registry]];
//   - dockerd: its daemon.json, reloaded with SIGHUP as configure says, in a loopback-only namespace
//     (without a mirror it would go to Docker Hub: in the namespace, after undo, that pull fails).
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAccessLog } from '../helpers/access-log.js';
import { emptyRegistriesConf, privatePodman, requireTool, startContainerd } from '../helpers/clients.js';
import { startDockerd } from '../helpers/dockerd.js';
import { layerdNode, nodeRequests, pushLayout, seedWithImage, showLogOnFailure, useCleanups } from '../helpers/mirror-e2e.js';
import { createNetns, startDistributionIn } from '../helpers/netns.js';
import { buildTestLayout, type TestLayout } from '../helpers/oci-image.js';
import { removeDir, runCli, tempDir, type CliRun } from '../helpers/processes.js';

const TEST_TIMEOUT = 150_000;
const LAYERD_UA = /^layerd\//;

let work: string;
let layout: TestLayout;
let registriesConf: string;
const onCleanup = useCleanups();

beforeAll(async () => {
  work = await tempDir('layerd-configure-e2e-');
  layout = await buildTestLayout(join(work, 'layout'));
  registriesConf = await emptyRegistriesConf(work);
});

afterAll(async () => {
  if (work) await removeDir(work);
});

async function configure(...args: string[]): Promise<CliRun> {
  const res = await runCli(['configure', ...args]);
  if (res.status !== 0) throw new Error(`layerd configure ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res;
}

/** Config and layers: every blob a client GETs. */
const imageBlobs = () => [layout.image.config.digest, ...layout.image.layers.map((l) => l.digest)].sort();

/** The node's log since `mark` shows a pull of `name`: its manifest answered, and every blob GET once, all 200. */
function expectPulledThroughNode(node: { output(): string }, mark: number, name: string): void {
  const since = nodeRequests(node).slice(mark);
  const shown = since.map((r) => `${r.method} ${r.url} ${r.status}`).join('\n');
  expect(since.some((r) => r.url.startsWith(`/v2/${name}/manifests/`) && r.status === 200), `a manifest request for ${name}:\n${shown}`).toBe(true);
  const blobs = since.filter((r) => r.method === 'GET' && r.url.startsWith(`/v2/${name}/blobs/`));
  expect(blobs.map((r) => /blobs\/(sha256:[0-9a-f]+)/.exec(r.url)![1]).sort(), shown).toEqual(imageBlobs());
  expect(blobs.filter((r) => r.status !== 200), shown).toEqual([]);
}

function expectNoNodeRequests(node: { output(): string }, mark: number): void {
  expect(nodeRequests(node).slice(mark).map((r) => `${r.method} ${r.url} ${r.status}`)).toEqual([]);
}

/** User-Agents of the requests the seed got since `mark`. */
const seedAgents = (seed: { output(): string }, mark: number) => parseAccessLog(seed.output()).slice(mark).map((e) => e.userAgent);

describe('layerd configure, with the real runtimes', () => {
  it('containerd: ctr pulls through the node after configure, and straight from the registry after --undo', { timeout: TEST_TIMEOUT }, async () => {
    const { seed, host } = await seedWithImage(onCleanup, layout.dir, registriesConf, 'test/img:v1');
    const node = await layerdNode(onCleanup, { args: ['--upstream', `${host}=${seed.url}`] }, 'layerd-configure-e2e-');
    const ctdDir = join(work, 'containerd');
    const ctd = await startContainerd(ctdDir);
    onCleanup(() => ctd.stop());
    const hostsDir = join(work, 'certs.d');
    const flags = ['containerd', '--hosts-dir', hostsDir, '--containerd-config', join(ctdDir, 'config.toml'), '--registry', host, '--node', node.url];

    const done = await configure(...flags);
    // The test's containerd runs without CRI and no config_path: configure says so.
    expect(done.stdout).toMatch(/sets no config_path/);
    const ref = `${host}/test/img:v1`;
    let mark = nodeRequests(node).length;
    let seedMark = parseAccessLog(seed.output()).length;
    await ctd.ctr('through', 'images', 'pull', '--hosts-dir', hostsDir, ref);
    expect(await ctd.imageDigest('through', ref)).toBe(layout.image.digest);
    expectPulledThroughNode(node, mark, 'test/img');
    // containerd names the registry (?ns=), which is how the node knew which seed to ask.
    expect(nodeRequests(node).slice(mark).map((r) => new URL(r.url, 'http://x').searchParams.get('ns'))).toEqual(nodeRequests(node).slice(mark).map(() => host));
    expect(seedAgents(seed, seedMark).filter((ua) => !LAYERD_UA.test(ua))).toEqual([]);

    await configure(...flags, '--undo');
    expect(await readdir(hostsDir)).toEqual([]);
    mark = nodeRequests(node).length;
    seedMark = parseAccessLog(seed.output()).length;
    // No hosts.toml now: ctr goes to the registry itself (plain HTTP, as the seed speaks).
    await ctd.ctr('direct', 'images', 'pull', '--plain-http', '--hosts-dir', hostsDir, ref);
    expect(await ctd.imageDigest('direct', ref)).toBe(layout.image.digest);
    expectNoNodeRequests(node, mark);
    expect(seedAgents(seed, seedMark).some((ua) => ua.startsWith('containerd/'))).toBe(true);
  });

  it('podman: pulls through the node after configure, and straight from the registry after --undo', { timeout: TEST_TIMEOUT }, async () => {
    const { seed, host } = await seedWithImage(onCleanup, layout.dir, registriesConf, 'test/img:v1');
    // podman names no registry to its mirror: the node's default registry is the seed.
    const node = await layerdNode(onCleanup, { mirror: { registry: host, url: seed.url } }, 'layerd-configure-e2e-');
    // The host's own registries.conf, with a [[registry]] for the seed already: configure adds its mirror in there.
    const conf = join(work, 'registries.conf');
    const original = `# this host's registries\nunqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "${host}"\ninsecure = true\n`;
    await writeFile(conf, original);
    const flags = ['podman', '--registries-conf', conf, '--registry', host, '--node', node.url];

    await configure(...flags);
    const ref = `${host}/test/img:v1`;
    let mark = nodeRequests(node).length;
    let seedMark = parseAccessLog(seed.output()).length;
    const through = await privatePodman(conf);
    onCleanup(() => through.remove());
    expect((await through.pull(ref)).trim()).toBe(layout.image.config.digest.slice('sha256:'.length));
    expectPulledThroughNode(node, mark, 'test/img');
    // podman falls back to the registry silently if the mirror fails: the seed saw only the node.
    expect(seedAgents(seed, seedMark).filter((ua) => !LAYERD_UA.test(ua))).toEqual([]);

    await configure(...flags, '--undo');
    expect(await readFile(conf, 'utf8')).toBe(original);
    mark = nodeRequests(node).length;
    seedMark = parseAccessLog(seed.output()).length;
    const direct = await privatePodman(conf);
    onCleanup(() => direct.remove());
    await direct.pull(ref);
    expect((await direct.inspect(ref)).Digest).toBe(layout.image.digest);
    expectNoNodeRequests(node, mark);
    expect(seedAgents(seed, seedMark).some((ua) => !LAYERD_UA.test(ua))).toBe(true);
  });

  it('dockerd: pulls through the node after configure and a reload, and not after --undo', { timeout: TEST_TIMEOUT }, async () => {
    await requireTool('dockerd');
    // Everything dockerd can reach lives in this namespace's loopback. Ports are fixed: it holds nothing else.
    const ns = await createNetns('lcf');
    onCleanup(() => ns.remove());
    const seed = await startDistributionIn(ns, 5000);
    onCleanup(() => removeDir(seed.rootDir));
    onCleanup(() => seed.stop());
    showLogOnFailure('seed (docker-registry)', seed.output);
    await pushLayout(layout.dir, '127.0.0.1:5000/library/foo:v1', registriesConf, ns.run);
    // The seed stands in for Docker Hub; the node's default registry is docker.io (its default).
    const node = await layerdNode(onCleanup, { netns: ns, port: 5100, args: ['--upstream', `docker.io=${seed.url}`] }, 'layerd-configure-e2e-');
    const dockerDir = await tempDir('lcd-');
    onCleanup(() => removeDir(dockerDir));
    const dockerd = await startDockerd(ns, dockerDir);
    onCleanup(() => dockerd.stop());
    showLogOnFailure(`dockerd (storage driver ${dockerd.storageDriver})`, dockerd.output);
    const original = await readFile(dockerd.config, 'utf8');
    const flags = ['docker', '--daemon-json', dockerd.config, '--node', node.url];

    const done = await configure(...flags);
    expect(done.stdout).toMatch(/SIGHUP/);
    // Every setting the test's dockerd needs is still there.
    expect(JSON.parse(await readFile(dockerd.config, 'utf8'))).toEqual({ ...JSON.parse(original), 'registry-mirrors': [node.url] });
    await dockerd.reload([node.url]);
    let mark = nodeRequests(node).length;
    const seedMark = parseAccessLog(seed.output()).length;
    expect(await dockerd.docker('pull', 'foo:v1')).toContain(`Digest: ${layout.image.digest}`);
    expectPulledThroughNode(node, mark, 'library/foo');
    expect(seedAgents(seed, seedMark).filter((ua) => !LAYERD_UA.test(ua))).toEqual([]);

    const undone = await configure(...flags, '--undo');
    expect(await readFile(dockerd.config, 'utf8')).toBe(original);
    // A reload would keep the mirror: dockerd ignores a "registry-mirrors" that is gone. configure says so.
    expect(undone.stdout).toMatch(/restart/);
    const again = await dockerd.restart();
    onCleanup(() => again.stop());
    expect((await again.docker('info', '--format', '{{json .RegistryConfig.Mirrors}}')).trim()).toMatch(/^(null|\[\])$/);
    await again.docker('rmi', 'foo:v1');
    mark = nodeRequests(node).length;
    // No mirror: dockerd asks Docker Hub, which this namespace cannot reach.
    await expect(again.docker('pull', 'foo:v1')).rejects.toThrow(/failed/);
    expectNoNodeRequests(node, mark);
  });
});
