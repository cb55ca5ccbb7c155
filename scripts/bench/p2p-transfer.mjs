#!/usr/bin/env node
// Node-to-node transfer of one blob: over layerd's blob protocol (libp2p) against plain HTTP between the same
// two hosts, in one run, in interleaved rounds.
//
//   node scripts/bench/p2p-transfer.mjs                     # 512 MiB blob, 3 rounds
//   BENCH_MB=64 node scripts/bench/p2p-transfer.mjs --rounds 2
//   node scripts/bench/p2p-transfer.mjs --cpu-prof          # plus one profiled p2p transfer (both nodes)
//   BENCH_MB=256 node scripts/bench/p2p-transfer.mjs --rounds 2 --methods p2p,libp2p-raw,sha256 --psk
//                                                          # issue 14's targets, with and without a swarm key
//   BENCH_FETCHER_VARIANTS='[{"rangeBytes":33554432},{"parallel":2}]' node scripts/bench/p2p-transfer.mjs --methods p2p
//
// Options (flag, or env): --mb BENCH_MB (512), --rounds BENCH_ROUNDS (3), --warm-mb BENCH_WARM_MB (64: each fresh B,
// and the raw receiver, first moves that much of another blob untimed, as a long-lived daemon is warm; 0: measure
// cold processes), --perf BENCH_PERF=1 (Linux perf samples of B during each transfer, every thread; with
// BENCH_PERF_STAT=<events> counts instead, BENCH_PERF_EVENT=<event> samples of that event), --methods BENCH_METHODS (comma list,
// default all six below), --psk BENCH_PSK=1 (also every p2p and libp2p-raw method with a swarm key: a second A and a
// second raw sender run a private network, and B or the raw receiver join it), --raw-streams BENCH_RAW_STREAMS
// (streams of the libp2p-raw method, default 1 like the blob protocol's one stream per provider), --cpu-prof BENCH_CPU_PROF=1, --layerd-node-args BENCH_LAYERD_NODE_ARGS (extra node flags
// for the fetching node B), --layerd-bin BENCH_LAYERD_BIN, --fetcher-variants BENCH_FETCHER_VARIANTS (a JSON array
// of PeerFetcher settings to try on B, e.g. [{"rangeBytes":33554432},{"parallel":2}]: each adds a method
// "p2p <settings>" to the rounds, interleaved with the others; applied by peer-fetcher-overrides.mjs since they
// are not `layerd serve` options; an "env" key in a variant sets environment variables of B instead, e.g.
// {"env":{"MALLOC_MMAP_THRESHOLD_":"33554432"}} to see what fresh-memory page faults cost; a "bin" key runs B from
// another build, e.g. [{"bin":"/tmp/old/dist/cli.js"}] to hold a change against the code before it in one run).
//
// Two hosts on loopback: node A (layerd with P2P) holds the blob, pushed to it by a streamed upload. Each
// method below moves the blob from A to "host B" and then to a client on B's side, which reads the body to its
// end; the time is from the client's request to its last byte. The client only counts bytes (whoever is in the
// middle verifies). Every round starts B with empty storage, so nothing is ever served from an earlier copy.
//
//   p2p          client → layerd B (P2P on, bootstrapped to A, no seed). B looks the digest up in the DHT,
//                fetches it from A over /layerd/blob/1.0.0 (one stream for the whole blob, A being its only provider; noise + yamux),
//                writing and hashing the bytes as they land and serving them to the client as they do (the last byte
//                held until the sha256 verifies). This is what the target is about.
//   http-verify  client → a small node server on B's side that GETs the blob from A's /v2 endpoint over plain
//                HTTP (one connection), writes it to disk while hashing, fdatasyncs, checks the digest, then
//                serves the file: the same verify-first work as p2p, with the transport swapped for HTTP.
//                THE BASELINE: ratio = p2p throughput / http-verify throughput (target ≥ 0.8).
//   layerd-http  client → layerd B' with A as its seed (--upstream, P2P off): layerd's own HTTP path, streamed
//                through while it writes and hashes (last byte held until verified). For reference.
//   http-direct  client → A's /v2 endpoint directly: A serving from its disk (page cache), nothing in between.
//                The ceiling of any node-to-node transfer here.
//   libp2p-raw   THE REFERENCE of issue 14, no layerd code in the data path: two node processes with layerd's libp2p
//                stack (createP2PNode: TCP + noise + yamux) move the same number of bytes from memory to nowhere over
//                BENCH_RAW_STREAMS (default 1) streams of one connection (p2p-raw-peer.mjs). "CPU s/GiB A" is the
//                sender's, "B" the receiver's. Targets: p2p ≥ 0.8× its throughput, p2p's A ≤ 1.5× its sender,
//                p2p's B ≤ 1.5× (its receiver + sha256).
//   sha256       node's crypto hashing the blob file (page cache, 1 MiB reads) in a child process: the CPU s/GiB a
//                fetcher must spend on verifying, for the B target above.
//   disk-write   a child process writing as many bytes from memory to a new file and fdatasyncing it: the CPU s/GiB a
//                fetcher must spend on keeping the blob (page-cache copies; costly on this VM, see measureDiskWrite).
//
// The box has 2 cores shared by A, B and the client, so CPU seconds per GiB of each process are recorded too:
// with both cores busy, CPU is throughput. Results: a table on stdout, one JSON line, and everything per round in
// .out/bench/p2p-transfer-<timestamp>.json (with --cpu-prof, the .cpuprofile files stay next to it).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { execFile, spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  MiB,
  benchOutDir,
  cpuProfiles,
  formatTable,
  freePort,
  layerdBin,
  log,
  makeTempDir,
  median,
  mibPerSec,
  monotonicUs,
  procCpuSeconds,
  pushBlobFile,
  removeTempDir,
  repoRoot,
  round1,
  round2,
  runBenchmark,
  startLayerd,
  startProcess,
  startServer,
  stopServer,
  summarizeCpuProfiles,
  timestamp,
  wasInterrupted,
  writeResults,
} from './lib.mjs';
import { cpuProfileByPackage, cpuProfileCallers, createRandomBlob, getJson, pollUntil, timedGet } from './p2p-lib.mjs';

