// layerd's blob protocol over libp2p streams. One stream carries one request:
//   client → server: a JSON line {"digest","start"?,"end"?}            (end inclusive; whole blob if absent)
//   server → client: a JSON line {"status","size"?,"start"?,"length"?} then, for "ok", exactly length bytes
// Statuses: ok, not-found, busy (the per-peer upload limit), pending (not here yet, but this node is about to
// fetch it: ask again), bad-request, error. Bytes flow with the
// streams' backpressure both ways (the server sends a chunk only once the muxer has room, pulled by the
// consumer on the client). A provider's bytes are never trusted: fetchers verify the whole blob.
// A peer that sends no request, or stops reading what it asked for, is reset after the idle timeout.
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { Readable } from 'node:stream';
import { ClassifiedError, parseDigest, type ByteRange, type Digest, type FailureKind } from '../oci/index.js';
import { BlobNotFoundError, type BlobStore } from '../store/index.js';
import { encodeLine as line, FrameError, parseJsonObject, readLine, splitLine } from './json-lines.js';
import type { UploadThrottle } from './upload-throttle.js';

export const BLOB_PROTOCOL = '/layerd/blob/1.0.0';
const MAX_LINE = 1024;

/** A blob this node can serve peers: one it holds, or one it is fetching from the seed right now. */
export interface ServableBlob {
  size: number;
  /** The bytes in range (inclusive), as they become available; BlobNotFoundError if the blob went away. */
  open(range: ByteRange): Promise<Readable>;
  /**
   * Whether the range's first byte is here to send (waiting a while for it): a download landing out of
   * order may not have it yet, and the asker is told 'pending' rather than given a stream that sends
   * nothing. Absent: always.
   */
  ready?(range: ByteRange): Promise<boolean>;
}

/**
 * Finds what to serve for a digest; undefined when this node has nothing to offer; 'pending' when it has
 * nothing yet but will (a rollout here is to fetch it): the asker is told to ask again, not to look elsewhere.
 */
export type BlobLookup = (digest: Digest) => Promise<ServableBlob | 'pending' | undefined>;

/** Serves what a store holds. */
export function storeLookup(store: Pick<BlobStore, 'stat' | 'open'>): BlobLookup {
  return async (digest) => {
    const held = await store.stat(digest);
    return held ? { size: held.size, open: async (range) => (await store.open(digest, range)).stream } : undefined;
  };
}
/** Room for a whole yamux window plus slack, so a consumer that pauses never makes the muxer reset. */
const READ_BUFFER = 32 * 1024 * 1024;

export interface BlobRequest {
  digest: Digest;
  range?: ByteRange;
}

export type BlobStatus = 'ok' | 'not-found' | 'busy' | 'pending' | 'bad-request' | 'error';

/** A response header as parseBlobResponse lets it through: only "ok" carries numbers, and then all three. */
export type BlobResponseHeader = { status: 'ok'; size: number; start: number; length: number } | { status: Exclude<BlobStatus, 'ok'> };

export class PeerFetchError extends ClassifiedError {
  constructor(
    readonly peer: string,
    readonly status: BlobStatus | 'protocol' | 'unreachable' | 'truncated' | 'stalled',
    message: string,
  ) {
    super(`peer ${peer}: ${message}`);
    this.name = 'PeerFetchError';
  }

  /** The peer's own answers have kinds; failing to get one (unreachable, stalled, garbled) is transient. */
  get failure(): FailureKind {
    if (this.status === 'not-found') return 'not-found';
    if (this.status === 'busy' || this.status === 'pending') return 'busy';
    if (this.status === 'bad-request') return 'refused';
    return 'transient';
  }
}

export interface BlobServerOptions {
  /** Concurrent uploads one peer may have running; more are answered "busy". */
  maxUploadsPerPeer: number;
  /** Streams one connection may have open on this protocol; libp2p refuses more (default 256). */
  maxInboundStreams?: number;
  /** How long a peer may take to send its request line, or leave a chunk unread (0: no limit; default 30 s). */
  idleTimeoutMs?: number;
  /** The pace of the bytes sent (--max-upload-rate). */
  throttle?: UploadThrottle;
  onServed?: (peer: string, digest: Digest, bytes: number) => void;
}

