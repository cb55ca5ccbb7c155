// Shared helpers for the benchmarks in scripts/bench/: numbers, ports, plain HTTP, server processes that are
// always cleaned up (also on error and Ctrl-C), /proc sampling, CPU-profile summaries and result files.
// node: builtins only, so a benchmark runs with nothing but `node` and the registries it drives.
import { spawn, execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const layerdBin = join(repoRoot, 'dist', 'layerd.mjs');
export const benchOutDir = join(repoRoot, '.out', 'bench');
export const MiB = 1024 * 1024;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// ---------------------------------------------------------------- numbers and output

export const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const mibPerSec = (bytes, ms) => bytes / MiB / (ms / 1000);
export const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
export const round2 = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
export const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
export const timestamp = () => new Date().toISOString().replace(/[:.]/g, '-');

/** A Markdown-style table with padded columns. */
export function formatTable(header, rows) {
  const widths = header.map((h, i) => Math.max(String(h).length, ...rows.map((r) => String(r[i] ?? '-').length)));
  const line = (cells) => '| ' + cells.map((x, i) => String(x ?? '-').padEnd(widths[i])).join(' | ') + ' |';
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Writes `result` as .out/bench/<prefix>-<timestamp>.json and returns the path. */
export async function writeResults(prefix, result) {
  await mkdir(benchOutDir, { recursive: true });
  const file = join(benchOutDir, `${prefix}-${timestamp()}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

// ---------------------------------------------------------------- network

export async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** One HTTP request; `agent: false` (the default here) means a fresh connection, so no warm socket carries over. */
export function request(url, { method = 'GET', headers = {}, body, agent = false } = {}) {
  return new Promise((res, rej) => {
    const req = http.request(url, { method, headers, agent }, res);
    req.on('error', rej);
    if (Buffer.isBuffer(body) || typeof body === 'string') req.end(body);
    else if (body) body.on('error', rej).pipe(req);
    else req.end();
  });
}

export async function readBody(res) {
  const chunks = [];
  for await (const c of res) chunks.push(c);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------- processes and temp dirs

// Everything started or created, so that a failure or a signal still stops the processes and removes the dirs.
const running = new Set();
const tempDirs = new Set();
let interrupted = false;
export const wasInterrupted = () => interrupted;

const removals = new Set(); // removals in flight: cleanup waits for them, or an exit could cut one short

export async function makeTempDir(prefix) {
  if (interrupted) throw new Error('interrupted');
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir) {
  tempDirs.delete(dir);
  const removal = rm(dir, { recursive: true, force: true });
  removals.add(removal);
  try {
    await removal;
  } finally {
    removals.delete(removal);
  }
}

/**
 * Spawns a server and polls GET /v2/ until it answers below 500. Output is split into lines: each goes to
 * `onLine` (e.g. to count access-log entries) and only a tail is kept, since an access log keeps growing.
 */
export async function startServer(name, command, args, port, { onLine, env } = {}) {
  if (interrupted) throw new Error('interrupted');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let tail = '';
  const splitter = () => {
    let partial = '';
    return (d) => {
      const text = d.toString();
      tail = (tail + text).slice(-16_000);
      if (!onLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop();
      for (const l of lines) onLine(l);
    };
  };
  child.stdout.on('data', splitter());
  child.stderr.on('data', splitter());
  const exited = new Promise((r) => child.once('exit', r));
  const server = { name, port, url: `http://127.0.0.1:${port}`, pid: child.pid, child, exited, output: () => tail };
  running.add(server);
  await waitReady(server, 30_000);
  return server;
}

async function waitReady(server, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) break;
    try {
      const res = await request(`${server.url}/v2/`);
      res.resume();
      if (res.statusCode < 500) return;
      last = `status ${res.statusCode}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 50)); // poll interval, not a readiness sleep
  }
  throw new Error(`${server.name} not ready (${last ?? `exited ${server.child.exitCode}`})\n${server.output()}`);
}

/**
 * Spawns a process that is not an HTTP server: it is ready when `ready(line)` returns something truthy for a line
 * of its stdout, and that value is returned as `ready` on the result. Registered like startServer's processes, so
 * cleanup() stops it. Rejects if the process exits or `timeoutMs` passes first.
 */
export async function startProcess(name, command, args, { env, ready, timeoutMs = 30_000 } = {}) {
  if (interrupted) throw new Error('interrupted');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let tail = '';
  let partial = '';
  let onReady;
  const readyValue = new Promise((res) => (onReady = res));
  child.stdout.on('data', (d) => {
    const text = d.toString();
    tail = (tail + text).slice(-16_000);
    const lines = (partial + text).split('\n');
    partial = lines.pop();
    for (const l of lines) {
      const v = ready(l);
      if (v) onReady(v);
    }
  });
  child.stderr.on('data', (d) => (tail = (tail + d.toString()).slice(-16_000)));
  const exited = new Promise((r) => child.once('exit', r));
  const server = { name, pid: child.pid, child, exited, output: () => tail };
  running.add(server);
  let timer;
  const value = await Promise.race([
    readyValue,
    exited.then((code) => Promise.reject(new Error(`${name} exited (${code}) before it was ready\n${tail}`))),
    new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`${name} not ready after ${timeoutMs} ms\n${tail}`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  return Object.assign(server, { ready: value });
}

/** SIGTERM, then SIGKILL after 10 s; only ever signals the PIDs this script spawned. */
export async function stopServer(server) {
  running.delete(server);
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await server.exited;
  clearTimeout(timer);
}

let cleaning;

/**
 * Stops every server and removes every temp dir. The signal handler and main's `finally` may both call it at
 * once: they share one pass, which loops until nothing is left (main may start something while it runs).
 */
export function cleanup() {
  cleaning ??= (async () => {
    while (running.size || tempDirs.size || removals.size) {
      await Promise.all([...running].map(stopServer));
      await Promise.all([...tempDirs].map(removeTempDir));
      await Promise.all([...removals]);
    }
  })().finally(() => (cleaning = undefined));
  return cleaning;
}

/** Runs main(); whatever happens (error, SIGINT, SIGTERM) every server is stopped and every temp dir removed. */
export async function runBenchmark(main) {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      interrupted = true;
      log(`${sig}: stopping servers and removing temp files`);
      cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (err) {
    // After Ctrl-C the in-flight request fails because its server was stopped: not worth a stack trace.
    if (!interrupted) log(`failed: ${err.stack ?? err}`);
    process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

/**
 * `layerd serve` with a fresh data dir under `dir`; `nodeArgs` go before the script (e.g. --cpu-prof).
 * `bin` defaults to this checkout's dist/layerd.mjs (the bundle); another build (an older commit, an experiment) can be compared.
 * `onLine` sees every line of its output (pino JSON), `env` adds environment variables, `dataDir` reuses a directory.
 */
export async function startLayerd(dir, { args = [], nodeArgs = [], name = 'layerd', bin = layerdBin, onLine, env, dataDir } = {}) {
  if (!existsSync(bin)) throw new Error(`${bin} missing: run \`npm run build\` first (or skip layerd)`);
  const port = await freePort();
  dataDir ??= join(dir, `${name}-data`);
  await mkdir(dataDir, { recursive: true });
  const argv = [...nodeArgs, bin, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args];
  const server = await startServer(name, process.execPath, argv, port, { onLine, env });
  return Object.assign(server, { dataDir });
}

/**
 * CNCF distribution (Debian's docker-registry) with filesystem storage under `dir`, access log on.
 * `extraConfig` lines are appended to its YAML (e.g. a `proxy:` section). The returned server counts its
 * access-log lines by method and kind: counts['GET blob'], counts['HEAD manifest'], ...
 * `onLine` also sees every line of its output (e.g. to add up the bytes of blob GETs).
 */
export async function startDistribution(dir, { name = 'distribution', extraConfig = [], onLine: alsoOnLine } = {}) {
  const port = await freePort();
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  const config = join(root, 'config.yml');
  const dataDir = join(root, 'data');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: {level: info, accesslog: {disabled: false}}',
      `storage: {filesystem: {rootdirectory: ${dataDir}}, delete: {enabled: true}}`,
      `http: {addr: 127.0.0.1:${port}, secret: bench}`,
      'health: {storagedriver: {enabled: false}}',
      ...extraConfig,
      '',
    ].join('\n'),
  );
  const counts = {};
  // An access-log line looks like: 127.0.0.1 - - [date] "GET /v2/<name>/blobs/sha256:... HTTP/1.1" 200 ...
  const onLine = (l) => {
    alsoOnLine?.(l);
    const m = /"(GET|HEAD|PUT|POST|PATCH|DELETE) \/v2\/\S*\/(blobs|manifests)\//.exec(l);
    if (!m) return;
    const key = `${m[1]} ${m[2] === 'blobs' ? 'blob' : 'manifest'}`;
    counts[key] = (counts[key] ?? 0) + 1;
  };
  const server = await startServer(name, 'docker-registry', ['serve', config], port, { onLine });
  return Object.assign(server, { dataDir, counts, accessLogLines: () => Object.values(counts).reduce((a, b) => a + b, 0) });
}

