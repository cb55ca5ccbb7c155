#!/usr/bin/env node
// Load benchmark: many clients at once on one node in front of a real seed registry (CNCF distribution,
// Debian's docker-registry), and the same clients on distribution's own pull-through cache
// (docker-registry with `proxy: remoteurl`) in front of the same seed, in the same run.
//
//   node scripts/bench/load.mjs                                   # the full run: 500 x 256 MiB, 64 x 16 MiB
//   node scripts/bench/load.mjs --clients 50 --blob-mb 32 --distinct 8 --distinct-mb 4   # a small first run
//   node scripts/bench/load.mjs --only same --skip-distribution  # one scenario, layerd alone
//
// Options (flag, or env): --clients BENCH_CLIENTS (500), --blob-mb BENCH_BLOB_MB (256), --distinct BENCH_DISTINCT (64),
// --distinct-mb BENCH_DISTINCT_MB (16), --same-rounds BENCH_SAME_ROUNDS (1), --distinct-rounds BENCH_DISTINCT_ROUNDS (3),
// --only BENCH_ONLY (same|distinct), --skip-layerd, --skip-distribution,
// --workers BENCH_WORKERS (client threads, default: the number of cpus), --layerd-bin BENCH_LAYERD_BIN,
// --layerd-args BENCH_LAYERD_ARGS (extra `layerd serve` flags), --idle-timeout-s BENCH_IDLE_TIMEOUT_S (120: a client
// that gets no byte for this long fails), --max-wall-s BENCH_MAX_WALL_S (1200: clients still running this long after
// the start are ended and fail, so a proxy that crawls still yields numbers).
//
// Scenarios, each on a proxy started with empty storage (so every blob is cold) and stopped afterwards:
//  same:     `clients` clients GET one blob of `blob-mb` MiB at the same moment.
//  distinct: `distinct` clients GET `distinct` different blobs of `distinct-mb` MiB each, one blob per client.
// Each scenario runs in rounds (the long one once by default, the short one 3 times), alternating which proxy goes
// first; ratios are per round, and their median is reported. Per scenario and proxy: time to complete per client (p50/p99/max, from the common start to the last byte),
// aggregate throughput (all bytes / time until the last client finished), the seed's blob GETs per digest (from
// its access log), the proxy's peak RSS (VmRSS sampled every 50 ms, and VmHWM, the kernel's own high-water mark),
// its peak number of open file descriptors, its CPU time, and the latency of a GET /v2/ ping sent every 100 ms
// while the load runs (how responsive the proxy's event loop stays). Every client hashes its body as it streams in
// and must get every byte with the right sha256.
//
// Why worker threads for the clients: 500 clients hashing 125 GiB is more CPU than one event loop has. In one thread
// the clients would queue behind each other's hashing and time-to-complete would measure the client. Worker threads
// (one per cpu) hash in parallel, and this script's main thread stays idle for what it measures itself: the /proc
// sampling and the ping, whose latency would otherwise include the clients' own event-loop delay. (A separate
// process would do the same; threads keep it to one script and no IPC framing.) The proxies run as their own
// processes either way, so the clients never share an event loop with what is measured. On a 2-core machine the
// clients, the proxy and the seed still compete for the same cores: absolute numbers are machine-bound, the
// layerd / distribution ratios are the comparison.
//
// Output: a table on stderr, one JSON line on stdout, the same JSON in .out/bench/load-<timestamp>.json.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  MiB,
  benchOutDir,
  formatTable,
  layerdBin,
  log,
  makeTempDir,
  mainThreadCpuSeconds,
  procCpuSeconds,
  procStatusKiB,
  pushBlobFile,
  removeTempDir,
  round1,
  round2,
  runBenchmark,
  startDistribution,
  startLayerd,
  stopServer,
  writeResults,
} from './lib.mjs';

const REPO = 'bench/load';

