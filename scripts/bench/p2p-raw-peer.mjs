#!/usr/bin/env node
// The libp2p stack alone, for calibrating the p2p benchmarks: the same node layerd builds (createP2PNode from
// dist/: TCP + noise + yamux), and a protocol that sends bytes from memory, so no disk, no hashing and none of
// the blob protocol's or the fetcher's code is involved.
//
//   node scripts/bench/p2p-raw-peer.mjs serve DIR                    # prints {"multiaddr", "pid"} then serves
//   node scripts/bench/p2p-raw-peer.mjs fetch DIR MULTIADDR BYTES [STREAMS]   # prints {"ms", "bytes", "cpuSec"}
//
// fetch opens STREAMS streams (default 1) on one connection, asks each for BYTES/STREAMS bytes, and counts what
// arrives without copying it; the time runs from the first request to the last byte (the dial is made before).
// DIR holds the node's identity key. LAYERD_BENCH_DIST names the dist/ directory to take createP2PNode from;
// LAYERD_BENCH_PSK_FILE a swarm key file (as `layerd serve --psk-file`): both peers then run a private network.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const PROTOCOL = '/layerd-bench/raw/1.0.0';
const dist = resolve(process.env.LAYERD_BENCH_DIST ?? join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', 'dist'));
await import(pathToFileURL(join(dist, 'polyfill.js')).href); // Promise.withResolvers on Node 20, as layerd's cli loads it
const { createP2PNode } = await import(pathToFileURL(join(dist, 'p2p', 'libp2p-node.js')).href);
const { loadOrCreateIdentity } = await import(pathToFileURL(join(dist, 'p2p', 'identity.js')).href);
const { multiaddr } = await import('@multiformats/multiaddr');
const { readFileSync } = await import('node:fs');
const swarmKey = process.env.LAYERD_BENCH_PSK_FILE
  ? (await import(pathToFileURL(join(dist, 'p2p', 'swarm-key.js')).href)).parseSwarmKey(readFileSync(process.env.LAYERD_BENCH_PSK_FILE, 'utf8'))
  : undefined;

const [mode, dir, ...rest] = process.argv.slice(2);

// LAYERD_BENCH_YAMUX (JSON yamux options, e.g. {"maxMessageSize":65507}) swaps layerd's node for a bare one with
// the same transport, encrypter and muxer but those muxer settings: for trying settings before changing src/.
const yamuxOverrides = process.env.LAYERD_BENCH_YAMUX ? JSON.parse(process.env.LAYERD_BENCH_YAMUX) : null;

async function node(listen) {
  const privateKey = await loadOrCreateIdentity(join(dir, 'identity.key'));
  if (yamuxOverrides) {
    const [{ createLibp2p }, { tcp }, { noise }, { yamux }, { preSharedKey }] = await Promise.all([
      import('libp2p'),
      import('@libp2p/tcp'),
      import('@chainsafe/libp2p-noise'),
      import('@chainsafe/libp2p-yamux'),
      import('@libp2p/pnet'),
    ]);
    return createLibp2p({
      privateKey,
      addresses: { listen },
      transports: [tcp()],
      ...(swarmKey ? { connectionProtector: preSharedKey({ psk: swarmKey.fileBytes() }) } : {}),
      connectionEncrypters: [noise()],
      streamMuxers: [yamux(yamuxOverrides)],
    });
  }
  return createP2PNode({
    privateKey,
    listen,
    announce: [],
    bootstrap: [],
    providerTtlMs: 3_600_000,
    swarmKey,
  });
}

/** The first line of a stream (the request: a byte count). */
async function readRequest(stream) {
  let text = '';
  for await (const chunk of stream) {
    text += Buffer.from(chunk.subarray()).toString();
    if (text.includes('\n')) return Number(text.slice(0, text.indexOf('\n')));
  }
  throw new Error('no request');
}

if (mode === 'serve') {
  // LAYERD_BENCH_RAW_LISTEN: where to listen (a namespace host's address in netns-hop.mjs); loopback by default.
  const libp2p = await node([process.env.LAYERD_BENCH_RAW_LISTEN ?? '/ip4/127.0.0.1/tcp/0']);
  const piece = Buffer.alloc(1024 * 1024, 7); // never changed, so sending it again and again is safe
  // LAYERD_BENCH_RAW_FILE: send that file's bytes instead (read as layerd's store reads a blob it serves), to see
  // what the reads cost on the bare stack.
  const file = process.env.LAYERD_BENCH_RAW_FILE;
  const { FileRangeStream } = file ? await import(pathToFileURL(join(dist, 'io', 'file-range-stream.js')).href) : {};
  const { openSync, read } = await import('node:fs');
  // LAYERD_BENCH_RAW_READ=chunk=N[,slab=M|,ring=K]: read the file N bytes at a time into fresh buffers, into
  // slices of M-byte slabs, or into K buffers used in turn (unsafe beyond a measurement: the stack may still hold
  // one), to see what fresh read buffers cost the sender (GC).
  const readPlan = process.env.LAYERD_BENCH_RAW_READ
    ? Object.fromEntries(process.env.LAYERD_BENCH_RAW_READ.split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]))
    : undefined;
  await libp2p.handle(
    PROTOCOL,
    async (stream) => {
      try {
        let left = await readRequest(stream);
        if (file && readPlan) {
          // An experiment in how the reads are made (see LAYERD_BENCH_RAW_READ above).
          const fd = openSync(file, 'r');
          let slab = Buffer.alloc(0);
          let off = 0;
          let pos = 0;
          let turn = 0;
          const ring = readPlan.ring ? Array.from({ length: readPlan.ring }, () => Buffer.allocUnsafeSlow(readPlan.chunk)) : [];
          while (pos < left) {
            const n = Math.min(readPlan.chunk, left - pos);
            let buf;
            if (ring.length) buf = ring[turn++ % ring.length]; // NOT safe in general: only to see what fresh buffers cost
            else if (readPlan.slab) {
              if (off + n > slab.length) [slab, off] = [Buffer.allocUnsafeSlow(readPlan.slab), 0];
              buf = slab.subarray(off, (off += n));
            } else buf = Buffer.allocUnsafe(n);
            const bytesRead = await new Promise((ok, fail) => read(fd, buf, 0, n, pos, (err, got) => (err ? fail(err) : ok(got))));
            pos += bytesRead;
            if (!stream.send(buf.subarray(0, bytesRead))) await stream.onDrain();
          }
          left = 0;
        } else if (file) {
          for await (const chunk of new FileRangeStream(openSync(file, 'r'), 0, left - 1)) if (!stream.send(chunk)) await stream.onDrain();
          left = 0;
        }
        while (left > 0) {
          const n = Math.min(left, piece.length);
          left -= n;
          // send() says false when the stream's buffer is full: wait for it to drain (backpressure).
          if (!stream.send(n === piece.length ? piece : piece.subarray(0, n))) await stream.onDrain();
        }
        await stream.close();
      } catch (err) {
        process.stderr.write(`raw sender: stream failed: ${err.stack ?? err}\n`);
        stream.abort(err);
      }
    },
    { maxInboundStreams: 256 },
  );
  process.stdout.write(JSON.stringify({ multiaddr: libp2p.getMultiaddrs()[0].toString(), pid: process.pid }) + '\n');
  const stop = () => libp2p.stop().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else if (mode === 'fetch') {
  const [addr, bytesText, streamsText = '1'] = rest;
  const bytes = Number(bytesText);
  const streams = Number(streamsText);
  const libp2p = await node([]);
  const target = multiaddr(addr);
  await libp2p.dial(target); // connection set up outside the timed part
  // LAYERD_BENCH_RAW_WARM=N: N bytes are fetched first, untimed, as the p2p benchmark warms layerd's fetching node
  // (a long-lived daemon runs with its code optimized and its heap grown; a fresh process pays for both).
  const warm = Number(process.env.LAYERD_BENCH_RAW_WARM ?? 0);
  if (warm > 0) {
    await fetchBytes(warm, 1);
    process.stdout.write(JSON.stringify({ warmed: warm }) + '\n'); // the sender's CPU is counted from here
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const counts = await fetchBytes(bytes, streams);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ ms, bytes: counts.reduce((a, b) => a + b, 0), cpuSec: (cpu.user + cpu.system) / 1e6, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
  await libp2p.stop();
  process.exit(0);

  /** BYTES over STREAMS streams of the connection; the byte count each stream got. */
  function fetchBytes(bytes, streams) {
    const per = Math.ceil(bytes / streams);
    return Promise.all(
      Array.from({ length: streams }, async (_, i) => {
        const want = Math.max(0, Math.min(per, bytes - i * per));
        const stream = await libp2p.dialProtocol(target, PROTOCOL);
        stream.maxReadBufferLength = 32 * 1024 * 1024; // as the blob protocol's client does
        stream.send(Buffer.from(`${want}\n`));
        await stream.close();
        let got = 0;
        let closeError;
        stream.addEventListener('close', (e) => (closeError = e.error), { once: true });
        for await (const chunk of stream) got += chunk.byteLength;
        // A reset stream can end its iteration without an error: the byte count is the check that matters.
        if (got !== want) throw new Error(`stream ${i}: ${got} of ${want} bytes (stream ${stream.status}, ${closeError?.name ?? 'no error'}: ${closeError?.message ?? ''})`);
        return got;
      }),
    );
  }
} else {
  process.stderr.write('usage: p2p-raw-peer.mjs serve DIR | fetch DIR MULTIADDR BYTES [STREAMS]\n');
  process.exit(2);
}
