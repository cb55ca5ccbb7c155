#!/usr/bin/env node
// How closely `--max-upload-rate` and `--max-upload-rate-per-peer` hold: a layerd node with P2P and both
// limits set serves a blob over its blob protocol to raw libp2p peers (layerd's own createP2PNode and
// fetchFromPeer from dist/), and the achieved rate is compared with the configured one.
//
//   node scripts/bench/upload-rate.mjs                        # per peer 12 MB/s, total 20 MB/s, 48 MiB blob
//   BENCH_MB=16 BENCH_PER_PEER=4MB/s BENCH_TOTAL=6MB/s node scripts/bench/upload-rate.mjs
//
// Two runs on one node: one peer alone (bound by the per-peer rate), then three peers at once (bound by the
// total rate, below 3 × per peer). Each time runs from the requests to the last byte; each peer checks the
// digest of what it got. Prints one JSON line with, for each run, the achieved and configured bytes/s,
// `ratio` (achieved / configured) and `ofAllowance`: the bytes sent over the bytes the limit allows in that
// time (the bucket's burst plus rate × seconds), which is at most 1 when the limit holds and near 1 when it
// is not stricter than asked. `ratio` runs a little above 1 on short runs because of the burst.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRandomBlob, getJson } from './p2p-lib.mjs';
import { log, makeTempDir, MiB, pushBlobFile, repoRoot, round2, runBenchmark, startLayerd, writeResults } from './lib.mjs';

const dist = join(repoRoot, 'dist');
await import(pathToFileURL(join(dist, 'polyfill.js')).href);
const { createP2PNode } = await import(pathToFileURL(join(dist, 'p2p', 'libp2p-node.js')).href);
const { fetchFromPeer } = await import(pathToFileURL(join(dist, 'p2p', 'blob-protocol.js')).href);
const { parseRate } = await import(pathToFileURL(join(dist, 'node', 'config.js')).href);
const { defaultBurst } = await import(pathToFileURL(join(dist, 'p2p', 'token-bucket.js')).href);
const { generateKeyPair } = await import('@libp2p/crypto/keys');
const { multiaddr } = await import('@multiformats/multiaddr');

const MB = Number(process.env.BENCH_MB ?? 48);
const PER_PEER = process.env.BENCH_PER_PEER ?? '12MB/s';
const TOTAL = process.env.BENCH_TOTAL ?? '20MB/s';

async function peer() {
  return createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: [], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
}

/** Fetches the whole blob; resolves with its byte count once the digest is checked. */
async function fetchAll(libp2p, provider, digest) {
  const got = await fetchFromPeer(libp2p, provider, digest, undefined, AbortSignal.timeout(300_000));
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of got.body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  if (`sha256:${hash.digest('hex')}` !== digest) throw new Error('digest mismatch');
  return bytes;
}

async function timed(peers, provider, digest) {
  const t0 = performance.now();
  const bytes = (await Promise.all(peers.map((p) => fetchAll(p, provider, digest)))).reduce((a, b) => a + b, 0);
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-bench-rate-');
  const size = MB * MiB;
  const file = join(dir, 'blob');
  const digest = await createRandomBlob(file, size);
  const node = await startLayerd(dir, {
    args: ['--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--max-upload-rate', TOTAL, '--max-upload-rate-per-peer', PER_PEER, '--log-level', 'warn'],
  });
  await pushBlobFile(node, 'bench/rate', file, size, digest);
  const status = await getJson(`${node.url}/api/status`);
  const provider = { id: status.peerId, addrs: status.multiaddrs };
  const peers = await Promise.all([peer(), peer(), peer()]);
  try {
    // Connections are made before the timed part.
    const first = status.multiaddrs[0];
    for (const p of peers) await p.dial(multiaddr(first.includes('/p2p/') ? first : `${first}/p2p/${status.peerId}`));
    log(`one peer, ${MB} MiB at ${PER_PEER} per peer`);
    const one = await timed(peers.slice(0, 1), provider, digest);
    log(`three peers, ${MB} MiB each at ${TOTAL} in total`);
    const three = await timed(peers, provider, digest);
    const perPeer = parseRate(PER_PEER);
    const total = parseRate(TOTAL);
    const measure = (run, rate) => ({
      configuredBytesPerSec: rate,
      achievedBytesPerSec: Math.round(run.bytes / run.seconds),
      ratio: round2(run.bytes / run.seconds / rate),
      ofAllowance: round2(run.bytes / (defaultBurst(rate) + rate * run.seconds)),
      seconds: round2(run.seconds),
    });
    const result = { bench: 'upload-rate', blobBytes: size, onePeer: measure(one, perPeer), threePeers: measure(three, total) };
    process.stdout.write(JSON.stringify(result) + '\n');
    log(`results in ${await writeResults('upload-rate', result)}`);
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
});