const DEFAULT_IDLE_MS = 30_000;
/** How long a peer may take to send its request line. */
const REQUEST_LINE_MS = 10_000;

/** Rejects after `ms` (none when 0), and lets the caller cancel the timer. */
function idleTimer(ms: number, what: string): { signal?: AbortSignal; clear(): void } {
  if (ms <= 0) return { clear: () => undefined };
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`${what}: peer idle for ${ms} ms`)), ms);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/** Serves blobs from the store to peers: handles the blob protocol on start, unhandles it on stop. */
export class BlobServer {
  constructor(
    private readonly libp2p: Libp2p,
    private readonly lookup: BlobLookup,
    private readonly opts: BlobServerOptions,
  ) {}

  start(): Promise<void> {
    return serveBlobs(this.libp2p, this.lookup, this.opts);
  }

  /** Streams already open run on; no new one is accepted. */
  stop(): Promise<void> {
    return this.libp2p.unhandle(BLOB_PROTOCOL);
  }
}

/** Serves blobs from the store to peers, until libp2p stops (tests; a node uses a BlobServer). */
export async function handleBlobProtocol(libp2p: Libp2p, lookup: BlobLookup, opts: BlobServerOptions): Promise<void> {
  await new BlobServer(libp2p, lookup, opts).start();
}

async function serveBlobs(libp2p: Libp2p, lookup: BlobLookup, opts: BlobServerOptions): Promise<void> {
  const uploads = new Map<string, number>();
  await libp2p.handle(
    BLOB_PROTOCOL,
    async (stream: Stream, connection: Connection) => {
      const peer = connection.remotePeer.toString();
      const active = uploads.get(peer) ?? 0;
      stream.maxReadBufferLength = MAX_LINE * 4;
      try {
        if (active >= opts.maxUploadsPerPeer) {
          stream.send(line({ status: 'busy' }));
          await stream.close();
          return;
        }
        uploads.set(peer, active + 1);
        await serveOne(stream, peer, lookup, opts);
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (active < opts.maxUploadsPerPeer) {
          const left = (uploads.get(peer) ?? 1) - 1;
          if (left <= 0) uploads.delete(peer);
          else uploads.set(peer, left);
        }
      }
    },
    { maxInboundStreams: opts.maxInboundStreams ?? 256, runOnLimitedConnection: false },
  );
}

async function serveOne(stream: Stream, peer: string, lookup: BlobLookup, opts: BlobServerOptions): Promise<void> {
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  // An honest peer sends its one short request line at once: a stream that has not within a few seconds
  // is reset, whatever the (longer) idle limit for the bytes that follow.
  const waitRequest = idleTimer(idleMs > 0 ? Math.min(idleMs, REQUEST_LINE_MS) : REQUEST_LINE_MS, 'request');
  const onTimeout = () => stream.abort(waitRequest.signal!.reason as Error);
  waitRequest.signal?.addEventListener('abort', onTimeout, { once: true });
  let request: BlobRequest;
  const incoming = stream[Symbol.asyncIterator]();
  try {
    const { line: text } = await readLine(incoming);
    request = parseBlobRequest(text);
  } catch {
    if (stream.status !== 'open') return; // reset: timed out, or the peer gave up
    stream.send(line({ status: 'bad-request' }));
    await stream.close();
    return;
  } finally {
    waitRequest.clear();
    waitRequest.signal?.removeEventListener('abort', onTimeout);
    // Nothing more is read: whatever else the peer sends is held only up to the small read buffer.
    void incoming.return?.();
  }
  const info = await lookup(request.digest);
  if (!info || info === 'pending') {
    stream.send(line({ status: info ?? 'not-found' }));
    await stream.close();
    return;
  }
  const start = request.range?.start ?? 0;
  const end = Math.min(request.range?.end ?? info.size - 1, info.size - 1);
  if (start > end && !(info.size === 0 && start === 0)) {
    stream.send(line({ status: 'bad-request', size: info.size }));
    await stream.close();
    return;
  }
  if (info.ready && info.size > 0 && !(await info.ready({ start, end }))) {
    stream.send(line({ status: 'pending' }));
    await stream.close();
    return;
  }
  let file: Readable;
  try {
    file = info.size === 0 ? Readable.from([]) : await info.open({ start, end });
  } catch (err) {
    if (!(err instanceof BlobNotFoundError)) throw err;
    stream.send(line({ status: 'not-found' }));
    await stream.close();
    return;
  }
  const length = info.size === 0 ? 0 : end - start + 1;
  stream.send(line({ status: 'ok', size: info.size, start, length }));
  const pace = opts.throttle?.limited ? opts.throttle.transfer(peer) : undefined;
  let sent = 0;
  try {
    for await (const chunk of file) {
      if (pace) await pace.take((chunk as Uint8Array).length); // no await (a microtask hop per chunk) when unpaced
      // The chunk goes out now; the next is read only once this one has left the stream's write queue
      // (backpressure), and a peer that leaves it unread for the idle time is reset.
      if (!stream.send(chunk as Uint8Array) || stream.writeBufferLength > 0) await whenSent(stream, idleMs);
      sent += (chunk as Uint8Array).length;
    }
    const closing = idleTimer(idleMs, 'close');
    try {
      await stream.close({ signal: closing.signal });
    } finally {
      closing.clear();
    }
  } finally {
    pace?.done();
    file.destroy();
  }
  opts.onServed?.(peer, request.digest, sent);
}

