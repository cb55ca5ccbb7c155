// One download of a blob into the store, shared by every client that wants it while it runs.
// Bytes go to the store's writer (disk), never to per-client memory buffers; each client follows the
// written bytes at its own pace. The blob becomes visible under its digest only after it verifies.
//
// Whatever the source (the seed registry or peers), clients get bytes as they land, hashed as they are
// written, except the last byte each asked for (the blob's, or its range's), held back until the digest
// verifies. So no client can receive a complete body that did not verify:
//  - on a digest mismatch (or a source that sent more than it announced, or sources that disagree on
//    the size) the bytes are dropped, every source that wrote some is told (peers penalize their
//    providers), and every client already answered has its stream failed: its connection is cut and it
//    can never mistake the body for complete. The download starts over from the next source, which the
//    clients' retries (and any new client) join.
//  - a source that fails part way for any other reason (a peer killed, stalled, cut short) costs no
//    client anything: the download goes on from the byte already written with the next way (another
//    peer, the chain's retry, the seed with a Range), into the same writer and the same running hash.
// Peers following this download as chain successors get even the unverified last byte (they verify
// the whole blob themselves); nothing is committed, announced as held or linked before it verifies.
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClassifiedError, failureOf, type ByteRange, type Digest } from '../../oci/index.js';
import { InsufficientStorageError, type BlobInfo, type BlobStore, type BlobWriter, type WrittenReader } from '../../store/index.js';
import { isPumpable, pumpInto, type Pumpable } from '../../io/index.js';
import type { Source } from '../answers.js';

export interface FetchedBody {
  /** From Content-Length; a source that cannot say is read to its end and served after commit. */
  size?: number;
  /**
   * The offset `stream` begins at (default 0). A source asked to go on from an offset may start
   * earlier (a seed that ignores Range): the bytes before the offset are skipped. Never later.
   */
  start?: number;
  stream: Readable;
  /**
   * For an untrusted source (a peer): whether something trusted (a manifest's descriptor) confirmed the
   * size. An unconfirmed size that the disk has no room for is the source's failure, not this node's:
   * the next source is tried instead of answering 507 (see UnconfirmedClaimError).
   */
  confirmed?: boolean;
  /**
   * A source whose bytes land out of order (a striped download): it writes them itself, each at its
   * offset, and resolves once every byte from `start` on is in. `stream` is then never read.
   */
  landAt?: (sink: PositionalSink) => Promise<void>;
}

/** Where a FetchedBody with landAt puts its bytes: the download's writer, checked against its size. */
export interface PositionalSink {
  /** Writes `data` at `position`; refused over bytes the download holds or past the blob's size. */
  write(position: number, data: readonly Buffer[]): Promise<void>;
  /** Bytes on file in one run from `position` (0: not landed yet). */
  landed(position: number): number;
}

/** One place the bytes may come from; a download tries its sources in order until one verifies. */
export interface DownloadSource {
  name: Source;
  /**
   * The bytes from offset `from` on (0: the whole blob; more when another source failed part way and
   * the download goes on from there), or undefined when this source has nothing to offer.
   */
  open(from: number): Promise<FetchedBody | undefined>;
  /**
   * Told why this source's attempt failed, so it can blame whoever sent the bytes. A digest mismatch
   * is told to every source whose bytes were in the blob, not only the last one.
   */
  failed?(err: Error): void;
  /** After a failure: whether this source has another way to try (another peer) before the next source. */
  retry?(): boolean;
  /** Told, whichever source it came from, that the blob is verified and kept (and its true size). */
  stored?(info: BlobInfo): void;
}

export type DownloadState = 'opening' | 'running' | 'committed' | 'failed';