const REPO = 'bench/p2p';
const METHODS = ['p2p', 'http-verify', 'layerd-http', 'http-direct', 'libp2p-raw', 'sha256', 'disk-write'];
const PSK = ' psk';
const BASELINE = 'http-verify';
const GiB = 1024 * MiB;

function readOptions() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: env.BENCH_MB ?? '512' },
      rounds: { type: 'string', default: env.BENCH_ROUNDS ?? '3' },
      methods: { type: 'string', default: env.BENCH_METHODS ?? METHODS.join(',') },
      'cpu-prof': { type: 'boolean', default: env.BENCH_CPU_PROF === '1' },
      'layerd-node-args': { type: 'string', default: env.BENCH_LAYERD_NODE_ARGS ?? '' },
      'layerd-bin': { type: 'string', default: env.BENCH_LAYERD_BIN ?? layerdBin },
      'fetcher-variants': { type: 'string', default: env.BENCH_FETCHER_VARIANTS ?? '[]' },
      'raw-streams': { type: 'string', default: env.BENCH_RAW_STREAMS ?? '1' },
      psk: { type: 'boolean', default: env.BENCH_PSK === '1' },
      perf: { type: 'boolean', default: env.BENCH_PERF === '1' },
      'warm-mb': { type: 'string', default: env.BENCH_WARM_MB ?? '64' },
    },
  });
  const opts = {
    blobBytes: Math.round(Number(values.mb) * MiB),
    rounds: Number(values.rounds),
    methods: values.methods.split(',').filter(Boolean),
    cpuProf: values['cpu-prof'],
    layerdNodeArgs: values['layerd-node-args'].split(/\s+/).filter(Boolean),
    layerdBin: resolve(values['layerd-bin']),
    fetcherVariants: JSON.parse(values['fetcher-variants']),
    rawStreams: Number(values['raw-streams']),
    psk: values.psk,
    perf: values.perf,
    warmBytes: Math.round(Number(values['warm-mb']) * MiB),
  };
  if (!(opts.blobBytes > 0) || !(opts.rounds >= 1)) throw new Error(`bad options: ${JSON.stringify(values)}`);
  const unknown = opts.methods.filter((m) => !METHODS.includes(m));
  if (unknown.length || opts.methods.length === 0) throw new Error(`--methods: pick from ${METHODS.join(',')}`);
  if (!Array.isArray(opts.fetcherVariants)) throw new Error('--fetcher-variants: want a JSON array of objects');
  if (opts.psk) for (const m of ['p2p', 'libp2p-raw']) if (opts.methods.includes(m)) opts.methods.push(m + PSK);
  // Each variant is one more method; its name carries its settings.
  opts.variantOf = {};
  for (const v of opts.fetcherVariants) {
    const name = `p2p ${JSON.stringify(v).replace(/"/g, '')}`;
    opts.variantOf[name] = v;
    opts.methods.push(name);
  }
  return opts;
}

// ---------------------------------------------------------------- host B's HTTP stand-in (the baseline)

// Fetch from A over HTTP, append each chunk to a file (awaiting every write, as layerd's writer does) while
// hashing it, fdatasync, check the digest, then serve the file in 1 MiB reads. The x-fetch-ms header says how
// long the part before serving took. One file per request, removed once served.
const VERIFY_PROXY_SRC = `
const http = require('node:http'), fs = require('node:fs'), fsp = require('node:fs/promises'), crypto = require('node:crypto');
const [source, digest, dir, port] = process.argv.slice(1);
let n = 0;
async function handle(req, res) {
  const file = dir + '/blob-' + n++;
  const t0 = performance.now();
  const up = await new Promise((ok, fail) => http.get(source, { agent: false }, ok).on('error', fail));
  if (up.statusCode !== 200) throw new Error('source answered ' + up.statusCode);
  const fh = await fsp.open(file, 'w');
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of up) {
    let done = 0;
    while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
    hash.update(chunk);
    size += chunk.length;
  }
  await fh.datasync();
  await fh.close();
  const got = 'sha256:' + hash.digest('hex');
  if (got !== digest) throw new Error('digest mismatch: ' + got);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'x-fetch-ms': (performance.now() - t0).toFixed(1) });
  fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
  res.on('close', () => fs.rm(file, () => {}));
}
http.createServer((req, res) => {
  if (req.url === '/v2/') return res.end('{}');
  handle(req, res).catch((err) => { res.statusCode = 502; res.end(String(err)); });
}).listen(Number(port), '127.0.0.1');
`;

async function startVerifyProxy(dir, sourceUrl, digest) {
  const port = await freePort();
  const files = join(dir, 'verify-proxy');
  await mkdir(files, { recursive: true });
  return startServer('http-verify', process.execPath, ['-e', VERIFY_PROXY_SRC, sourceUrl, digest, files, String(port)], port);
}

// ---------------------------------------------------------------- the libp2p stack alone (calibration)

const RAW_PEER = join(repoRoot, 'scripts', 'bench', 'p2p-raw-peer.mjs');
const DISK_WRITE_CHILD = join(repoRoot, 'scripts', 'bench', 'disk-write-child.mjs');
const parseJsonLine = (l) => {
  try {
    return JSON.parse(l);
  } catch {
    return undefined;
  }
};

