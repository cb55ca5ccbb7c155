#!/usr/bin/env node
// Blob-serving benchmark: layerd vs CNCF distribution (docker-registry), same blob, same client, same machine.
//
//   npm run bench:blob                          # 1 GiB blob, 5 rounds, 4-way concurrent case
//   BENCH_BLOB_MB=64 npm run bench:blob         # quick run (sizes are MiB)
//   node scripts/bench/blob-serve.mjs --mb 64 --rounds 3 --concurrency 0 --skip-layerd --baselines fs
//   BENCH_LAYERD_NODE_ARGS="--cpu-prof --cpu-prof-dir=.out/bench/prof" npm run bench:blob   # profile layerd
//
// Options (flag, or env): --mb BENCH_BLOB_MB, --rounds BENCH_ROUNDS, --concurrency BENCH_CONCURRENCY (0 = off),
// --skip-layerd BENCH_SKIP_LAYERD=1, --skip-distribution BENCH_SKIP_DISTRIBUTION=1,
// --baselines BENCH_BASELINES (comma list of fs,fs-1m,memory; empty = none), --layerd-node-args BENCH_LAYERD_NODE_ARGS.
//
// Besides the two registries, small node servers serve the same blob as calibration lines (see BASELINE_SRC):
// node-memory is the ceiling of this client on this machine; if a registry comes close to it, the client, not
// the registry, set the pace. The box has 2 cores shared by client and server, so watch the load average too.
// Results: a table on stdout, everything per round in .out/bench/blob-serve-<timestamp>.json.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MiB = 1024 * 1024;
const REPO = 'bench/blob';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

// ---------------------------------------------------------------- options

function readOptions() {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: process.env.BENCH_BLOB_MB ?? '1024' },
      rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '5' },
      concurrency: { type: 'string', default: process.env.BENCH_CONCURRENCY ?? '4' },
      'skip-layerd': { type: 'boolean', default: process.env.BENCH_SKIP_LAYERD === '1' },
      'skip-distribution': { type: 'boolean', default: process.env.BENCH_SKIP_DISTRIBUTION === '1' },
      baselines: { type: 'string', default: process.env.BENCH_BASELINES ?? BASELINE_MODES.join(',') },
      'layerd-node-args': { type: 'string', default: process.env.BENCH_LAYERD_NODE_ARGS ?? '' },
    },
  });
  const opts = {
    blobBytes: Math.round(Number(values.mb) * MiB),
    rounds: Number(values.rounds),
    concurrency: Number(values.concurrency),
    skipLayerd: values['skip-layerd'],
    skipDistribution: values['skip-distribution'],
    baselines: values.baselines.split(',').filter(Boolean),
    layerdNodeArgs: values['layerd-node-args'].split(/\s+/).filter(Boolean),
  };
  if (opts.baselines.some((m) => !BASELINE_MODES.includes(m))) throw new Error(`--baselines: pick from ${BASELINE_MODES}`);
  if (!(opts.blobBytes > 0) || !(opts.rounds >= 1) || !(opts.concurrency >= 0)) {
    throw new Error(`bad options: ${JSON.stringify(values)}`);
  }
  return opts;
}

// ---------------------------------------------------------------- small helpers

const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mibPerSec = (bytes, ms) => bytes / MiB / (ms / 1000);
const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

async function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/** One plain HTTP request with a fresh connection (agent: false), so no server keeps a warm socket from a prior round. */
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((res, rej) => {
    const req = http.request(url, { method, headers, agent: false }, res);
    req.on('error', rej);
    if (body) body.on('error', rej).pipe(req);
    else req.end();
  });
}

