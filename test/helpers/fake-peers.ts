// An in-memory PeerNetwork for unit tests of blob resolution: peers are MemoryBlobStores found through
// a MemoryRoutingNetwork, and each peer can be told to misbehave the ways real ones do. Every request
// is recorded (peer, range, its AbortSignal, how it ended) so tests can assert who was asked for what.
// Answers have the shape fetchFromPeer (src/p2p/blob-protocol.ts) gives: {size, start, length, body}.
import { PassThrough, Readable } from 'node:stream';
import type { PeerNetwork } from '../../src/distribution/peers/peer-fetcher.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { ByteRange } from '../../src/oci/range.js';
import { PeerFetchError } from '../../src/p2p/blob-protocol.js';
import { MemoryContentRouter, MemoryRoutingNetwork, type ContentRouter, type FindOptions, type Provider } from '../../src/p2p/content-router.js';
import type { PeerBlob } from '../../src/p2p/blob-protocol.js';
import { MemoryBlobStore } from '../../src/store/memory-blob-store.js';

export type Behaviour =
  | { kind: 'healthy' }
  /** The request itself fails (peer unreachable, stream reset before the header). */
  | { kind: 'failing' }
  /** The peer answers not-found: its provider record outlived the blob. */
  | { kind: 'not-found' }
  /** Header sent, body never: only an abort ends the request. */
  | { kind: 'stalled' }
  /** The body waits for `release` (if given), then comes `chunkDelayMs` apart (if given). */
  | { kind: 'slow'; release?: Promise<unknown>; chunkDelayMs?: number }
  /** One byte flipped: the one at blob offset `offset` when the range holds it, else the first byte sent. */
  | { kind: 'corrupt'; offset?: number }
  /**
   * The body ends cleanly after `keep` bytes (half the range by default). fetchFromPeer would raise an
   * error here; a clean short end is the harsher case, so the fetcher's own length checks are exercised.
   */
  | { kind: 'truncated'; keep?: number }
  /** The body sends `keep` bytes, then the stream errors (a connection reset part way through a body). */
  | { kind: 'broken'; keep: number };

export type BehaviourSpec = Behaviour | Behaviour['kind'] | ((req: FakeRequest) => Behaviour | Behaviour['kind']);

export type Outcome = 'pending' | 'sent' | 'failed' | 'aborted';

export interface FakeRequest {
  peer: string;
  digest: Digest;
  /** As asked: undefined means the whole blob. */
  range: ByteRange | undefined;
  signal: AbortSignal | undefined;
  /** Which behaviour answered it. */
  behaviour: Behaviour['kind'];
  outcome: Outcome;
  /** Body bytes handed over. */
  sent: number;
}

/** Bytes of the body are handed over in chunks of this size, as a stream would. */
const CHUNK = 16 * 1024;

interface FakePeer {
  id: string;
  store: MemoryBlobStore;
  router: MemoryContentRouter;
  behaviour: BehaviourSpec;
}

export class FakePeerNetwork implements PeerNetwork {
  readonly routing = new MemoryRoutingNetwork();
  readonly requests: FakeRequest[] = [];
  /** Lookups made through `router` (a cached answer makes none). */
  lookups = 0;
  /** Requests not yet ended, now and at most: how many ranges were in flight at once. */
  pending = 0;
  maxPending = 0;
  /**
   * The claim coordinator's answers (whoFetches): the id of the peer whose seed download to follow, or
   * undefined for "fetch it yourself". Unset: always undefined. Every question is recorded in `claims`.
   */
  coordinator: ((digest: Digest, failed: readonly string[]) => string | undefined) | undefined;
  readonly claims: Array<{ digest: Digest; failed: string[] }> = [];
  /** When set, a lookup yields what it has, then hangs until its signal aborts (a slow DHT walk). */
  routerHangs = false;
  readonly router: ContentRouter;
  private readonly peers = new Map<string, FakePeer>();
  private readonly open = new Set<PassThrough>();

  constructor(readonly selfId = 'self') {
    const inner = new MemoryContentRouter(selfId, this.routing);
    const net = this;
    this.router = {
      provide: (d) => inner.provide(d),
      withdraw: (d) => inner.withdraw(d),
      ready: () => inner.ready(),
      async *findProviders(digest: Digest, opts: FindOptions = {}): AsyncIterable<Provider> {
        net.lookups++;
        yield* inner.findProviders(digest, opts);
        if (net.routerHangs && !opts.signal?.aborted) {
          await new Promise<void>((resolve) => opts.signal?.addEventListener('abort', () => resolve(), { once: true }));
        }
      },
    };
  }