function readOptions() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: env.BENCH_CLIENTS ?? '500' },
      'blob-mb': { type: 'string', default: env.BENCH_BLOB_MB ?? '256' },
      distinct: { type: 'string', default: env.BENCH_DISTINCT ?? '64' },
      'distinct-mb': { type: 'string', default: env.BENCH_DISTINCT_MB ?? '16' },
      only: { type: 'string', default: env.BENCH_ONLY ?? '' },
      'same-rounds': { type: 'string', default: env.BENCH_SAME_ROUNDS ?? '1' },
      'distinct-rounds': { type: 'string', default: env.BENCH_DISTINCT_ROUNDS ?? '3' },
      'skip-layerd': { type: 'boolean', default: env.BENCH_SKIP_LAYERD === '1' },
      'skip-distribution': { type: 'boolean', default: env.BENCH_SKIP_DISTRIBUTION === '1' },
      workers: { type: 'string', default: env.BENCH_WORKERS ?? String(cpus().length) },
      'layerd-bin': { type: 'string', default: env.BENCH_LAYERD_BIN ?? layerdBin },
      'layerd-args': { type: 'string', default: env.BENCH_LAYERD_ARGS ?? '' },
      'idle-timeout-s': { type: 'string', default: env.BENCH_IDLE_TIMEOUT_S ?? '120' },
      'max-wall-s': { type: 'string', default: env.BENCH_MAX_WALL_S ?? '1200' },
    },
  });
  const opts = {
    clients: Number(values.clients),
    blobBytes: Math.round(Number(values['blob-mb']) * MiB),
    distinct: Number(values.distinct),
    distinctBytes: Math.round(Number(values['distinct-mb']) * MiB),
    sameRounds: Number(values['same-rounds']),
    distinctRounds: Number(values['distinct-rounds']),
    scenarios: values.only ? [values.only] : ['same', 'distinct'],
    proxies: [...(values['skip-layerd'] ? [] : ['layerd']), ...(values['skip-distribution'] ? [] : ['distribution'])],
    workers: Number(values.workers),
    layerdBin: resolve(values['layerd-bin']),
    layerdArgs: values['layerd-args'].split(/\s+/).filter(Boolean),
    idleTimeoutMs: Number(values['idle-timeout-s']) * 1000,
    maxWallMs: Number(values['max-wall-s']) * 1000,
  };
  const positive = ['sameRounds', 'distinctRounds', 'clients', 'blobBytes', 'distinct', 'distinctBytes', 'workers', 'idleTimeoutMs', 'maxWallMs'];
  if (positive.some((k) => !(opts[k] > 0))) throw new Error(`bad options: ${JSON.stringify(values)}`);
  if (opts.scenarios.some((s) => s !== 'same' && s !== 'distinct')) throw new Error(`--only: same or distinct, not ${values.only}`);
  if (opts.proxies.length === 0) throw new Error('nothing to measure: both proxies skipped');
  return opts;
}

// ---------------------------------------------------------------- blobs (random bytes, cached on disk)

/**
 * A file of random bytes under .out/bench/cache/ with its digest beside it (written last, so a half-made file is
 * never taken for done). Random bytes: what a compressed layer looks like, and nothing can shortcut them.
 */