async function readAll(res) {
  const chunks = [];
  for await (const c of res) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

// ---------------------------------------------------------------- the blob

/** Writes `bytes` of random data to `path` in 1 MiB chunks, hashing as it goes; never holds the blob in memory. */
async function createBlob(path, bytes) {
  const hash = createHash('sha256');
  const rand = promisify(randomBytes);
  async function* chunks() {
    for (let left = bytes; left > 0; left -= MiB) {
      const chunk = await rand(Math.min(MiB, left));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(chunks, createWriteStream(path));
  return `sha256:${hash.digest('hex')}`;
}

// ---------------------------------------------------------------- server processes

/** Spawns a server, keeps only the tail of its output (distribution's access log grows), and polls /v2/ until ready. */
async function startServer(name, command, args, port) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d) => (tail = (tail + d.toString()).slice(-16_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', r));
  const server = { name, url: `http://127.0.0.1:${port}`, pid: child.pid, child, exited, output: () => tail };
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

/** SIGTERM, then SIGKILL after 10 s; only ever signals the PIDs this script spawned. */
async function stopServer(server) {
  running.delete(server);
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await server.exited;
  clearTimeout(timer);
}

async function startLayerd(dir, nodeArgs) {
  const bin = join(repoRoot, 'dist', 'cli.js');
  if (!existsSync(bin)) throw new Error(`${bin} missing: run \`npm run build\` first (or pass --skip-layerd)`);
  const port = await freePort();
  const dataDir = join(dir, 'layerd-data');
  await mkdir(dataDir);
  const args = [...nodeArgs, bin, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir];
  return startServer('layerd', process.execPath, args, port);
}

async function startDistribution(dir) {
  const port = await freePort();
  const root = join(dir, 'distribution');
  await mkdir(root);
  const config = join(root, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: {level: info, accesslog: {disabled: false}}',
      `storage: {filesystem: {rootdirectory: ${join(root, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: 127.0.0.1:${port}, secret: bench}`,
      'health: {storagedriver: {enabled: false}}',
      '',
    ].join('\n'),
  );
  return startServer('distribution', 'docker-registry', ['serve', config], port);
}

// Calibration servers, each a separate node process so it gets its own core like the registries do:
//   node-fs      the naive way: fs.createReadStream (64 KiB reads) piped into the response;
//   node-fs-1m   the same with 1 MiB reads, i.e. what a node server can do from disk with one tweak;
//   node-memory  writes one 1 MiB buffer over and over, no disk at all: the ceiling of this client on this box.
//                Its bytes are not the blob, so it is not content-verified.
const BASELINE_SRC = `
const http = require('node:http'), fs = require('node:fs');
const [file, port, mode] = process.argv.slice(1);
const size = fs.statSync(file).size;
const chunk = Buffer.alloc(1 << 20, 7);
function fromMemory(res) {
  let left = size;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
http.createServer((req, res) => {
  if (req.url === '/v2/') return res.end('{}');
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (mode === 'memory') return fromMemory(res);
  fs.createReadStream(file, mode === 'fs-1m' ? { highWaterMark: 1 << 20 } : {}).pipe(res);
}).listen(Number(port), '127.0.0.1');
`;
const BASELINE_MODES = ['fs', 'fs-1m', 'memory'];

async function startBaseline(blobPath, mode) {
  const port = await freePort();
  const server = await startServer(`node-${mode}`, process.execPath, ['-e', BASELINE_SRC, blobPath, String(port), mode], port);
  return Object.assign(server, { calibration: true, verify: mode !== 'memory' });
}

// ---------------------------------------------------------------- push

/** POST to open an upload, then PUT ?digest= with the file streamed as the body (monolithic upload, no buffering). */
async function pushBlob(server, blobPath, size, digest) {
  const post = await request(`${server.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  const postBody = await readAll(post);
  if (post.statusCode !== 202 || !post.headers.location) {
    throw new Error(`${server.name}: POST upload → ${post.statusCode} ${postBody}`);
  }
  const putUrl = new URL(post.headers.location, server.url);
  putUrl.searchParams.set('digest', digest);
  const t0 = performance.now();
  const put = await request(putUrl, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': size },
    body: createReadStream(blobPath, { highWaterMark: MiB }),
  });
  const putBody = await readAll(put);
  if (put.statusCode !== 201) throw new Error(`${server.name}: PUT upload → ${put.statusCode} ${putBody}`);
  const ms = performance.now() - t0;
  log(`${server.name}: pushed in ${(ms / 1000).toFixed(2)} s (${mibPerSec(size, ms).toFixed(0)} MiB/s)`);
  return { ms, mibPerSec: mibPerSec(size, ms) };
}

// ---------------------------------------------------------------- pull (the measured part)

/** GETs url to the end, discarding bytes (optionally hashing them); follows redirects as distribution may 307. */
async function getBlob(url, { hash = false, redirects = 3 } = {}) {
  const res = await request(url);
  if ([301, 302, 303, 307, 308].includes(res.statusCode) && redirects > 0) {
    res.resume();
    return getBlob(new URL(res.headers.location, url), { hash, redirects: redirects - 1 });
  }
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${await readAll(res)}`);
  const h = hash ? createHash('sha256') : null;
  let bytes = 0;
  // A data listener rather than for-await: the least per-chunk overhead in the client, which must not be the bottleneck.
  await new Promise((ok, fail) => {
    res.on('data', (c) => {
      bytes += c.length;
      if (h) h.update(c);
    });
    res.on('end', ok);
    res.on('error', fail);
  });
  return { bytes, digest: h ? `sha256:${h.digest('hex')}` : null };
}

/** CPU seconds (user+sys, all threads) a process has used so far, from /proc/<pid>/stat. */
function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // comm may contain spaces
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

/** Runs `parallel` simultaneous full GETs of the blob; returns aggregate throughput plus client and server CPU use. */
async function measure(server, blobUrl, size, parallel) {
  const serverCpu0 = procCpuSeconds(server.pid);
  const clientCpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: parallel }, () => getBlob(blobUrl)));
  const ms = performance.now() - t0;
  const clientCpu = process.cpuUsage(clientCpu0);
  const serverCpu = procCpuSeconds(server.pid) - serverCpu0;
  for (const r of results) {
    if (r.bytes !== size) throw new Error(`${server.name}: got ${r.bytes} bytes, want ${size}`);
  }
  const total = size * parallel;
  return {
    ms: round1(ms),
    mibPerSec: round1(mibPerSec(total, ms)),
    // CPU as % of one core over the wall time: a client near 100% means the client, not the server, set the pace.
    clientCpuPct: round1(((clientCpu.user + clientCpu.system) / 1000 / ms) * 100),
    serverCpuPct: round1(((serverCpu * 1000) / ms) * 100),
    serverCpuSecPerGiB: round1((serverCpu / (total / (1024 * MiB))) * 100) / 100,
  };
}