export class SharedDownload {
  size: number | undefined;
  /** The source now writing (or that wrote) the bytes. */
  source: Source | undefined;
  private written = 0;
  /** The attempt running lands its bytes out of order (see landAt): a peer's range waits for its own bytes. */
  private positional = false;
  /** Counts writers, so a follower of unverified bytes notices when the download starts over. */
  private attempts = 0;
  /**
   * Counts start-overs (bytes dropped): a client answered before one has its stream failed (why: `dropped`),
   * as its headers and the bytes it got belong to what was dropped.
   */
  private generation = 0;
  private dropped: Error | undefined;
  /** The bytes written matched the digest (the commit may still be flushing them). */
  private verified = false;
  private state: DownloadState = 'opening';
  private error: Error | undefined;
  private writer: BlobWriter | undefined;
  /**
   * A writer made while a source opened, before anything said the size (see attempt()); unused until a
   * source answers, and kept for the next source when one has nothing to offer.
   */
  private spare: { writer: Promise<BlobWriter>; free: Promise<number> } | undefined;
  /** The sources whose bytes are in the writer: all are told if the blob does not verify. */
  private readonly wrote = new Set<DownloadSource>();
  private waiters: Array<() => void> = [];
  /** The reader followers share (see sharedReader). */
  private reader: { attempt: number; reader: Promise<WrittenReader>; users: number } | undefined;
  /** Resolves once clients can be told the size and source (and rejects if no source could answer). */
  readonly started: Promise<void>;
  /** Resolves with the committed blob, or rejects with why every source failed. */
  readonly done: Promise<BlobInfo>;
  /**
   * Resolves once every byte is in and matched the digest, before the commit flushes and renames them
   * (rejects if the download fails first): enough for a caller that goes on to other work meanwhile.
   */
  readonly checked: Promise<void>;
  private markChecked!: () => void;

  constructor(
    private readonly store: BlobStore,
    readonly digest: Digest,
    sources: DownloadSource[],
  ) {
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const checked = new Promise<void>((resolve) => (this.markChecked = resolve));
    this.done = this.run(sources, markStarted);
    // Nobody may be listening when it fails; the failure reaches followers through their streams.
    this.done.catch(() => undefined);
    // A commit that fails after the check leaves `checked` resolved: `done` says so.
    this.checked = Promise.race([checked, this.done.then(() => undefined)]);
    this.checked.catch(() => undefined);
    this.started = Promise.race([started, this.done.then(() => undefined)]);
    this.started.catch(() => undefined);
  }

  get status(): DownloadState {
    return this.state;
  }

  private async run(sources: DownloadSource[], markStarted: () => void): Promise<BlobInfo> {
    const failures: string[] = [];
    let last: Error | undefined;
    // Sources asked once more from the first byte after disagreeing with the size the bytes had.
    const restarted = new Set<DownloadSource>();
    try {
      for (let i = 0; i < sources.length; i++) {
        const source = sources[i]!;
        try {
          const info = await this.attempt(source, markStarted);
          if (info) {
            for (const s of sources) s.stored?.(info);
            return info;
          }
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          failures.push(`${source.name}: ${error.message}`);
          last = error;
          if (isFinal(error)) {
            await this.drop(error, false);
            return this.fail(error);
          }
          if (failureOf(error) === 'corrupt') {
            // Bytes that are wrong, or may be: whoever wrote any of them is told (a peer source penalizes its
            // providers), the bytes go, and clients answered from them are cut.
            for (const s of this.wrote) if (s !== source) s.failed?.(error);
            source.failed?.(error);
            await this.drop(error);
            if (error instanceof SizeConflictError && !restarted.has(source)) {
              restarted.add(source);
              i--;
              continue;
            }
          } else {
            // Anything else (cut short, stalled, unreachable): what was written stays, and the next way
            // goes on from there.
            source.failed?.(error);
          }
          if (source.retry?.()) i--;
        }
      }
      // Nothing is left behind, before anyone is told: a client that retries at once must find no
      // download (and start a new one), not this one still cleaning up.
      const error = failureOf(last) === 'not-found' ? last! : failures.length > 0 ? new Error(failures.join('; ')) : new NoSourceError(this.digest);
      await this.drop(error, false);
      // The last source (the seed) saying the blob does not exist is the answer, whatever peers did before.
      return this.fail(error);
    } finally {
      if (this.state !== 'committed') await this.drop(this.error ?? new Error('download failed'), false);
    }
  }

