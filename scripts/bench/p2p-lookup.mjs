#!/usr/bin/env node
// First-provider lookup latency in layerd's DHT: N nodes on loopback, one provides K digests, the others look
// them up. Warm: nodes that have been connected until their routing tables stopped changing. Cold: a node that
// has just been started, timed from its start to the first provider it finds.
//
//   node scripts/bench/p2p-lookup.mjs                    # 10 nodes, 20 digests, 20 cold joins
//   node scripts/bench/p2p-lookup.mjs --nodes 30 --digests 50 --cold 30
//
// Options (flag, or env): --nodes BENCH_NODES (10), --digests BENCH_DIGESTS (20), --cold BENCH_COLD (20),
// --timeout-ms BENCH_LOOKUP_TIMEOUT_MS (2000, layerd's --peer-lookup-timeout default), --dist BENCH_LAYERD_DIST,
// --cold-variants BENCH_COLD_VARIANTS (comma list, default "as-is"): cold joins again with a change tried on the
// joining node, to see what a change to src/p2p/ would buy before making it:
//   as-is               the node exactly as layerd builds it;
//   no-self-query-wait  kad-dht lets no query run before its first self-query (a walk that dials every peer it
//                       finds) has finished; this resolves that gate as soon as the node starts (a lookup still
//                       waits for the routing table's first peer, as allowQueryWithZeroPeers: false asks);
//   dial-now            dials the bootstrap peer at once instead of after @libp2p/bootstrap's 100 ms timeout;
//   both                the two together.
//
// All nodes live in this one process (cheaper than N layerd processes, and the lookup code is the same): each is
// createP2PNode + DhtContentRouter from dist/, exactly what `layerd serve --p2p-listen` builds, on 127.0.0.1 TCP
// with noise and yamux. Node 0 is the bootstrap node of every other; node 1 provides. Lookups run one at a time,
// so a sample never waits for another lookup (they do share the event loop with every node's background work).
// Each sample has two times:
//   first     findProviders() called → first provider yielded (what the targets are about);
//   complete  → the iteration ends. PeerFetcher.providers() collects until the end (or its limit of 8, or the
//             lookup timeout) before it fetches, so this is what a pull actually waits for.
// Cold samples start before createP2PNode() (key generation, listen, dial, noise/yamux handshake, identify, the
// routing table's first peer, kad-dht's initial self-query, then the lookup); node start-up costs of a real layerd
// process (loading modules, opening the store) are not in it. Results: a table on stdout, one JSON line, and
// everything in .out/bench/p2p-lookup-<timestamp>.json.
import { createHash, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable, log, repoRoot, round1, runBenchmark, writeResults } from './lib.mjs';
import { percentile, pollUntil } from './p2p-lib.mjs';

const TARGETS = { warmP50Ms: 20, coldP50Ms: 250 };
const LIMIT = 8; // PeerFetcher's maxProviders
const COLD_VARIANTS = ['as-is', 'no-self-query-wait', 'dial-now', 'both'];

function readOptions() {
  const env = process.env;
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: env.BENCH_NODES ?? '10' },
      digests: { type: 'string', default: env.BENCH_DIGESTS ?? '20' },
      cold: { type: 'string', default: env.BENCH_COLD ?? '20' },
      'timeout-ms': { type: 'string', default: env.BENCH_LOOKUP_TIMEOUT_MS ?? '2000' },
      dist: { type: 'string', default: env.BENCH_LAYERD_DIST ?? join(repoRoot, 'dist') },
      'cold-variants': { type: 'string', default: env.BENCH_COLD_VARIANTS ?? 'as-is' },
    },
  });
  const opts = {
    nodes: Number(values.nodes),
    digests: Number(values.digests),
    cold: Number(values.cold),
    timeoutMs: Number(values['timeout-ms']),
    dist: resolve(values.dist),
    coldVariants: values['cold-variants'].split(',').filter(Boolean),
  };
  const unknown = opts.coldVariants.filter((v) => !COLD_VARIANTS.includes(v));
  if (unknown.length) throw new Error(`--cold-variants: pick from ${COLD_VARIANTS.join(',')}`);
  if (!(opts.nodes >= 3) || !(opts.digests >= 1) || !(opts.cold >= 0) || !(opts.timeoutMs > 0)) throw new Error(`bad options: ${JSON.stringify(values)}`);
  return opts;
}

