#!/usr/bin/env node
// What an idle layerd node costs, and whether that grows with the cluster (issue 16: ≤ 0.2% of a core and
// ≤ 96 MiB RSS idle with 32 nodes; 32 hosts up in ≤ 20 s). For each N it starts N `layerd serve` on 127.0.0.1
// as a cluster comes up (node 1 alone, then the rest at once, each bootstrapped to node 1: see
// scripts/cluster/netns-cluster-lib.mjs), waits until every node answers /readyz and the peer counts stop
// changing, lets them settle, then reads /proc of every node over a window with no request to any of them:
// CPU (utime+stime, all threads), RSS and its peak (VmHWM), context switches (all threads: wakeups) and
// read/write syscalls (/proc/PID/io: socket and file I/O). After the window it reads each node's V8 heap from
// /metrics. Start-up is spawn → every node ready (/readyz 200: connected to a peer) and → the mesh settled.
//
//   node scripts/bench/idle.mjs [--nodes 8,16,32] [--window 60] [--settle 20] [--bin label=path ...]
//                               [--node-flags "..."] [--args "--log-level warn"] [--profile] [--strace] [--census] [--perf]
//
// --bin (repeatable) compares builds in one run, interleaved per N (default: this checkout's dist/layerd.mjs,
// labelled "this"). Each build runs with the node flags on its own #! line, as `layerd` starts it.
// --profile runs node 2 with --cpu-prof and prints where its JavaScript time went inside the window (by
// package); --strace counts node 2's syscalls over the window (strace -c -f): node 2 is then left out of
// the CPU columns, since both slow it. --census counts the timers node 2 fires in the window, by where they
// were set (timer-census.mjs). --perf records node 2 with `perf record -g` over the window (V8's GC threads,
// libuv and the kernel too, which --profile does not see) and prints its top symbols; the data stays in
// .out/bench/idle-perf-<N>.data (node 2 runs with --perf-basic-prof for JavaScript names). Only the PIDs this script spawned are ever signalled. Results: .out/bench/idle-<time>.json.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { shippedNodeFlags } from '../cluster/netns-cluster-lib.mjs';
import { cpuProfileByPackage } from './p2p-lib.mjs';
import { cpuProfiles, formatTable, freePort, layerdBin, log, makeTempDir, median, monotonicUs, procCpuSeconds, procStatusKiB, removeTempDir, round1, round2, runBenchmark, startProcess, stopServer, writeResults } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    nodes: { type: 'string', default: '8,16,32' },
    window: { type: 'string', default: '60' },
    settle: { type: 'string', default: '20' },
    bin: { type: 'string', multiple: true },
    'node-flags': { type: 'string', default: '' },
    args: { type: 'string', default: '' },
    'mesh-timeout': { type: 'string', default: '300' },
    profile: { type: 'boolean', default: false },
    strace: { type: 'boolean', default: false },
    census: { type: 'boolean', default: false },
    perf: { type: 'boolean', default: false },
  },
});
const sizes = opt.nodes.split(',').map(Number);
const windowMs = Number(opt.window) * 1000;
const settleMs = Number(opt.settle) * 1000;
const meshTimeoutMs = Number(opt['mesh-timeout']) * 1000;
const bins = (opt.bin ?? [`this=${layerdBin}`]).map((b) => {
  const [label, path] = b.includes('=') ? b.split(/=(.*)/s) : [b, b];
  return { label, path };
});
const extraNodeFlags = opt['node-flags'].split(' ').filter(Boolean);
const extraArgs = opt.args.split(' ').filter(Boolean);
const MiB_KiB = 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

