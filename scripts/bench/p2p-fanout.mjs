#!/usr/bin/env node
// Fan-out: one large layer pulled by several layerd nodes at once, every node with the same seed registry and
// P2P on, bootstrapped to each other. How many bytes leave the seed, per byte of the layer? (Target ≤ 1.1: the
// cluster fetches the layer from the seed about once and shares it.)
//
//   node scripts/bench/p2p-fanout.mjs                       # 1 GiB layer, 4 nodes, pulls all at once
//   BENCH_MB=256 node scripts/bench/p2p-fanout.mjs --nodes 3
//   node scripts/bench/p2p-fanout.mjs --stagger-ms 500      # each pull starts 500 ms after the previous one
//
// Options (flag, or env): --mb BENCH_MB (1024), --nodes BENCH_NODES (4), --stagger-ms BENCH_STAGGER_MS (0),
// --verify BENCH_VERIFY=1 (clients hash what they get; costs client CPU on a small box), --layerd-bin
// BENCH_LAYERD_BIN, --layerd-node-args BENCH_LAYERD_NODE_ARGS.
//
// The seed is CNCF distribution (docker-registry) with its access log on; the layer is a blob of random bytes
// pushed to it by a streamed upload. Nodes: `layerd serve --upstream <seed> --p2p-listen /ip4/127.0.0.1/tcp/0`,
// node 0 alone, the others with --bootstrap node 0; the run starts once every node's /api/status shows the
// others connected. Then one client per node GETs /v2/<repo>/blobs/<digest> from its node, all at once (or
// staggered), and reads the body to its end.
//
// Peak RSS: every node's VmHWM (/proc/PID/status) after the run, and how many peers it sent the layer to
// (its /api/status: peers it uploaded to). Pulled at once, the nodes form a fetch chain, so each relays to
// at most one. So a second phase (--relay-followers N, default 4; 0 skips it) measures one node relaying to
// N followers: a fresh node R, peered with nobody, is asked for the layer over HTTP (it fetches it from the
// seed), and as soon as its answer starts N bare libp2p peers (in this process; the same stack layerd builds)
// ask R for the layer over the blob protocol: R serves each from its running download (the relay path).
// Reported: R's peak RSS (target ≤ 200 MiB), each follower's bytes. Nodes run with the node flags of the
// bin's #! line (the heap flag layerd ships with) unless --layerd-node-args says otherwise.
//
// Seed egress = the sum of the byte counts distribution's access log gives for the blob's GETs (200 and 206),
// over the layer size. Also per node: time to last byte, X-Layerd-Source, and /api/status's stats (fetches by
// source, uploadedToPeers, lookups). Makespan = first request → last client's last byte. Results: a table on
// stdout, one JSON line, and everything in .out/bench/p2p-fanout-<timestamp>.json.
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  MiB,
  formatTable,
  layerdBin,
  log,
  makeTempDir,
  mibPerSec,
  procCpuSeconds,
  procStatusKiB,
  pushBlobFile,
  repoRoot,
  round1,
  round2,
  runBenchmark,
  startDistribution,
  startLayerd,
  stopServer,
  writeResults,
} from './lib.mjs';
import { createRandomBlob, getJson, pollUntil, timedGet } from './p2p-lib.mjs';
import { shippedNodeFlags } from '../cluster/netns-cluster-lib.mjs';
import { get } from 'node:http';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Peak and current RSS of a process, MiB. */
function rssOf(pid) {
  return { peakRssMiB: round1((procStatusKiB(pid, 'VmHWM') ?? 0) / 1024), rssMiB: round1((procStatusKiB(pid, 'VmRSS') ?? 0) / 1024) };
}

/**
 * One node relaying the layer to `followers` bare peers at once (see the header): R's peak RSS and what each
 * follower got.
 */