async function loadLayerd(dist) {
  const mod = (p) => import(pathToFileURL(join(dist, p)).href);
  await mod('polyfill.js'); // Promise.withResolvers on Node 20: libp2p needs it, as layerd's cli knows
  const [{ createP2PNode }, { DhtContentRouter }, { generateKeyPair }] = await Promise.all([
    mod('p2p/libp2p-node.js'),
    mod('p2p/dht-router.js'),
    import('@libp2p/crypto/keys'),
  ]);
  return { createP2PNode, DhtContentRouter, generateKeyPair };
}

const randomDigest = () => `sha256:${createHash('sha256').update(randomBytes(32)).digest('hex')}`;
const routingTableSize = (node) => node.libp2p.services.dht.routingTable?.size ?? 0;

async function startNode(L, bootstrap) {
  const libp2p = await L.createP2PNode({
    privateKey: await L.generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    bootstrap,
    providerTtlMs: 24 * 3_600_000,
  });
  return { libp2p, router: new L.DhtContentRouter(libp2p, { expectPeers: bootstrap.length > 0 }), addr: libp2p.getMultiaddrs()[0].toString(), id: libp2p.peerId.toString() };
}

/**
 * One lookup: times to the first provider and to the end of the iteration, and whether `want` was among what it
 * found. `t0` may be given to start the clock earlier (cold joins).
 */
async function lookup(node, digest, want, timeoutMs, t0 = performance.now()) {
  let first = null;
  let found = false;
  let error;
  try {
    for await (const p of node.router.findProviders(digest, { signal: AbortSignal.timeout(timeoutMs), limit: LIMIT })) {
      first ??= performance.now() - t0;
      if (p.id === want) found = true;
    }
  } catch (err) {
    error = err.name === 'TimeoutError' || err.name === 'AbortError' ? 'timeout' : err.message;
  }
  return { firstMs: first === null ? null : round1(first), completeMs: round1(performance.now() - t0), found, ...(error ? { error } : {}) };
}

/** Waits until every routing table holds the other N-1 nodes, or has stopped growing for 2 s. */
async function settle(nodes) {
  const t0 = performance.now();
  let last = '';
  let since = performance.now();
  await pollUntil(
    'routing tables to settle',
    () => {
      const sizes = nodes.map(routingTableSize);
      const key = sizes.join(',');
      if (key !== last) {
        last = key;
        since = performance.now();
      }
      return sizes.every((s) => s >= nodes.length - 1) || (sizes.every((s) => s > 0) && performance.now() - since > 2000);
    },
    { timeoutMs: 60_000, everyMs: 50 },
  );
  return {
    ms: round1(performance.now() - t0),
    routingTableSizes: nodes.map(routingTableSize),
    // More connections than peers means pairs that dialled each other at once both kept their connection.
    connections: nodes.map((n) => n.libp2p.getConnections().length),
  };
}