function rawEnv(opts, pskFile) {
  return { LAYERD_BENCH_DIST: dirname(opts.layerdBin), ...(pskFile ? { LAYERD_BENCH_PSK_FILE: pskFile } : {}) };
}

async function startRawSender(dir, opts, pskFile) {
  const home = join(dir, pskFile ? 'raw-sender-psk' : 'raw-sender');
  await mkdir(home, { recursive: true });
  const env = rawEnv(opts, pskFile);
  return startProcess(pskFile ? 'libp2p-raw-sender-psk' : 'libp2p-raw-sender', process.execPath, [RAW_PEER, 'serve', home], { env, ready: (l) => parseJsonLine(l)?.multiaddr });
}

/** One receiver process per transfer, with a fresh identity (a peer id that reconnects at once confuses libp2p). */
async function measureRaw(sender, dir, opts, pskFile) {
  const home = join(dir, 'raw-receiver');
  await mkdir(home, { recursive: true });
  const env = rawEnv(opts, pskFile);
  const args = [RAW_PEER, 'fetch', home, sender.ready, String(opts.blobBytes), String(opts.rawStreams)];
  if (opts.warmBytes > 0) env.LAYERD_BENCH_RAW_WARM = String(opts.warmBytes);
  let cpu0 = procCpuSeconds(sender.pid);
  resetPeakRss(sender.pid);
  let receiver;
  // The receiver says when its warm-up is done: the sender's CPU counts from there.
  const ready = (l) => {
    const j = parseJsonLine(l);
    if (j?.warmed) {
      cpu0 = procCpuSeconds(sender.pid);
      resetPeakRss(sender.pid);
    }
    return j?.ms && j;
  };
  try {
    receiver = await startProcess('libp2p-raw-receiver', process.execPath, args, { env, ready, timeoutMs: 600_000 });
  } catch (err) {
    throw new Error(`${err.message}\nsender output: ${sender.output().slice(-2000)}`);
  }
  const cpuA = procCpuSeconds(sender.pid) - cpu0; // includes the receiver's dial: a handshake, nothing next to the bytes
  const rssA = peakRssMiB(sender.pid);
  await stopServer(receiver);
  const r = receiver.ready;
  if (r.bytes !== opts.blobBytes) throw new Error(`libp2p-raw: ${r.bytes} bytes, want ${opts.blobBytes}`);
  return {
    ms: round1(r.ms),
    mibPerSec: round1(mibPerSec(r.bytes, r.ms)),
    cpuSec: { a: round2(cpuA), middle: round2(r.cpuSec), client: null },
    peakRssMiB: { a: rssA, middle: Math.round(r.peakRssMiB) },
  };
}

// ---------------------------------------------------------------- sha256 alone (what verifying costs)

const SHA256_SRC = `
const fs = require('node:fs'), crypto = require('node:crypto');
const fd = fs.openSync(process.argv[1], 'r');
const buf = Buffer.allocUnsafe(1 << 20);
const hash = crypto.createHash('sha256');
const cpu0 = process.cpuUsage(), t0 = performance.now();
let n, bytes = 0;
while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) { hash.update(buf.subarray(0, n)); bytes += n; }
const digest = 'sha256:' + hash.digest('hex');
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ ms: performance.now() - t0, bytes, digest, cpuSec: (cpu.user + cpu.system) / 1e6 }) + '\\n');
`;

/** sha256 of the blob file (in the page cache) in a child process: the CPU of its read + hash loop only. */
async function measureSha256(ctx) {
  const p = await startProcess('sha256', process.execPath, ['-e', SHA256_SRC, ctx.blobPath], { ready: (l) => parseJsonLine(l)?.digest && parseJsonLine(l) });
  await p.exited;
  const r = p.ready;
  if (r.digest !== ctx.digest) throw new Error(`sha256: ${r.digest}, want ${ctx.digest}`);
  return { ms: round1(r.ms), mibPerSec: round1(mibPerSec(r.bytes, r.ms)), cpuSec: { a: null, middle: round2(r.cpuSec), client: null } };
}

// ---------------------------------------------------------------- storing the bytes alone

// Writes the blob's size in bytes to a new file beside B's storage and fdatasyncs it (disk-write-child.mjs): what
// keeping a blob costs the host before any network or hashing. On this VM the kernel's copy into page-cache pages
// costs far more than memcpy would: pages never used before (or handed back to the hypervisor when a file was
// deleted) fault in as they are touched.
async function measureDiskWrite(dir, opts) {
  const p = await startProcess('disk-write', process.execPath, [DISK_WRITE_CHILD, join(dir, 'write.bin'), String(opts.blobBytes)], { ready: (l) => parseJsonLine(l)?.ms && parseJsonLine(l), timeoutMs: 600_000 });
  await p.exited;
  const r = p.ready;
  return { ms: round1(r.ms), mibPerSec: round1(mibPerSec(r.bytes, r.ms)), cpuSec: { a: null, middle: round2(r.cpuSec), client: null } };
}

// ---------------------------------------------------------------- peak RSS

/** Resets the kernel's peak RSS of a process (VmHWM), so a long-lived A's peak is this transfer's. */
function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not allowed here: the peak is then the process's lifetime peak
  }
}

function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- layerd nodes

/** Node args and env that make B use other PeerFetcher settings (see peer-fetcher-overrides.mjs). */
function fetcherExperiment(opts, variant) {
  // "bin": B runs another build (e.g. the commit before a change, built elsewhere), A stays the same.
  const { env, bin = opts.layerdBin, ...settings } = variant ?? {};
  if (Object.keys(settings).length === 0) return { nodeArgs: [], env, bin, settings: undefined };
  return {
    nodeArgs: ['--import', join(repoRoot, 'scripts', 'bench', 'peer-fetcher-overrides.mjs')],
    env: { ...env, LAYERD_BENCH_PEER_FETCHER: JSON.stringify(settings), LAYERD_BENCH_DIST: dirname(bin) },
    bin,
    settings,
  };
}

