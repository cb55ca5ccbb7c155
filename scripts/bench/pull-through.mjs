#!/usr/bin/env node
// Pull-through benchmark: a 3-layer ~300 MiB image pulled cold and warm through layerd and through CNCF
// distribution's own pull-through cache (docker-registry with `proxy: remoteurl`), both in front of the same seed.
//
//   node scripts/bench/pull-through.mjs                       # 3 rounds, 3 layers × 100 MiB
//   node scripts/bench/pull-through.mjs --rounds 5 --layer-mb 20
//   node scripts/bench/pull-through.mjs --skip-layerd         # distribution's proxy alone
//   node scripts/bench/pull-through.mjs --cpu-prof            # profile layerd, print its top self-time functions
//
// Options (flag, or env): --rounds BENCH_ROUNDS (3), --layers BENCH_LAYERS (3), --layer-mb BENCH_LAYER_MB (100, MiB),
// --skip-layerd BENCH_SKIP_LAYERD=1, --skip-distribution BENCH_SKIP_DISTRIBUTION=1, --cpu-prof BENCH_CPU_PROF=1,
// --layerd-node-args BENCH_LAYERD_NODE_ARGS (extra node flags for layerd), --layerd-bin BENCH_LAYERD_BIN (another
// build's cli.js to measure instead of dist/cli.js).
//
// One run: build (or reuse from .out/bench/cache/) an OCI image layout with uncompressed tar layers of random bytes
// (random bytes do not compress, so gzip would only burn CPU), start a seed registry and push the image to it.
// Then per round: start both proxies with empty storage, pull once through each (cold), then once more through
// each (warm), alternating which proxy goes first from round to round; stop both and delete their storage.
// After every pull the script waits until the proxy has stored every blob and the seed's access log is quiet, so
// background fills never overlap the next measurement.
//
// A pull is what containerd does: GET the manifest by tag, then GET config and layers, 3 at a time, on keep-alive
// connections, reading every body to the end and checking its sha256. Wall time per pull is measured.
// Results: a table on stdout, everything per pull in .out/bench/pull-through-<timestamp>.json.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';
import {
  MiB,
  benchOutDir,
  cpuProfiles,
  mainThreadCpuSeconds,
  monotonicUs,
  formatTable,
  layerdBin,
  log,
  makeTempDir,
  median,
  mibPerSec,
  procCpuSeconds,
  procStatusKiB,
  readBody,
  removeTempDir,
  request,
  round1,
  round2,
  runBenchmark,
  startDistribution,
  startLayerd,
  stopServer,
  summarizeCpuProfiles,
  timestamp,
  writeResults,
} from './lib.mjs';

const REPO = 'bench/pull-through';
const TAG = 'v1';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
// What containerd sends: both the OCI and the Docker types, manifests and indexes.
const MANIFEST_ACCEPT = [
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');
const PULL_CONCURRENCY = 3; // containerd's default max concurrent downloads
const SETTLE_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------- options

function readOptions() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: env.BENCH_ROUNDS ?? '3' },
      layers: { type: 'string', default: env.BENCH_LAYERS ?? '3' },
      'layer-mb': { type: 'string', default: env.BENCH_LAYER_MB ?? '100' },
      'skip-layerd': { type: 'boolean', default: env.BENCH_SKIP_LAYERD === '1' },
      'skip-distribution': { type: 'boolean', default: env.BENCH_SKIP_DISTRIBUTION === '1' },
      'cpu-prof': { type: 'boolean', default: env.BENCH_CPU_PROF === '1' },
      'layerd-node-args': { type: 'string', default: env.BENCH_LAYERD_NODE_ARGS ?? '' },
      'layerd-bin': { type: 'string', default: env.BENCH_LAYERD_BIN ?? layerdBin },
    },
  });
  const opts = {
    rounds: Number(values.rounds),
    layers: Number(values.layers),
    layerBytes: Math.round(Number(values['layer-mb']) * MiB),
    skipLayerd: values['skip-layerd'],
    skipDistribution: values['skip-distribution'],
    cpuProf: values['cpu-prof'],
    layerdNodeArgs: values['layerd-node-args'].split(/\s+/).filter(Boolean),
    layerdBin: resolve(values['layerd-bin']),
  };
  if (!(opts.rounds >= 1) || !(opts.layers >= 1) || !(opts.layerBytes > 0)) throw new Error(`bad options: ${JSON.stringify(values)}`);
  if (opts.skipLayerd && opts.skipDistribution) throw new Error('nothing to measure: both proxies skipped');
  return opts;
}