  /**
   * Drops the bytes written (if any). `cut`: the download starts over, and clients answered from the
   * dropped bytes are cut (otherwise it is ending, and fail() tells them why).
   */
  private async drop(why: Error, cut = true): Promise<void> {
    // An unused spare goes with the download (a start-over keeps it for the next source).
    const spare = cut ? undefined : this.spare;
    if (spare) {
      this.spare = undefined;
      await spare.writer.then((w) => w.abort()).catch(() => undefined);
    }
    const writer = this.writer;
    if (!writer) return;
    this.writer = undefined; // no follower opens or reads it from here on
    this.wrote.clear();
    this.written = 0;
    this.verified = false;
    this.size = undefined;
    // The upload area goes before anyone is told: whoever learns of the drop finds it gone.
    await writer.abort().catch(() => undefined);
    if (!cut) return;
    this.generation++;
    this.dropped = why;
    this.notify();
  }

  /** One source, from the byte written so far to the commit; undefined when it had nothing to offer. */
  private async attempt(source: DownloadSource, markStarted: () => void): Promise<BlobInfo | undefined> {
    this.state = 'opening';
    this.notify();
    const from = this.written;
    this.makeSpareWriter();
    const body = await source.open(from);
    if (!body) return undefined;
    const input = this.admit(body, from, source.name);
    this.positional = body.landAt !== undefined;
    this.source = source.name;
    this.size ??= body.size;
    const writer = this.writer ?? (await this.takeWriter(body));
    this.wrote.add(source);
    this.state = 'running';
    this.notify();
    if (this.size !== undefined) markStarted();
    if (body.landAt) await this.landAt(writer, body.landAt);
    else await this.land(writer, input, from);
    return this.commit(writer, markStarted);
  }

  /**
   * The upload area (a directory, a file: several threadpool round trips) is made while the source
   * opens, not after its answer: by then a peer's first window of bytes is arriving, and on a busy host
   * the main thread spent tens of ms taking it in before the writer was there to land it (issue 14: the
   * client's first byte). The free space is asked at the same time, and held against the size once
   * it is known, as createWriter would have.
   */
  private makeSpareWriter(): void {
    if (this.writer || this.spare || !this.store.freeBytes) return;
    this.spare = { writer: this.store.createWriter(), free: this.store.freeBytes() };
    this.spare.writer.catch(() => undefined);
    this.spare.free.catch(() => undefined);
  }

  /**
   * A source's answer held against what the download has: it may not begin after the bytes written, nor
   * give another size than the bytes written came with. The stream to land, from byte `from` on.
   */
  private admit(body: FetchedBody, from: number, source: Source): Readable {
    const start = body.start ?? 0;
    try {
      if (start > from) throw new Error(`source answered from byte ${start}, not ${from}`);
      if (this.writer && body.size !== undefined && (this.size ?? body.size) !== body.size) throw new SizeConflictError(this.size!, body.size, source);
      if (body.size !== undefined && from > body.size) throw new SizeConflictError(from, body.size, source);
    } catch (err) {
      body.stream.destroy();
      throw err;
    }
    // A source that cannot begin at `from` (a seed answering 200 to a Range) sends what is written already
    // again: skipped, unchecked (the digest over the whole blob still decides).
    return start < from ? skipBytes(body.stream, from - start) : body.stream;
  }

