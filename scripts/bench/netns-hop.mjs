#!/usr/bin/env node
// One hop of the bare libp2p stack on the namespace network: what moving a rollout's bytes from one host to the
// next costs with none of layerd's code, to set against the rollout bench's CPU (run as root).
//
//   node scripts/bench/netns-hop.mjs                       # 200 MiB, n1 → n2, 100mbit links, 2 rounds
//   node scripts/bench/netns-hop.mjs --rate 25mbit --mb 96
//
// Two hosts of a netns cluster (scripts/cluster/netns-cluster-lib.mjs, tbf on every link as in the rollout bench);
// p2p-raw-peer.mjs serves bytes from memory in n1's namespace and fetches them on one stream in n2's: layerd's
// libp2p node (TCP, noise, yamux with layerd's window), no disk, no hash, no blob protocol. Reports per round the
// throughput and each side's CPU seconds per GiB, and the kernel's part of them. A rollout host receives each byte
// once and (unless last in the order) sends it once: the sum of the two sides is what one host-hop costs the bare
// stack on these links, the floor under the rollout's "hosts' CPU" ÷ (hosts × image GiB).
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startCluster } from '../cluster/netns-cluster-lib.mjs';
import { MiB, formatTable, log, makeTempDir, procCpuSplit, round1, round2, runBenchmark, writeResults } from './lib.mjs';
import { pollUntil } from './p2p-lib.mjs';

const RAW_PEER = resolve(import.meta.dirname, 'p2p-raw-peer.mjs');
const RAW_PORT = 6001;
const GiB = 1024 * MiB;

function readOptions() {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: process.env.BENCH_MB ?? '200' },
      rate: { type: 'string', default: process.env.BENCH_RATE ?? '100mbit' },
      rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '2' },
    },
  });
  return { bytes: Number(values.mb) * MiB, rate: values.rate, rounds: Number(values.rounds) };
}

/** Starts the bare sender in `host`'s namespace; resolves with its multiaddr and PID once it listens. */
async function startSender(cluster, host, dir) {
  const out = join(dir, 'serve.json');
  const env = { LAYERD_BENCH_RAW_LISTEN: `/ip4/${host.addr}/tcp/${RAW_PORT}` };
  // Runs until the cluster stops it (runIn tracks it); its first line says where it listens.
  const done = cluster.runIn(host.ns, 'sh', ['-c', 'exec "$0" "$@" > "$OUT"', process.execPath, RAW_PEER, 'serve', dir], { env: { ...env, OUT: out }, timeoutMs: 3_600_000 });
  done.catch(() => {}); // stopped with the cluster
  return pollUntil('the bare sender to listen', async () => {
    const text = await readFile(out, 'utf8').catch(() => '');
    return text.includes('\n') ? JSON.parse(text.slice(0, text.indexOf('\n'))) : null;
  }, { timeoutMs: 30_000, everyMs: 100 });
}

async function hop(cluster, sender, receiverHost, dir, bytes) {
  const before = procCpuSplit(sender.pid);
  const { stdout } = await cluster.runIn(receiverHost.ns, process.execPath, [RAW_PEER, 'fetch', dir, sender.multiaddr, String(bytes)], { timeoutMs: 1_800_000 });
  const after = procCpuSplit(sender.pid);
  const r = JSON.parse(stdout.trim().split('\n').at(-1));
  if (r.bytes !== bytes) throw new Error(`fetched ${r.bytes} bytes, want ${bytes}`);
  const gib = bytes / GiB;
  return {
    mibPerSec: round1(bytes / MiB / (r.ms / 1000)),
    receiverCpuPerGiB: round2(r.cpuSec / gib),
    senderCpuPerGiB: round2((after.user + after.system - before.user - before.system) / gib),
    senderKernelPerGiB: round2((after.system - before.system) / gib),
  };
}

await runBenchmark(async () => {
  const opts = readOptions();
  const cluster = await startCluster({ nodes: 2, rate: opts.rate, seed: 'distribution', prefix: 'bhop', log: (l) => log(l) });
  const rounds = [];
  try {
    const [a, b] = cluster.nodes;
    const dir = await makeTempDir('layerd-bench-hop-');
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'b'));
    const sender = await startSender(cluster, a, join(dir, 'a'));
    for (let round = 1; round <= opts.rounds; round++) {
      const r = await hop(cluster, sender, b, join(dir, 'b'), opts.bytes);
      log(`round ${round}: ${r.mibPerSec} MiB/s, receiver ${r.receiverCpuPerGiB} CPU s/GiB, sender ${r.senderCpuPerGiB} (kernel ${r.senderKernelPerGiB})`);
      rounds.push(r);
    }
  } finally {
    await cluster.stop();
  }
  const median = (k) => rounds.map((r) => r[k]).sort((x, y) => x - y)[Math.floor((rounds.length - 1) / 2)];
  const summary = { mibPerSec: median('mibPerSec'), receiverCpuPerGiB: median('receiverCpuPerGiB'), senderCpuPerGiB: median('senderCpuPerGiB'), senderKernelPerGiB: median('senderKernelPerGiB') };
  const hopPerGiB = round2(summary.receiverCpuPerGiB + summary.senderCpuPerGiB);
  console.log(`\nbare libp2p, one stream, ${round1(opts.bytes / MiB)} MiB n1 → n2 at ${opts.rate}, ${opts.rounds} round(s), medians\n`);
  console.log(formatTable(['MiB/s', 'receiver CPU s/GiB', 'sender CPU s/GiB', 'sender kernel s/GiB', 'one host-hop (both) s/GiB'], [[summary.mibPerSec, summary.receiverCpuPerGiB, summary.senderCpuPerGiB, summary.senderKernelPerGiB, hopPerGiB]]));
  const file = await writeResults('netns-hop', { opts, rounds, summary, hopPerGiB });
  console.log(JSON.stringify({ bench: 'netns-hop', rate: opts.rate, mb: round1(opts.bytes / MiB), ...summary, hopPerGiB, results: file }));
});
