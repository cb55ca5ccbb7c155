// End-to-end: real clients (skopeo, podman, containerd's ctr) push to and pull from a real `layerd serve`
// process, and what comes back must be bit-identical to what went in. The same checks also run against CNCF
// distribution as a reference (about 10 s more; E2E_REGISTRIES=layerd limits the run to layerd): a check
// failing on both is a test or environment problem, failing only on layerd is a layerd bug.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestLayout,
  layoutRef,
  readReachableBlobs,
  reachableDigests,
  sha256,
  type TestLayout,
} from '../helpers/oci-image.js';
import { freePort, removeDir, startDistribution, startLayerd, tempDir, type RunningProcess } from '../helpers/processes.js';

const execFileP = promisify(execFile);
const TEST_TIMEOUT = 120_000;
const targets = (process.env.E2E_REGISTRIES ?? 'layerd,distribution').split(',').map((s) => s.trim()) as Array<'layerd' | 'distribution'>;

// ---------- shared fixtures: the image layout and a scratch dir, built once for the file ----------

let work: string;
let layout: TestLayout;
/** Empty registries.conf: the clients must not pick up mirrors or short names from the machine. */
let emptyRegistriesConf: string;
/** Temp dirs made outside `work`, removed with it. */
const extraDirs: string[] = [];

beforeAll(async () => {
  work = await tempDir('layerd-e2e-');
  layout = await buildTestLayout(join(work, 'layout'));
  emptyRegistriesConf = join(work, 'registries-empty.conf');
  await writeFile(emptyRegistriesConf, '');
});

afterAll(async () => {
  await containerd?.stop();
  if (work) await removeDir(work);
  for (const d of extraDirs) await removeDir(d);
});

// ---------- running the real tools ----------

/** Fails the calling test (never skips it) when a client is not installed. */
async function requireTool(cmd: string): Promise<void> {
  try {
    await execFileP('sh', ['-c', `command -v ${cmd}`]);
  } catch {
    throw new Error(`${cmd} is not installed: run scripts/install-test-tools.sh (as root) to install the e2e test clients`);
  }
}

