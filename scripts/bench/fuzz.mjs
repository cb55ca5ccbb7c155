#!/usr/bin/env node
// The fuzz run of issue 8: generated HTTP requests over every route family (and malformed HTTP on raw
// sockets) and generated frames on layerd's peer protocols, against one real `layerd serve` with a real
// seed registry (another layerd, pushed to) behind it, all at once. Prints one JSON line: how many requests and
// frames, the status histogram, and the counts that must be zero (5xx, crashes, hangs), with the seed
// that replays the run's cases. The generators live in fuzz-gen.mjs, shared with test/integration/fuzz.test.ts.
//
//   node scripts/bench/fuzz.mjs [--requests 100000] [--frames 10000] [--seed N] [--concurrency 16]
//                               [--frame-concurrency 8] [--deadline-ms 20000] [--max-seconds 0 (no limit)]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { blobStillServed, fuzzHttp, fuzzPeers, KNOWN, pushKnown, SEED_NAME, send } from './fuzz-gen.mjs';
import { log, makeTempDir, repoRoot, runBenchmark, startLayerd, writeResults } from './lib.mjs';

const { values: opts } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    frames: { type: 'string', default: '10000' },
    seed: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    'frame-concurrency': { type: 'string', default: '8' },
    'deadline-ms': { type: 'string', default: '20000' },
    // A shared machine can be slow: past this many seconds no new case starts, and the counts say so.
    'max-seconds': { type: 'string', default: '0' },
  },
});
const seed = opts.seed !== undefined ? Number(opts.seed) : Math.floor(Math.random() * 2 ** 31);
const deadlineMs = Number(opts['deadline-ms']);

const dist = join(repoRoot, 'dist');
await import(pathToFileURL(join(dist, 'polyfill.js')).href);
const { createP2PNode } = await import(pathToFileURL(join(dist, 'p2p', 'libp2p-node.js')).href);
const { BLOB_PROTOCOL } = await import(pathToFileURL(join(dist, 'p2p', 'blob-protocol.js')).href);
const { CLAIM_PROTOCOL } = await import(pathToFileURL(join(dist, 'p2p', 'fetch-claims.js')).href);
const { ROLLOUT_PROTOCOL } = await import(pathToFileURL(join(dist, 'p2p', 'rollout-protocol.js')).href);
const { generateKeyPair } = await import('@libp2p/crypto/keys');
const { multiaddr } = await import('@multiformats/multiaddr');

await runBenchmark(async () => {
  const dir = await makeTempDir('layerd-fuzz-');
  // The seed is a layerd node without peers: CNCF distribution answers 500 to a manifest GET naming a
  // blob's digest, which the node rightly relays as 502; with a layerd seed every 5xx counted is the node's.
  const seedRegistry = await startLayerd(dir, { name: 'seed', args: ['--log-level', 'error'] });
  await pushKnown(seedRegistry.url);
  const node = await startLayerd(dir, {
    args: ['--upstream', `${SEED_NAME}=${seedRegistry.url}`, '--default-registry', SEED_NAME, '--p2p-listen', '/ip4/127.0.0.1/tcp/0', '--peer-lookup-timeout', '500ms', '--log-level', 'error'],
  });
  await pushKnown(node.url);
  log('node started, image pushed');
  const status = JSON.parse((await send(node.url, { method: 'GET', path: '/api/status', headers: {} }, 10_000)).body.toString());
  const target = multiaddr(status.multiaddrs[0]);
  const peer = await createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: [], announce: [], bootstrap: [], providerTtlMs: 3_600_000 });
  log(`fuzzing peer created; dialing ${target}`);
  await peer.dial(target);
  const protocols = { blob: BLOB_PROTOCOL, claim: CLAIM_PROTOCOL, rollout: ROLLOUT_PROTOCOL };
  const alive = () => node.child.exitCode === null && node.child.signalCode === null;

  log(`seed ${seed}: ${opts.requests} requests, ${opts.frames} frames against ${node.url} (pid ${node.pid})`);
  const t0 = Date.now();
  const maxMs = Number(opts['max-seconds']) * 1000;
  const overTime = () => maxMs > 0 && Date.now() - t0 > maxMs;
  let lastLog = 0;
  const [h, p] = await Promise.all([
    fuzzHttp({
      baseUrl: node.url,
      count: Number(opts.requests),
      seed,
      concurrency: Number(opts.concurrency),
      deadlineMs,
      alive,
      stop: overTime,
      onProgress: (s) => {
        if (Date.now() - lastLog < 10_000) return;
        lastLog = Date.now();
        log(`${s.requests} requests, ${s.fiveXX} 5xx, ${s.hangs} hangs, ${Math.round(s.requests / ((Date.now() - t0) / 1000))}/s`);
      },
    }),
    fuzzPeers({ libp2p: peer, target, protocols, count: Number(opts.frames), seed, concurrency: Number(opts['frame-concurrency']), deadlineMs: Math.max(deadlineMs, 30_000), alive, stop: overTime }),
  ]);
  const seconds = (Date.now() - t0) / 1000;

  // Afterwards the node must be alive and serve both faces as before.
  const stillAlive = alive();
  const health = stillAlive ? await send(node.url, { method: 'GET', path: '/healthz', headers: {} }, deadlineMs) : {};
  const blob = stillAlive ? await send(node.url, { method: 'GET', path: `/v2/${KNOWN.repo}/blobs/${KNOWN.layerDigest}`, headers: {} }, deadlineMs) : {};
  const peerBlob = stillAlive ? await blobStillServed(peer, target, protocols) : false;
  await peer.stop();

  const result = {
    bench: 'fuzz',
    seed,
    requests: h.requests,
    cases: h.cases,
    frames: p.frames,
    statuses: h.statuses,
    '5xx': h.fiveXX,
    crashes: h.crashed || p.crashed || !stillAlive ? 1 : 0,
    hangs: h.hangs + p.hangs,
    httpHangs: h.hangs,
    frameHangs: p.hangs,
    badErrorBodies: h.badBodies,
    closedWithoutAnswer: h.closedWithoutAnswer,
    frameOutcomes: p.outcomes,
    badFrameAnswers: p.badAnswers,
    healthzAfter: health.status ?? null,
    blobAfter: blob.status === 200 && blob.body.equals(KNOWN.layer),
    peerBlobAfter: peerBlob,
    seconds: Math.round(seconds),
    stoppedByTimeLimit: overTime(),
    requestsPerSec: Math.round(h.requests / seconds),
    violations: [...h.violations.slice(0, 10), ...p.violations.slice(0, 10)],
  };
  if (result.crashes || result['5xx'] || result.hangs) log(`node output tail:\n${node.output()}`);
  const file = await writeResults('fuzz', result);
  log(`results in ${file}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (result.crashes || result['5xx'] || result.hangs || result.badErrorBodies || result.badFrameAnswers || !result.blobAfter || !result.peerBlobAfter) process.exitCode = 1;
});