  /**
   * The download's writer, for the first source with something to offer: the spare made while it opened
   * (once the free space is seen to hold the size), else a new one. No room for a size nothing
   * confirmed is the source's failure (UnconfirmedClaimError), not this node's.
   */
  private async takeWriter(body: FetchedBody): Promise<BlobWriter> {
    try {
      const spare = this.spare;
      this.spare = undefined;
      if (spare) {
        const writer = await spare.writer;
        // Checked before the writer is this download's: followers are answered once it is.
        if (this.size !== undefined) {
          const size = this.size;
          await spare.free
            .then((free) => {
              if (free < size) throw new InsufficientStorageError(size, free);
            })
            .catch(async (err: unknown) => {
              await writer.abort().catch(() => undefined);
              throw err;
            });
        }
        this.writer = writer;
      } else this.writer = await this.store.createWriter({ expectedSize: this.size });
    } catch (err) {
      body.stream.destroy();
      this.size = undefined;
      if (failureOf(err) === 'no-space' && body.confirmed === false && body.size !== undefined) throw new UnconfirmedClaimError(body.size, err as Error);
      throw err;
    }
    this.attempts++;
    return this.writer;
  }

  /** The source's bytes into the writer from `from` on, to the source's end. */
  private async land(writer: BlobWriter, input: Readable, from: number): Promise<void> {
    const size = this.size;
    await writer.append(input, {
      at: from,
      // A source failing part way leaves what landed, for the next one to go on from.
      keepLanded: true,
      onProgress: (n) => {
        // Never more than the source announced reaches the disk (the append stops with the stream).
        if (size !== undefined && n > size) input.destroy(new OverrunError(size));
        this.written = n;
        this.notify();
      },
    }).catch((err: unknown) => {
      this.written = this.writer?.size() ?? 0;
      throw err;
    });
    if (this.size !== undefined && this.written !== this.size) {
      throw new Error(`source ended after ${this.written} of ${this.size} bytes`);
    }
  }

  /**
   * A source that writes its bytes itself, out of order, to the blob's end. Nothing it writes after it
   * settled is taken: the next source goes on from the bytes in order (an append drops those ahead).
   */
  private async landAt(writer: BlobWriter, landAt: (sink: PositionalSink) => Promise<void>): Promise<void> {
    const { writeAt, landedFrom } = writer;
    if (!writeAt || !landedFrom) throw new Error('this store cannot land bytes out of order');
    const size = this.size;
    let open = true;
    try {
      await landAt({
        write: async (position, data) => {
          if (!open || this.writer !== writer) throw new Error('the download has moved on from this source');
          this.written = await writeAt.call(writer, position, data, size);
          this.notify();
        },
        landed: (position) => (open && this.writer === writer ? landedFrom.call(writer, position) : 0),
      });
    } finally {
      open = false;
      this.positional = false;
      this.written = writer.size();
    }
    if (size !== undefined && this.written !== size) throw new Error(`source ended after ${this.written} of ${size} bytes in order`);
  }

  /** The bytes checked against the digest and kept under it. */
  private async commit(writer: BlobWriter, markStarted: () => void): Promise<BlobInfo> {
    const info = await writer.commit(this.digest, {
      // Verified bytes may go to clients at once; the flush and rename need not hold them up.
      onVerified: () => {
        this.verified = true;
        this.markChecked();
        this.notify();
      },
    });
    this.size = info.size;
    this.state = 'committed';
    markStarted();
    this.notify();
    return info;
  }