/**
 * Resolves once everything handed to stream.send() has left the stream's write queue (to the muxer and noise,
 * which encrypt it into buffers of their own). Not stream.onDrain(): in @libp2p/utils 7 its promise is never
 * renewed once resolved, so after a stream's first drain it resolved at once and a fast reader piled the whole
 * file into the queue (a node relaying 1 GiB to 4 slower followers held 560 MiB of 1 MiB chunks there, and a
 * peak RSS of 0.35-1.2 GiB). The queue empties chunk by chunk as the peer grants window; its last send
 * dispatches 'idle'.
 */
async function whenSent(stream: Stream, idleMs: number): Promise<void> {
  if (stream.writeBufferLength === 0 && stream.writeStatus === 'writable') {
    // Only the muxer (the connection) is full: our bytes are past the stream. The next chunk may queue behind
    // them; it is the one waited for.
    return;
  }
  const timer = idleTimer(idleMs, 'send');
  try {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        stream.removeEventListener('idle', onIdle);
        stream.removeEventListener('close', onClose);
        timer.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onIdle = () => {
        if (stream.writeBufferLength === 0) done();
      };
      const onClose = (evt: Event & { error?: Error }) => done(evt.error ?? new Error('stream closed while sending'));
      const onAbort = () => done(timer.signal!.reason as Error);
      stream.addEventListener('idle', onIdle);
      stream.addEventListener('close', onClose as never);
      timer.signal?.addEventListener('abort', onAbort, { once: true });
      if (stream.status !== 'open') done(new Error(`stream ${stream.status} while sending`));
      else if (stream.writeBufferLength === 0) done();
    });
  } finally {
    timer.clear();
  }
}

/** A blob request line: {"digest","start"?,"end"?}. Throws FrameError or an OciError (DIGEST_INVALID). */
export function parseBlobRequest(text: string): BlobRequest {
  const doc = parseJsonObject(text);
  if (typeof doc.digest !== 'string') throw new FrameError('no digest');
  const digest = parseDigest(doc.digest);
  if (doc.start === undefined && doc.end === undefined) return { digest };
  if (!isCount(doc.start) || (doc.end !== undefined && !isCount(doc.end)) || (isCount(doc.end) && doc.end < doc.start)) throw new FrameError('bad range');
  return { digest, range: { start: doc.start, end: isCount(doc.end) ? doc.end : Number.MAX_SAFE_INTEGER } };
}

export interface PeerBlob {
  size: number;
  start: number;
  length: number;
  /** Exactly `length` bytes, or an error if the peer stops short. */
  body: Readable;
  /** Bytes of the body the peer has sent so far (a check on the body's own, for other PeerNetworks). */
  received?: () => number;
}