async function ensureBlob(size, index) {
  const dir = join(benchOutDir, 'cache', 'load');
  const path = join(dir, `${size}-${index}.bin`);
  try {
    const meta = JSON.parse(await readFile(`${path}.json`, 'utf8'));
    if ((await stat(path)).size === size) return { path, size, digest: meta.digest };
  } catch (err) {
    if (err.code !== 'ENOENT') log(`rebuilding ${path} (${err.message})`);
  }
  await mkdir(dir, { recursive: true });
  const rand = promisify(randomBytes);
  const hash = createHash('sha256');
  const out = createWriteStream(`${path}.tmp`);
  for (let left = size; left > 0; ) {
    const chunk = await rand(Math.min(MiB, left));
    hash.update(chunk);
    left -= chunk.length;
    if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((res, rej) => out.end((err) => (err ? rej(err) : res())));
  await rename(`${path}.tmp`, path);
  const digest = `sha256:${hash.digest('hex')}`;
  await writeFile(`${path}.json`, JSON.stringify({ digest, size }) + '\n');
  return { path, size, digest };
}

// ---------------------------------------------------------------- clients

/**
 * Runs every job at once, spread over worker threads, and resolves with each job's result (in job order) and the
 * wall time from the common start until the last one finished.
 */
async function runClients(jobs, opts) {
  const n = Math.min(opts.workers, jobs.length);
  const shares = Array.from({ length: n }, (_, w) => jobs.filter((_, i) => i % n === w));
  const workers = shares.map(
    (share) => new Worker(new URL('./load-client.mjs', import.meta.url), { workerData: { jobs: share, idleTimeoutMs: opts.idleTimeoutMs, maxWallMs: opts.maxWallMs } }),
  );
  try {
    const message = (w) =>
      new Promise((res, rej) => {
        w.once('message', res);
        w.once('error', rej);
      });
    await Promise.all(workers.map(message)); // each says 'ready' once loaded
    const done = workers.map(message);
    const t0 = performance.now();
    for (const w of workers) w.postMessage('go');
    const results = (await Promise.all(done)).flat().sort((a, b) => a.i - b.i);
    return { results, wallMs: performance.now() - t0 };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

// ---------------------------------------------------------------- watching the proxy while the clients run

/** VmRSS and open fds every 50 ms, a GET /v2/ ping every 100 ms; stop() returns peaks and ping latencies. */
function watch(proxy) {
  let peakRssKiB = 0;
  let peakFds = 0;
  const pings = [];
  const sample = () => {
    try {
      peakRssKiB = Math.max(peakRssKiB, procStatusKiB(proxy.pid, 'VmRSS') ?? 0);
      peakFds = Math.max(peakFds, readdirSync(`/proc/${proxy.pid}/fd`).length);
    } catch {
      // the process is gone; the run will report its failure
    }
  };
  const sampler = setInterval(sample, 50);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let pinging = true;
  const pinger = (async () => {
    while (pinging) {
      const t0 = performance.now();
      await new Promise((res) => {
        const req = http.get(`${proxy.url}/v2/`, { agent }, (r) => {
          r.resume();
          r.on('end', res);
        });
        req.setTimeout(30_000, () => req.destroy());
        req.on('error', res);
      });
      pings.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 100)); // ping interval
    }
  })();
  return async () => {
    clearInterval(sampler);
    sample();
    pinging = false;
    await pinger;
    agent.destroy();
    return { peakRssKiB, peakFds, pings };
  };
}

/** Waits until the seed's access log has not moved for `quietMs` (distribution fills its cache in the background). */
async function seedQuiet(seed, quietMs = 1000, timeoutMs = 120_000) {
  const t0 = performance.now();
  let last = seed.accessLogLines();
  let since = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 100)); // poll interval
    const now = seed.accessLogLines();
    if (now !== last) {
      last = now;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) return;
  }
  log(`seed access log still moving after ${timeoutMs / 1000} s`);
}

// ---------------------------------------------------------------- one scenario on one proxy

/** The soft limit on open files a process runs with (node raises its own to the hard limit at start). */
function openFilesLimit(pid) {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? m[1] : null;
}

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);

async function startProxy(name, seed, opts) {
  const dir = await makeTempDir(`layerd-bench-load-${name}-`);
  if (name === 'layerd') {
    const host = `127.0.0.1:${seed.port}`;
    const args = ['--upstream', `${host}=${seed.url}`, '--default-registry', host, '--log-level', 'warn', ...opts.layerdArgs];
    return { dir, proxy: await startLayerd(dir, { args, bin: opts.layerdBin }) };
  }
  const proxy = await startDistribution(dir, { name: 'distribution', extraConfig: [`proxy: {remoteurl: ${seed.url}}`] });
  return { dir, proxy };
}