/**
 * The node flags on the first line of layerd's bin (`#!/usr/bin/env -S node --initial-heap-size=128 --max-semi-space-size=4`): a user's
 * `layerd serve` runs with them, and `node dist/cli.js` would not, so every layerd here gets them too.
 */
function shebangArgs(bin = layerdBin) {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0];
  const m = /^#!.*\bnode\b(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

/** layerd with P2P on loopback; resolves once /api/status names its multiaddr and (if it has any) a connected peer. */
async function startP2PNode(dir, name, { bootstrap = [], nodeArgs = [], env, bin, dataDir, pskFile } = {}) {
  const args = ['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn'];
  if (pskFile) args.push('--psk-file', pskFile);
  for (const b of bootstrap) args.push('--bootstrap', b);
  const node = await startLayerd(dir, { name, args, nodeArgs: [...shebangArgs(bin), ...nodeArgs], env, bin, dataDir });
  const status = await pollUntil(`${name} connected to ${bootstrap.length ? 'its bootstrap peer' : 'nothing'}`, async () => {
    const s = await getJson(`${node.url}/api/status`);
    return s.multiaddrs.length > 0 && s.connectedPeers >= Math.min(1, bootstrap.length) ? s : null;
  });
  return Object.assign(node, { peerId: status.peerId, multiaddr: status.multiaddrs[0] });
}

/**
 * B is "ready" when one lookup has gone through the DHT: a GET for a digest nobody has must come back 404
 * (kad-dht adds A to B's routing table only after identify, a moment after the connection opens).
 */
async function waitLookupReady(node) {
  const nobody = `sha256:${'0'.repeat(64)}`;
  await pollUntil(`${node.name} able to look blobs up`, async () => {
    const before = (await getJson(`${node.url}/api/status`)).stats.lookups.count;
    const res = await timedGet(`${node.url}/v2/${REPO}/blobs/${nobody}`).catch((err) => ({ error: err.message }));
    const after = (await getJson(`${node.url}/api/status`)).stats.lookups.count;
    return res.error?.includes('404') && after > before;
  });
}

// ---------------------------------------------------------------- one measured transfer

/** CPU seconds of a process by thread kind (thread names: node = the event loop, libuv-worker = fs and crypto jobs, V8 workers = GC and compilers). */
function threadCpu(pid) {
  const out = {};
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const kind = tid === String(pid) ? 'main' : /libuv/.test(comm) ? 'libuv' : /V8|DefaultWorke/i.test(comm) ? 'v8' : 'other';
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[kind] = (out[kind] ?? 0) + (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function threadDelta(a, b) {
  return Object.fromEntries(Object.keys(b).map((k) => [k, round2(b[k] - (a[k] ?? 0))]));
}

function cpuOf(procs) {
  return Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? procCpuSeconds(p.pid) : null]));
}

// --perf: Linux perf samples the middle process (every thread, native and kernel frames) during each measured
// transfer, so that what the V8 profile cannot see (libuv's pool, page faults, GC helpers) gets numbers too.
// `perf report -i <file> --sort pid,dso,sym -g none` reads them; the summary by thread kind is printed at the end.
class PerfRecorder {
  /** @param {string} dir where the perf.data files go */
  constructor(dir) {
    this.dir = dir;
    this.files = [];
  }

