// The in-memory twin of FsBlobStore, for unit tests of policy. Same contract, same conformance suite.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { algorithmOf, digestOf, type ByteRange, type Digest } from '../oci/index.js';
import { putViaWriter, type AppendOptions, type BlobInfo, type BlobStore, type BlobWriter, type ByteSource, type OpenBlob, type WrittenReader } from './blob-store.js';
import { BlobNotFoundError, DigestMismatchError, LandingRefusedError, OffsetMismatchError } from './errors.js';
import { LandedMap } from './landed-map.js';
import { SerialQueue } from './serial-queue.js';
import { ChangeEmitter, type BlobChange, type Listener, type Unsubscribe } from './change-stream.js';

export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<Digest, Buffer>();
  private readonly writers = new Map<string, MemoryBlobWriter>();
  private readonly changes = new ChangeEmitter<BlobChange>();

  subscribe(listener: Listener<BlobChange>): Unsubscribe {
    return this.changes.subscribe(listener);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const bytes = this.blobs.get(digest);
    return bytes ? { digest, size: bytes.length } : undefined;
  }

  async open(digest: Digest, range?: ByteRange): Promise<OpenBlob> {
    const bytes = this.blobs.get(digest);
    if (!bytes) throw new BlobNotFoundError(digest);
    const slice = range ? bytes.subarray(range.start, range.end + 1) : bytes;
    return { digest, size: bytes.length, stream: Readable.from(slice.length ? [slice] : []) };
  }

  put(source: ByteSource, expected: Digest): Promise<BlobInfo> {
    return putViaWriter(this, source, expected);
  }

  async createWriter(): Promise<BlobWriter> {
    const writer = new MemoryBlobWriter(randomUUID(), this.blobs, () => this.writers.delete(writer.id), (info) => this.changes.emit({ kind: 'committed', ...info }));
    this.writers.set(writer.id, writer);
    return writer;
  }

  async resumeWriter(id: string): Promise<BlobWriter | undefined> {
    return this.writers.get(id);
  }

  async delete(digest: Digest): Promise<boolean> {
    if (!this.blobs.delete(digest)) return false;
    this.changes.emit({ kind: 'deleted', digest });
    return true;
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const [digest, bytes] of this.blobs) yield { digest, size: bytes.length };
  }
}

class MemoryBlobWriter implements BlobWriter {
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** Bytes written past `bytes` by writeAt, by where each write began; moved into `chunks` in order. */
  private readonly ahead = new LandedMap();
  private readonly aheadBytes = new Map<number, Buffer>();
  private readonly queue = new SerialQueue();

  constructor(
    readonly id: string,
    private readonly blobs: Map<Digest, Buffer>,
    private readonly done: () => void,
    private readonly committed: (info: BlobInfo) => void,
  ) {}

  size(): number {
    return this.bytes;
  }

  append(source: ByteSource, opts: AppendOptions = {}): Promise<number> {
    return this.queue.run(async () => {
      const before = { chunks: this.chunks.length, bytes: this.bytes };
      if (opts.at !== undefined && opts.at !== this.bytes) throw new OffsetMismatchError(opts.at, this.bytes);
      this.ahead.clear(); // as the filesystem writer: an append goes on in order, what landed ahead goes
      this.aheadBytes.clear();
      try {
        for await (const chunk of source) {
          this.chunks.push(Buffer.from(chunk as Uint8Array));
          this.bytes += (chunk as Uint8Array).length;
          opts.onProgress?.(this.bytes);
        }
        return this.bytes;
      } catch (err) {
        if (opts.keepLanded) throw err; // every chunk counted is whole: keep them
        this.chunks.length = before.chunks; // roll back, as the filesystem writer does
        this.bytes = before.bytes;
        throw err;
      }
    });
  }

  writeAt(position: number, data: readonly Buffer[], limit?: number): Promise<number> {
    return this.queue.run(async () => {
      const bytes = Buffer.concat(data);
      const refused = this.ahead.refuse(this.bytes, position, bytes.length, limit);
      if (refused) throw new LandingRefusedError(refused);
      if (bytes.length === 0) return this.bytes;
      this.ahead.add(position, bytes.length);
      this.aheadBytes.set(position, bytes);
      for (let e = this.ahead.takeAt(this.bytes); e; e = this.ahead.takeAt(this.bytes)) {
        while (this.bytes < e.end) {
          const b = this.aheadBytes.get(this.bytes)!;
          this.aheadBytes.delete(this.bytes);
          this.chunks.push(b);
          this.bytes += b.length;
        }
      }
      return this.bytes;
    });
  }

  landedFrom(position: number): number {
    return this.ahead.runFrom(this.bytes, position);
  }

  /** The bytes at `position`, in order or landed ahead. */
  private view(position: number, length: number): Buffer {
    if (position < this.bytes) return Buffer.concat(this.chunks).subarray(position, position + length);
    for (const [start, b] of this.aheadBytes) {
      if (start <= position && position < start + b.length) return b.subarray(position - start, position - start + length);
    }
    return Buffer.alloc(0);
  }

  async openReader(): Promise<WrittenReader> {
    return {
      read: async (position, length, into) => {
        const bytes = this.view(position, length);
        return into ? into.subarray(0, bytes.copy(into)) : bytes;
      },
      close: async () => {},
    };
  }

  async commit(expected: Digest, opts: { onVerified?: () => void } = {}): Promise<BlobInfo> {
    if (!this.ahead.empty) throw new LandingRefusedError(`bytes landed past byte ${this.bytes}, with a gap before them`);
    const bytes = Buffer.concat(this.chunks);
    const actual = digestOf(bytes, algorithmOf(expected));
    if (actual !== expected) throw new DigestMismatchError(expected, actual);
    opts.onVerified?.();
    this.blobs.set(expected, bytes);
    this.done();
    const info = { digest: expected, size: bytes.length };
    this.committed(info);
    return info;
  }

  async abort(): Promise<void> {
    this.chunks = [];
    this.done();
  }
}