async function measure(scenario, name, seed, blobs, opts) {
  const { dir, proxy } = await startProxy(name, seed, opts);
  try {
    const jobs = (scenario === 'same' ? Array.from({ length: opts.clients }, () => blobs[0]) : blobs).map((b, i) => ({
      i,
      url: `${proxy.url}/v2/${REPO}/blobs/${b.digest}`,
      size: b.size,
      digest: b.digest,
    }));
    const digests = [...new Set(jobs.map((j) => j.digest))];
    const gets0 = new Map(digests.map((d) => [d, seed.blobGets.get(d) ?? 0]));
    const idleRssKiB = procStatusKiB(proxy.pid, 'VmRSS');
    const fdLimit = openFilesLimit(proxy.pid);
    const cpu0 = { proxy: procCpuSeconds(proxy.pid), main: mainThreadCpuSeconds(proxy.pid), seed: procCpuSeconds(seed.pid), clients: procCpuSeconds(process.pid) };
    const stop = watch(proxy);
    const { results, wallMs } = await runClients(jobs, opts);
    const w = await stop();
    const cpu = {
      proxySec: round2(procCpuSeconds(proxy.pid) - cpu0.proxy),
      proxyMainThreadPct: round1(((mainThreadCpuSeconds(proxy.pid) - cpu0.main) * 1000 * 100) / wallMs),
      seedSec: round2(procCpuSeconds(seed.pid) - cpu0.seed),
      clientsSec: round2(procCpuSeconds(process.pid) - cpu0.clients),
    };
    const vmHwmKiB = procStatusKiB(proxy.pid, 'VmHWM');
    await seedQuiet(seed);
    const seedGets = digests.map((d) => (seed.blobGets.get(d) ?? 0) - gets0.get(d));
    const ok = results.filter((r) => r.ok);
    // A failed client counts with the time it failed at (a cap, a timeout): leaving it out would flatter a proxy.
    const times = results.map((r) => r.ms).sort((a, b) => a - b);
    const pings = w.pings.sort((a, b) => a - b);
    const failures = results.filter((r) => !r.ok);
    // Every byte delivered counts towards throughput, also those of a client ended by the cap.
    const bytes = results.reduce((a, r) => a + r.bytes, 0);
    const out = {
      clients: jobs.length,
      ok: ok.length,
      failed: failures.length,
      failures: [...new Set(failures.map((f) => f.error))].slice(0, 5),
      p50Ms: round1(pct(times, 50)),
      p99Ms: round1(pct(times, 99)),
      maxMs: round1(times.at(-1)),
      ttfbP50Ms: round1(pct(ok.map((r) => r.ttfbMs).sort((a, b) => a - b), 50)),
      wallMs: round1(wallMs),
      mibPerSec: round1(bytes / MiB / (wallMs / 1000)),
      seedBlobGets: seedGets.reduce((a, b) => a + b, 0),
      seedBlobGetsPerDigest: { min: Math.min(...seedGets), max: Math.max(...seedGets) },
      peakRssMiB: round1(w.peakRssKiB / 1024),
      vmHwmMiB: round1(vmHwmKiB / 1024),
      idleRssMiB: round1(idleRssKiB / 1024),
      peakFds: w.peakFds,
      fdLimit,
      pingP50Ms: round1(pct(pings, 50)),
      pingP99Ms: round1(pct(pings, 99)),
      pings: pings.length,
      cpu,
    };
    log(
      `${scenario.padEnd(8)} ${name.padEnd(12)} ${out.ok}/${out.clients} ok, p50 ${(out.p50Ms / 1000).toFixed(2)} s, p99 ${(out.p99Ms / 1000).toFixed(2)} s, ` +
        `${out.mibPerSec} MiB/s, seed GETs ${out.seedBlobGets}, peak RSS ${out.peakRssMiB} MiB (HWM ${out.vmHwmMiB}), fds ${out.peakFds}` +
        (out.failed ? `, failures: ${out.failures.join('; ')}` : ''),
    );
    if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) throw new Error(`${name} died during the run\n${proxy.output()}`);
    return out;
  } finally {
    await stopServer(proxy);
    await removeTempDir(dir);
  }
}

// ---------------------------------------------------------------- report

function ratios(l, d) {
  if (!l || !d) return undefined;
  const r = (a, b) => (a && b ? round2(a / b) : null);
  return {
    throughput: r(l.mibPerSec, d.mibPerSec),
    p50: r(l.p50Ms, d.p50Ms),
    p99: r(l.p99Ms, d.p99Ms),
    seedBlobGets: r(l.seedBlobGets, d.seedBlobGets),
    peakRss: r(l.vmHwmMiB, d.vmHwmMiB),
  };
}

