// Real clients for e2e tests: running a tool with a readable failure, and private instances of podman
// and containerd whose storage, state and sockets live in temp dirs, so nothing on the machine is touched
// and no run can reuse content from another.
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { removeDir, tempDir } from './processes.js';

const execFileP = promisify(execFile);

/** Fails the calling test (never skips it) when a tool is not installed. */
export async function requireTool(cmd: string): Promise<void> {
  try {
    await execFileP('sh', ['-c', `command -v ${cmd}`]);
  } catch {
    throw new Error(`${cmd} is not installed: run scripts/install-test-tools.sh (as root) to install the e2e test clients`);
  }
}

/** Runs a tool; on failure the error carries its exit code, stderr and stdout so the cause is visible. */
export async function runTool(cmd: string, args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const e = err as { code?: unknown; signal?: unknown; stderr?: string; stdout?: string };
    throw new Error(
      `${cmd} ${args.join(' ')} failed (exit ${String(e.code)}${e.signal ? `, signal ${String(e.signal)}` : ''})\n` +
        `--- stderr ---\n${e.stderr ?? ''}\n--- stdout ---\n${(e.stdout ?? '').slice(-4000)}`,
    );
  }
}

/** Writes an empty registries.conf: pass it as CONTAINERS_REGISTRIES_CONF so skopeo/podman ignore the machine's. */
export async function emptyRegistriesConf(dir: string): Promise<string> {
  const file = join(dir, 'registries-empty.conf');
  await writeFile(file, '');
  return file;
}

// ---------- podman ----------

export interface PodmanImage {
  Id: string;
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
}

export interface Podman {
  /** Its private dir (storage, run root, config): remove() deletes it. */
  dir: string;
  pull(ref: string): Promise<string>;
  inspect(ref: string): Promise<PodmanImage>;
  remove(): Promise<void>;
}

/**
 * podman as root with its own storage (vfs: no overlay or fuse needed), its own lock files, temp and
 * network config dirs, so nothing under /run/libpod, /dev/shm or /etc is touched and instances share no images.
 */
export async function privatePodman(registriesConf: string): Promise<Podman> {
  await requireTool('podman');
  // Its own short temp dir: podman refuses a --runroot longer than 50 characters.
  const dir = await tempDir('lpm-');
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
    dir,
    pull: (ref) => runTool('podman', [...base, 'pull', '--quiet', ref], env),
    async inspect(ref) {
      const out = JSON.parse(await runTool('podman', [...base, 'image', 'inspect', ref], env)) as PodmanImage[];
      if (out.length !== 1) throw new Error(`podman image inspect ${ref}: ${out.length} images`);
      return out[0]!;
    },
    remove: () => removeDir(dir),
  };
}

// ---------- containerd ----------

export interface Containerd {
  ctr(namespace: string, ...args: string[]): Promise<string>;
  /** digest of an image record, from `ctr images ls`. */
  imageDigest(namespace: string, ref: string): Promise<string | undefined>;
  contentDigests(namespace: string): Promise<string[]>;
  /** SIGTERM (SIGKILL after 10 s); resolves when containerd has exited. */
  stop(): Promise<void>;
}

/**
 * Starts a containerd whose root, state, opt dir and sockets live under `dir` (created if missing), and
 * waits until `ctr version` answers. Namespaces share no content ("isolated"), so a pull in a fresh
 * namespace really downloads every blob again.
 */
export async function startContainerd(dir: string): Promise<Containerd> {
  await requireTool('containerd');
  await requireTool('ctr');
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
      // The opt plugin would otherwise create /opt/containerd.
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(dir, 'opt')}"`,
      // By default a namespace silently reuses content another namespace already fetched.
      '[plugins."io.containerd.metadata.v1.bolt"]',
      '  content_sharing_policy = "isolated"',
      '',
    ].join('\n'),
  );
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  const ctr = (namespace: string, ...args: string[]) => runTool('ctr', ['--address', socket, '-n', namespace, ...args]);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
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
  return {
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
}