// ---------------------------------------------------------------- the image (an OCI layout, cached)

/** A ustar header for one regular file; `tar` only needs name, mode, size, mtime, type and a valid checksum. */
function tarHeader(name, size) {
  const h = Buffer.alloc(512);
  const octal = (value, width) => value.toString(8).padStart(width - 1, '0') + '\0';
  h.write(name, 0, 100);
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1_700_000_000, 12), 136);
  h.write('        ', 148); // the checksum is computed over the header with this field as spaces
  h.write('0', 156); // regular file
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148);
  return h;
}

/** Streams a one-file tar of `bytes` random bytes to `path`, hashing as it goes; never holds the layer in memory. */
async function writeRandomTarLayer(path, fileName, bytes) {
  const hash = createHash('sha256');
  const rand = promisify(randomBytes);
  let size = 0;
  async function* parts() {
    const emit = (b) => {
      hash.update(b);
      size += b.length;
      return b;
    };
    yield emit(tarHeader(fileName, bytes));
    for (let left = bytes; left > 0; left -= MiB) yield emit(await rand(Math.min(MiB, left)));
    const pad = (512 - (bytes % 512)) % 512;
    yield emit(Buffer.alloc(pad + 1024)); // pad the file to a block, then two zero blocks end the archive
  }
  await pipeline(parts, createWriteStream(path));
  return { mediaType: OCI_LAYER_TAR, digest: `sha256:${hash.digest('hex')}`, size };
}

const sha256 = (buf) => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
const blobFile = (layout, digest) => join(layout, 'blobs', ...digest.split(':'));

/**
 * The image under .out/bench/cache/pull-through-<layers>x<MiB>/: an OCI layout plus image.json (written last, so
 * its presence means the layout is complete). Reused when every blob file is still there with the right size.
 */
async function ensureImage(opts) {
  const layout = join(benchOutDir, 'cache', `pull-through-${opts.layers}x${opts.layerBytes / MiB}MiB`);
  const infoFile = join(layout, 'image.json');
  try {
    const image = JSON.parse(await readFile(infoFile, 'utf8'));
    for (const d of [image.config, ...image.layers]) {
      if ((await stat(blobFile(layout, d.digest))).size !== d.size) throw new Error(`${d.digest} has the wrong size`);
    }
    image.manifest = Buffer.from(image.manifestText);
    log(`reusing the image in ${layout}`);
    return { layout, ...image };
  } catch (err) {
    if (err.code !== 'ENOENT') log(`rebuilding the cached image (${err.message})`);
  }

  await rm(layout, { recursive: true, force: true });
  const building = `${layout}.building-${process.pid}`;
  await mkdir(join(building, 'blobs', 'sha256'), { recursive: true });
  try {
    return await buildImage(opts, building, layout);
  } catch (err) {
    await rm(building, { recursive: true, force: true }); // no half-built layout left behind
    throw err;
  }
}