/** One cold join: start a node bootstrapped to `via`, look `digest` up at once, stop it. */
async function coldJoin(L, via, digest, want, timeoutMs, variant) {
  const start = performance.now();
  const node = await startNode(L, [via.addr]);
  const startedMs = performance.now() - start;
  // Where a cold lookup's time goes: the first connection, then the routing table's first peer.
  const phase = {};
  node.libp2p.addEventListener('connection:open', () => (phase.connectedMs ??= round1(performance.now() - start)));
  node.libp2p.services.dht.routingTable.addEventListener('peer:add', () => (phase.routingTableMs ??= round1(performance.now() - start)));
  if (variant === 'no-self-query-wait' || variant === 'both') node.libp2p.services.dht.queryManager.initialQuerySelfHasRun?.resolve();
  if (variant === 'dial-now' || variant === 'both') node.libp2p.dial(L.multiaddr(via.addr)).catch(() => undefined);
  try {
    // As a pull would: PeerFetcher waits for a routing-table peer (within its lookup budget), then looks up.
    // The clock runs from before the node existed.
    await node.router.ready(timeoutMs);
    const r = await lookup(node, digest, want, timeoutMs, start);
    return { ...r, startedMs: round1(startedMs), ...phase };
  } finally {
    await node.libp2p.stop();
  }
}

function stats(samples, key) {
  const xs = samples.map((s) => s[key]).filter((x) => x !== null);
  return {
    n: xs.length,
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: xs.length ? Math.max(...xs) : null,
  };
}