export interface FetchOptions {
  /**
   * How long the peer may keep this node waiting for its answer or its next bytes. Only time spent
   * waiting on the peer counts (not a slow consumer's), so a stalled peer is given up on without
   * cutting a transfer that is merely backpressured. Absent: the muxer's own inactivity timeout (minutes).
   */
  idleTimeoutMs?: number;
  /**
   * How long a dial to the peer may take (absent: libp2p's 10 s). A provider whose host is gone (a
   * scale-down leaves its records behind) is then given up on in this budget, not in libp2p's.
   */
  dialTimeoutMs?: number;
}

/** Fetches a blob (or a range of it) from one peer. */
export async function fetchFromPeer(
  libp2p: Libp2p,
  peer: { id: string; addrs: string[] },
  digest: Digest,
  range: ByteRange | undefined,
  signal?: AbortSignal,
  opts: FetchOptions = {},
): Promise<PeerBlob> {
  let stream: Stream;
  try {
    const target: Multiaddr[] | ReturnType<typeof peerIdFromString> =
      peer.addrs.length > 0 ? peer.addrs.map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peer.id}`)) : peerIdFromString(peer.id);
    stream = await dialWithin(libp2p, target, signal, opts.dialTimeoutMs);
  } catch (err) {
    throw new PeerFetchError(peer.id, 'unreachable', (err as Error).message);
  }
  stream.maxReadBufferLength = READ_BUFFER;
  const abort = () => stream.abort(new Error('aborted'));
  signal?.addEventListener('abort', abort, { once: true });
  // Listening before the request goes out: no byte of the answer can arrive unheard.
  const body = new PeerBody(stream, peer.id, range, opts.idleTimeoutMs, () => signal?.removeEventListener('abort', abort));
  const request: Record<string, unknown> = { digest };
  if (range) Object.assign(request, { start: range.start, end: range.end });
  try {
    stream.send(line(request));
    await stream.close(); // half-close: the request is all we send
  } catch (err) {
    body.destroy();
    throw new PeerFetchError(peer.id, 'unreachable', (err as Error).message);
  }
  let header: BlobResponseHeader;
  try {
    header = await body.header;
  } catch (err) {
    body.destroy();
    throw err instanceof PeerFetchError ? err : new PeerFetchError(peer.id, 'protocol', `bad response header: ${(err as Error).message}`);
  }
  if (header.status !== 'ok') {
    body.destroy();
    throw new PeerFetchError(peer.id, header.status, `answered ${header.status}`);
  }
  const { size, start, length } = header;
  return { size, start, length, body, received: () => body.received };
}

/** How much of a body is held before the peer is paused (its yamux window then closes). */
const BODY_BUFFER = 4 * 1024 * 1024;

/**
 * One blob response, read straight off the stream's message events: the header line first (`header`),
 * then the body as this Readable, the stream's own buffers pushed as they are (no copy, no async
 * iterator, no generator, no promise or timer per chunk: each of those cost CPU per byte on a fetching
 * node). Backpressure is the stream's pause()/resume() (yamux stops granting window). The peer's bytes
 * are held to the header: not one past the announced length reaches the consumer, and fewer is an error
 * ("truncated"). Only time spent waiting on the peer counts against `idleMs` (not a paused consumer's).
 */
class PeerBody extends Readable {
  readonly header: Promise<BlobResponseHeader>;
  private resolveHeader!: (h: BlobResponseHeader) => void;
  private rejectHeader!: (err: Error) => void;
  /** The header line's bytes so far; undefined once it is parsed. */
  private head: Buffer | undefined = Buffer.alloc(0);
  private total = 0;
  private got = 0;
  get received(): number {
    return this.got;
  }
  private ended = false;
  /** Every announced byte arrived (and no more). */
  private complete = false;
  private paused = false;
  /** Inside stream.resume() (see _read). */
  private resuming = false;
  private stalled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: Stream,
    private readonly peer: string,
    private readonly range: ByteRange | undefined,
    private readonly idleMs: number | undefined,
    private readonly onDone: () => void,
  ) {
    super({ highWaterMark: BODY_BUFFER });
    this.header = new Promise((resolve, reject) => {
      this.resolveHeader = resolve;
      this.rejectHeader = reject;
    });
    this.header.catch(() => undefined); // the caller may be between awaits when a bad header arrives
    // The peer can fail the body before its consumer is attached (a reset while a claim is checked): the
    // error stays on the stream (`errored`, which pipeline() and async iteration report), not an unhandled
    // 'error' event that would take the process down.
    this.on('error', () => undefined);
    stream.addEventListener('message', this.onMessage);
    stream.addEventListener('end', this.onEnd);
    stream.addEventListener('close', this.onClose);
    this.armIdleTimer();
  }

  /**
   * (Re)starts the wait on the peer. A new timer, not refresh(): a timer cleared while the consumer
   * paused cannot be refreshed (Node ignores it), and a peer going silent after a pause went unnoticed.
   */
  private armIdleTimer(): void {
    if (!this.idleMs) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onStall, this.idleMs);
    this.timer.unref?.();
  }

  private readonly onStall = (): void => {
    this.stalled = true;
    this.stream.abort(new Error('peer stalled'));
  };

  private stallError(): PeerFetchError {
    return new PeerFetchError(this.peer, 'stalled', `sent nothing for ${this.idleMs} ms`);
  }

  private readonly onMessage = (evt: { data: Uint8Array | Iterable<Uint8Array> }): void => {
    if (this.ended) return;
    this.timer?.refresh();
    const data = evt.data;
    if (this.head !== undefined) return this.onHeaderBytes(data instanceof Uint8Array ? data : Buffer.concat([...data]));
    if (data instanceof Uint8Array) this.accept(data);
    else for (const bytes of data) if (!this.ended) this.accept(bytes);
  };

  private onHeaderBytes(bytes: Uint8Array): void {
    const buf = Buffer.concat([this.head!, bytes]);
    let header: BlobResponseHeader;
    let rest: Buffer;
    try {
      const split = splitLine(buf, MAX_LINE);
      if (!split) {
        this.head = buf;
        return;
      }
      rest = split.rest;
      // The peer's header is checked before anything in it is believed (see parseBlobResponse).
      header = parseBlobResponse(split.line, this.range);
    } catch (err) {
      // Still no header (`head` kept): fail() rejects the header, which fetchFromPeer waits on.
      return this.fail(err as Error);
    }
    this.head = undefined;
    this.total = header.status === 'ok' ? header.length : 0;
    this.resolveHeader(header);
    if (header.status !== 'ok') return; // the caller drops the stream
    if (rest.length > 0) this.accept(rest);
    else if (this.total === 0) this.finish();
  }

  private accept(bytes: Uint8Array): void {
    // Not one byte past what the header announced reaches the consumer (or its disk).
    if (this.got + bytes.length > this.total) return this.fail(new PeerFetchError(this.peer, 'protocol', `sent more than the ${this.total} bytes it announced`));
    this.got += bytes.length;
    const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (!this.push(chunk) && !this.paused && this.got < this.total) {
      this.paused = true;
      clearTimeout(this.timer); // a consumer that pauses is not a stalled peer
      // Inside a resume (see _read) the pause waits until resume() has returned.
      if (this.stream.readStatus === 'readable' && !this.resuming) this.stream.pause();
    }
    if (this.got === this.total) this.finish();
  }

  /** Every announced byte is in: the body ends, whatever the stream does next. */
  private finish(): void {
    this.ended = true;
    this.complete = true;
    this.detach();
    this.push(null);
  }

  override _read(): void {
    if (!this.paused || this.ended) return;
    this.paused = false;
    // resume() hands over what the stream buffered while paused, in one message, and only then tells the
    // muxer to grant the peer window again. A pause made while that message is taken in (this body full
    // again) was undone by it: the stream stayed paused but the peer was granted window on and on, and its
    // bytes piled up in the stream's buffer until libp2p aborted the stream (past 32 MiB: a disk slower than
    // the network failed every peer download). So that pause is made once resume() has returned.
    this.resuming = true;
    try {
      if (this.stream.readStatus === 'paused') this.stream.resume();
    } finally {
      this.resuming = false;
    }
    if (this.paused) {
      if (!this.ended && this.stream.readStatus === 'readable') this.stream.pause();
      return;
    }
    this.armIdleTimer();
  }

  /** The stream's readable side ended cleanly (a reset or abort goes on to 'close' with its error). */
  private readonly onEnd = (): void => {
    if (this.ended || this.stream.status === 'reset' || this.stream.status === 'aborted') return;
    if (this.head !== undefined) return this.fail(this.stalled ? this.stallError() : new FrameError('stream ended before a complete line'));
    this.fail(this.stalled ? this.stallError() : new PeerFetchError(this.peer, 'truncated', `sent ${this.got} of ${this.total} bytes`));
  };

  private readonly onClose = (evt: Event & { error?: Error }): void => {
    if (this.ended) return;
    if (evt.error || this.stalled) return this.fail(this.stalled ? this.stallError() : evt.error!);
    // A clean close with bytes still buffered (a paused stream): they are dispatched on resume, then 'end'.
    if (this.stream.readBufferLength === 0) this.onEnd();
  };

  private fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.detach();
    if (this.head !== undefined) {
      // No body yet: the caller hears of it as fetchFromPeer's error.
      this.rejectHeader(err);
      this.destroy();
    } else this.destroy(err);
  }

  private detach(): void {
    clearTimeout(this.timer);
    this.stream.removeEventListener('message', this.onMessage as never);
    this.stream.removeEventListener('end', this.onEnd);
    this.stream.removeEventListener('close', this.onClose as never);
    this.onDone();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // Also when the caller drops the body before reading it (a claim it refused, or a header it did
    // not want): the stream must not stay open with the peer still sending into it.
    if (!this.ended) {
      this.ended = true;
      this.detach();
      this.rejectHeader(err ?? new Error('dropped'));
    }
    if (!this.complete) this.stream.abort(err ?? new Error('incomplete'));
    callback(err);
  }
}

const STATUSES: readonly BlobStatus[] = ['ok', 'not-found', 'busy', 'pending', 'bad-request', 'error'];

/**
 * A response header line, checked against the request before anything in it is believed: a known status;
 * for "ok", whole numbers, a start and length that are the ones asked for (the whole blob when no range
 * was asked) and that fit in the size. Throws FrameError otherwise. Whether the size itself can be true
 * is the fetcher's judgement (it knows what manifests and limits say: distribution/peers/).
 */
export function parseBlobResponse(text: string, range: ByteRange | undefined): BlobResponseHeader {
  const doc = parseJsonObject(text);
  const status = doc.status as BlobStatus;
  if (!STATUSES.includes(status)) throw new FrameError('unknown status');
  if (status !== 'ok') return { status };
  const { size, start, length } = doc;
  if (!isCount(size) || !isCount(start) || !isCount(length)) throw new FrameError('ok without a size, start and length');
  const wantStart = range?.start ?? 0;
  const wantEnd = Math.min(range?.end ?? size - 1, size - 1);
  const wantLength = Math.max(0, wantEnd - wantStart + 1);
  if (start !== wantStart || length !== wantLength || start + length > size) throw new FrameError(`answered bytes ${start}+${length} of ${size}, not the range asked for`);
  return { status, size, start, length };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * dialProtocol within `budgetMs` as well as the caller's signal. One controller and a plain timer: on
 * Node 20 a signal from AbortSignal.any over AbortSignal.timeout can be collected before it fires.
 */
async function dialWithin(libp2p: Libp2p, target: Parameters<Libp2p['dialProtocol']>[0], signal: AbortSignal | undefined, budgetMs: number | undefined): Promise<Stream> {
  if (budgetMs === undefined) return libp2p.dialProtocol(target, BLOB_PROTOCOL, { signal });
  const dial = new AbortController();
  const onAbort = () => dial.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => dial.abort(new Error(`no connection within ${budgetMs} ms`)), budgetMs);
  try {
    if (signal?.aborted) onAbort();
    return await libp2p.dialProtocol(target, BLOB_PROTOCOL, { signal: dial.signal });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