  private fail(error: Error): never {
    this.error = error;
    this.state = 'failed';
    this.notify();
    throw error;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Resolves true once bytes are being written and the size is known (or the blob is committed): then
   * peers may follow this download, whatever its source. False when it fails, or after `waitMs`. (Only
   * nodes that fetch from the seed announce a download in flight; a node fetching from peers is found
   * only by its successor in a claim chain, which never leads back to itself: no cycle of waits.)
   */
  async relayable(waitMs: number): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.state === 'committed') return true;
      if (this.state === 'failed') return false;
      if (this.writer && this.size !== undefined) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.changed(), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  }

  /**
   * For a peer asking for bytes from `position`: while this download lands out of order (striped),
   * resolves true once that byte is on file, false after `waitMs` (the peer is told 'pending' and asks
   * again, rather than wait on a stream that sends nothing). Any other download: true at once, as before.
   */
  async landedAt(position: number, waitMs: number): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (!this.positional || this.state !== 'running' || !this.writer) return true;
      if (position < this.written || (this.writer.landedFrom?.(position) ?? 0) > 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.changed(), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
  }

  /**
   * What a client is answered with: the blob's size and source once bytes are being written with a known
   * size (or it is committed), and the start-over count to pass to follow(). Rejects if it fails.
   */
  async answer(): Promise<{ size: number; source: Source; generation: number }> {
    for (;;) {
      if (this.state === 'failed') throw this.error!;
      if (this.size !== undefined && (this.state === 'committed' || this.writer)) return { size: this.size, source: this.source!, generation: this.generation };
      await this.changed();
    }
  }

  /**
   * The blob's bytes in `range` (inclusive; the whole blob by default), as they become available.
   * `generation` (from answer()): the stream fails if the bytes are dropped after it (a mismatch), so
   * a client is cut rather than sent bytes of two attempts.
   * `unverified` hands over every byte as soon as it is written, before the digest is checked: only for
   * peers, who verify the whole blob themselves. Their stream fails if the download starts over with
   * another size; with the same size it goes on from where it is.
   * The stream can also pumpInto() a socket: then it reads into the serve budget's recycled buffers
   * instead of a new buffer per chunk (how HTTP clients are served; see io/serve-buffers.ts).
   */
  follow(range?: ByteRange, opts: { unverified?: boolean; generation?: number } = {}): Readable & Pumpable {
    const cursor = this.cursor(range, opts.unverified === true, opts.generation ?? this.generation);
    // One chunk (≤ 1 MiB) of read-ahead: Readable.from's default of 16 items would buffer 16 MiB for
    // every client following a download.
    const stream = Readable.from(this.bytes(cursor), { highWaterMark: 1 }) as Readable & Pumpable;
    stream.pumpInto = async (sink) => {
      if (stream.readableDidRead) throw new Error('pumpInto: stream already in use');
      try {
        await this.pump(cursor, sink);
      } finally {
        stream.destroy();
      }
    };
    return stream;
  }

  private cursor(range: ByteRange | undefined, unverified: boolean, generation: number): Cursor {
    return { pos: range?.start ?? 0, last: range?.end ?? Infinity, end: Infinity, unverified, attempt: this.attempts, generation, sizeAtStart: this.size };
  }

  private async *bytes(cursor: Cursor): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const n = await this.ready(cursor);
        if (n === 'committed') {
          const { stream } = await this.store.open(this.digest, { start: cursor.pos, end: cursor.end });
          yield* stream;
          return;
        }
        if (n === 0) return;
        const chunk = await cursor.reader!.read(cursor.pos, Math.min(FOLLOW_CHUNK, n));
        if (chunk.length === 0) throw new Error(`blob ${this.digest} shrank while being read`);
        cursor.pos += chunk.length;
        yield chunk;
      }
    } finally {
      cursor.release?.();
    }
  }

  private async pump(cursor: Cursor, sink: Writable): Promise<void> {
    let committed = false;
    try {
      await pumpInto(sink, async (buf) => {
        const n = await this.ready(cursor);
        if (n === 'committed') {
          committed = true;
          return 0;
        }
        if (n === 0) return 0;
        const chunk = await cursor.reader!.read(cursor.pos, Math.min(buf.length, n), buf);
        if (chunk.length === 0) throw new Error(`blob ${this.digest} shrank while being read`);
        cursor.pos += chunk.length;
        return chunk.length;
      });
    } finally {
      cursor.release?.();
    }
    if (!committed) return;
    // Committed before this follower opened a reader: the rest comes from the store like any local blob.
    const { stream } = await this.store.open(this.digest, { start: cursor.pos, end: cursor.end });
    if (isPumpable(stream)) return stream.pumpInto(sink);
    await pipeline(stream, sink, { end: false });
  }

  /**
   * Waits until the follower at `cursor` can read, and says how much: a byte count through its reader
   * (opened here on first need), 0 at the end of its range, or 'committed' when it should read the
   * committed blob from the store instead (it had no reader open when the commit came).
   */
  private async ready(c: Cursor): Promise<number | 'committed'> {
    for (;;) {
      if (this.state === 'failed') throw this.error!;
      if (!c.unverified && c.generation !== this.generation) throw this.dropped!;
      if (c.unverified && this.attempts !== c.attempt) {
        // The download started over from another source. The bytes at each offset are the blob's own,
        // whoever sends them, so a peer following it simply goes on from where it is once the new
        // attempt has written that far (it verifies the whole blob itself); only a different size
        // means the two sources disagree on what the blob is.
        c.release?.();
        c.reader = c.release = undefined;
        c.attempt = this.attempts;
      }
      if (c.unverified && c.sizeAtStart !== undefined && this.size !== undefined && this.size !== c.sizeAtStart) {
        throw new Error(`download of ${this.digest} started over with another size`);
      }
      const size = this.size;
      c.end = Math.min(c.last, size === undefined ? Infinity : size - 1);
      if (c.pos > c.end) return 0;
      if (this.state === 'committed' && !c.reader) return 'committed';
      const checked = this.verified || this.state === 'committed';
      // Written bytes are readable while a writer holds them, also between two sources of one download.
      const readable = checked || this.writer !== undefined;
      // While unverified, the last byte each client asked for stays back: the blob's last for a whole-blob
      // answer, its range's last for a Range answer (a range ending early must not complete either), and,
      // while the size is unknown, the last byte written (it may be the blob's last). See the module comment.
      const upto = checked || c.unverified ? Math.min(c.end, this.written - 1) : Math.min(c.end - 1, size === undefined ? this.written - 2 : this.written - 1);
      // A peer may also have bytes landed past the ones in order (a striped download), once they are on file.
      const ahead = c.unverified && !checked && c.pos >= this.written ? (this.writer?.landedFrom?.(c.pos) ?? 0) : 0;
      if (readable && ahead > 0 && c.reader) return Math.min(c.end, c.pos + ahead - 1) - c.pos + 1;
      // The reader opens as soon as there is a file, not once its first bytes land: the open (a threadpool
      // round trip, tens of ms on a busy host, where the first bytes' own write is one more) then overlaps
      // the first write instead of following it, and the client's first byte comes that much sooner.
      if (readable && !c.reader) {
        const writer = this.writer;
        const attempt = this.attempts;
        try {
          [c.reader, c.release] = await this.sharedReader();
        } catch (err) {
          // The commit moved the bytes under their digest while this follower was opening them (the
          // bytes verified, so followers were let in before the rename): read them there instead.
          if (this.verified || this.state === 'committed') await this.done.catch(() => undefined);
          // The attempt's bytes were dropped meanwhile (a start-over): what comes next decides.
          else if (this.writer === writer && this.attempts === attempt) throw err;
        }
        continue; // anything may have changed while the reader opened
      }
      if (readable && upto >= c.pos) return upto - c.pos + 1;
      await this.changed();
    }
  }

  /**
   * A reader of the current attempt's bytes, shared by every follower of it: one file descriptor per
   * download, not one per client (500 clients of one blob held 500 descriptors). Closed by its last user.
   */
  private async sharedReader(): Promise<[WrittenReader, () => void]> {
    let shared = this.reader;
    if (!shared || shared.attempt !== this.attempts) {
      shared = { attempt: this.attempts, reader: this.writer!.openReader(), users: 0 };
      shared.reader.catch(() => undefined);
      this.reader = shared;
    }
    const s = shared;
    s.users++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--s.users > 0) return;
      if (this.reader === s) this.reader = undefined;
      s.reader.then((r) => r.close()).catch(() => undefined);
    };
    try {
      return [await s.reader, release];
    } catch (err) {
      release();
      throw err;
    }
  }
}