async function buildImage(opts, building, layout) {
  const t0 = performance.now();
  const layers = [];
  for (let i = 0; i < opts.layers; i++) {
    const tmp = join(building, `layer-${i}.tar`);
    const d = await writeRandomTarLayer(tmp, `data/layer-${i}.bin`, opts.layerBytes);
    await rename(tmp, blobFile(building, d.digest));
    layers.push(d);
  }
  // Uncompressed layers: diff_id (digest of the uncompressed tar) equals the layer digest.
  const configBuf = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const config = { mediaType: OCI_CONFIG, digest: sha256(configBuf), size: configBuf.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }));
  const manifestDesc = { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length };
  await writeFile(blobFile(building, config.digest), configBuf);
  await writeFile(blobFile(building, manifestDesc.digest), manifest);
  await writeFile(join(building, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const refName = { 'org.opencontainers.image.ref.name': TAG };
  await writeFile(join(building, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifestDesc, annotations: refName }] }));
  const info = { manifestDigest: manifestDesc.digest, manifestText: manifest.toString(), config, layers };
  await writeFile(join(building, 'image.json'), JSON.stringify(info, null, 2) + '\n');
  await rename(building, layout);
  log(`built the image in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${layout}`);
  return { layout, ...info, manifest };
}

// ---------------------------------------------------------------- push to the seed

