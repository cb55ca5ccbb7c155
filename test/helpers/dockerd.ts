// A private dockerd for e2e tests, inside a network namespace the test made (see netns.ts): its data root,
// exec root, pid file and socket live in a temp dir; iptables, forwarding and the bridge are off, so it
// changes nothing on the machine. The client is Debian's /usr/bin/docker, talking to that socket only.
// With `bridges: true` (compose networks need the bridge driver) dockerd makes docker0 and one bridge per
// network, inside that namespace; iptables, forwarding and masquerading stay off. That is enough here:
// containers of one network talk over their bridge, names resolve through docker's embedded DNS (its
// rules live in each container's own namespace), and a published port is docker-proxy listening in the
// namespace. Nothing reaches beyond it, and no rule is written anywhere (checked: iptables -S unchanged).
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool, runTool } from './clients.js';
import { waitForExit, type NetNamespace } from './netns.js';
import { until } from './processes.js';

/** The docker.io package's client: another `docker` may come first on PATH (/usr/local/bin). */
export const DOCKER_CLI = '/usr/bin/docker';

export interface Dockerd {
  pid: number;
  socket: string;
  /** overlay2, or vfs where overlay2 cannot work. */
  storageDriver: string;
  /** Its daemon.json. */
  config: string;
  docker(...args: string[]): Promise<string>;
  /** Sends SIGHUP (what `systemctl reload docker` does) and waits until dockerd reports these registry mirrors. */
  reload(mirrors: string[]): Promise<void>;
  /** Stops it and starts a new dockerd on the same dir, storage driver and daemon.json (as it is now). */
  restart(): Promise<Dockerd>;
  output(): string;
  /** SIGTERM, waits for the PID to exit (SIGKILL after 20 s), then unmounts whatever it left under its dir. */
  stop(): Promise<void>;
}

/** Mount points at or under dir, deepest first (/proc/self/mountinfo field 5, octal escapes decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or under dir (lazily if busy), so the dir can be removed. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    await runTool('umount', [point]).catch(() => runTool('umount', ['-l', point]));
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted under ${dir}: ${left.join(', ')}`);
}

export interface DockerdOptions {
  registryMirrors?: string[];
  /** Bridge networks (docker0, compose's networks) inside the namespace, with no iptables rules or forwarding. */
  bridges?: boolean;
}

/** daemon.json's network settings: no bridge at all, or bridges without iptables rules or forwarding. */
function networkSettings(bridges: boolean): Record<string, unknown> {
  const off = { iptables: false, ip6tables: false, 'ip-forward': false, 'ip-masq': false };
  return bridges ? off : { ...off, bridge: 'none' };
}

async function startWithDriver(ns: NetNamespace, dir: string, driver: string, opts: DockerdOptions, keepConfig = false): Promise<Dockerd> {
  const socket = join(dir, 'docker.sock');
  const config = join(dir, 'daemon.json');
  if (!keepConfig) await writeFile(
    config,
    JSON.stringify(
      {
        'data-root': join(dir, 'root'),
        'exec-root': join(dir, 'exec'),
        pidfile: join(dir, 'docker.pid'),
        hosts: [`unix://${socket}`],
        'storage-driver': driver,
        ...networkSettings(opts.bridges ?? false),
        ...(opts.registryMirrors ? { 'registry-mirrors': opts.registryMirrors } : {}),
      },
      null,
      2,
    ),
  );
  // nsenter (not `ip netns exec`): only the network namespace changes; dockerd keeps the host's mounts
  // and cgroups. nsenter execs, so the child's PID is dockerd's.
  const child = spawn('nsenter', [`--net=${ns.path}`, 'dockerd', '--config-file', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const env = { DOCKER_CONFIG: join(dir, 'client') }; // keeps the client away from ~/.docker
  const docker = (...args: string[]) => runTool(DOCKER_CLI, ['-H', `unix://${socket}`, ...args], env);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // dockerd waits for its containerd to stop first; a couple of seconds is normal.
      if ((await waitForExit([child.pid!], 20_000)).length > 0) {
        child.kill('SIGKILL');
        await waitForExit([child.pid!], 5_000);
      }
    }
    await unmountUnder(dir);
  };

  // Ready when the API answers `docker version`, polled with a deadline; fails at once if dockerd exits.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await unmountUnder(dir);
      throw new Error(`dockerd (storage-driver ${driver}) exited with ${child.exitCode ?? child.signalCode} before its API answered\n${out.slice(-6000)}`);
    }
    try {
      await runTool(DOCKER_CLI, ['-H', `unix://${socket}`, 'version'], env, 5_000);
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`dockerd API not answering after 30 s: ${String(err)}\n${out.slice(-6000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const storageDriver = (await docker('info', '--format', '{{.Driver}}')).trim();
  const reload = async (mirrors: string[]) => {
    child.kill('SIGHUP');
    // dockerd lists each mirror with a trailing slash.
    const want = JSON.stringify(mirrors.map((m) => m.replace(/\/*$/, '/')));
    await until(`dockerd to reload with registry mirrors ${want}`, async () => ((await docker('info', '--format', '{{json .RegistryConfig.Mirrors}}')).trim() === want ? true : undefined), 20_000);
  };
  const restart = async () => {
    await stop();
    return startWithDriver(ns, dir, storageDriver, {}, true);
  };
  return { pid: child.pid!, socket, config, storageDriver, docker, reload, restart, output: () => out, stop };
}

/**
 * Starts dockerd in `ns` with its state under `dir`: overlay2 first, vfs if overlay2 cannot start here
 * (e.g. a data root on a filesystem overlay does not stack on). Throws with dockerd's output if neither does.
 * Without `registryMirrors` its daemon.json has no "registry-mirrors" at all.
 */
export async function startDockerd(ns: NetNamespace, dir: string, opts: DockerdOptions = {}): Promise<Dockerd> {
  await requireTool('dockerd');
  await requireTool(DOCKER_CLI);
  try {
    return await startWithDriver(ns, dir, 'overlay2', opts);
  } catch (overlayErr) {
    await rm(join(dir, 'root'), { recursive: true, force: true });
    await rm(join(dir, 'exec'), { recursive: true, force: true });
    try {
      return await startWithDriver(ns, dir, 'vfs', opts);
    } catch (vfsErr) {
      throw new Error(`dockerd cannot start here, neither with overlay2 nor vfs\n--- overlay2 ---\n${String(overlayErr)}\n--- vfs ---\n${String(vfsErr)}`);
    }
  }
}