// ---------------------------------------------------------------- /proc sampling

/** CPU seconds (user+sys, all threads) a process has used so far, from /proc/<pid>/stat. */
export function procCpuSeconds(pid) {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of a process's main thread only (for node: the event loop, without libuv's pool, GC helpers, ...). */
export function mainThreadCpuSeconds(pid) {
  return statCpuSeconds(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuSeconds(path) {
  const { user, system } = statCpuSplit(path);
  return user + system;
}

/** A process's CPU seconds in its own code (user) and in the kernel on its behalf (system: syscalls, the network stack, page faults). */
export function procCpuSplit(pid) {
  return statCpuSplit(`/proc/${pid}/stat`);
}

function statCpuSplit(path) {
  const stat = readFileSync(path, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // comm may contain spaces
  return { user: Number(fields[11]) / CLK_TCK, system: Number(fields[12]) / CLK_TCK }; // utime, stime
}

/** A field of /proc/<pid>/status in KiB (VmRSS, VmHWM, ...), or null. */
export function procStatusKiB(pid, field) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : null;
}

// ---------------------------------------------------------------- CPU profiles

/** The newest .cpuprofile files in `dir` (as written by `node --cpu-prof --cpu-prof-dir=dir`). */
export async function cpuProfiles(dir) {
  const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.cpuprofile'));
  return names.sort().map((n) => join(dir, n));
}

/** One whole profile (start-up included): { file, wallMs, busyMs, top: [{ fn, selfMs, pctOfBusy }] }. */
export async function summarizeCpuProfile(file, top = 15) {
  const s = await summarizeCpuProfiles([{ file }], { top });
  return { file, wallMs: s.sampledMs, busyMs: s.busyMs, top: s.top };
}

/** Microseconds on the clock V8 stamps CPU profiles with (CLOCK_MONOTONIC, same across processes on one machine). */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * Top functions by self time over one or more V8 .cpuprofile files: a sample counts for the function on top of the
 * stack, for the time until the next sample. With `windowsUs` ([start, end] pairs from monotonicUs()) only samples
 * inside a window count, e.g. only while a cold pull ran, not start-up. Same-named functions at the same source
 * location are merged across call paths and files. `via` names the nearest caller in a file (not node: internals)
 * that most of a function's time came through: `writeBuffer` alone does not say whether a file or a socket was written.
 */
export async function summarizeCpuProfiles(entries, { top = 15 } = {}) {
  const byFunction = new Map();
  const callers = new Map(); // key → Map(caller → µs)
  const frameName = (f) => {
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(repoRoot + '/', '')}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${where}`.trim();
  };
  let totalUs = 0;
  let idleUs = 0;
  for (const { file, windowsUs } of entries) {
    const prof = JSON.parse(await readFile(file, 'utf8'));
    const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
    const parents = new Map();
    for (const n of prof.nodes) for (const c of n.children ?? []) parents.set(c, n.id);
    const userCaller = (id) => {
      for (let p = parents.get(id); p !== undefined; p = parents.get(p)) {
        const f = nodes.get(p).callFrame;
        if (f.url.startsWith('file://')) return frameName(f);
      }
      return '';
    };
    let t = prof.startTime;
    for (let i = 0; i < prof.samples.length; i++) {
      t += prof.timeDeltas[i];
      const dt = (i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : prof.endTime - t) || 0;
      if (windowsUs && !windowsUs.some(([a, b]) => t >= a && t <= b)) continue;
      const f = nodes.get(prof.samples[i]).callFrame;
      totalUs += dt;
      if (f.functionName === '(idle)') {
        idleUs += dt;
        continue;
      }
      const key = frameName(f);
      byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
      if (!callers.has(key)) callers.set(key, new Map());
      const via = callers.get(key);
      const caller = userCaller(prof.samples[i]);
      via.set(caller, (via.get(caller) ?? 0) + dt);
    }
  }
  const busyUs = totalUs - idleUs;
  return {
    files: entries.map((e) => e.file),
    sampledMs: round1(totalUs / 1000),
    busyMs: round1(busyUs / 1000),
    top: [...byFunction.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => {
        const [caller, callerUs] = [...callers.get(fn).entries()].sort((a, b) => b[1] - a[1])[0];
        const via = caller && !fn.includes(caller) ? `${caller} (${Math.round((callerUs / us) * 100)}%)` : '';
        return { fn, selfMs: round1(us / 1000), pctOfBusy: round1((us / Math.max(1, busyUs)) * 100), via };
      }),
  };
}

/** Monolithic upload of a file: POST opens it, PUT ?digest= streams the file as the body (no buffering). */
export async function pushBlobFile(server, repo, path, size, digest) {
  const post = await request(`${server.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  const postBody = await readBody(post);
  if (post.statusCode !== 202 || !post.headers.location) throw new Error(`${server.name}: POST upload → ${post.statusCode} ${postBody}`);
  const putUrl = new URL(post.headers.location, server.url);
  putUrl.searchParams.set('digest', digest);
  const t0 = performance.now();
  const put = await request(putUrl, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': size },
    body: createReadStream(path, { highWaterMark: MiB }),
  });
  const putBody = await readBody(put);
  if (put.statusCode !== 201) throw new Error(`${server.name}: PUT ${digest} → ${put.statusCode} ${putBody}`);
  return { ms: round1(performance.now() - t0) };
}