/** Monolithic upload: POST opens it, PUT ?digest= streams the file as the body. */
async function pushBlob(seed, layout, d) {
  const post = await request(`${seed.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': 0 } });
  const postBody = await readBody(post);
  if (post.statusCode !== 202 || !post.headers.location) throw new Error(`seed: POST upload → ${post.statusCode} ${postBody}`);
  const putUrl = new URL(post.headers.location, seed.url);
  putUrl.searchParams.set('digest', d.digest);
  const put = await request(putUrl, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': d.size },
    body: createReadStream(blobFile(layout, d.digest), { highWaterMark: MiB }),
  });
  const putBody = await readBody(put);
  if (put.statusCode !== 201) throw new Error(`seed: PUT ${d.digest} → ${put.statusCode} ${putBody}`);
}

async function pushImage(seed, image) {
  const t0 = performance.now();
  await Promise.all([image.config, ...image.layers].map((d) => pushBlob(seed, image.layout, d)));
  const res = await request(`${seed.url}/v2/${REPO}/manifests/${TAG}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST, 'content-length': image.manifest.length },
    body: image.manifest,
  });
  const body = await readBody(res);
  if (res.statusCode !== 201) throw new Error(`seed: PUT manifest → ${res.statusCode} ${body}`);
  log(`pushed the image to the seed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------- the pull (the measured part)

/**
 * GETs url on `agent`, hashing the body as it streams; checks status, size and digest. Also times the body:
 * ttfbMs (request to first body byte) and tailMs (the gap before the last chunk: a proxy that holds back the end of
 * a blob until it has verified and stored it shows that wait here).
 */
async function getVerified(url, agent, { headers = {}, digest, size }) {
  const t0 = performance.now();
  const res = await request(url, { headers, agent });
  if (res.statusCode !== 200) throw new Error(`GET ${url} → ${res.statusCode} ${await readBody(res)}`);
  const h = createHash('sha256');
  let bytes = 0;
  const chunks = [];
  const keep = size < MiB; // manifests and configs are small and the caller may want them
  let first;
  let previous;
  let last;
  await new Promise((ok, fail) => {
    res.on('data', (c) => {
      previous = last;
      last = performance.now();
      first ??= last;
      bytes += c.length;
      h.update(c);
      if (keep) chunks.push(c);
    });
    res.on('end', ok);
    res.on('error', fail);
  });
  const got = `sha256:${h.digest('hex')}`;
  if (bytes !== size || got !== digest) throw new Error(`GET ${url}: ${bytes} bytes with ${got}, want ${size} bytes with ${digest}`);
  const timing = { ms: round1(performance.now() - t0), ttfbMs: round1((first ?? t0) - t0), tailMs: round1(previous ? last - previous : 0) };
  return { headers: res.headers, body: keep ? Buffer.concat(chunks) : null, bytes, timing };
}

/** One pull through `proxy`: manifest by tag, then config and layers 3 at a time. Returns wall time and bytes. */
async function pull(proxy, image) {
  // A fresh keep-alive agent per pull: connections are reused within the pull, never carried over from the last one.
  const agent = new http.Agent({ keepAlive: true, maxSockets: PULL_CONCURRENCY });
  const sources = {}; // X-Layerd-Source values seen (layerd only): shows whether a blob came from upstream or local
  const note = (headers) => {
    const s = headers['x-layerd-source'];
    if (s) sources[s] = (sources[s] ?? 0) + 1;
  };
  const base = `${proxy.url}/v2/${REPO}`;
  const cpu0 = procCpuSeconds(proxy.pid);
  const main0 = mainThreadCpuSeconds(proxy.pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const m = await getVerified(`${base}/manifests/${TAG}`, agent, {
      headers: { accept: MANIFEST_ACCEPT },
      digest: image.manifestDigest,
      size: image.manifest.length,
    });
    note(m.headers);
    const manifest = JSON.parse(m.body.toString());
    const queue = [manifest.config, ...manifest.layers];
    let bytes = m.bytes;
    const blobs = [];
    const worker = async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const r = await getVerified(`${base}/blobs/${d.digest}`, agent, d);
        note(r.headers);
        bytes += r.bytes;
        blobs.push({ digest: d.digest, size: d.size, ...r.timing });
      }
    };
    await Promise.all(Array.from({ length: PULL_CONCURRENCY }, worker));
    const ms = performance.now() - t0;
    const client = process.cpuUsage(client0);
    return {
      ms: round1(ms),
      mibPerSec: round1(mibPerSec(bytes, ms)),
      bytes,
      proxyCpuSec: round2(procCpuSeconds(proxy.pid) - cpu0),
      // For layerd, the event loop's share of the wall time: near 100% means its one thread set the pace.
      proxyMainThreadPct: round1(((mainThreadCpuSeconds(proxy.pid) - main0) * 1000 / ms) * 100),
      clientCpuPct: round1(((client.user + client.system) / 1000 / ms) * 100),
      maxTailMs: Math.max(...blobs.map((b) => b.tailMs)),
      manifestMs: m.timing.ms,
      blobs,
      ...(Object.keys(sources).length ? { sources } : {}),
    };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------- settling between pulls

/** Sizes of every file under `root`, keyed by the blob hex it holds: distribution keeps …/<hex>/data, layerd …/<hex>. */
async function storedBlobSizes(root) {
  const sizes = new Map();
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const dir = e.parentPath ?? e.path;
    const hex = e.name === 'data' ? dir.slice(dir.lastIndexOf('/') + 1) : e.name;
    if (!/^[0-9a-f]{64}$/.test(hex)) continue;
    sizes.set(hex, (await stat(join(dir, e.name)).catch(() => ({ size: -1 }))).size);
  }
  return sizes;
}

/**
 * Waits until the proxy's storage holds every blob of the image at full size and the seed's access log has not
 * moved for 300 ms (distribution 2.8 fills its cache in a background fetch that can outlive the client's GET).
 * Returns how long that took after the pull ended, and whether everything was stored.
 */
async function settle(proxy, seed, image) {
  const t0 = performance.now();
  const want = [image.config, ...image.layers];
  let stored = false;
  let quietSince = performance.now();
  let lastLines = seed.accessLogLines();
  while (performance.now() - t0 < SETTLE_TIMEOUT_MS) {
    if (!stored) {
      const sizes = await storedBlobSizes(proxy.dataDir);
      stored = want.every((d) => sizes.get(d.digest.slice('sha256:'.length)) === d.size);
    }
    const lines = seed.accessLogLines();
    if (lines !== lastLines) {
      lastLines = lines;
      quietSince = performance.now();
    }
    if (stored && performance.now() - quietSince >= 300) break;
    await new Promise((r) => setTimeout(r, 50)); // poll interval
  }
  if (!stored) log(`${proxy.name}: not every blob is in its storage after ${SETTLE_TIMEOUT_MS / 1000} s`);
  return { settleMs: round1(performance.now() - t0), stored };
}

// ---------------------------------------------------------------- a round

const diffCounts = (after, before) =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v > 0));

async function startProxies(opts, seed) {
  const dir = await makeTempDir('layerd-bench-proxies-');
  const proxies = [];
  if (!opts.skipLayerd) {
    const host = `127.0.0.1:${seed.port}`;
    const nodeArgs = [...opts.layerdNodeArgs, ...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.profDir}`] : [])];
    const args = ['--upstream', `${host}=${seed.url}`, '--default-registry', host];
    proxies.push(await startLayerd(dir, { args, nodeArgs, bin: opts.layerdBin }));
  }
  if (!opts.skipDistribution) {
    const proxy = await startDistribution(dir, { name: 'distribution', extraConfig: [`proxy: {remoteurl: ${seed.url}}`] });
    proxies.push(proxy);
  }
  return { dir, proxies };
}