/** Polls `check` every `everyMs` until it returns something, or throws after `timeoutMs`. */
async function until(what, check, timeoutMs, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One layerd node; resolves once it logged 'layerd listening' (its ports are bound). */
async function startNode(dir, bin, k, bootstrap, tries = 3) {
  try {
    return await startNodeOnce(dir, bin, k, bootstrap);
  } catch (err) {
    // A free port can be taken by another node's libp2p (tcp/0) before this node binds it: again, elsewhere.
    if (tries > 1 && /EADDRINUSE/.test(err.message)) return startNode(dir, bin, k, bootstrap, tries - 1);
    throw err;
  }
}

async function startNodeOnce(dir, bin, k, bootstrap) {
  const port = await freePort();
  const argv = [
    ...shippedNodeFlags(bin.path),
    ...extraNodeFlags.map((f) => f.replaceAll('{node}', `n${k}`)),
    ...(k === 2 && opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}/prof`] : []),
    ...(k === 2 && opt.perf ? ['--perf-basic-prof'] : []),
    ...(k === 2 && opt.census ? ['--import', new URL('./timer-census.mjs', import.meta.url).pathname] : []),
    bin.path, 'serve',
    '--listen', `127.0.0.1:${port}`,
    '--data-dir', `${dir}/n${k}`,
    '--p2p-listen', '/ip4/127.0.0.1/tcp/0',
    ...(bootstrap ? ['--bootstrap', bootstrap] : []),
    ...extraArgs,
  ];
  let multiaddr;
  const proc = await startProcess(`n${k}`, process.execPath, argv, {
    env: k === 2 && opt.census ? { LAYERD_TIMER_CENSUS: `${dir}/census.json` } : undefined,
    timeoutMs: 600_000,
    ready: (line) => {
      if (line.includes('"p2p started"')) multiaddr = JSON.parse(line).multiaddrs?.find((a) => a.includes('/p2p/'));
      return line.includes('"layerd listening"') || undefined;
    },
  });
  return Object.assign(proc, { k, url: `http://127.0.0.1:${port}`, multiaddr: () => multiaddr });
}

const peersOf = async (n) => (await getJson(`${n.url}/api/status`)).body.connectedPeers;

/** Spawns the cluster; times spawn → every node ready, and → peer counts unchanged for 10 s (the mesh settled). */
async function startCluster(dir, bin, n) {
  const t0 = performance.now();
  const first = await startNode(dir, bin, 1);
  const addr = await until('node 1 multiaddr', async () => first.multiaddr(), 10_000, 20);
  const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startNode(dir, bin, i + 2, addr)));
  const nodes = [first, ...rest];
  const listeningMs = performance.now() - t0;
  await Promise.all(nodes.map((node) => until(`${node.name} /readyz`, async () => ((await getJson(`${node.url}/readyz`)).status === 200 ? true : undefined), meshTimeoutMs)));
  if (n > 1) await until('node 1 to have a peer', async () => ((await peersOf(first)) > 0 ? true : undefined), meshTimeoutMs);
  const readyMs = performance.now() - t0;
  let last = '';
  let stableSince = performance.now();
  const degrees = await until(
    'peer counts to settle',
    async () => {
      const d = await Promise.all(nodes.map(peersOf));
      if (d.join() !== last) [last, stableSince] = [d.join(), performance.now()];
      // Under load the counts can sit at 1 (the bootstrap peer) before the first DHT walk: not settled.
      const walked = n <= 2 || median(d) >= 2;
      return d.every((x) => x === n - 1) || (walked && performance.now() - stableSince >= 10_000) ? d : undefined;
    },
    meshTimeoutMs,
    500,
  );
  // When the counts last changed: a full mesh is seen at once, a partial one is stable 10 s after that.
  const meshMs = Math.round(stableSince - t0);
  return { nodes, listeningMs: Math.round(listeningMs), readyMs: Math.round(readyMs), meshMs, degrees };
}

/** What /proc says of a process now: CPU s, KiB, and counters summed over its threads. */
function sample(pid) {
  let ctx = 0;
  let threads = 0;
  let onCpuNs = 0; // schedstat: nanoseconds on a CPU, where stat's utime+stime count 10 ms ticks
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      onCpuNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      ctx += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      threads++;
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const syscalls = Number(/^syscr: (\d+)/m.exec(io)[1]) + Number(/^syscw: (\d+)/m.exec(io)[1]);
  const kib = (field) => procStatusKiB(pid, field);
  // RssFile is mostly the node binary's pages (shared between the nodes, but counted in each one's RSS);
  // RssAnon is this node's own: V8's heap, malloc, stacks.
  return { cpu: procCpuSeconds(pid), onCpuNs, rssKiB: kib('VmRSS'), anonKiB: kib('RssAnon'), fileKiB: kib('RssFile'), hwmKiB: kib('VmHWM'), ctx, syscalls, threads, at: performance.now() };
}

