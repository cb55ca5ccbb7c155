// Real processes for integration and e2e tests: a layerd node built from dist/, and CNCF distribution
// (Debian's docker-registry) as the peer to compare with. Readiness is polled with a deadline, never slept.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { shippedNodeFlags } from '../../scripts/cluster/netns-cluster-lib.mjs';
import { blobGets } from './access-log.js';
import type { NetNamespace } from './netns.js';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const layerdBin = join(repoRoot, 'dist', 'layerd.mjs');

export interface RunningProcess {
  url: string;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolvePort(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A free port below the kernel's ephemeral range (32768 and up on Linux), for a port a test fixes in
 * advance and binds later: a port from freePort() can meanwhile be taken by any outgoing connection or
 * `tcp/0` listener on the machine (it came from that same range), and was seen to be.
 */
export async function stablePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolveFree) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolveFree(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolveFree(true)));
    });
    if (free) return port;
    if (tries > 100) throw new Error('no free port between 20000 and 32000');
  }
}

export async function tempDir(prefix = 'layerd-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Polls url until it answers with an HTTP status below 500, or throws after timeoutMs. */
export async function waitForHttp(url: string, timeoutMs = 20_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before ${url} was ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
      lastError = new Error(`status ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms: ${String(lastError)}`);
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A child process with its output kept and a stop() that resolves once it has exited. */
export function track(child: ChildProcess, port: number, url: string): RunningProcess {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url,
    port,
    pid: child.pid!,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface LayerdOptions {
  dataDir?: string;
  port?: number;
  args?: string[];
  env?: Record<string, string>;
  /** How long the node may take to answer /v2/ (default 20 s); a test starting several at once on a loaded host needs more. */
  readyTimeoutMs?: number;
  /** Run inside this network namespace, on its loopback (its url answers only from inside it). */
  netns?: NetNamespace;
}

/**
 * Starts `layerd serve` from dist/ on 127.0.0.1 (of this machine, or of a namespace) and waits until /v2/
 * answers. NodeSet's primitive: tests start their nodes through NodeSet (nodes.ts), not with this.
 */
export async function startLayerd(opts: LayerdOptions = {}): Promise<RunningProcess & { dataDir: string }> {
  const port = opts.port ?? (await stablePort());
  const dataDir = opts.dataDir ?? (await tempDir('layerd-data-'));
  const url = `http://127.0.0.1:${port}`;
  // With the node flags layerd ships with (its #! line), as the `layerd` command runs it.
  const argv = [...shippedNodeFlags(layerdBin), layerdBin, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...(opts.args ?? [])];
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const ns = opts.netns;
  if (ns) {
    const proc = ns.spawn(process.execPath, argv, { env: opts.env, url, port });
    await whenReady(proc, 'layerd', () => ns.waitForHttp(`${url}/v2/`, timeoutMs, proc.child));
    return { ...proc, dataDir };
  }
  const child = spawn(process.execPath, argv, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track(child, port, url);
  await whenReady(proc, 'layerd', () => waitForHttp(`${url}/v2/`, timeoutMs, child));
  return { ...proc, dataDir };
}

/** Waits for a just-started process with `waitReady`; if that fails, kills it and throws with what it printed. */
export async function whenReady(proc: RunningProcess, name: string, waitReady: () => Promise<void>): Promise<void> {
  try {
    await waitReady();
  } catch (err) {
    await proc.stop('SIGKILL');
    throw new Error(`${String(err)}\n--- ${name} output ---\n${proc.output()}`);
  }
}

/**
 * Writes a CNCF distribution config for a filesystem store under rootDir (deletes enabled, access log on)
 * listening on 127.0.0.1:port, and returns its path.
 */
export async function writeDistributionConfig(rootDir: string, port: number): Promise<string> {
  const configPath = join(rootDir, 'config.yml');
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log: {level: info, accesslog: {disabled: false}}',
      `storage: {filesystem: {rootdirectory: ${join(rootDir, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: 127.0.0.1:${port}, secret: test}`,
      'health: {storagedriver: {enabled: false}}',
      '',
    ].join('\n'),
  );
  return configPath;
}

/** Starts CNCF distribution (docker-registry) with a filesystem store on 127.0.0.1. */
export async function startDistribution(opts: { port?: number; rootDir?: string } = {}): Promise<RunningProcess & { rootDir: string; blobGets(): number }> {
  const port = opts.port ?? (await stablePort());
  const rootDir = opts.rootDir ?? (await tempDir('distribution-'));
  const configPath = await writeDistributionConfig(rootDir, port);
  const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = track(child, port, `http://127.0.0.1:${port}`);
  await whenReady(proc, 'docker-registry', () => waitForHttp(`${proc.url}/v2/`, 20_000, child));
  return {
    ...proc,
    rootDir,
    // Counted from the access log, which has one line per request.
    blobGets: () => blobGets(proc.output()).length,
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A process's pino log lines, parsed (a line still being written is skipped). */
export function logLines(proc: { output(): string }): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const l of proc.output().split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** GET (or, with a body, POST JSON to) a node's /api path; the status and the parsed JSON answer. */
export async function nodeApi<T>(n: { url: string }, path: string, body?: object): Promise<{ status: number; body: T }> {
  const res = await fetch(`${n.url}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as T };
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the built CLI as a user would; the caller's own LAYERD_NODE and credentials (LAYERD_USER,
 * LAYERD_PASSWORD) are left out, so only what a test gives counts. Killed (by its pid) if it hangs.
 */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<CliRun> {
  const base = { ...process.env };
  for (const k of ['LAYERD_NODE', 'LAYERD_USER', 'LAYERD_PASSWORD']) delete base[k];
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [layerdBin, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolveRun({ status, stdout, stderr });
    });
  });
}