async function measurePull(proxy, seed, image, kind, round) {
  const before = { ...seed.counts };
  const cpu0 = { proxy: procCpuSeconds(proxy.pid), seed: procCpuSeconds(seed.pid) };
  const startUs = monotonicUs();
  const r = await pull(proxy, image);
  r.windowUs = [startUs, monotonicUs()]; // to pick this pull's samples out of a CPU profile
  const s = await settle(proxy, seed, image);
  const seedRequests = diffCounts(seed.counts, before);
  // CPU up to the end of settling: includes a cache fill that outlives the pull, and what the seed spent serving it.
  s.proxyCpuSecTotal = round2(procCpuSeconds(proxy.pid) - cpu0.proxy);
  s.seedCpuSec = round2(procCpuSeconds(seed.pid) - cpu0.seed);
  log(
    `round ${round} ${kind.padEnd(4)} ${proxy.name.padEnd(12)} ${(r.ms / 1000).toFixed(2)} s ${String(r.mibPerSec).padStart(6)} MiB/s` +
      `  manifest ${r.manifestMs} ms, max tail ${r.maxTailMs} ms  seed: ${JSON.stringify(seedRequests)}${r.sources ? `  sources: ${JSON.stringify(r.sources)}` : ''}`,
  );
  return { ...r, ...s, seedRequests };
}

async function runRound(opts, seed, image, i) {
  const { dir, proxies } = await startProxies(opts, seed);
  // Alternate who goes first, so a warm-up or page-cache effect does not always favour the same proxy.
  const order = proxies.map((_, k) => proxies[(k + i) % proxies.length]);
  const round = { round: i + 1, order: order.map((p) => p.name), pids: {}, cold: {}, warm: {}, vmHwmMiB: {} };
  for (const p of proxies) round.pids[p.name] = p.pid;
  for (const p of order) round.cold[p.name] = await measurePull(p, seed, image, 'cold', i + 1);
  for (const p of order) round.warm[p.name] = await measurePull(p, seed, image, 'warm', i + 1);
  // Each proxy started empty this round, so its high-water mark covers exactly one cold and one warm pull.
  for (const p of proxies) round.vmHwmMiB[p.name] = round1(procStatusKiB(p.pid, 'VmHWM') / 1024);
  for (const p of proxies) await stopServer(p);
  await removeTempDir(dir);
  return round;
}

// ---------------------------------------------------------------- report

