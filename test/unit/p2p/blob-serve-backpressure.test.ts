// The blob protocol's server reads the next chunk of a blob only once the previous one has left the stream's
// write queue. A fake stream stands in for a yamux stream whose peer reads slowly: it keeps what send() is
// given queued until the test lets it go, and its onDrain() resolves at once, as @libp2p/utils 7's does after a
// stream's first drain (its promise is never renewed). Trusting onDrain() let a relaying node queue a whole
// blob in memory.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Libp2p, Stream } from '@libp2p/interface';
import { handleBlobProtocol, type BlobLookup } from '../../../src/p2p/blob-protocol.js';
import { digestOf } from '../../../src/oci/digest.js';

const CHUNK = 64 * 1024;
const CHUNKS = 12;

class SlowPeerStream extends EventTarget {
  status = 'open';
  writeStatus = 'writable';
  maxReadBufferLength = 0;
  /** Bytes handed to send() the "peer" has not taken yet. */
  writeBufferLength = 0;
  sent: Uint8Array[] = [];
  closed = false;
  aborted: Error | undefined;
  constructor(private readonly request: string) {
    super();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    yield Buffer.from(this.request);
  }
  send(data: Uint8Array): boolean {
    this.sent.push(data);
    if (this.sent.length === 1) return true; // the header line
    this.writeBufferLength += data.length;
    return false;
  }
  /** The peer took everything queued: the stream's queue is empty ('idle', as yamux says it). */
  take(): void {
    this.writeBufferLength = 0;
    this.dispatchEvent(new Event('drain'));
    this.dispatchEvent(new Event('idle'));
  }
  async onDrain(): Promise<void> {}
  async close(): Promise<void> {
    this.closed = true;
    this.status = 'closed';
  }
  abort(err: Error): void {
    this.aborted = err;
    this.status = 'aborted';
  }
}

describe('blob protocol server', () => {
  it('reads the next chunk only once the peer has taken the one before, whatever onDrain() says', async () => {
    const blob = Buffer.alloc(CHUNK * CHUNKS, 7);
    const digest = digestOf(blob);
    let pulled = 0;
    const lookup: BlobLookup = async () => ({
      size: blob.length,
      open: async () =>
        Readable.from(
          (function* () {
            for (let i = 0; i < CHUNKS; i++) {
              pulled++;
              yield blob.subarray(i * CHUNK, (i + 1) * CHUNK);
            }
          })(),
          { highWaterMark: 1 },
        ),
    });
    let handler!: (stream: Stream, connection: unknown) => Promise<void>;
    const libp2p = { handle: async (_p: string, h: typeof handler) => void (handler = h) } as unknown as Libp2p;
    await handleBlobProtocol(libp2p, lookup, { maxUploadsPerPeer: 1, idleTimeoutMs: 10_000 });
    const stream = new SlowPeerStream(`${JSON.stringify({ digest })}\n`);
    const served = handler(stream as unknown as Stream, { remotePeer: { toString: () => 'peer-1' } });

    const settle = () => new Promise((r) => setTimeout(r, 20));
    await settle();
    // One chunk sent and queued, at most a chunk or two read ahead: not the blob.
    expect(stream.sent.length).toBe(2);
    expect(pulled).toBeLessThanOrEqual(3);
    for (let i = 2; i <= CHUNKS; i++) {
      stream.take();
      await settle();
      expect(stream.sent.length).toBe(i + 1);
      expect(stream.writeBufferLength).toBe(CHUNK);
      expect(pulled).toBeLessThanOrEqual(i + 2);
    }
    stream.take();
    await served;
    expect(stream.aborted).toBeUndefined();
    expect(stream.closed).toBe(true);
    expect(Buffer.concat(stream.sent.slice(1)).equals(blob)).toBe(true);
  });

  it('resets a peer that leaves a chunk untaken for the idle time', async () => {
    const blob = Buffer.alloc(CHUNK * 3, 1);
    const digest = digestOf(blob);
    const lookup: BlobLookup = async () => ({ size: blob.length, open: async () => Readable.from([blob.subarray(0, CHUNK), blob.subarray(CHUNK)]) });
    let handler!: (stream: Stream, connection: unknown) => Promise<void>;
    const libp2p = { handle: async (_p: string, h: typeof handler) => void (handler = h) } as unknown as Libp2p;
    await handleBlobProtocol(libp2p, lookup, { maxUploadsPerPeer: 1, idleTimeoutMs: 100 });
    const stream = new SlowPeerStream(`${JSON.stringify({ digest })}\n`);
    await handler(stream as unknown as Stream, { remotePeer: { toString: () => 'peer-1' } });
    expect(stream.aborted?.message).toMatch(/idle/);
    expect(stream.sent.length).toBe(2);
    expect(stream.closed).toBe(false);
  });
});