/** V8's heap as the node's /metrics reports it (prom-client's default collectors), in MiB. */
async function heapOf(node) {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const metric = (name) => Number(new RegExp(`^layerd_process_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024 / 1024;
  return { heapUsedMiB: round1(metric('nodejs_heap_size_used_bytes')), heapTotalMiB: round1(metric('nodejs_heap_size_total_bytes')), externalMiB: round1(metric('nodejs_external_memory_bytes')) };
}

async function measure(bin, n) {
  const dir = await makeTempDir(`layerd-idle-${n}-`);
  log(`${bin.label}: starting ${n} nodes`);
  const cluster = await startCluster(dir, bin, n);
  log(`${bin.label} N=${n}: listening ${cluster.listeningMs} ms, ready ${cluster.readyMs} ms, settled ${cluster.meshMs} ms, peers ${median(cluster.degrees)} (min ${Math.min(...cluster.degrees)})`);
  await sleep(settleMs); // the window starts after start-up's own work (first self-queries, identify) is over
  const traced = opt.strace ? straceCount(cluster.nodes[1].pid, `${dir}/strace.txt`) : undefined;
  const perfFile = new URL(`../../.out/bench/idle-perf-${bin.label}-${n}.data`, import.meta.url).pathname;
  const recorded = opt.perf ? perfRecord(cluster.nodes[1].pid, perfFile) : undefined;
  if (opt.census) process.kill(cluster.nodes[1].pid, 'SIGUSR2'); // our own node: resets its counts
  const windowUs = [monotonicUs()];
  const before = cluster.nodes.map((node) => sample(node.pid));
  const rssSeries = cluster.nodes.map(() => []);
  const steps = 6;
  for (let i = 0; i < steps; i++) {
    await sleep(windowMs / steps);
    cluster.nodes.forEach((node, j) => rssSeries[j].push(procStatusKiB(node.pid, 'VmRSS')));
  }
  const after = cluster.nodes.map((node) => sample(node.pid));
  windowUs.push(monotonicUs());
  const syscalls = traced ? await traced.stop() : undefined;
  const perfTop = recorded ? await recorded.stop() : undefined;
  if (perfTop) log(`node 2 under perf in the window (${perfFile}):\n${perfTop}`);
  const timers = opt.census ? await census(cluster.nodes[1].pid, `${dir}/census.json`) : undefined;
  if (timers) log(`node 2's timers in the window (fires, where set):\n${Object.entries(timers).slice(0, 25).map(([site, n]) => `  ${n} ${site}`).join('\n')}`);
  const heaps = await Promise.all(cluster.nodes.map((node) => heapOf(node).catch(() => ({}))));
  const perNode = cluster.nodes.map((node, j) => {
    const [a, b] = [before[j], after[j]];
    const s = (b.at - a.at) / 1000;
    return {
      node: node.name,
      peers: cluster.degrees[j],
      pctCore: round2(((b.cpu - a.cpu) / s) * 100),
      pctCoreNs: round2(((b.onCpuNs - a.onCpuNs) / 1e9 / s) * 100),
      cpuMsPerMin: Math.round(((b.cpu - a.cpu) / s) * 60_000),
      rssMiB: round1(b.rssKiB / MiB_KiB),
      rssMaxInWindowMiB: round1(Math.max(...rssSeries[j]) / MiB_KiB),
      rssAnonMiB: round1(b.anonKiB / MiB_KiB),
      rssFileMiB: round1(b.fileKiB / MiB_KiB),
      hwmMiB: round1(b.hwmKiB / MiB_KiB),
      ctxPerSec: round1((b.ctx - a.ctx) / s),
      syscallsPerSec: round1((b.syscalls - a.syscalls) / s),
      threads: b.threads,
      ...heaps[j],
    };
  });
  await Promise.all(cluster.nodes.map(stopServer));
  const [profile] = await cpuProfiles(`${dir}/prof`);
  const js = profile ? await cpuProfileByPackage(profile, { top: 20, windowsUs: [windowUs] }) : undefined;
  if (js) log(`node 2's JavaScript in the window: ${js.busyMs} ms\n${js.groups.map((g) => `  ${g.selfMs} ms ${g.where}`).join('\n')}`);
  if (syscalls) log(`node 2's syscalls in the window (strace -c -f):\n${syscalls}`);
  await removeTempDir(dir);
  // Node 2 is slowed by a profiler or strace: the columns are of the others then.
  const measured = opt.profile || opt.strace || opt.perf ? perNode.filter((p) => p.node !== 'n2') : perNode;
  const col = (k) => measured.map((p) => p[k]);
  const summary = {
    bin: bin.label,
    n,
    listeningMs: cluster.listeningMs,
    readyMs: cluster.readyMs,
    settledMs: cluster.meshMs,
    peersMedian: median(cluster.degrees),
    peersMin: Math.min(...cluster.degrees),
    pctCoreMedian: round2(median(col('pctCore'))),
    pctCoreMax: round2(Math.max(...col('pctCore'))),
    pctCoreNsMedian: round2(median(col('pctCoreNs'))),
    rssMiBMedian: round1(median(col('rssMiB'))),
    rssMiBMax: round1(Math.max(...col('rssMiB'))),
    rssAnonMiBMedian: round1(median(col('rssAnonMiB'))),
    rssFileMiBMedian: round1(median(col('rssFileMiB'))),
    hwmMiBMedian: round1(median(col('hwmMiB'))),
    heapUsedMiBMedian: round1(median(col('heapUsedMiB'))),
    ctxPerSecMedian: round1(median(col('ctxPerSec'))),
    syscallsPerSecMedian: round1(median(col('syscallsPerSec'))),
  };
  log(`${bin.label} N=${n}: ${summary.pctCoreMedian}% of a core (max ${summary.pctCoreMax}; ${summary.pctCoreNsMedian} by schedstat), RSS ${summary.rssMiBMedian} MiB (max ${summary.rssMiBMax}; anon ${summary.rssAnonMiBMedian}, file ${summary.rssFileMiBMedian}), heap ${summary.heapUsedMiBMedian} MiB, ${summary.ctxPerSecMedian} ctx/s`);
  return { summary, perNode, node2: { js, syscalls, timers } };
}

/** Asks node `pid` (run with timer-census.mjs) for its timer counts since the last ask. */
async function census(pid, file) {
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  return until('the timer census', async () => JSON.parse(readFileSync(file, 'utf8')), 10_000, 100);
}

/** strace -c -f on a running process until stop(), which returns its table. */
function straceCount(pid, file) {
  const child = spawn('strace', ['-c', '-f', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    async stop() {
      child.kill('SIGINT'); // our own strace: it detaches and writes its table
      await exited;
      return readFileSync(file, 'utf8');
    },
  };
}

/** perf record -g on a running process until stop(), which returns its top symbols by thread. */
function perfRecord(pid, file) {
  const child = spawn('perf', ['record', '-F', '999', '-g', '-o', file, '-p', String(pid)], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    async stop() {
      child.kill('SIGINT'); // our own perf: it writes its data and exits
      await exited;
      const report = spawn('perf', ['report', '-i', file, '--no-children', '--sort', 'comm,dso,sym', '-g', 'none', '--percent-limit', '1.5'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      report.stdout.on('data', (d) => (text += d));
      await new Promise((r) => report.once('exit', r));
      return text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).slice(0, 30).join('\n');
    },
  };
}

await runBenchmark(async () => {
  const runs = [];
  for (const n of sizes) for (const bin of bins) runs.push(await measure(bin, n));
  const header = ['build', 'N', '% core med', '% core max', '% core (ns) med', 'RSS MiB med', 'RSS max', 'anon med', 'file med', 'VmHWM med', 'heap used', 'ctx/s', 'syscalls/s', 'peers', 'ready s', 'settled s'];
  const rows = runs.map(({ summary: s }) => [s.bin, s.n, s.pctCoreMedian, s.pctCoreMax, s.pctCoreNsMedian, s.rssMiBMedian, s.rssMiBMax, s.rssAnonMiBMedian, s.rssFileMiBMedian, s.hwmMiBMedian, s.heapUsedMiBMedian, s.ctxPerSecMedian, s.syscallsPerSecMedian, `${s.peersMedian} (min ${s.peersMin})`, round1(s.readyMs / 1000), round1(s.settledMs / 1000)]);
  console.log(formatTable(header, rows));
  const file = await writeResults('idle', { windowMs, settleMs, bins, extraNodeFlags, extraArgs, runs });
  log(`results: ${file}`);
});