// ---------------------------------------------------------------- memory sampling

function procStatusKiB(pid, field) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : null;
}

/** Samples VmRSS of each server every 100 ms; VmHWM alone would also count the push phase. */
function startRssSampler(servers) {
  const peakKiB = new Map(servers.map((s) => [s.name, 0]));
  const timer = setInterval(() => {
    for (const s of servers) {
      try {
        peakKiB.set(s.name, Math.max(peakKiB.get(s.name), procStatusKiB(s.pid, 'VmRSS') ?? 0));
      } catch {
        // the process may be gone; measure() will report that
      }
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return Object.fromEntries(
        servers.map((s) => [s.name, { peakRssServeMiB: round1(peakKiB.get(s.name) / 1024), vmHwmMiB: round1(procStatusKiB(s.pid, 'VmHWM') / 1024) }]),
      );
    },
  };
}

// ---------------------------------------------------------------- the run

async function verifyRound(servers, urls, size, digest) {
  // Untimed: hashing in the client would cap throughput; this also warms the page cache for every copy.
  for (const s of servers) {
    if (s.verify === false) {
      const r = await getBlob(urls[s.name]);
      if (r.bytes !== size) throw new Error(`${s.name}: served ${r.bytes} bytes, want ${size}`);
      continue;
    }
    const r = await getBlob(urls[s.name], { hash: true });
    if (r.bytes !== size || r.digest !== digest) {
      throw new Error(`${s.name}: served ${r.bytes} bytes with ${r.digest}, want ${size} bytes with ${digest}`);
    }
    log(`${s.name}: content verified (${r.digest.slice(0, 19)}…)`);
  }
}

async function measureRounds(servers, urls, size, opts) {
  const rounds = [];
  for (let i = 0; i < opts.rounds; i++) {
    // Rotate who goes first so a warm-up or cache effect does not always favour the same server.
    const order = servers.map((_, k) => servers[(k + i) % servers.length]);
    const round = { order: order.map((s) => s.name), single: {}, concurrent: {} };
    for (const s of order) round.single[s.name] = await measure(s, urls[s.name], size, 1);
    if (opts.concurrency > 0) {
      for (const s of order) round.concurrent[s.name] = await measure(s, urls[s.name], size, opts.concurrency);
    }
    log(
      `round ${i + 1}/${opts.rounds}: ` +
        order.map((s) => `${s.name} ${round.single[s.name].mibPerSec}${opts.concurrency ? `/${round.concurrent[s.name].mibPerSec}` : ''}`).join(', ') +
        ' MiB/s',
    );
    rounds.push(round);
  }
  return rounds;
}

function summarize(servers, rounds, memory) {
  const pick = (name, kind, key) => median(rounds.map((r) => r[kind][name]?.[key]).filter((x) => x !== undefined));
  return Object.fromEntries(
    servers.map((s) => [
      s.name,
      {
        calibration: Boolean(s.calibration),
        singleMiBps: round1(pick(s.name, 'single', 'mibPerSec')),
        concurrentMiBps: round1(pick(s.name, 'concurrent', 'mibPerSec')),
        singleClientCpuPct: round1(pick(s.name, 'single', 'clientCpuPct')),
        singleServerCpuPct: round1(pick(s.name, 'single', 'serverCpuPct')),
        serverCpuSecPerGiB: pick(s.name, 'single', 'serverCpuSecPerGiB'),
        ...memory[s.name],
      },
    ]),
  );
}

function printTable(summary, opts) {
  const c = opts.concurrency;
  const header = ['server', 'single MiB/s', `${c}x conc MiB/s`, 'peak RSS serve MiB', 'VmHWM MiB', 'srv CPU s/GiB', 'client CPU %'];
  const rows = Object.entries(summary).map(([name, s]) => [
    name,
    s.singleMiBps,
    c ? s.concurrentMiBps : '-',
    s.peakRssServeMiB,
    s.vmHwmMiB,
    s.serverCpuSecPerGiB,
    s.singleClientCpuPct,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length), i === 0 ? 'calibration:'.length : 0));
  const line = (cells) => '| ' + cells.map((x, i) => String(x).padEnd(widths[i])).join(' | ') + ' |';
  const rule = line(widths.map((w) => '-'.repeat(w)));
  const isCalibration = (r) => summary[r[0]].calibration;
  const out = [line(header), rule, ...rows.filter((r) => !isCalibration(r)).map(line)];
  const calibration = rows.filter(isCalibration);
  if (calibration.length) out.push(line(['calibration:', ...widths.slice(1).map(() => '')]), ...calibration.map(line));
  const l = summary.layerd;
  const d = summary.distribution;
  if (l && d) {
    out.push('');
    out.push(`layerd / distribution throughput: single ${(l.singleMiBps / d.singleMiBps).toFixed(2)}x` + (c ? `, ${c}x concurrent ${(l.concurrentMiBps / d.concurrentMiBps).toFixed(2)}x` : ''));
    out.push(`layerd / distribution peak RSS (serve): ${(l.peakRssServeMiB / d.peakRssServeMiB).toFixed(2)}x`);
  }
  console.log(out.join('\n'));
}