function summarize(names, rounds) {
  const pick = (name, kind, f) => median(rounds.map((r) => (r[kind][name] ? f(r[kind][name]) : null)));
  const seedGets = (x) => (x.seedRequests['GET blob'] ?? 0);
  const seedManifest = (x) => (x.seedRequests['GET manifest'] ?? 0) + (x.seedRequests['HEAD manifest'] ?? 0);
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        coldMs: round1(pick(n, 'cold', (x) => x.ms)),
        coldMiBps: round1(pick(n, 'cold', (x) => x.mibPerSec)),
        warmMs: round1(pick(n, 'warm', (x) => x.ms)),
        warmMiBps: round1(pick(n, 'warm', (x) => x.mibPerSec)),
        seedBlobGetsCold: pick(n, 'cold', seedGets),
        seedBlobGetsWarm: pick(n, 'warm', seedGets),
        seedManifestReqsCold: pick(n, 'cold', seedManifest),
        seedManifestReqsWarm: pick(n, 'warm', seedManifest),
        proxyCpuSecCold: round2(pick(n, 'cold', (x) => x.proxyCpuSecTotal)),
        proxyCpuSecWarm: round2(pick(n, 'warm', (x) => x.proxyCpuSecTotal)),
        seedCpuSecCold: round2(pick(n, 'cold', (x) => x.seedCpuSec)),
        clientCpuPctCold: round1(pick(n, 'cold', (x) => x.clientCpuPct)),
        mainThreadPctCold: round1(pick(n, 'cold', (x) => x.proxyMainThreadPct)),
        mainThreadPctWarm: round1(pick(n, 'warm', (x) => x.proxyMainThreadPct)),
        manifestMsCold: round1(pick(n, 'cold', (x) => x.manifestMs)),
        maxTailMsCold: round1(pick(n, 'cold', (x) => x.maxTailMs)),
        settleMsCold: round1(pick(n, 'cold', (x) => x.settleMs)),
        peakVmHwmMiB: round1(Math.max(...rounds.map((r) => r.vmHwmMiB[n] ?? 0))),
      },
    ]),
  );
}

/** layerd ÷ distribution throughput within each round: pairs pulls made minutes apart, not a whole run apart. */
function perRoundRatios(rounds, kind) {
  return rounds
    .filter((r) => r[kind].layerd && r[kind].distribution)
    .map((r) => round2(r[kind].layerd.mibPerSec / r[kind].distribution.mibPerSec));
}

function report(summary, rounds, image) {
  const rows = Object.entries(summary).map(([n, s]) => [
    n,
    (s.coldMs / 1000).toFixed(2),
    s.coldMiBps,
    (s.warmMs / 1000).toFixed(2),
    s.warmMiBps,
    `${s.seedBlobGetsCold} / ${s.seedBlobGetsWarm}`,
    `${s.seedManifestReqsCold} / ${s.seedManifestReqsWarm}`,
    `${s.proxyCpuSecCold} / ${s.proxyCpuSecWarm}`,
    s.seedCpuSecCold,
    s.maxTailMsCold,
    s.peakVmHwmMiB,
  ]);
  const header = [
    'proxy',
    'cold s',
    'cold MiB/s',
    'warm s',
    'warm MiB/s',
    'seed blob GETs cold/warm',
    'seed manifest reqs cold/warm',
    'proxy CPU s cold/warm',
    'seed CPU s cold',
    'cold last-chunk wait ms',
    'peak RSS MiB',
  ];
  const lines = [formatTable(header, rows)];
  const l = summary.layerd;
  const d = summary.distribution;
  if (l && d) {
    const verdict = (x, target) => `${x.toFixed(2)}x (target >= ${target.toFixed(1)}x: ${x >= target ? 'met' : 'MISSED'})`;
    lines.push('');
    lines.push(`layerd / distribution throughput: cold ${verdict(l.coldMiBps / d.coldMiBps, 0.9)}, warm ${verdict(l.warmMiBps / d.warmMiBps, 1.0)}`);
    const cold = perRoundRatios(rounds, 'cold');
    const warm = perRoundRatios(rounds, 'warm');
    lines.push(`  per round: cold ${cold.join(', ')} (median ${median(cold)}); warm ${warm.join(', ')} (median ${median(warm)})`);
  }
  if (l) {
    lines.push(
      `layerd main thread (event loop) CPU during pulls: cold ${l.mainThreadPctCold}%, warm ${l.mainThreadPctWarm}% of wall time ` +
        `(near 100%: the event loop, not the network or disk, set the pace); client CPU during cold pulls ${l.clientCpuPctCold}%`,
    );
  }
  lines.push(`expected seed blob GETs per cold pull: ${1 + image.layers.length} (config + ${image.layers.length} layers)`);
  return lines.join('\n');
}

