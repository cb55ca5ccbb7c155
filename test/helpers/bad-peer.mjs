#!/usr/bin/env node
// A misbehaving peer for fault tests: real libp2p nodes (layerd's stack and protocols) that join a
// cluster, announce blobs in its DHT, and then answer layerd's blob protocol wrongly. One process hosts
// many such nodes, each with a fresh identity, so a node under test never recognises (and skips) a
// peer it has already penalised: every run meets a liar it has not met before.
//
// Driven by JSON lines on stdin, answered by JSON lines on stdout:
//   {"op":"serve","key","bootstrap","digest","file","mode","claimSize"?}  → {"key","provided":true,"peerId"} | {"key","error"}
//   {"op":"stop","key"}                                      → {"key","stopped":true}
//   {"op":"release","key"}                                   → {"key","released":true}
// and, unprompted, {"key","asked":digest,"start","end"} whenever a node requests the blob.
// Modes (what it does after reading the request):
//   corrupt      the right header and length, one byte flipped in the middle of the range
//   wrong-size   a header claiming a bigger blob, and that many bytes
//   truncate     the right header, half the bytes, then a clean end of stream
//   reset        the right header, half the bytes, then a stream reset
//   stall-header nothing at all, forever
//   stall-body   the right header and a quarter of the bytes, then nothing, forever
//   claim        a header claiming a blob of claimSize bytes (the range asked for, cut at that size),
//                then the blob's bytes and zeros for as long as the node reads (at most 64 MiB)
//   held         honest bytes, but a range that ends at the blob's end keeps its last KiB back until
//                the test sends "release": a download that is provably still running
//   corrupt-held as held, with one byte flipped in the middle of every range
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(import.meta.dirname, '..', '..', 'dist');
const load = (path) => import(pathToFileURL(join(dist, path)).href);
await load('polyfill.js');
const { DHT_PROTOCOL } = await load('p2p/libp2p-node.js');
const { createLibp2p } = await import('libp2p');
const { tcp } = await import('@libp2p/tcp');
const { noise } = await import('@chainsafe/libp2p-noise');
const { yamux } = await import('@chainsafe/libp2p-yamux');
const { identify } = await import('@libp2p/identify');
const { ping } = await import('@libp2p/ping');
const { multiaddr } = await import('@multiformats/multiaddr');
const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht');
const { digestToCid } = await load('p2p/cid.js');
const { BLOB_PROTOCOL } = await load('p2p/blob-protocol.js');
const { readLine, encodeLine } = await load('p2p/json-lines.js');
const { generateKeyPair } = await import('@libp2p/crypto/keys');

const nodes = new Map();
/** Per key: a promise the held modes wait on before the last KiB, and its resolver. */
const releases = new Map();
function releaseOf(key) {
  if (!releases.has(key)) {
    let release;
    const held = new Promise((r) => (release = r));
    releases.set(key, { held, release });
  }
  return releases.get(key);
}
const say = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

async function send(stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain();
}

const CLAIM_SEND_MAX = 64 * 1024 * 1024;