async function relayPhase(dir, seed, digest, opts) {
  const dist = join(repoRoot, 'dist');
  await import(pathToFileURL(join(dist, 'polyfill.js')).href); // libp2p needs Promise.withResolvers
  const [{ createP2PNode }, { fetchFromPeer }, { parseDigest }, { generateKeyPair }] = await Promise.all([
    import(pathToFileURL(join(dist, 'p2p', 'libp2p-node.js')).href),
    import(pathToFileURL(join(dist, 'p2p', 'blob-protocol.js')).href),
    import(pathToFileURL(join(dist, 'oci', 'digest.js')).href),
    import('@libp2p/crypto/keys'),
  ]);
  const host = `127.0.0.1:${seed.port}`;
  // With --trace-gc among the node flags, R's collections are counted from its output.
  const gcs = { scavenge: 0, markCompact: 0 };
  const relay = await startLayerd(dir, {
    name: `relay-${++relayRuns}`,
    args: ['--upstream', `${host}=${seed.url}`, '--default-registry', host, '--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn'],
    nodeArgs: opts.layerdNodeArgs,
    bin: opts.layerdBin,
    env: opts.layerdEnv,
    onLine: (l) => {
      if (process.env.BENCH_RELAY_LOG) appendFileSync(`${process.env.BENCH_RELAY_LOG}-${relayRuns}.log`, `${l}\n`);
      if (/: Scavenge|Minor Mark/.test(l)) gcs.scavenge++;
      else if (/: Mark-Compact/.test(l)) gcs.markCompact++;
    },
  });
  const cpuBefore = procCpuSeconds(relay.pid);
  const status = await getJson(`${relay.url}/api/status`);
  const target = { id: status.peerId, addrs: status.multiaddrs };
  const peers = await Promise.all(Array.from({ length: opts.relayFollowers }, async () => createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: [], announce: [], bootstrap: [], providerTtlMs: 3_600_000 })));
  try {
    const t0 = performance.now();
    let headers;
    const answered = new Promise((r) => (headers = r));
    const client = new Promise((resolveGet, rejectGet) => {
      get(`${relay.url}/v2/${REPO}/blobs/${digest}`, (res) => {
        headers(res.headers);
        let n = 0;
        res.on('data', (c) => (n += c.length));
        res.on('end', () => resolveGet({ bytes: n, ms: performance.now() - t0 }));
        res.on('error', rejectGet);
      }).on('error', rejectGet);
    });
    const source = (await answered)['x-layerd-source'];
    // What R's memory is made of at its highest RSS seen (prom-client's process metrics, sampled).
    let peakSample = { rssMiB: 0 };
    const sampler = setInterval(() => {
      const rssMiB = (procStatusKiB(relay.pid, 'VmRSS') ?? 0) / 1024;
      if (rssMiB <= peakSample.rssMiB) return;
      const at = round1((performance.now() - t0) / 1000);
      peakSample = { rssMiB: round1(rssMiB), at };
      fetch(`${relay.url}/metrics`).then((r) => r.text())
        .then((text) => {
          const m = (name) => round1(Number(new RegExp(`^layerd_process_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / MiB);
          if (peakSample.at === at) Object.assign(peakSample, { heapUsedMiB: m('nodejs_heap_size_used_bytes'), heapTotalMiB: m('nodejs_heap_size_total_bytes'), externalMiB: m('nodejs_external_memory_bytes') });
        })
        .catch(() => undefined);
    }, 250);
    // R's download is running now: the followers join it (the relay path), not the committed blob.
    const followed = await Promise.all(
      peers.map(async (p, i) => {
        const started = performance.now() - t0;
        const blob = await fetchFromPeer(p, target, parseDigest(digest), undefined, AbortSignal.timeout(600_000));
        let n = 0;
        for await (const c of blob.body) n += c.length;
        return { follower: i + 1, startedAtMs: round1(started), bytes: n, doneAtMs: round1(performance.now() - t0) };
      }),
    );
    const got = await client;
    clearInterval(sampler);
    const relayStatus = await getJson(`${relay.url}/api/status`);
    const rss = rssOf(relay.pid);
    const cpuSeconds = procCpuSeconds(relay.pid) - cpuBefore;
    for (const f of followed) if (f.bytes !== opts.blobBytes) throw new Error(`follower ${f.follower}: ${f.bytes} bytes, want ${opts.blobBytes}`);
    if (got.bytes !== opts.blobBytes) throw new Error(`relay's client: ${got.bytes} bytes`);
    return {
      followers: opts.relayFollowers,
      relaySource: source,
      clientMs: round1(got.ms),
      followed,
      uploadedToPeersMiB: round1(relayStatus.stats.uploadedToPeers / MiB),
      relayedTo: relayStatus.peers.filter((x) => x.uploaded > 0).length,
      ...rss,
      // R's CPU (all threads) per GiB it fetched: it also wrote the GiB, served its client and 4 followers.
      cpuSecondsPerGiB: round2(cpuSeconds / (opts.blobBytes / (1024 * MiB))),
      gcs: opts.layerdNodeArgs.includes('--trace-gc') ? gcs : undefined,
      atPeak: peakSample,
    };
  } finally {
    await Promise.all(peers.map((p) => p.stop().catch(() => undefined)));
    await stopServer(relay).catch(() => undefined);
  }
}

let relayRuns = 0;
const REPO = 'bench/fanout';
const TARGET = 1.1;
/** Peak RSS of a node relaying the layer to its followers (issue 14). */
const RSS_TARGET_MIB = 200;

function readOptions() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: env.BENCH_MB ?? '1024' },
      nodes: { type: 'string', default: env.BENCH_NODES ?? '4' },
      'stagger-ms': { type: 'string', default: env.BENCH_STAGGER_MS ?? '0' },
      verify: { type: 'boolean', default: env.BENCH_VERIFY === '1' },
      'layerd-bin': { type: 'string', default: env.BENCH_LAYERD_BIN ?? layerdBin },
      'layerd-node-args': { type: 'string', default: env.BENCH_LAYERD_NODE_ARGS },
      'relay-followers': { type: 'string', default: env.BENCH_RELAY_FOLLOWERS ?? '4' },
      // Only the relay phase (for iterating on a relaying node's memory).
      'relay-only': { type: 'boolean', default: false },
      // With --relay-only: other builds and/or node flags to run the relay phase with, interleaved with this
      // one in the same run, e.g. --relay-variant 'bin=../main/dist/cli.js' --relay-variant 'args=--initial-heap-size=32;env=MALLOC_ARENA_MAX=2'.
      'relay-variant': { type: 'string', multiple: true, default: [] },
      'relay-rounds': { type: 'string', default: env.BENCH_RELAY_ROUNDS ?? '1' },
    },
  });
  const opts = {
    blobBytes: Math.round(Number(values.mb) * MiB),
    nodes: Number(values.nodes),
    staggerMs: Number(values['stagger-ms']),
    verify: values.verify,
    layerdBin: resolve(values['layerd-bin']),
    layerdNodeArgs: values['layerd-node-args'] === undefined ? shippedNodeFlags(resolve(values['layerd-bin'])) : values['layerd-node-args'].split(/\s+/).filter(Boolean),
    relayFollowers: Number(values['relay-followers']),
    relayOnly: values['relay-only'],
    relayRounds: Number(values['relay-rounds']),
    relayVariants: values['relay-variant'].map((v) => {
      const o = Object.fromEntries(v.split(';').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const bin = o.bin ? resolve(o.bin) : undefined;
      const env = o.env ? Object.fromEntries(o.env.split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : undefined;
      return { name: v, layerdBin: bin, env, layerdNodeArgs: o.args !== undefined ? o.args.split(/\s+/).filter(Boolean) : bin ? shippedNodeFlags(bin) : undefined };
    }),
  };
  if (!(opts.blobBytes > 0) || !(opts.nodes >= 2) || !(opts.staggerMs >= 0) || !(opts.relayFollowers >= 0)) throw new Error(`bad options: ${JSON.stringify(values)}`);
  return opts;
}

/**
 * Adds up the seed's blob GETs for `digest` from its access log, e.g.
 *   127.0.0.1 - - [25/Nov/2026:07:44:01 +0000] "GET /v2/bench/fanout/blobs/sha256:… HTTP/1.1" 200 1073741824 "" "layerd/0.1.0"
 * The byte count is what distribution wrote to the connection (a GET cut short counts what it sent).
 */
function egressCounter(digest) {
  const gets = [];
  const re = /"GET \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64})\S* HTTP\/[\d.]+" (\d{3}) (\d+|-)/;
  return {
    gets,
    onLine(l) {
      const m = re.exec(l);
      if (m && m[1] === digest) gets.push({ status: Number(m[2]), bytes: m[3] === '-' ? 0 : Number(m[3]) });
    },
    bytes: () => gets.filter((g) => g.status === 200 || g.status === 206).reduce((a, g) => a + g.bytes, 0),
  };
}

async function startNodes(dir, seed, opts) {
  const host = `127.0.0.1:${seed.port}`;
  const base = ['--upstream', `${host}=${seed.url}`, '--default-registry', host, '--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn'];
  const start = (i, extra) => startLayerd(dir, { name: `node${i}`, args: [...base, ...extra], nodeArgs: opts.layerdNodeArgs, bin: opts.layerdBin });
  const first = await start(0, []);
  const boot = (await getJson(`${first.url}/api/status`)).multiaddrs[0];
  // Started one after another: libp2p refuses a host's 6th inbound connection within a second, and on loopback
  // all nodes are one host (see p2p-lookup.mjs).
  const nodes = [first];
  for (let i = 1; i < opts.nodes; i++) nodes.push(await start(i, ['--bootstrap', boot]));
  await pollUntil(
    'every node connected to every other',
    async () => (await Promise.all(nodes.map((n) => getJson(`${n.url}/api/status`)))).every((s) => s.connectedPeers >= opts.nodes - 1),
    { timeoutMs: 60_000, everyMs: 100 },
  );
  return nodes;
}

async function main() {
  const opts = readOptions();
  const dir = await makeTempDir('layerd-bench-fanout-');
  const blobPath = join(dir, 'layer.bin');
  log(`creating a ${opts.blobBytes / MiB} MiB random layer`);
  const digest = await createRandomBlob(blobPath, opts.blobBytes);

  const egress = egressCounter(digest);
  const seed = await startDistribution(dir, { name: 'seed', onLine: egress.onLine });
  const push = await pushBlobFile(seed, REPO, blobPath, opts.blobBytes, digest);
  log(`pushed the layer to the seed in ${(push.ms / 1000).toFixed(1)} s`);
  if (opts.relayOnly) {
    const variants = [{ name: 'this', layerdBin: opts.layerdBin, layerdNodeArgs: opts.layerdNodeArgs }, ...opts.relayVariants];
    const rows = [];
    for (let round = 1; round <= opts.relayRounds; round++) {
      for (const v of variants) {
        const o = { ...opts, layerdBin: v.layerdBin ?? opts.layerdBin, layerdNodeArgs: v.layerdNodeArgs ?? opts.layerdNodeArgs, layerdEnv: v.env };
        const load = loadavg()[0];
        const relay = await relayPhase(dir, seed, digest, o);
        const row = { variant: v.name, round, bin: o.layerdBin, nodeFlags: o.layerdNodeArgs, load, relay: { ...relay, pass: relay.peakRssMiB <= RSS_TARGET_MIB } };
        rows.push(row);
        console.log(JSON.stringify({ bench: 'p2p-fanout', mb: opts.blobBytes / MiB, ...row }));
      }
    }
    console.log(
      '\n' +
        formatTable(
          ['variant', 'round', 'load', 'peak RSS MiB', 'CPU s/GiB', 'client s', 'followers done s', 'GCs (scavenge/mark-compact)', 'at peak: heap used / external MiB'],
          rows.map((r) => [r.variant, r.round, round2(r.load), r.relay.peakRssMiB, r.relay.cpuSecondsPerGiB, round1(r.relay.clientMs / 1000), Math.max(...r.relay.followed.map((f) => f.doneAtMs / 1000)).toFixed(1), r.relay.gcs ? `${r.relay.gcs.scavenge}/${r.relay.gcs.markCompact}` : '-', `${r.relay.atPeak.heapUsedMiB} / ${r.relay.atPeak.externalMiB}`]),
        ),
    );
    await writeResults('p2p-fanout-relay', { bench: 'p2p-fanout', when: new Date().toISOString(), machine: { node: process.version, cpus: cpus().length }, options: opts, rows });
    return;
  }
  const nodes = await startNodes(dir, seed, opts);
  log(`${nodes.length} nodes up and connected to each other`);

  const loadBefore = loadavg();
  const t0 = performance.now();
  const pulls = await Promise.all(
    nodes.map(async (node, i) => {
      if (opts.staggerMs > 0) await new Promise((r) => setTimeout(r, i * opts.staggerMs)); // the stagger under test
      const startedAt = performance.now() - t0;
      const r = await timedGet(`${node.url}/v2/${REPO}/blobs/${digest}`, { hash: opts.verify });
      if (r.bytes !== opts.blobBytes) throw new Error(`${node.name}: ${r.bytes} bytes, want ${opts.blobBytes}`);
      if (opts.verify && r.digest !== digest) throw new Error(`${node.name}: got ${r.digest}, want ${digest}`);
      return { node: node.name, startedAtMs: round1(startedAt), ms: round1(r.ms), ttfbMs: round1(r.ttfbMs), doneAtMs: round1(performance.now() - t0), source: r.headers['x-layerd-source'] };
    }),
  );
  const makespanMs = Math.max(...pulls.map((p) => p.doneAtMs));
  const loadAfter = loadavg();

  // Distribution logs a request when it has finished; a seed GET that a node abandoned may end a moment later.
  let quiet = { n: -1, since: performance.now() };
  await pollUntil(
    "the seed's access log to go quiet",
    () => {
      if (egress.gets.length !== quiet.n) quiet = { n: egress.gets.length, since: performance.now() };
      return performance.now() - quiet.since > 500;
    },
    { timeoutMs: 30_000, everyMs: 50 },
  );

  const statuses = await Promise.all(nodes.map((n) => getJson(`${n.url}/api/status`)));
  const perNode = pulls.map((p, i) => {
    const s = statuses[i].stats;
    return {
      ...p,
      ...rssOf(nodes[i].pid),
      relayedTo: statuses[i].peers.filter((x) => x.uploaded > 0).length,
      mibPerSec: round1(mibPerSec(opts.blobBytes, p.ms)),
      fetchedFromPeerMiB: round1(s.fetches.peer.bytes / MiB),
      fetchedFromSeedMiB: round1(s.fetches.upstream.bytes / MiB),
      uploadedToPeersMiB: round1(s.uploadedToPeers / MiB),
      lookups: s.lookups.count,
      lookupsFound: s.lookups.found,
      lookupMs: s.lookups.totalMs,
      stats: s,
    };
  });
  const egressBytes = egress.bytes();
  const ratio = round2(egressBytes / opts.blobBytes);

  console.log(
    `\nlayer ${opts.blobBytes / MiB} MiB, ${opts.nodes} nodes, pulls ${opts.staggerMs ? `${opts.staggerMs} ms apart` : 'all at once'}; load avg ${loadBefore[0].toFixed(2)} → ${loadAfter[0].toFixed(2)} on ${cpus().length} cpus\n`,
  );
  console.log(
    formatTable(
      ['node', 'start ms', 'done ms', 'MiB/s', 'X-Layerd-Source', 'from seed MiB', 'from peers MiB', 'uploaded to peers MiB', 'relayed to', 'peak RSS MiB', 'lookups (found)'],
      perNode.map((p) => [p.node, p.startedAtMs, p.doneAtMs, p.mibPerSec, p.source, p.fetchedFromSeedMiB, p.fetchedFromPeerMiB, p.uploadedToPeersMiB, p.relayedTo, p.peakRssMiB, `${p.lookups} (${p.lookupsFound})`]),
    ),
  );
  console.log(`\nseed blob GETs: ${egress.gets.map((g) => `${g.status} ${round1(g.bytes / MiB)} MiB`).join(', ')}`);
  console.log(`seed egress ${round1(egressBytes / MiB)} MiB = ${ratio}x the layer (target ≤ ${TARGET}); makespan ${(makespanMs / 1000).toFixed(1)} s`);
  console.log(`node flags: ${opts.layerdNodeArgs.join(' ') || '(none)'}`);

  let relay = null;
  if (opts.relayFollowers > 0) {
    log(`relay phase: a fresh node fetching the layer from the seed, ${opts.relayFollowers} peers following its download`);
    relay = await relayPhase(dir, seed, digest, opts);
    console.log(
      `\nrelay: one node fetching ${opts.blobBytes / MiB} MiB (from ${relay.relaySource}) and relaying it to ${relay.relayedTo} followers at once (${relay.uploadedToPeersMiB} MiB sent): ` +
        `peak RSS ${relay.peakRssMiB} MiB (target ≤ ${RSS_TARGET_MIB}; at the highest RSS sampled: ${JSON.stringify(relay.atPeak)}), its client done in ${(relay.clientMs / 1000).toFixed(1)} s, followers done at ${relay.followed.map((f) => (f.doneAtMs / 1000).toFixed(1)).join(', ')} s (asked at ${relay.followed.map((f) => (f.startedAtMs / 1000).toFixed(1)).join(', ')} s)`,
    );
  }

  const file = await writeResults('p2p-fanout', {
    bench: 'p2p-fanout',
    when: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, loadBefore, loadAfter },
    options: opts,
    digest,
    push,
    seed: { gets: egress.gets, egressBytes, ratio, target: TARGET },
    makespanMs: round1(makespanMs),
    nodes: perNode,
    relay,
  });
  console.log(
    JSON.stringify({
      bench: 'p2p-fanout',
      mb: opts.blobBytes / MiB,
      nodes: opts.nodes,
      staggerMs: opts.staggerMs,
      seedEgressRatio: ratio,
      pass: ratio <= TARGET,
      makespanMs: round1(makespanMs),
      peakRssMiB: Object.fromEntries(perNode.map((p) => [p.node, p.peakRssMiB])),
      relay: relay && { followers: relay.relayedTo, peakRssMiB: relay.peakRssMiB, pass: relay.peakRssMiB <= RSS_TARGET_MIB },
      sources: Object.fromEntries(perNode.map((p) => [p.node, { source: p.source, seedMiB: p.fetchedFromSeedMiB, peerMiB: p.fetchedFromPeerMiB }])),
      results: file,
    }),
  );
}

await runBenchmark(main);