/**
 * layerd's CPU profiles (one per round: a fresh process each time), summarized over the cold pulls and over the
 * warm pulls separately; start-up, settling and shutdown are left out.
 */
async function reportProfiles(opts, rounds) {
  const files = await cpuProfiles(opts.profDir);
  const out = {};
  for (const kind of ['cold', 'warm']) {
    const entries = rounds
      .map((r) => ({ file: files.find((f) => f.includes(`.${r.pids.layerd}.`)), windowsUs: [r[kind].layerd.windowUs] }))
      .filter((e) => e.file);
    if (entries.length === 0) continue;
    const s = await summarizeCpuProfiles(entries, { top: 15 });
    out[kind] = s;
    console.log(`\nlayerd CPU profile, ${kind} pulls (${entries.length}): ${(s.busyMs / 1000).toFixed(2)} s busy of ${(s.sampledMs / 1000).toFixed(2)} s; top self time:`);
    console.log(formatTable(['function', 'self ms', '% of busy', 'mostly via'], s.top.map((t) => [t.fn, t.selfMs, t.pctOfBusy, t.via])));
  }
  console.log(`profiles: ${opts.profDir} (open in Chrome DevTools › Performance, or VS Code)`);
  return out;
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = readOptions();
  if (opts.cpuProf) opts.profDir = join(benchOutDir, `prof-pull-through-${timestamp()}`);
  const image = await ensureImage(opts);
  const imageBytes = image.manifest.length + image.config.size + image.layers.reduce((a, l) => a + l.size, 0);
  log(`image ${image.manifestDigest}: ${image.layers.length} layers, ${(imageBytes / MiB).toFixed(1)} MiB`);

  const seedDir = await makeTempDir('layerd-bench-seed-');
  const seed = await startDistribution(seedDir, { name: 'seed' });
  await pushImage(seed, image);

  const loadBefore = loadavg();
  const rounds = [];
  for (let i = 0; i < opts.rounds; i++) rounds.push(await runRound(opts, seed, image, i));
  const loadAfter = loadavg();
  await stopServer(seed);

  const names = [...(opts.skipLayerd ? [] : ['layerd']), ...(opts.skipDistribution ? [] : ['distribution'])];
  const summary = summarize(names, rounds);
  const load = `load avg (1 min) ${loadBefore[0].toFixed(2)} before, ${loadAfter[0].toFixed(2)} after, on ${cpus().length} cpus`;
  console.log(`\nimage ${(imageBytes / MiB).toFixed(1)} MiB (${image.layers.length} layers), ${opts.rounds} rounds, medians (1 MiB = 2^20 bytes); ${load}\n`);
  console.log(report(summary, rounds, image));
  if (Math.max(loadBefore[0], loadAfter[0]) > cpus().length) {
    console.log(`\nwarning: the load average exceeded the ${cpus().length} cpus: other work competed with this run, expect noise`);
  }
  const profiles = opts.cpuProf ? await reportProfiles(opts, rounds) : undefined;

  const file = await writeResults('pull-through', {
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, loadBefore, loadAfter },
    options: opts,
    image: { manifestDigest: image.manifestDigest, bytes: imageBytes, config: image.config, layers: image.layers },
    summary,
    ratios: { cold: perRoundRatios(rounds, 'cold'), warm: perRoundRatios(rounds, 'warm') },
    rounds,
    ...(profiles ? { profiles } : {}),
  });
  console.log(`\nresults: ${file}`);
}

await runBenchmark(main);