/** Where one follower stands. */
interface Cursor {
  pos: number;
  /** The last byte its range asked for (Infinity: to the blob's end). */
  last: number;
  /** The last byte it will get, once the size is known. */
  end: number;
  unverified: boolean;
  /** The attempt it follows (peers go on across attempts). */
  attempt: number;
  /** The start-overs before it was answered (a client is cut at the next one). */
  generation: number;
  sizeAtStart: number | undefined;
  reader?: WrittenReader;
  release?: () => void;
}

/**
 * How much a follower reads at a time from a download in progress (peers; HTTP clients pump into the serve
 * budget's buffers instead). 256 KiB, not 1 MiB: a node relaying 1 GiB to 4 peers peaked at 164 MiB RSS
 * instead of 228 at the same CPU per byte (scripts/bench/p2p-fanout.mjs --relay-only, same run).
 */
const FOLLOW_CHUNK = 256 * 1024;

/**
 * An untrusted source's size, unconfirmed, that this disk has no room for: the source is given up (and
 * judged against the true size once another source's copy verifies), the next one is tried.
 */
export class UnconfirmedClaimError extends Error {
  constructor(
    readonly claimed: number,
    cause: Error,
  ) {
    super(`no room for the ${claimed} bytes claimed (unconfirmed): ${cause.message}`, { cause });
    this.name = 'UnconfirmedClaimError';
  }
}