/** Runs a tool; on failure the error carries its exit code, stderr and stdout so the cause is visible. */
async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, {
      env: { ...process.env, CONTAINERS_REGISTRIES_CONF: emptyRegistriesConf, ...env },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 90_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${String(e.code)})\n--- stderr ---\n${e.stderr ?? ''}\n--- stdout ---\n${(e.stdout ?? '').slice(-4000)}`);
  }
}

/** Both layouts hold exactly the same blobs under a tag, byte for byte, and the tag points at the same digest. */
async function expectSameImage(pushedDir: string, pulledDir: string, tag: string, pulledTag = tag): Promise<void> {
  expect((await layoutRef(pulledDir, pulledTag)).digest).toBe((await layoutRef(pushedDir, tag)).digest);
  const pushed = await readReachableBlobs(pushedDir, tag);
  const pulled = await readReachableBlobs(pulledDir, pulledTag);
  expect([...pulled.keys()].sort()).toEqual([...pushed.keys()].sort());
  for (const [digest, bytes] of pushed) expect(pulled.get(digest)!.equals(bytes), `blob ${digest} differs`).toBe(true);
}

// ---------- podman with private storage ----------

interface Podman {
  pull(ref: string): Promise<string>;
  inspect(ref: string): Promise<{ Id: string; Digest: string; RepoTags: string[]; RepoDigests: string[]; Architecture: string }>;
}

/**
 * podman as root with its own storage (vfs: no overlay or fuse needed), its own lock files, temp and
 * network config dirs, so nothing under /run/libpod, /dev/shm or /etc is touched and runs do not share images.
 */
async function privatePodman(registriesConf: string): Promise<Podman> {
  // Its own short temp dir: podman refuses a --runroot longer than 50 characters.
  const dir = await tempDir('lpm-');
  extraDirs.push(dir);
  const containersConf = join(dir, 'containers.conf');
  await writeFile(
    containersConf,
    [
      '[engine]',
      'lock_type = "file"',
      'events_logger = "none"',
      `tmp_dir = "${join(dir, 'tmp')}"`,
      `image_copy_tmp_dir = "${dir}"`,
      '[network]',
      `network_config_dir = "${join(dir, 'net')}"`,
      '',
    ].join('\n'),
  );
  const env = { CONTAINERS_CONF: containersConf, CONTAINERS_REGISTRIES_CONF: registriesConf };
  const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  return {
    pull: (ref) => run('podman', [...base, 'pull', '--quiet', ref], env),
    async inspect(ref) {
      const out = JSON.parse(await run('podman', [...base, 'image', 'inspect', ref], env)) as Array<Awaited<ReturnType<Podman['inspect']>>>;
      expect(out).toHaveLength(1);
      return out[0]!;
    },
  };
}

// ---------- a private containerd ----------

interface Containerd {
  ctr(namespace: string, ...args: string[]): Promise<string>;
  /** digest of an image record, from `ctr images ls`. */
  imageDigest(namespace: string, ref: string): Promise<string | undefined>;
  contentDigests(namespace: string): Promise<string[]>;
  stop(): Promise<void>;
}

let containerd: Containerd | undefined;

/** Starts one containerd for the whole file on first use; its root, state and socket live in a temp dir. */
async function privateContainerd(): Promise<Containerd> {
  await requireTool('containerd');
  await requireTool('ctr');
  if (containerd) return containerd;
  const dir = join(work, 'containerd');
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      // By default a namespace silently reuses content another namespace already fetched; isolated makes
      // every pull download its blobs, so the mirror pull really proves the blobs came from the mirror.
      // The opt plugin would otherwise create /opt/containerd.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      '[plugins."io.containerd.metadata.v1.bolt"]',
      '  content_sharing_policy = "isolated"',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('containerd', ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  const ctr = (namespace: string, ...args: string[]) => run('ctr', ['--address', socket, '-n', namespace, ...args]);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  // Ready when the gRPC socket answers `ctr version`, polled with a deadline.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}\n${output}`);
    try {
      await execFileP('ctr', ['--address', socket, 'version'], { timeout: 5_000 });
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`containerd not ready after 20 s: ${String(err)}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  containerd = {
    ctr,
    stop,
    async imageDigest(namespace, ref) {
      // columns: REF TYPE DIGEST SIZE PLATFORMS LABELS
      const line = (await ctr(namespace, 'images', 'ls')).split('\n').find((l) => l.split(/\s+/)[0] === ref);
      return line?.split(/\s+/)[2];
    },
    async contentDigests(namespace) {
      return (await ctr(namespace, 'content', 'ls', '-q')).split('\n').filter(Boolean).sort();
    },
  };
  return containerd;
}

// ---------- the checks, once per registry under test ----------

describe.each(targets)('real clients against %s', (target) => {
  let registry: RunningProcess;
  let host: string; // 127.0.0.1:PORT
  let dir: string;

  beforeAll(async () => {
    if (target === 'layerd') registry = await startLayerd();
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
      await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout.dir}:v1`, `docker://${host}/test/img:v1`]);
      await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--all', '--dest-tls-verify=false', `oci:${layout.dir}:multi`, `docker://${host}/test/multi:v1`]);
    })());

  afterAll(async () => {
    await registry?.stop();
    // startLayerd made a data dir, startDistribution a root dir: both are ours to remove.
    if (registry && 'dataDir' in registry) await removeDir(registry.dataDir as string);
    if (registry && 'rootDir' in registry) await removeDir(registry.rootDir as string);
    if (dir) await removeDir(dir);
  });

  it('skopeo pushes the image and the two-platform index, and pulls both back bit-identical', { timeout: TEST_TIMEOUT }, async () => {
    await pushImages();
    const out = join(dir, 'pulled');
    await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${host}/test/img:v1`, `oci:${out}:v1`]);
    await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--all', '--src-tls-verify=false', `docker://${host}/test/multi:v1`, `oci:${out}:multi`]);

    await expectSameImage(layout.dir, out, 'v1');
    await expectSameImage(layout.dir, out, 'multi');
    // 1 manifest + 1 config + 3 layers; 1 index + 2 × (manifest + config + 2 layers)
    expect(reachableDigests(layout.image)).toHaveLength(5);
    expect(reachableDigests(layout.index)).toHaveLength(9);
  });

  it('skopeo inspect and list-tags see the pushed manifests, tags and digests', { timeout: TEST_TIMEOUT }, async () => {
    await pushImages();
    const tls = '--tls-verify=false';
    const raw = Buffer.from(await run('skopeo', ['inspect', tls, '--raw', `docker://${host}/test/img:v1`]));
    expect(raw.equals(layout.image.manifest)).toBe(true);

    const img = JSON.parse(await run('skopeo', ['inspect', tls, '--no-tags', `docker://${host}/test/img:v1`])) as { Digest: string; Layers: string[]; Architecture: string };
    expect(img.Digest).toBe(layout.image.digest);
    expect(img.Layers).toEqual(layout.image.layers.map((l) => l.digest));
    expect(img.Architecture).toBe('amd64');

    const rawIndex = Buffer.from(await run('skopeo', ['inspect', tls, '--raw', `docker://${host}/test/multi:v1`]));
    expect(sha256(rawIndex)).toBe(layout.index.digest);
    expect(rawIndex.equals(layout.index.index)).toBe(true);

    // Through the index, skopeo resolves the arm64 entry and fetches its manifest and config.
    const arm = layout.index.manifests.find((m) => m.platform.architecture === 'arm64')!;
    const armInspect = JSON.parse(
      await run('skopeo', ['inspect', tls, '--no-tags', '--override-os', 'linux', '--override-arch', 'arm64', `docker://${host}/test/multi:v1`]),
    ) as { Digest: string; Layers: string[]; Architecture: string };
    expect(armInspect.Digest).toBe(layout.index.digest);
    expect(armInspect.Architecture).toBe('arm64');
    expect(armInspect.Layers).toEqual(arm.layers.map((l) => l.digest));

    // A child manifest by digest.
    const rawArm = Buffer.from(await run('skopeo', ['inspect', tls, '--raw', `docker://${host}/test/multi@${arm.digest}`]));
    expect(rawArm.equals(arm.manifest)).toBe(true);

    const tags = JSON.parse(await run('skopeo', ['list-tags', tls, `docker://${host}/test/img`])) as { Tags: string[] };
    expect(tags.Tags).toEqual(['v1']);
  });

  it('podman pulls the image and the index (amd64 picked) from the registry', { timeout: TEST_TIMEOUT }, async () => {
    await requireTool('podman');
    await pushImages();
    const conf = join(dir, 'podman-direct.conf');
    await writeFile(conf, `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
    const podman = await privatePodman(conf);

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
    const podman = await privatePodman(conf);
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