  /** Digests this node released as a chain's head. */
  readonly releases: Digest[] = [];

  async releaseClaim(digest: Digest): Promise<void> {
    this.releases.push(digest);
  }

  async whoFetches(digest: Digest, failed: readonly string[]): Promise<Provider | undefined> {
    this.claims.push({ digest, failed: [...failed] });
    await new Promise((r) => setImmediate(r));
    const id = this.coordinator?.(digest, failed);
    return id === undefined ? undefined : { id, addrs: [] };
  }

  /** A peer holding `blobs` and announcing each of them. */
  async addPeer(id: string, blobs: Buffer[] = [], behaviour: BehaviourSpec = 'healthy'): Promise<MemoryBlobStore> {
    const peer: FakePeer = { id, store: new MemoryBlobStore(), router: new MemoryContentRouter(id, this.routing), behaviour };
    this.peers.set(id, peer);
    for (const b of blobs) await this.give(id, b);
    return peer.store;
  }

  /** Puts a blob in a peer's store and announces it. */
  async give(id: string, blob: Buffer): Promise<Digest> {
    const peer = this.peer(id);
    const digest = digestOf(blob);
    await peer.store.put(Readable.from([blob]), digest);
    await peer.router.provide(digest);
    return digest;
  }

  /** A peer holding a blob it has not announced: one fetching it right now, found only through a claim. */
  async addHolder(id: string, blob: Buffer, behaviour: BehaviourSpec = 'healthy'): Promise<void> {
    const store = await this.addPeer(id, [], behaviour);
    await store.put(Readable.from([blob]), digestOf(blob));
  }

  /** A provider record with nothing behind it: the peer no longer holds (or never held) the blob. */
  async announceOnly(id: string, digest: Digest): Promise<void> {
    await this.peer(id).router.provide(digest);
  }

  /** The peer is gone (a scale-down) but its provider records stay, as a DHT's do until they expire. */
  removePeer(id: string): void {
    this.peers.delete(id);
  }

  setBehaviour(id: string, behaviour: BehaviourSpec): void {
    this.peer(id).behaviour = behaviour;
  }

  requestsTo(id: string): FakeRequest[] {
    return this.requests.filter((r) => r.peer === id);
  }

  /** Peers that handed over at least one complete body. */
  served(): Set<string> {
    return new Set(this.requests.filter((r) => r.outcome === 'sent').map((r) => r.peer));
  }

  /** Ends every body still open (stalled or slow), so nothing outlives a test. */
  close(): void {
    for (const body of this.open) body.destroy(new Error('fake network closed'));
    this.open.clear();
  }

  async fetch(provider: Provider, digest: Digest, range: ByteRange | undefined, signal?: AbortSignal): Promise<PeerBlob> {
    const peer = this.peers.get(provider.id);
    const req: FakeRequest = { peer: provider.id, digest, range, signal, behaviour: 'failing', outcome: 'pending', sent: 0 };
    this.requests.push(req);
    this.pending++;
    this.maxPending = Math.max(this.maxPending, this.pending);
    // A network answers later, never in the caller's own tick.
    await new Promise((r) => setImmediate(r));
    if (!peer) {
      // No such peer (gone, its records left behind): a dial that fails, as fetchFromPeer reports it.
      this.settle(req, 'failed');
      throw new PeerFetchError(provider.id, 'unreachable', 'dial failed');
    }
    const behaviour = resolve(peer.behaviour, req);
    req.behaviour = behaviour.kind;
    if (signal?.aborted) {
      this.settle(req, 'aborted');
      throw new Error(`peer ${peer.id}: aborted`);
    }
    if (behaviour.kind === 'failing') return this.reject(req, `peer ${peer.id}: connection reset`);
    const info = await peer.store.stat(digest);
    if (!info || behaviour.kind === 'not-found') return this.reject(req, `peer ${peer.id}: answered not-found`);

    // The range as the blob protocol's server clamps it.
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? info.size - 1, info.size - 1);
    if (start > end && !(info.size === 0 && start === 0)) return this.reject(req, `peer ${peer.id}: answered bad-request`);
    const length = info.size === 0 ? 0 : end - start + 1;
    const bytes = Buffer.from(length === 0 ? Buffer.alloc(0) : await readAll((await peer.store.open(digest, { start, end })).stream));