function table(results) {
  const rows = [];
  for (const [scenario, { rounds }] of Object.entries(results)) {
    for (const [k, round] of rounds.entries()) {
      for (const name of round.order) {
        const r = round[name];
        rows.push([
          scenario,
          k + 1,
          name,
          `${r.ok}/${r.clients}`,
          (r.p50Ms / 1000).toFixed(2),
          (r.p99Ms / 1000).toFixed(2),
          r.mibPerSec,
          r.seedBlobGets,
          r.vmHwmMiB,
          r.peakFds,
          `${r.pingP50Ms} / ${r.pingP99Ms}`,
          r.cpu.proxySec,
        ]);
      }
    }
  }
  const header = ['scenario', 'round', 'proxy', 'ok', 'p50 s', 'p99 s', 'MiB/s', 'seed GETs', 'peak RSS MiB', 'peak fds', 'ping p50/p99 ms', 'proxy CPU s'];
  const lines = [formatTable(header, rows)];
  for (const [scenario, { ratios: q, rounds }] of Object.entries(results)) {
    if (!q) continue;
    const per = rounds.map((r) => r.ratios.throughput).join(', ');
    lines.push(
      `${scenario}: layerd / distribution (median of ${rounds.length} round${rounds.length > 1 ? 's' : ''})  throughput ${q.throughput}x (per round ${per}), ` +
        `p50 ${q.p50}x, p99 ${q.p99}x, seed GETs ${q.seedBlobGets}x, peak RSS ${q.peakRss}x`,
    );
  }
  return lines.join('\n');
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (s.length === 0) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : round2((s[m - 1] + s[m]) / 2);
};

/** Rounds of one scenario, alternating which proxy goes first (a warm page cache or a busy minute favours no one). */
async function runScenario(scenario, seed, blobs, opts) {
  const rounds = [];
  const count = scenario === 'same' ? opts.sameRounds : opts.distinctRounds;
  for (let k = 0; k < count; k++) {
    const order = opts.proxies.map((_, i) => opts.proxies[(i + k) % opts.proxies.length]);
    const round = { order };
    for (const name of order) round[name] = await measure(scenario, name, seed, blobs, opts);
    const q = ratios(round.layerd, round.distribution);
    if (q) round.ratios = q;
    rounds.push(round);
  }
  const out = { rounds };
  if (rounds[0].ratios) out.ratios = Object.fromEntries(Object.keys(rounds[0].ratios).map((k) => [k, median(rounds.map((r) => r.ratios[k]))]));
  return out;
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = readOptions();
  const blobs = {};
  if (opts.scenarios.includes('same')) blobs.same = [await ensureBlob(opts.blobBytes, 0)];
  if (opts.scenarios.includes('distinct')) blobs.distinct = await Promise.all(Array.from({ length: opts.distinct }, (_, i) => ensureBlob(opts.distinctBytes, i)));

  const seedDir = await makeTempDir('layerd-bench-load-seed-');
  const blobGets = new Map();
  const seed = await startDistribution(seedDir, {
    name: 'seed',
    onLine: (l) => {
      const m = /"GET \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64})/.exec(l);
      if (m) blobGets.set(m[1], (blobGets.get(m[1]) ?? 0) + 1);
    },
  });
  seed.blobGets = blobGets;
  for (const b of Object.values(blobs).flat()) await pushBlobFile(seed, REPO, b.path, b.size, b.digest);
  log(`seed holds ${Object.values(blobs).flat().length} blobs`);

  const load0 = loadavg();
  const results = {};
  for (const scenario of opts.scenarios) results[scenario] = await runScenario(scenario, seed, blobs[scenario], opts);
  const load1 = loadavg();
  await stopServer(seed);

  process.stderr.write(`\n${table(results)}\n`);
  process.stderr.write(`load avg (1 min) ${load0[0].toFixed(2)} before, ${load1[0].toFixed(2)} after, on ${cpus().length} cpus\n`);
  const summary = {
    bench: 'load',
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, loadBefore: load0, loadAfter: load1 },
    options: { ...opts, layerdBin: undefined },
    blobs: Object.fromEntries(Object.entries(blobs).map(([k, v]) => [k, { count: v.length, bytes: v[0].size }])),
    results,
  };
  const file = await writeResults('load', summary);
  process.stderr.write(`results: ${file}\n`);
  console.log(JSON.stringify(summary));
}

await runBenchmark(main);
