#!/usr/bin/env node
// How long a cluster takes to start, and what starting costs each node (issue 16: 32 hosts up in ≤ 20 s on this
// box). Starts the netns cluster of scripts/cluster/netns-cluster-lib.mjs (a seed, node 1, then the other N-1 at
// once, bootstrapped to node 1) until every node answers /readyz and has a peer, then reads /proc of every node:
// CPU seconds since its spawn (all of it start-up: the node had nothing else to do), RSS and its peak (VmHWM),
// then its connected peers (how far the cluster had meshed when its last node was ready).
// Run as root, under the machine's netns lock:
//
//   flock /work/netns.lock node scripts/bench/cluster-start.mjs --nodes 32 [--bin label=path ...] [--rounds 1]
//
// --bin (repeatable) compares builds in one run, interleaved per round (default: this checkout's bin). Each build
// runs with the node flags on its own #! line; LAYERD_NODE_FLAGS adds more to every node (e.g. to try a V8 flag).
// Results: a table on stdout, .out/bench/cluster-start-<time>.json.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startCluster } from '../cluster/netns-cluster-lib.mjs';
import { formatTable, layerdBin, log, median, procCpuSeconds, procStatusKiB, round1, round2, runBenchmark, writeResults } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    nodes: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '1' },
    bin: { type: 'string', multiple: true },
    rate: { type: 'string', default: '1gbit' },
  },
});
const n = Number(opt.nodes);
const bins = (opt.bin ?? [`this=${layerdBin}`]).map((b) => {
  const [label, path] = b.includes('=') ? b.split(/=(.*)/s) : [b, b];
  return { label, path };
});

async function measure(bin) {
  const load = loadavg()[0];
  log(`${bin.label}: starting ${n} nodes (load ${round1(load)})`);
  // The deadline grows with the cluster, as in rollout.mjs: a slow start is measured, not cut off.
  const cluster = await startCluster({ nodes: n, rate: opt.rate, prefix: 'bcs', timeoutMs: Math.max(120_000, n * 8_000), layerdBin: bin.path, log: (l) => log(l) });
  try {
    const nodes = cluster.nodes.map((h) => ({ cpuS: procCpuSeconds(h.pid), rssMiB: procStatusKiB(h.pid, 'VmRSS') / 1024, hwmMiB: procStatusKiB(h.pid, 'VmHWM') / 1024 }));
    // Read after the CPU above: how far each node had meshed by the time the last one was ready.
    const peers = await Promise.all(cluster.nodes.map((h) => h.http('/api/status').then((r) => JSON.parse(r.body ?? '{}').connectedPeers ?? NaN, () => NaN)));
    peers.forEach((p, i) => (nodes[i].peers = p));
    const col = (k) => nodes.map((x) => x[k]);
    const s = {
      bin: bin.label,
      n,
      load: round1(load),
      upS: round1(cluster.setupMs / 1000),
      // The namespaces and links are the harness's, not layerd's: left out of the start.
      startS: round1((cluster.setupMs - cluster.networkMs) / 1000),
      cpuSMedian: round2(median(col('cpuS'))),
      cpuSMax: round2(Math.max(...col('cpuS'))),
      cpuSAll: round1(col('cpuS').reduce((a, b) => a + b, 0)),
      rssMiBMedian: round1(median(col('rssMiB'))),
      hwmMiBMedian: round1(median(col('hwmMiB'))),
      hwmMiBMax: round1(Math.max(...col('hwmMiB'))),
      peersMedian: median(col('peers')),
    };
    log(`${bin.label}: ${n} nodes up in ${s.startS} s (with the network ${s.upS} s), ${s.cpuSMedian} CPU s per node, RSS ${s.rssMiBMedian} MiB`);
    return { summary: s, nodes };
  } finally {
    await cluster.stop();
  }
}

await runBenchmark(async () => {
  const runs = [];
  for (let r = 0; r < Number(opt.rounds); r++) for (const bin of bins) runs.push(await measure(bin));
  const header = ['build', 'N', 'load', 'start s', 'up s (with network)', 'CPU s/node med', 'max', 'CPU s all nodes', 'RSS MiB med', 'VmHWM med', 'VmHWM max', 'peers med'];
  const rows = runs.map(({ summary: s }) => [s.bin, s.n, s.load, s.startS, s.upS, s.cpuSMedian, s.cpuSMax, s.cpuSAll, s.rssMiBMedian, s.hwmMiBMedian, s.hwmMiBMax, s.peersMedian]);
  console.log(formatTable(header, rows));
  log(`results: ${await writeResults('cluster-start', { n, bins, nodeFlags: process.env.LAYERD_NODE_FLAGS ?? '', runs })}`);
});