  /** Starts perf on `pid`; resolves once it records, with its stop(). */
  async start(pid) {
    const file = join(this.dir, `perf-${this.files.length}.data`);
    // BENCH_PERF_STAT=<events>: counts instead of samples (e.g. syscalls:sys_enter_writev,page-faults).
    const stat = process.env.BENCH_PERF_STAT;
    // BENCH_PERF_EVENT=<event>: samples of that event instead of CPU time (e.g. page-faults: who touches new memory).
    const event = process.env.BENCH_PERF_EVENT ? ['-e', process.env.BENCH_PERF_EVENT] : ['-F', '999'];
    const args = stat ? ['stat', '-e', stat, '-p', String(pid), '-o', file] : ['record', ...event, '-g', '-p', String(pid), '-o', file];
    const child = spawn('perf', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    // perf prints nothing when it starts; give it until the file exists.
    await pollUntil('perf to start', () => {
      if (child.exitCode !== null) throw new Error(`perf: ${err.trim()}`);
      return existsSync(file);
    }, { timeoutMs: 10_000, everyMs: 20 });
    this.files.push(file);
    return {
      stop: () =>
        new Promise((ok) => {
          child.once('exit', ok);
          child.kill('SIGINT');
        }),
    };
  }

  /** The counts of every recording (BENCH_PERF_STAT), or the hottest symbols by thread of the first one. */
  async print() {
    if (this.files.length === 0) return;
    if (process.env.BENCH_PERF_STAT) {
      for (const f of this.files) console.log(`\n${f}:\n${readFileSync(f, 'utf8').trim()}`);
      return;
    }
    const file = this.files[0];
    const out = await new Promise((ok, fail) =>
      execFile('perf', ['report', '-i', file, '--no-children', '--sort', 'pid,dso,sym', '-g', 'none', '--stdio'], { maxBuffer: 64 << 20 }, (err, stdout) => (err ? fail(err) : ok(stdout))),
    );
    const rows = out.split('\n').filter((l) => /^\s+\d/.test(l));
    console.log(`\nperf samples of B (fetching), first transfer, by thread and symbol (the main thread's tid is the pid) (${file}):`);
    for (const l of rows.slice(0, 30)) console.log(l.replace(/\s+$/, ''));
  }
}

/**
 * --warm-mb: before its measured transfer, a fresh B fetches another blob of that size the same way, untimed
 * (and the raw receiver as many bytes): a layerd node is a long-lived daemon, whose code is optimized and whose
 * heap has grown by its second pull. A fresh process pays for both on its first: measured here, +2 CPU s/GiB on
 * B and its first byte 60-100 ms later (--warm-mb 0 measures that cold start).
 */
async function warmUp(dir, a, b, opts) {
  if (!(opts.warmBytes > 0)) return;
  const file = join(dir, 'warm.bin');
  const digest = await createRandomBlob(file, opts.warmBytes);
  await pushBlobFile(a, REPO, file, opts.warmBytes, digest);
  await rm(file);
  const peerFetches = async () => (await getJson(`${b.url}/api/status`)).stats.fetches.peer.count;
  const before = await peerFetches();
  const r = await timedGet(`${b.url}/v2/${REPO}/blobs/${digest}`);
  if (r.bytes !== opts.warmBytes) throw new Error(`warm-up through ${b.name}: ${r.bytes} bytes, want ${opts.warmBytes}`);
  // The client's last byte can come a moment before the commit is counted: wait for the count, or the measured
  // transfer's "one peer fetch" check would count this one too.
  await pollUntil('the warm-up fetch to be counted', async () => (await peerFetches()) > before, { timeoutMs: 30_000, everyMs: 50 });
}

/** GETs `url` as the client; returns times, throughput and the CPU seconds each process spent meanwhile (and, given a PerfRecorder, perf of the middle process). */
async function measure(url, size, procs, perfRecorder) {
  for (const p of Object.values(procs)) if (p) resetPeakRss(p.pid);
  const perf = perfRecorder && procs.middle ? await perfRecorder.start(procs.middle.pid) : undefined;
  const threads0 = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? threadCpu(p.pid) : null]));
  const cpu0 = cpuOf(procs);
  const client0 = process.cpuUsage();
  const r = await timedGet(url).finally(() => perf?.stop());
  const client = process.cpuUsage(client0);
  const cpu1 = cpuOf(procs);
  if (r.bytes !== size) throw new Error(`GET ${url}: ${r.bytes} bytes, want ${size}`);
  const cpuSec = Object.fromEntries(Object.keys(procs).map((k) => [k, procs[k] ? round2(cpu1[k] - cpu0[k]) : null]));
  cpuSec.client = round2((client.user + client.system) / 1e6);
  // Where each process's CPU went: its event loop, libuv's pool (disk I/O), V8's helpers (GC).
  const threadSec = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p ? threadDelta(threads0[k], threadCpu(p.pid)) : null]));
  const peak = Object.fromEntries(Object.keys(procs).map((k) => [k, procs[k] ? peakRssMiB(procs[k].pid) : null]));
  return {
    threadSec,
    peakRssMiB: peak,
    ms: round1(r.ms),
    ttfbMs: round1(r.ttfbMs),
    mibPerSec: round1(mibPerSec(size, r.ms)),
    fetchMs: r.headers['x-fetch-ms'] ? Number(r.headers['x-fetch-ms']) : undefined,
    source: r.headers['x-layerd-source'],
    cpuSec,
  };
}

async function runMethod(method, ctx) {
  const { opts } = ctx;
  const psk = method.endsWith(PSK);
  const a = psk ? ctx.aPsk : ctx.a;
  const blobUrlA = ctx.blobUrlA;
  const size = opts.blobBytes;
  const dir = await makeTempDir(`layerd-bench-p2p-${method.replace(/[^\w-]+/g, '_')}-`);
  try {
    if (method === 'http-direct') return await measure(blobUrlA, size, { a, middle: null });
    if (method === 'libp2p-raw') return await measureRaw(ctx.rawSender, dir, opts);
    if (method === 'libp2p-raw' + PSK) return await measureRaw(ctx.rawSenderPsk, dir, opts, ctx.pskFile);
    if (method === 'sha256') return await measureSha256(ctx);
    if (method === 'disk-write') return await measureDiskWrite(dir, opts);
    if (method === 'http-verify') return await measure(`${ctx.verifyProxy.url}/blob`, size, { a, middle: ctx.verifyProxy });
    if (method === 'layerd-http') {
      const host = `127.0.0.1:${a.port}`;
      const b = await startLayerd(dir, {
        name: 'layerd-http-b',
        args: ['--upstream', `${host}=${a.url}`, '--default-registry', host, '--log-level', 'warn'],
        nodeArgs: [...shebangArgs(opts.layerdBin), ...opts.layerdNodeArgs],
        bin: opts.layerdBin,
      });
      try {
        await warmUp(dir, a, b, opts);
        const r = await measure(`${b.url}/v2/${REPO}/blobs/${ctx.digest}`, size, { a, middle: b }, ctx.perf);
        if (r.source !== 'upstream') throw new Error(`layerd-http: X-Layerd-Source ${r.source}, want upstream`);
        return r;
      } finally {
        await stopServer(b);
      }
    }
    // p2p. Every B announces the blob once it holds it, and its record outlives it: a B of a later round would
    // find those dead providers beside A and take the several-provider (ranged) path. So every p2p transfer is of
    // a blob of its own, pushed to A just before, which A alone holds (the case issue 14 measures). BENCH_P2P_REUSE=1
    // keeps the one blob (later rounds then measure one live provider among dead records).
    let digest = ctx.digest;
    if (process.env.BENCH_P2P_REUSE !== '1') {
      const file = join(dir, 'blob.bin');
      digest = await createRandomBlob(file, size);
      await pushBlobFile(a, REPO, file, size, digest);
      // The scratch copy goes at once: on this VM, page-cache pages never used before (or handed back to the
      // hypervisor) cost the kernel's copy into them ~2 CPU s/GiB, and a scratch file kept meanwhile made B's
      // writes land in such pages instead of the ones it frees (see measureDiskWrite).
      await rm(file);
      await timedGet(`${a.url}/v2/${REPO}/blobs/${digest}`); // in A's page cache, as the shared blob is
    }
    const exp = fetcherExperiment(opts, opts.variantOf[method]);
    const b = await startP2PNode(dir, 'p2p-b', {
      pskFile: psk ? ctx.pskFile : undefined,
      bootstrap: [a.multiaddr],
      nodeArgs: [...opts.layerdNodeArgs, ...exp.nodeArgs],
      env: exp.env,
      bin: exp.bin,
    });
    try {
      await waitLookupReady(b);
      await warmUp(dir, a, b, opts);
      const before = (await getJson(`${b.url}/api/status`)).stats;
      const r = await measure(`${b.url}/v2/${REPO}/blobs/${digest}`, size, { a, middle: b }, ctx.perf);
      // Peer bytes stream through: the client's last (verified) byte can come a moment before the commit
      // is counted, so the count is waited for (untimed).
      let after = (await getJson(`${b.url}/api/status`)).stats;
      const fetched = () => after.fetches.peer.count - before.fetches.peer.count;
      for (let i = 0; i < 100 && fetched() !== 1; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = (await getJson(`${b.url}/api/status`)).stats;
      }
      if (r.source !== 'peer' || fetched() !== 1) throw new Error(`p2p: X-Layerd-Source ${r.source}, peer fetches ${fetched()}`);
      if (exp.settings && !b.output().includes('peer-fetcher-overrides:')) throw new Error('p2p: the PeerFetcher overrides were not applied');
      r.lookupMs = after.lookups.totalMs - before.lookups.totalMs;
      // The client's first byte after B found its provider: request → first byte, less B's DHT lookup.
      r.firstByteAfterLookupMs = round1(r.ttfbMs - r.lookupMs);
      return r;
    } finally {
      await stopServer(b);
    }
  } finally {
    await removeTempDir(dir);
  }
}