    let toSend = bytes;
    if (behaviour.kind === 'corrupt' && bytes.length > 0) {
      const at = behaviour.offset !== undefined && behaviour.offset >= start && behaviour.offset <= end ? behaviour.offset - start : 0;
      toSend = Buffer.from(bytes);
      toSend[at] = toSend[at]! ^ 0xff;
    }
    if (behaviour.kind === 'truncated') toSend = bytes.subarray(0, Math.min(behaviour.keep ?? Math.floor(length / 2), Math.max(0, length - 1)));

    // A stream's buffer holds a little of a body, not a whole range: one chunk each side (Node 22 raised
    // the default to 64 KiB, so a 64 KiB range would fit in the buffer and count as sent unread).
    const body = new PassThrough({ highWaterMark: CHUNK });
    this.open.add(body);
    const finish = (outcome: Exclude<Outcome, 'pending'>) => {
      this.settle(req, outcome);
      this.open.delete(body);
    };
    signal?.addEventListener(
      'abort',
      () => {
        finish('aborted');
        body.destroy(new Error(`peer ${peer.id}: aborted`));
      },
      { once: true },
    );
    body.on('error', () => finish('failed'));
    void this.drive(behaviour, body, toSend, req).then(
      // A body cut short is no complete answer, however cleanly it ended.
      () => finish(toSend.length === length ? 'sent' : 'failed'),
      () => finish('failed'),
    );
    return { size: info.size, start, length, body, received: () => req.sent };
  }

  /** Writes the body as the behaviour says. */
  private async drive(behaviour: Behaviour, body: PassThrough, bytes: Buffer, req: FakeRequest): Promise<void> {
    if (behaviour.kind === 'stalled') {
      await new Promise<void>((_, reject) => body.once('close', () => reject(new Error('closed'))));
    }
    if (behaviour.kind === 'slow' && behaviour.release) await behaviour.release;
    const stop = behaviour.kind === 'broken' ? Math.min(behaviour.keep, bytes.length) : bytes.length;
    for (let at = 0; at < stop; at += CHUNK) {
      if (behaviour.kind === 'slow' && behaviour.chunkDelayMs) await new Promise((r) => setTimeout(r, behaviour.chunkDelayMs));
      if (body.destroyed) throw new Error('body destroyed');
      const chunk = bytes.subarray(at, Math.min(at + CHUNK, stop));
      req.sent += chunk.length;
      // Backpressure, as a real stream has; a body destroyed meanwhile never drains.
      if (!body.write(chunk)) await drainOrClose(body);
    }
    if (body.destroyed) throw new Error('body destroyed');
    if (behaviour.kind === 'broken') {
      // The bytes sent reach the reader before the reset does, as on a socket.
      while (body.readableLength + body.writableLength > 0 && !body.destroyed) await new Promise((r) => setImmediate(r));
      const reset = new Error(`peer ${req.peer}: connection reset after ${stop} bytes`);
      body.destroy(reset);
      throw reset;
    }
    body.end();
  }

  private reject(req: FakeRequest, message: string): never {
    this.settle(req, 'failed');
    throw new Error(message);
  }

  /** A request's first ending is the one that counts. */
  private settle(req: FakeRequest, outcome: Exclude<Outcome, 'pending'>): void {
    if (req.outcome !== 'pending') return;
    req.outcome = outcome;
    this.pending--;
  }

  private peer(id: string): FakePeer {
    const peer = this.peers.get(id);
    if (!peer) throw new Error(`no fake peer ${id}`);
    return peer;
  }
}

function resolve(spec: BehaviourSpec, req: FakeRequest): Behaviour {
  const b = typeof spec === 'function' ? spec(req) : spec;
  return typeof b === 'string' ? ({ kind: b } as Behaviour) : b;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** Deterministic, non-repeating bytes: a range misplaced in the assembly shows up as a digest mismatch. */
export function blobOf(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

/** Rejects when `promise` has not settled by `ms`: a guard against hangs, not a timing assertion. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still not done after ${ms} ms`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Waits for the body to drain or close, leaving no listener behind (one per full write piled up otherwise). */
function drainOrClose(body: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      body.off('drain', done);
      body.off('close', done);
      resolve();
    };
    body.once('drain', done);
    body.once('close', done);
  });
}
