#!/usr/bin/env node
// CPU of one rollout-protocol message, both ends, apart from any rollout (the simulator's messageCpu, which
// it must not take from the runs it predicts): two libp2p nodes of the daemon's own stack (createP2PNode:
// TCP, Noise, yamux) in this process on loopback, one answering the rollout protocol as a node does
// (RolloutTransport, the offer checked by specFrom, a report by progressFrom), the other asking. Each
// message is a new stream, as in the daemon. The process's CPU over the messages, both ends together.
//   node scripts/bench/rollout-messages.mjs [--messages 2000] [--parallel 1,30] [--peers 32]
// `--parallel 30`: thirty at once, as a node's spread fires them. Prints ms of CPU per offer and per report.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import '../../dist/polyfill.js';
import { progressFrom, specFrom } from '../../dist/distribution/rollout/index.js';
import { createP2PNode, RolloutTransport } from '../../dist/p2p/index.js';

const { values: a } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    parallel: { type: 'string', default: '1,30' },
    peers: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const M = Number(a.messages);
// A stream reset now and then (loopback, thousands of short streams) surfaces as an uncaught event error:
// counted and reported, not fatal; the messages that failed are counted too.
let resets = 0;
let failed = 0;
process.on('uncaughtException', (err) => {
  if (err?.name !== 'StreamResetError') throw err;
  resets++;
});
const node = async (listen) => createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen, announce: [], bootstrap: [], providerTtlMs: 60_000 });
const [answerer, asker] = await Promise.all([node(['/ip4/127.0.0.1/tcp/0']), node(['/ip4/127.0.0.1/tcp/0'])]);
await Promise.all([answerer.start?.(), asker.start?.()]);
let heard = 0;
await new RolloutTransport(answerer).start({
  checkOffer: (raw) => specFrom(raw, () => true),
  checkReport: progressFrom,
  offer: () => void heard++,
  report: () => void heard++,
});
await asker.dial(multiaddr(answerer.getMultiaddrs()[0].toString()));
const ask = new RolloutTransport(asker);
const peer = answerer.peerId.toString();
const self = asker.peerId.toString();
// A spec as a 32-node rollout's origin sends it: the order and the expected peers, every peer id.
const ids = Array.from({ length: Number(a.peers) }, (_, i) => (i === 0 ? self : `${self.slice(0, -6)}${String(i).padStart(6, 'A')}`));
const spec = { id: randomUUID(), image: 'seed/bench/rollout:v1', registry: 'seed', repository: 'bench/rollout', reference: 'v1', origin: self, originAddrs: asker.getMultiaddrs().map(String), createdAt: Date.now(), expected: ids.slice(1), order: ids };
const progress = { rollout: spec.id, node: self, state: 'running', blobsTotal: 5, blobsDone: 2, bytesTotal: 104858578, bytesDone: 52428800, bySource: { local: 0, peer: 52428800, upstream: 863 }, startedAt: Date.now() };

/** CPU ms per message for `count` messages made by `send`, `parallel` in flight at a time. */
async function measure(send, count, parallel) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next++ < count) await send().catch(() => void failed++);
  }));
  const c = process.cpuUsage(cpu0);
  return { cpuMs: (c.user + c.system) / 1000 / count, wallMs: (performance.now() - t0) / count };
}

const rows = [];
await measure(() => ask.offer(peer, spec), 300, 10); // warm the JIT
for (let round = 1; round <= Number(a.rounds); round++) {
  for (const parallel of a.parallel.split(',').map(Number)) {
    const offer = await measure(() => ask.offer(peer, spec), M, parallel);
    const report = await measure(() => ask.report({ id: peer, addrs: [] }, progress), M, parallel);
    rows.push({ round, parallel, offerCpuMs: +offer.cpuMs.toFixed(2), reportCpuMs: +report.cpuMs.toFixed(2), offerWallMs: +offer.wallMs.toFixed(2) });
    console.log(`round ${round}, ${parallel} at a time: offer ${offer.cpuMs.toFixed(2)} ms CPU (both ends), report ${report.cpuMs.toFixed(2)} ms`);
  }
}
console.log(JSON.stringify({ bench: 'rollout-messages', messages: M, heard, failed, resets, rows }));
await Promise.all([asker.stop(), answerer.stop()]);
