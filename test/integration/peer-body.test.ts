// The blob protocol's client side against a real libp2p peer (two nodes in this process, TCP on
// loopback, noise + yamux as layerd builds them): a peer that stops sending after its reader paused
// and resumed is still detected as stalled (the idle timer must survive the pause); a fast peer and a slow
// reader never overflow the stream's buffer.
import '../../src/polyfill.js'; // Promise.withResolvers on Node 20, as the cli loads it
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Stream } from '@libp2p/interface';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigest } from '../../src/oci/digest.js';
import { BLOB_PROTOCOL, fetchFromPeer, PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { readLine } from '../../src/p2p/json-lines.js';
import { loadOrCreateIdentity } from '../../src/p2p/identity.js';
import { createP2PNode, type LayerdLibp2p } from '../../src/p2p/libp2p-node.js';
import { until } from '../helpers/processes.js';

const MiB = 1024 * 1024;
const IDLE_MS = 1_500;
/** Announced; the peer sends only SENT of them, then nothing more (it neither ends nor resets). */
const SIZE = 16 * MiB;
const SENT = 8 * MiB;
/** Asked for this digest, the peer answers with a header that does not fit the request. */
const BAD_HEADER = makeDigest('sha256', 'b'.repeat(64));
/** Asked for this digest, the peer sends a whole blob of FULL bytes as fast as the stream lets it. */
const WHOLE = makeDigest('sha256', 'c'.repeat(64));
const FULL = 96 * MiB;

let dir: string;
let server: LayerdLibp2p;
let client: LayerdLibp2p;
const held: Stream[] = [];

async function node(name: string, listen: string[]): Promise<LayerdLibp2p> {
  return createP2PNode({ privateKey: await loadOrCreateIdentity(join(dir, `${name}.key`)), listen, announce: [], bootstrap: [], providerTtlMs: 60_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layerd-peer-body-'));
  server = await node('server', ['/ip4/127.0.0.1/tcp/0']);
  client = await node('client', []);
  await server.handle(BLOB_PROTOCOL, async (stream: Stream) => {
    held.push(stream);
    const { line } = await readLine(stream[Symbol.asyncIterator]());
    if ((JSON.parse(line) as { digest: string }).digest === BAD_HEADER) {
      // "ok", but for bytes 5.. when the whole blob was asked for: a header the fetcher must refuse.
      stream.send(new TextEncoder().encode(`${JSON.stringify({ status: 'ok', size: 10, start: 5, length: 5 })}\n`));
      return;
    }
    if ((JSON.parse(line) as { digest: string }).digest === WHOLE) {
      stream.send(new TextEncoder().encode(`${JSON.stringify({ status: 'ok', size: FULL, start: 0, length: FULL })}\n`));
      const piece = Buffer.alloc(MiB, 9);
      for (let sent = 0; sent < FULL; sent += piece.length) if (!stream.send(piece)) await stream.onDrain();
      await stream.close();
      return;
    }
    stream.send(new TextEncoder().encode(`${JSON.stringify({ status: 'ok', size: SIZE, start: 0, length: SIZE })}\n`));
    const piece = Buffer.alloc(MiB, 7);
    for (let sent = 0; sent < SENT; sent += piece.length) {
      if (!stream.send(piece)) await stream.onDrain();
    }
    // ...and then silence, with the stream left open.
  });
});

afterAll(async () => {
  for (const s of held) s.abort(new Error('test over'));
  await client?.stop();
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('a peer body', () => {
  it('is given up as stalled when the peer goes silent after its reader paused and resumed', { timeout: 90_000 }, async () => {
    const addr = server.getMultiaddrs()[0]!.toString();
    const blob = await fetchFromPeer(client, { id: server.peerId.toString(), addrs: [addr] }, makeDigest('sha256', 'a'.repeat(64)), undefined, undefined, { idleTimeoutMs: IDLE_MS });
    // Nobody reads yet: the body fills to its buffer and pauses the stream.
    await until('the body to fill its buffer', () => (blob.body.readableLength >= 4 * MiB ? true : undefined), 30_000);
    let got = 0;
    const outcome = await new Promise<Error | undefined>((resolve) => {
      blob.body.on('data', (c: Buffer) => (got += c.length));
      blob.body.once('end', () => resolve(undefined));
      blob.body.once('error', resolve);
    });
    expect(got).toBe(SENT);
    expect(outcome).toBeInstanceOf(PeerFetchError);
    expect((outcome as PeerFetchError).status).toBe('stalled');
  });

  it('holds a fast peer back while its reader is slow: the stream never buffers past its limit', { timeout: 90_000 }, async () => {
    const addr = server.getMultiaddrs()[0]!.toString();
    const blob = await fetchFromPeer(client, { id: server.peerId.toString(), addrs: [addr] }, WHOLE, undefined, undefined, { idleTimeoutMs: 30_000 });
    // A reader slower than the peer (a disk slower than the network): the body pauses and resumes the stream
    // over and over. A pause made while a resume hands over what was buffered must hold, or the peer sends on
    // into the stream's buffer until libp2p aborts the stream (it did, past 32 MiB, with a 96 MiB blob).
    let got = 0;
    await pipeline(
      blob.body,
      new Writable({
        highWaterMark: 128 * 1024,
        write: (chunk: Buffer, _enc, done) => {
          got += chunk.length;
          setTimeout(done, 1);
        },
      }),
    );
    expect(got).toBe(FULL);
  });

  it('refuses a header that does not fit the request: fetchFromPeer fails as a protocol error', { timeout: 30_000 }, async () => {
    const addr = server.getMultiaddrs()[0]!.toString();
    const outcome = await fetchFromPeer(client, { id: server.peerId.toString(), addrs: [addr] }, BAD_HEADER, undefined, undefined, { idleTimeoutMs: 10_000 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(PeerFetchError);
    expect((outcome as PeerFetchError).status).toBe('protocol');
  });
});