async function writeResults(result) {
  const dir = join(repoRoot, '.out', 'bench');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `blob-serve-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

// Everything started, so that a failure or Ctrl-C still stops the processes and removes the temp dir.
const running = new Set();
let workDir;
let interrupted = false;

async function cleanup() {
  await Promise.all([...running].map(stopServer));
  if (workDir) await rm(workDir, { recursive: true, force: true });
  workDir = undefined;
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    interrupted = true;
    log(`${sig}: stopping servers and removing temp files`);
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  const opts = readOptions();
  workDir = await mkdtemp(join(tmpdir(), 'layerd-bench-'));
  const blobPath = join(workDir, 'blob.bin');

  log(`creating a ${(opts.blobBytes / MiB).toFixed(0)} MiB random blob in ${workDir}`);
  const digest = await createBlob(blobPath, opts.blobBytes);
  log(`blob ${digest}`);

  const registries = [];
  if (!opts.skipLayerd) registries.push(await startLayerd(workDir, opts.layerdNodeArgs));
  if (!opts.skipDistribution) registries.push(await startDistribution(workDir));
  const baselines = [];
  for (const mode of opts.baselines) baselines.push(await startBaseline(blobPath, mode));
  const servers = [...registries, ...baselines];

  const push = {};
  for (const s of registries) push[s.name] = await pushBlob(s, blobPath, opts.blobBytes, digest);

  const urls = Object.fromEntries(servers.map((s) => [s.name, `${s.url}/v2/${REPO}/blobs/${digest}`]));
  // Other work on the box competes for the same cores: record the load so a noisy run can be recognized as such.
  const loadBefore = loadavg();
  const sampler = startRssSampler(servers);
  await verifyRound(servers, urls, opts.blobBytes, digest);
  const rounds = await measureRounds(servers, urls, opts.blobBytes, opts);
  const memory = sampler.stop();
  const loadAfter = loadavg();

  const summary = summarize(servers, rounds, memory);
  const load = `load avg (1 min) ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after, on ${cpus().length} cpus`;
  console.log(`\nblob ${(opts.blobBytes / MiB).toFixed(0)} MiB, ${opts.rounds} rounds, medians (1 MiB = 2^20 bytes); ${load}\n`);
  printTable(summary, opts);

  const file = await writeResults({
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, loadBefore, loadAfter },
    options: opts,
    digest,
    push,
    summary,
    rounds,
  });
  console.log(`\nresults: ${file}`);
}

try {
  await main();
} catch (err) {
  // After Ctrl-C the in-flight GET fails because its server was stopped: not worth a stack trace.
  if (!interrupted) log(`failed: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