async function main() {
  const opts = readOptions();
  const L = await loadLayerd(opts.dist);
  const nodes = [];
  try {
    const t0 = performance.now();
    nodes.push(await startNode(L, []));
    for (let i = 1; i < opts.nodes; i++) {
      // libp2p refuses a host's 6th inbound connection within a second (connectionManager.inboundConnectionThreshold,
      // 5), and on loopback every node is the same host; the bootstrap module never redials, so a refused node
      // would stay alone for good. Hence at most 4 starts a second, each once connected to its bootstrap node.
      const started = performance.now();
      const node = await startNode(L, [nodes[0].addr]);
      nodes.push(node);
      await pollUntil(`node ${i} to reach its bootstrap node`, () => routingTableSize(node) > 0, { timeoutMs: 10_000 });
      const wait = 250 - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // pacing (see above), not a readiness sleep
    }
    const settled = await settle(nodes);
    log(`${opts.nodes} nodes up in ${round1(performance.now() - t0)} ms; routing tables ${settled.routingTableSizes.join(',')} after ${settled.ms} ms`);

    const provider = nodes[1];
    const digests = Array.from({ length: opts.digests }, randomDigest);
    const provideMs = await Promise.all(
      digests.map(async (d) => {
        const s = performance.now();
        await provider.router.provide(d); // queued, 4 at a time, as layerd does after a pull
        return performance.now() - s;
      }),
    );
    log(`provided ${digests.length} digests (p50 ${round1(percentile(provideMs, 50))} ms from queueing to done)`);

    // Warm: every other node looks every digest up, one lookup at a time.
    const warm = [];
    for (const d of digests) {
      for (const node of nodes) {
        if (node === provider) continue;
        warm.push(await lookup(node, d, provider.id, opts.timeoutMs));
      }
    }
    log(`warm: ${warm.length} lookups, p50 first ${percentile(warm.map((s) => s.firstMs), 50)} ms`);

    // Cold: a node starts, joins through a random existing node (not the provider) and looks a digest up at once.
    const L2 = { ...L, multiaddr: (await import('@multiformats/multiaddr')).multiaddr };
    const coldByVariant = {};
    let j = 0;
    for (const variant of opts.coldVariants) {
      const samples = (coldByVariant[variant] = []);
      for (let k = 0; k < opts.cold; k++, j++) {
        const via = nodes.filter((n) => n !== provider)[j % (nodes.length - 1)];
        samples.push(await coldJoin(L2, via, digests[j % digests.length], provider.id, opts.timeoutMs, variant));
      }
      log(`cold (${variant}): ${samples.length} joins, p50 first ${percentile(samples.map((s) => s.firstMs), 50)} ms`);
    }
    const cold = coldByVariant[opts.coldVariants[0]] ?? [];

    const summary = {
      warm: { first: stats(warm, 'firstMs'), complete: stats(warm, 'completeMs'), missed: warm.filter((s) => !s.found).length, of: warm.length },
      cold: {
        first: stats(cold, 'firstMs'),
        complete: stats(cold, 'completeMs'),
        missed: cold.filter((s) => !s.found).length,
        of: cold.length,
        startMs: stats(cold, 'startedMs'),
        connectedMs: stats(cold, 'connectedMs'),
        routingTableMs: stats(cold, 'routingTableMs'),
      },
      coldVariants: Object.fromEntries(
        Object.entries(coldByVariant).map(([v, xs]) => [v, { first: stats(xs, 'firstMs'), complete: stats(xs, 'completeMs'), missed: xs.filter((x) => !x.found).length }]),
      ),
      provideMs: { p50: round1(percentile(provideMs, 50)), max: round1(Math.max(...provideMs)) },
    };
    const pass = {
      warm: summary.warm.first.p50 !== null && summary.warm.first.p50 <= TARGETS.warmP50Ms,
      cold: summary.cold.first.p50 !== null && summary.cold.first.p50 <= TARGETS.coldP50Ms,
    };

    console.log(`\n${opts.nodes} nodes in one process on loopback, ${opts.digests} digests provided by one; load avg ${loadavg()[0].toFixed(2)} on ${cpus().length} cpus\n`);
    const row = (name, s) => [name, s.n, s.p50, s.p90, s.p99, s.max];
    console.log(
      formatTable(
        ['ms', 'samples', 'p50', 'p90', 'p99', 'max'],
        [
          row('warm: first provider', summary.warm.first),
          row('warm: lookup complete', summary.warm.complete),
          row('cold: start → first provider', summary.cold.first),
          row('cold: start → lookup complete', summary.cold.complete),
          row('cold: start → createP2PNode done', summary.cold.startMs),
          row('cold: start → first connection', summary.cold.connectedMs),
          row('cold: start → routing table peer', summary.cold.routingTableMs),
        ],
      ),
    );
    if (opts.coldVariants.length > 1) {
      console.log('');
      console.log(
        formatTable(
          ['cold variant: start → first provider', 'p50', 'p90', 'p99', 'missed'],
          Object.entries(summary.coldVariants).map(([v, x]) => [v, x.first.p50, x.first.p90, x.first.p99, x.missed]),
        ),
      );
    }
    console.log(`\nmissed (provider not found): warm ${summary.warm.missed}/${summary.warm.of}, cold ${summary.cold.missed}/${summary.cold.of}`);
    console.log(`targets: warm p50 ≤ ${TARGETS.warmP50Ms} ms ${pass.warm ? 'met' : 'MISSED'}, cold p50 ≤ ${TARGETS.coldP50Ms} ms ${pass.cold ? 'met' : 'MISSED'}`);

    const file = await writeResults('p2p-lookup', {
      bench: 'p2p-lookup',
      when: new Date().toISOString(),
      machine: { node: process.version, cpus: cpus().length, loadavg: loadavg() },
      options: opts,
      settled,
      summary,
      targets: TARGETS,
      pass,
      samples: { warm, cold: coldByVariant },
    });
    console.log(
      JSON.stringify({
        bench: 'p2p-lookup',
        nodes: opts.nodes,
        warmFirstP50Ms: summary.warm.first.p50,
        warmFirstP99Ms: summary.warm.first.p99,
        warmCompleteP50Ms: summary.warm.complete.p50,
        coldFirstP50Ms: summary.cold.first.p50,
        coldFirstP99Ms: summary.cold.first.p99,
        ...(opts.coldVariants.length > 1 ? { coldVariantsFirstP50Ms: Object.fromEntries(Object.entries(summary.coldVariants).map(([v, x]) => [v, x.first.p50])) } : {}),
        pass,
        results: file,
      }),
    );
  } finally {
    await Promise.all(nodes.map((n) => n.libp2p.stop().catch(() => undefined)));
  }
}

await runBenchmark(main);