// ---------------------------------------------------------------- profiling

/**
 * One more p2p transfer with both nodes under --cpu-prof: a fresh A, pushed the blob (a blob hard-linked into its
 * store before it starts is announced before it has any peer, and B's lookup then found nobody; the push is outside
 * the profile's window) and a fresh B. Profiles are written when they exit.
 */
async function profiledTransfer(opts, blobPath, digest, profDir) {
  const dir = await makeTempDir('layerd-bench-p2p-prof-');
  try {
    const prof = (who) => ['--cpu-prof', `--cpu-prof-dir=${join(profDir, who)}`];
    const a = await startP2PNode(dir, 'prof-a', { nodeArgs: prof('a'), bin: opts.layerdBin });
    await pushBlobFile(a, REPO, blobPath, opts.blobBytes, digest);
    // A serving node runs warm (its code optimized, its heap grown): one unprofiled-window transfer to a throwaway
    // node first. A cold A is slow enough that B is never the bottleneck, and B's profile then misses that case.
    const warm = await startP2PNode(dir, 'prof-warm', { bootstrap: [a.multiaddr], bin: opts.layerdBin });
    await waitLookupReady(warm);
    await measure(`${warm.url}/v2/${REPO}/blobs/${digest}`, opts.blobBytes, { a, middle: warm });
    await stopServer(warm);
    const exp = fetcherExperiment(opts, undefined);
    const b = await startP2PNode(dir, 'prof-b', { bootstrap: [a.multiaddr], nodeArgs: [...prof('b'), ...exp.nodeArgs], env: exp.env, bin: opts.layerdBin });
    await waitLookupReady(b);
    await warmUp(dir, a, b, opts);
    // Only samples taken during the transfer count (V8 stamps profiles with the monotonic clock): no start-up.
    const window = [monotonicUs()];
    const r = await measure(`${b.url}/v2/${REPO}/blobs/${digest}`, opts.blobBytes, { a, middle: b });
    window.push(monotonicUs());
    log(`profiled p2p transfer: ${r.mibPerSec} MiB/s (slower than unprofiled)`);
    await stopServer(b);
    await stopServer(a);
    const windowsUs = [window];
    const out = { transfer: r };
    for (const who of ['a', 'b']) {
      const [file] = await cpuProfiles(join(profDir, who));
      if (!file) continue;
      out[who] = {
        file,
        byPackage: await cpuProfileByPackage(file, { windowsUs }),
        byFunction: (await summarizeCpuProfiles([{ file, windowsUs }], { top: 20 })).top,
        // The copies: which code path each buffer copy and allocation comes from.
        copies: await cpuProfileCallers(file, '_copyActual', { depth: 4, windowsUs }),
      };
    }
    return out;
  } finally {
    await removeTempDir(dir);
  }
}

// ---------------------------------------------------------------- the run

