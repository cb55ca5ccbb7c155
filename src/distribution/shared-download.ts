// One download of a blob into the store, shared by every client that wants it while it runs.
// Bytes go to the store's writer (disk), never to per-client memory buffers; each client follows the
// written bytes at its own pace. The blob becomes visible under its digest only after it verifies.
//
// Two modes, by how far the source is trusted:
//  - streamThrough (the seed registry): clients get bytes as they land, except the blob's last byte,
//    held back until the digest verifies; on a mismatch every client's stream fails, so its
//    connection is cut and it can never mistake the body for complete.
//  - verify first (peers): clients get nothing until the whole blob has verified.
import { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import type { ByteRange } from '../oci/range.js';
import type { BlobInfo, BlobStore, BlobWriter } from '../store/blob-store.js';

export interface FetchedBody {
  /** From Content-Length; a source that cannot say is read to its end and served after commit. */
  size?: number;
  stream: Readable;
}

export type DownloadState = 'opening' | 'running' | 'committed' | 'failed';

export class SharedDownload {
  size: number | undefined;
  private written = 0;
  private state: DownloadState = 'opening';
  private error: Error | undefined;
  private writer: BlobWriter | undefined;
  private waiters: Array<() => void> = [];
  /** Resolves once the source has answered (size known) and rejects if it could not. */
  readonly started: Promise<void>;
  /** Resolves with the committed blob, or rejects with why the download failed. */
  readonly done: Promise<BlobInfo>;

  constructor(
    private readonly store: BlobStore,
    readonly digest: Digest,
    open: () => Promise<FetchedBody>,
    private readonly streamThrough: boolean,
  ) {
    let markStarted!: () => void;
    this.started = new Promise<void>((resolve) => (markStarted = resolve));
    this.done = this.run(open, markStarted);
    // Nobody may be listening when it fails; the failure is reported to followers through their streams.
    this.done.catch(() => undefined);
    this.started = Promise.race([this.started, this.done.then(() => undefined)]);
    this.started.catch(() => undefined);
  }

  get status(): DownloadState {
    return this.state;
  }

  private async run(open: () => Promise<FetchedBody>, markStarted: () => void): Promise<BlobInfo> {
    try {
      const body = await open();
      this.size = body.size;
      this.writer = await this.store.createWriter();
      this.state = 'running';
      if (this.size !== undefined && this.streamThrough) markStarted();
      await this.writer.append(body.stream, {
        onProgress: (n) => {
          this.written = n;
          this.notify();
        },
      });
      if (this.size !== undefined && this.written !== this.size) {
        throw new Error(`source ended after ${this.written} of ${this.size} bytes`);
      }
      const info = await this.writer.commit(this.digest);
      this.size = info.size;
      this.state = 'committed';
      markStarted();
      this.notify();
      return info;
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.state = 'failed';
      await this.writer?.abort().catch(() => undefined);
      this.notify();
      throw this.error;
    }
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The blob's bytes in `range` (inclusive; the whole blob by default), as they become available. */
  follow(range?: ByteRange): Readable {
    return Readable.from(this.bytes(range));
  }

  private async *bytes(range?: ByteRange): AsyncGenerator<Uint8Array> {
    let pos = range?.start ?? 0;
    for (;;) {
      if (this.state === 'failed') throw this.error!;
      const size = this.size;
      const end = Math.min(range?.end ?? Infinity, size === undefined ? Infinity : size - 1);
      if (pos > end) return;
      if (this.state === 'committed') {
        const { stream } = await this.store.open(this.digest, { start: pos, end });
        yield* stream;
        return;
      }
      // While unverified, the blob's last byte stays back (see the module comment).
      const servable = size !== undefined && this.written < size ? this.written : this.written - 1;
      const upto = Math.min(end, servable - 1);
      if (this.streamThrough && this.state === 'running' && upto >= pos) {
        try {
          for await (const chunk of this.writer!.readWritten({ start: pos, end: upto })) {
            pos += (chunk as Uint8Array).length;
            yield chunk as Uint8Array;
          }
        } catch (err) {
          // The commit renamed the bytes into the store under our feet: carry on from there.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          await this.done.catch(() => undefined);
        }
        continue;
      }
      await this.changed();
    }
  }
}

/** At most one download per digest: later askers join the running one. */
export class DownloadRegistry {
  private readonly running = new Map<Digest, SharedDownload>();

  get(digest: Digest): SharedDownload | undefined {
    return this.running.get(digest);
  }

  start(store: BlobStore, digest: Digest, open: () => Promise<FetchedBody>, streamThrough: boolean): SharedDownload {
    const existing = this.running.get(digest);
    if (existing) return existing;
    const download = new SharedDownload(store, digest, open, streamThrough);
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