async function misbehave(stream, key, blob, digest, mode, claimSize) {
  const { line } = await readLine(stream[Symbol.asyncIterator]());
  const req = JSON.parse(line);
  const start = req.start ?? 0;
  const end = Math.min(req.end ?? blob.length - 1, blob.length - 1);
  say({ key, asked: req.digest, start, end });
  if (req.digest !== digest) {
    await send(stream, encodeLine({ status: 'not-found' }));
    return stream.close();
  }
  if (mode === 'stall-header') return; // keep the stream open, answer nothing
  if (mode === 'claim') {
    const claimedEnd = Math.min(req.end ?? claimSize - 1, claimSize - 1);
    const length = claimedEnd - start + 1;
    await send(stream, encodeLine({ status: 'ok', size: claimSize, start, length }));
    let sent = 0;
    const real = blob.subarray(Math.min(start, blob.length), Math.min(claimedEnd + 1, blob.length));
    if (real.length > 0) {
      await send(stream, Buffer.from(real));
      sent += real.length;
    }
    const zeros = Buffer.alloc(64 * 1024);
    while (sent < length && sent < CLAIM_SEND_MAX && stream.status === 'open') {
      const n = Math.min(zeros.length, length - sent);
      await send(stream, zeros.subarray(0, n));
      sent += n;
    }
    return stream.status === 'open' ? stream.close() : undefined;
  }
  const bytes = Buffer.from(blob.subarray(start, end + 1));
  if (mode === 'wrong-size') {
    const extra = Buffer.alloc(1000, 0x5a);
    await send(stream, encodeLine({ status: 'ok', size: blob.length + extra.length, start, length: bytes.length + extra.length }));
    await send(stream, Buffer.concat([bytes, extra]));
    return stream.close();
  }
  await send(stream, encodeLine({ status: 'ok', size: blob.length, start, length: bytes.length }));
  if (mode === 'corrupt') {
    bytes[bytes.length >> 1] ^= 0xff;
    await send(stream, bytes);
    return stream.close();
  }
  if (mode === 'held' || mode === 'corrupt-held') {
    if (mode === 'corrupt-held') bytes[bytes.length >> 1] ^= 0xff;
    const tail = end === blob.length - 1 ? Math.min(1024, bytes.length) : 0;
    if (bytes.length > tail) await send(stream, bytes.subarray(0, bytes.length - tail));
    if (tail > 0) {
      await releaseOf(key).held;
      await send(stream, bytes.subarray(bytes.length - tail));
    }
    return stream.close();
  }
  if (mode === 'truncate' || mode === 'reset') {
    await send(stream, bytes.subarray(0, bytes.length >> 1));
    return mode === 'truncate' ? stream.close() : stream.abort(new Error('bad peer resets'));
  }
  if (mode === 'stall-body') {
    await send(stream, bytes.subarray(0, bytes.length >> 2));
    return; // and nothing more
  }
  throw new Error(`unknown mode ${mode}`);
}

async function serve({ key, bootstrap, digest, file, mode, claimSize }) {
  const blob = await readFile(file);
  // layerd's transport, encryption, muxer and DHT protocol; the DHT as a client, so liars never become
  // routing-table peers of one another (each provide then reaches the node under test alone, instead of
  // dialling every other liar: that made each announcement take seconds).
  const libp2p = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ protocol: DHT_PROTOCOL, clientMode: true, peerInfoMapper: passthroughMapper }),
    },
  });
  nodes.set(key, libp2p);
  await libp2p.handle(
    BLOB_PROTOCOL,
    (stream) => {
      misbehave(stream, key, blob, digest, mode, claimSize).catch((err) => stream.abort(err));
    },
    { maxInboundStreams: 256 },
  );
  // A provide before the routing table holds the node under test would reach nobody. The dial is
  // made here (and made again if it fails on a loaded host), not left to peer discovery.
  const deadline = Date.now() + 60_000;
  let lastDial = 0;
  while (libp2p.services.dht.routingTable.size === 0) {
    if (Date.now() > deadline) throw new Error(`no routing-table peer after 60 s (${libp2p.getConnections().length} connections)`);
    if (libp2p.getConnections().length === 0 && Date.now() - lastDial > 2_000) {
      lastDial = Date.now();
      await libp2p.dial(multiaddr(bootstrap), { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // The walk to the closest peers and ADD_PROVIDER to them, the node under test among them.
  await libp2p.contentRouting.provide(digestToCid(digest), { signal: AbortSignal.timeout(60_000) });
  say({ key, provided: true, peerId: libp2p.peerId.toString() });
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (text) => {
  const cmd = JSON.parse(text);
  if (cmd.op === 'serve') {
    serve(cmd).catch((err) => say({ key: cmd.key, error: String(err?.stack ?? err) }));
  } else if (cmd.op === 'release') {
    releaseOf(cmd.key).release();
    say({ key: cmd.key, released: true });
  } else if (cmd.op === 'stop') {
    const node = nodes.get(cmd.key);
    nodes.delete(cmd.key);
    Promise.resolve(node?.stop())
      .catch(() => undefined)
      .then(() => say({ key: cmd.key, stopped: true }));
  }
});
lines.on('close', () => {
  Promise.all([...nodes.values()].map((n) => n.stop().catch(() => undefined))).finally(() => process.exit(0));
});
