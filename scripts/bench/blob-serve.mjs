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
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';
import {
  MiB,
  formatTable,
  freePort,
  log,
  makeTempDir,
  median,
  mibPerSec,
  procCpuSeconds,
  procStatusKiB,
  pushBlobFile,
  readBody,
  request,
  round1,
  runBenchmark,
  startDistribution,
  startLayerd,
  startServer,
  writeResults,
} from './lib.mjs';

const REPO = 'bench/blob';

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

// ---------------------------------------------------------------- calibration servers

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

/** Pushes the blob file into a registry (lib's streamed monolithic upload) and logs the rate. */
async function pushBlob(server, blobPath, size, digest) {
  const { ms } = await pushBlobFile(server, REPO, blobPath, size, digest);
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
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${await readBody(res)}`);
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
  const isCalibration = (r) => summary[r[0]].calibration;
  const calibration = rows.filter(isCalibration);
  const divider = calibration.length ? [['calibration:', ...header.slice(1).map(() => '')]] : [];
  // header[0] padded so the first column is as wide as 'calibration:' even without calibration rows, as always.
  const out = [formatTable(['server'.padEnd('calibration:'.length), ...header.slice(1)], [...rows.filter((r) => !isCalibration(r)), ...divider, ...calibration])];
  const l = summary.layerd;
  const d = summary.distribution;
  if (l && d) {
    out.push('');
    out.push(`layerd / distribution throughput: single ${(l.singleMiBps / d.singleMiBps).toFixed(2)}x` + (c ? `, ${c}x concurrent ${(l.concurrentMiBps / d.concurrentMiBps).toFixed(2)}x` : ''));
    out.push(`layerd / distribution peak RSS (serve): ${(l.peakRssServeMiB / d.peakRssServeMiB).toFixed(2)}x`);
  }
  console.log(out.join('\n'));
}

async function main() {
  const opts = readOptions();
  const workDir = await makeTempDir('layerd-bench-');
  const blobPath = join(workDir, 'blob.bin');

  log(`creating a ${(opts.blobBytes / MiB).toFixed(0)} MiB random blob in ${workDir}`);
  const digest = await createBlob(blobPath, opts.blobBytes);
  log(`blob ${digest}`);

  const registries = [];
  if (!opts.skipLayerd) registries.push(await startLayerd(workDir, { nodeArgs: opts.layerdNodeArgs }));
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

  const file = await writeResults('blob-serve', {
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

await runBenchmark(main);