/** A source that sent more bytes than it announced: the bytes are wrong, and dropped. */
export class OverrunError extends ClassifiedError {
  readonly failure = 'corrupt';
  constructor(readonly size: number) {
    super(`source sent more than its ${size} bytes`);
    this.name = 'OverrunError';
  }
}

/**
 * A source going on from a byte disagrees with the size the bytes before it came with: they are dropped.
 * `by` names the source that disagreed (when it is the seed, the sources before it lied about the size).
 */
export class SizeConflictError extends ClassifiedError {
  readonly failure = 'corrupt';
  constructor(
    readonly had: number,
    readonly claimed: number,
    readonly by: Source,
  ) {
    super(`source says the blob has ${claimed} bytes, the download had ${had}: starting over`);
    this.name = 'SizeConflictError';
  }
}

/** `stream` without its first `n` bytes (a source that answered from before the offset asked for). */
function skipBytes(stream: Readable, n: number): Readable {
  let left = n;
  const out = Readable.from(
    (async function* () {
      for await (const chunk of stream) {
        const c = chunk as Buffer;
        if (left >= c.length) {
          left -= c.length;
          continue;
        }
        yield left > 0 ? c.subarray(left) : c;
        left = 0;
      }
    })(),
    { objectMode: false, highWaterMark: 1 },
  );
  out.once('close', () => stream.destroy());
  return out;
}

/** No source offered the blob at all (none failed: each had nothing). */
export class NoSourceError extends ClassifiedError {
  readonly failure = 'not-found';
  constructor(readonly digest: Digest) {
    super(`no source has ${digest}`);
    this.name = 'NoSourceError';
  }
}

/**
 * Failures that another source cannot fix: the client may not have the blob, or this node's disk is full
 * (kept as it is, so the client is told why). Not-found is not one: the next source (the seed) may have it.
 */
function isFinal(err: Error): boolean {
  const kind = failureOf(err);
  return kind === 'no-space' || kind === 'refused';
}

/** At most one download per digest: later askers join the running one. */
export class SharedDownloads {
  private readonly running = new Map<Digest, SharedDownload>();

  get(digest: Digest): SharedDownload | undefined {
    return this.running.get(digest);
  }

  start(store: BlobStore, digest: Digest, sources: DownloadSource[]): SharedDownload {
    const existing = this.running.get(digest);
    if (existing) return existing;
    const download = new SharedDownload(store, digest, sources);
    this.running.set(digest, download);
    const forget = () => {
      if (this.running.get(digest) === download) this.running.delete(digest);
    };
    download.done.then(forget, forget);
    return download;
  }

  get size(): number {
    return this.running.size;
  }
}