function summarize(opts, rounds) {
  const summary = {};
  for (const m of opts.methods) {
    const rs = rounds.map((r) => r[m]).filter((r) => r && !r.error);
    const pick = (f) => median(rs.map(f));
    const perGiB = (k) => round2(pick((r) => (r.cpuSec[k] === null ? null : r.cpuSec[k] / (opts.blobBytes / GiB))));
    summary[m] = {
      mibPerSec: round1(pick((r) => r.mibPerSec)),
      ms: round1(pick((r) => r.ms)),
      // p2p: request → first byte is lookup + fetch + verify + commit; http-verify says so in x-fetch-ms.
      ttfbMs: round1(pick((r) => r.ttfbMs ?? null)),
      lookupMs: pick((r) => r.lookupMs ?? null),
      firstByteAfterLookupMs: pick((r) => r.firstByteAfterLookupMs ?? null),
      cpuSecPerGiB: { a: perGiB('a'), middle: perGiB('middle'), client: perGiB('client') },
      peakRssMiB: { a: pick((r) => r.peakRssMiB?.a ?? null), middle: pick((r) => r.peakRssMiB?.middle ?? null) },
      threadSecPerGiB: rs[0]?.threadSec
        ? Object.fromEntries(['a', 'middle'].map((k) => [k, rs[0].threadSec[k] && Object.fromEntries(Object.keys(rs[0].threadSec[k]).map((t) => [t, round2(pick((r) => (r.threadSec?.[k]?.[t] ?? 0) / (opts.blobBytes / GiB)))]))]))
        : undefined,
      failed: rounds.filter((r) => r[m]?.error).length,
    };
  }
  const ratios = {};
  const p2ps = opts.methods.filter((m) => m.startsWith('p2p'));
  for (const p of p2ps) {
    // Against the references with the same swarm-key setting (a method with no psk twin counts for both).
    const same = (m) => !m.startsWith('p2p') && m !== 'sha256' && (m.endsWith(PSK) === p.endsWith(PSK) || !opts.methods.includes(m.endsWith(PSK) ? m.slice(0, -PSK.length) : m + PSK));
    for (const m of opts.methods.filter(same)) ratios[`${p}/${m}`] = summary[p].mibPerSec && summary[m].mibPerSec ? round2(summary[p].mibPerSec / summary[m].mibPerSec) : null;
  }
  return { summary, ratios, targets: targetsOf(summary) };
}

/** Issue 14's targets for each p2p method against the bare stream (same PSK setting) and sha256 of the same run. */
function targetsOf(summary) {
  const out = {};
  const sha = summary.sha256?.cpuSecPerGiB.middle;
  const write = summary['disk-write']?.cpuSecPerGiB.middle;
  for (const p of Object.keys(summary).filter((m) => m.startsWith('p2p'))) {
    const raw = summary[p.endsWith(PSK) ? 'libp2p-raw' + PSK : 'libp2p-raw'];
    if (!raw || !summary[p].mibPerSec) continue;
    const s = summary[p];
    out[p] = {
      throughputVsBare: round2(s.mibPerSec / raw.mibPerSec), // target ≥ 0.8
      firstByteAfterLookupMs: s.firstByteAfterLookupMs, // target ≤ 100
      cpuAVsBareSender: round2(s.cpuSecPerGiB.a / raw.cpuSecPerGiB.a), // target ≤ 1.5
      cpuBVsBareReceiverPlusSha256: sha === undefined ? null : round2(s.cpuSecPerGiB.middle / (raw.cpuSecPerGiB.middle + sha)), // target ≤ 1.5
      // The same with storing the bytes counted as work a fetching node cannot skip (see measureDiskWrite).
      cpuBVsBareReceiverPlusSha256PlusWrite: sha === undefined || write === undefined ? null : round2(s.cpuSecPerGiB.middle / (raw.cpuSecPerGiB.middle + sha + write)),
    };
  }
  return out;
}

