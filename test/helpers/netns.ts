// Loopback-only network namespaces for e2e tests whose clients must not reach beyond the machine (dockerd
// falls back to Docker Hub on a mirror miss): the test creates the namespace, runs the registries and the
// client inside it, and deletes it only after every process in it has exited. Needs root and iproute2.
// A layerd node is started inside one through NodeSet (nodes.ts, `netns`), like any other.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { runTool } from './clients.js';
import { tempDir, track, whenReady, writeDistributionConfig, type RunningProcess } from './processes.js';

const execFileP = promisify(execFile);

export interface NetNamespace {
  name: string;
  /** For `nsenter --net=PATH` (what dockerd needs: `ip netns exec` would also remount /sys and cgroups). */
  path: string;
  /** Runs a tool inside the namespace (see runTool). */
  run(cmd: string, args: string[], env?: Record<string, string>): Promise<string>;
  /** Starts a long-running process inside the namespace; `ip netns exec` execs, so its PID is the process's own. */
  spawn(cmd: string, args: string[], opts?: { env?: Record<string, string>; url?: string; port?: number }): RunningProcess;
  /** Polls url from inside the namespace until it answers below 500; fails early if `child` exits. */
  waitForHttp(url: string, timeoutMs?: number, child?: ChildProcess): Promise<void>;
  pids(): Promise<number[]>;
  /** Ends whatever still runs inside (SIGTERM, then SIGKILL), waits for those PIDs to exit, deletes the namespace. */
  remove(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits until none of pids is alive; returns those still alive at the deadline. */
export async function waitForExit(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(isAlive);
  }
  return alive;
}

// Runs inside the namespace with node itself (always there, unlike curl): polls argv[1] until it answers
// below 500 or argv[2] ms have passed.
const PROBE = `
const [url, ms] = process.argv.slice(1);
const deadline = Date.now() + Number(ms);
let last = '';
for (;;) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    if (res.status < 500) process.exit(0);
    last = 'status ' + res.status;
  } catch (err) { last = String(err); }
  if (Date.now() > deadline) { console.error(last); process.exit(1); }
  await new Promise((r) => setTimeout(r, 50));
}`;

/** Creates a namespace named `<prefix>-<random>` with only `lo`, up. */
export async function createNetns(prefix = 'layerd'): Promise<NetNamespace> {
  await execFileP('sh', ['-c', 'command -v ip && command -v nsenter']).catch(() => {
    throw new Error('ip (iproute2) and nsenter (util-linux) are needed to make a network namespace');
  });
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await runTool('ip', ['netns', 'add', name]);
  await runTool('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const started: number[] = [];

  const ns: NetNamespace = {
    name,
    path: `/run/netns/${name}`,
    run: (cmd, args, env = {}) => runTool('ip', ['netns', 'exec', name, cmd, ...args], env),
    spawn(cmd, args, opts = {}) {
      const child = spawn('ip', ['netns', 'exec', name, cmd, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child.pid!);
      return track(child, opts.port ?? 0, opts.url ?? '');
    },
    async waitForHttp(url, timeoutMs = 20_000, child) {
      const probe = spawn('ip', ['netns', 'exec', name, process.execPath, '--input-type=module', '-e', PROBE, url, String(timeoutMs)], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      probe.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const probed = new Promise<number | null>((r) => probe.once('exit', (code) => r(code)));
      const childExited = child ? new Promise<string>((r) => child.once('exit', (code, sig) => r(`exit ${code ?? sig}`))) : new Promise<never>(() => {});
      if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`process exited before ${url} was ready`);
      const result = await Promise.race([probed, childExited]);
      if (typeof result === 'string') {
        probe.kill('SIGKILL');
        throw new Error(`process ${result} before ${url} was ready (namespace ${name})`);
      }
      if (result !== 0) throw new Error(`${url} not ready after ${timeoutMs} ms in namespace ${name}: ${err.trim()}`);
    },
    async pids() {
      const { stdout } = await execFileP('ip', ['netns', 'pids', name]);
      return stdout.split('\n').filter(Boolean).map(Number);
    },
    async remove() {
      // Everything inside was started by this test (directly, or by a daemon it started: dockerd's containerd).
      let inside = await ns.pids().catch(() => [] as number[]);
      for (const pid of inside) if (isAlive(pid)) process.kill(pid, 'SIGTERM');
      inside = await waitForExit(inside, 10_000);
      for (const pid of inside) process.kill(pid, 'SIGKILL');
      const stuck = await waitForExit(inside, 5_000);
      if (stuck.length > 0) throw new Error(`namespace ${name}: PIDs ${stuck.join(' ')} did not exit; not deleting it`);
      await waitForExit(started, 5_000);
      await runTool('ip', ['netns', 'del', name]);
    },
  };
  return ns;
}

/** CNCF distribution (docker-registry) inside a namespace, on its loopback, with its access log on. */
export async function startDistributionIn(ns: NetNamespace, port: number): Promise<RunningProcess & { rootDir: string }> {
  const rootDir = await tempDir('distribution-ns-');
  const configPath = await writeDistributionConfig(rootDir, port);
  const url = `http://127.0.0.1:${port}`;
  const proc = ns.spawn('docker-registry', ['serve', configPath], { url, port });
  await whenReady(proc, 'docker-registry', () => ns.waitForHttp(`${url}/v2/`, 20_000, proc.child));
  return { ...proc, rootDir };
}