async function main() {
  const opts = readOptions();
  const work = await makeTempDir('layerd-bench-p2p-');
  const blobPath = join(work, 'blob.bin');
  log(`creating a ${opts.blobBytes / MiB} MiB random blob`);
  const digest = await createRandomBlob(blobPath, opts.blobBytes);

  const a = await startP2PNode(work, 'a', { bin: opts.layerdBin });
  const push = await pushBlobFile(a, REPO, blobPath, opts.blobBytes, digest);
  log(`pushed ${digest.slice(0, 19)}… to A in ${(push.ms / 1000).toFixed(1)} s`);
  const blobUrlA = `${a.url}/v2/${REPO}/blobs/${digest}`;
  // Untimed: A serves the right bytes, and its copy is in the page cache for every method alike.
  const check = await timedGet(blobUrlA, { hash: true });
  if (check.digest !== digest) throw new Error(`A serves ${check.digest}, want ${digest}`);
  const verifyProxy = opts.methods.includes('http-verify') ? await startVerifyProxy(work, blobUrlA, digest) : null;
  const rawSender = opts.methods.includes('libp2p-raw') ? await startRawSender(work, opts) : null;
  let pskFile, aPsk, rawSenderPsk;
  if (opts.psk) {
    // A second A in a private network, holding the same blob: nodes with and without the key cannot meet.
    pskFile = join(work, 'swarm.key');
    await new Promise((ok, fail) => execFile(process.execPath, [opts.layerdBin, 'keygen', '--out', pskFile], (err) => (err ? fail(err) : ok())));
    aPsk = await startP2PNode(work, 'a-psk', { bin: opts.layerdBin, pskFile });
    await pushBlobFile(aPsk, REPO, blobPath, opts.blobBytes, digest);
    const checkPsk = await timedGet(`${aPsk.url}/v2/${REPO}/blobs/${digest}`, { hash: true });
    if (checkPsk.digest !== digest) throw new Error(`A (psk) serves ${checkPsk.digest}, want ${digest}`);
    if (opts.methods.includes('libp2p-raw' + PSK)) rawSenderPsk = await startRawSender(work, opts, pskFile);
  }
  let perf;
  if (opts.perf) {
    perf = new PerfRecorder(join(benchOutDir, `p2p-transfer-perf-${timestamp()}`));
    await mkdir(perf.dir, { recursive: true });
  }
  const ctx = { opts, a, digest, blobUrlA, blobPath, verifyProxy, rawSender, pskFile, aPsk, rawSenderPsk, perf };
  const loadBefore = loadavg();
  const rounds = [];
  for (let i = 0; i < opts.rounds; i++) {
    // Rotate who goes first, so warm-up and cache effects do not always favour the same method.
    const order = opts.methods.map((_, k) => opts.methods[(k + i) % opts.methods.length]);
    const round = { order };
    for (const m of order) {
      // A failed transfer is a result too (and is reported): the other methods' rounds still count.
      round[m] = await runMethod(m, ctx).catch((err) => {
        if (wasInterrupted()) throw err;
        log(`${m} failed: ${err.message}`);
        return { error: err.message.slice(0, 2000) };
      });
    }
    log(`round ${i + 1}/${opts.rounds}: ` + order.map((m) => `${m} ${round[m].error ? 'FAILED' : `${round[m].mibPerSec} MiB/s`}`).join(', '));
    rounds.push(round);
  }
  const loadAfter = loadavg();
  const { summary, ratios, targets } = summarize(opts, rounds);

  let profile;
  if (opts.cpuProf) {
    const profDir = join(benchOutDir, `p2p-transfer-prof-${timestamp()}`);
    profile = { dir: profDir, ...(await profiledTransfer(opts, blobPath, digest, profDir)) };
  }

  const mb = opts.blobBytes / MiB;
  console.log(`\nblob ${mb} MiB, A → B → client on loopback, ${opts.rounds} rounds, medians; load avg ${loadBefore[0].toFixed(2)} → ${loadAfter[0].toFixed(2)} on ${cpus().length} cpus\n`);
  console.log(
    formatTable(
      ['method', 'MiB/s', 'ms', 'first byte ms', 'after lookup ms', 'CPU s/GiB A', 'CPU s/GiB B', 'CPU s/GiB client', 'peak RSS MiB A', 'peak RSS MiB B', 'failed'],
      opts.methods.map((m) => {
        const s = summary[m];
        return [m, s.mibPerSec, s.ms, s.ttfbMs, s.firstByteAfterLookupMs, s.cpuSecPerGiB.a, s.cpuSecPerGiB.middle, s.cpuSecPerGiB.client, s.peakRssMiB.a, s.peakRssMiB.middle, s.failed];
      }),
    ),
  );
  if (summary.p2p) console.log(`\np2p lookup (B's /api/status) median ${summary.p2p.lookupMs} ms`);
  for (const m of opts.methods.filter((x) => summary[x].threadSecPerGiB)) {
    const t = summary[m].threadSecPerGiB;
    console.log(`${m}: CPU s/GiB by thread: A ${JSON.stringify(t.a)}, B ${JSON.stringify(t.middle)}`);
  }
  if (Object.keys(targets).length) {
    console.log('\nissue 14 targets (against libp2p-raw with the same PSK setting, and sha256, of this run):');
    console.log(
      formatTable(
        ['method', 'MiB/s ÷ bare (≥ 0.8)', 'first byte after lookup ms (≤ 100)', 'CPU A ÷ bare sender (≤ 1.5)', 'CPU B ÷ (bare receiver + sha256) (≤ 1.5)', 'CPU B ÷ (bare receiver + sha256 + disk write)'],
        Object.entries(targets).map(([m, t]) => [m, t.throughputVsBare, t.firstByteAfterLookupMs, t.cpuAVsBareSender, t.cpuBVsBareReceiverPlusSha256, t.cpuBVsBareReceiverPlusSha256PlusWrite]),
      ),
    );
  }
  if (Object.keys(ratios).length) {
    console.log(`throughput ratios (target p2p/${BASELINE} ≥ 0.8):`);
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k} = ${v}x`);
  }
  if (profile) {
    for (const who of ['a', 'b']) {
      if (!profile[who]) continue;
      console.log(`\nCPU profile of ${who === 'a' ? 'A (serving)' : 'B (fetching)'}: busy ${profile[who].byPackage.busyMs} ms`);
      console.log(formatTable(['where', 'self ms', '% busy'], profile[who].byPackage.groups.map((g) => [g.where, g.selfMs, g.pctOfBusy])));
      console.log(formatTable(['top functions', 'self ms', '% busy'], profile[who].byFunction.slice(0, 8).map((f) => [f.fn, f.selfMs, f.pctOfBusy])));
      if (profile[who].copies.length) console.log(formatTable(['buffer copies (_copyActual) called from', 'self ms'], profile[who].copies.map((c) => [c.callers, c.selfMs])));
    }
    console.log(`profiles: ${profile.dir}`);
  }
  await perf?.print();

  const result = {
    bench: 'p2p-transfer',
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, loadBefore, loadAfter },
    options: opts,
    compared: {
      p2p: 'client GET from layerd B (P2P, no seed): DHT lookup + ranged parallel fetch from A over libp2p, verify, commit, serve from disk',
      'http-verify': 'client GET from a node server on B that fetches from A /v2 over HTTP, writes+hashes, fdatasyncs, verifies, serves from disk (baseline)',
      'layerd-http': 'client GET from layerd B with A as --upstream (streamed through, last byte held until verified)',
      'http-direct': "client GET from A's /v2 directly",
      sha256: 'node crypto sha256 of the blob file (page cache, 1 MiB reads), the read + hash loop in a child process',
      'libp2p-raw': `layerd's libp2p stack alone: memory → ${opts.rawStreams} streams on one connection → counted, between two processes`,
    },
    digest,
    push,
    summary,
    ratios,
    targets,
    rounds,
    profile,
  };
  const file = await writeResults('p2p-transfer', result);
  console.log(JSON.stringify({ bench: 'p2p-transfer', mb, summary: Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, v.mibPerSec])), ratios, targets, results: file }));
}

await runBenchmark(main);
