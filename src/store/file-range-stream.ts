// A byte range of an open file as a Readable, with a faster way out for the common case of sending it
// straight to a socket: pumpInto() reads into a few recycled buffers and reuses each one only after the
// socket has taken it. Serving a 1 GiB layer through an ordinary read stream allocates a fresh 1 MiB
// buffer per read, and in a process of layerd's heap size that external churn cost a full GC every
// ~30 MiB; recycling removes it (measured in scripts/bench/blob-serve.mjs).
import { close, read } from 'node:fs';
import { Readable, type Writable } from 'node:stream';

const CHUNK = 1024 * 1024;
const POOL_MAX = 32;
const pool: Buffer[] = [];

function takeBuffer(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
}

function giveBuffer(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

export class FileRangeStream extends Readable {
  private pos: number;
  private pumping = false;

  /** Takes ownership of `fd` and closes it when done; `end` is inclusive. */
  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: CHUNK });
    this.pos = start;
  }

  override _read(): void {
    const length = Math.min(CHUNK, this.end - this.pos + 1);
    if (length <= 0) return void this.push(null);
    const buf = Buffer.allocUnsafe(length);
    read(this.fd, buf, 0, length, this.pos, (err, n) => {
      if (err) return this.destroy(err);
      if (n === 0) return this.destroy(new Error(`file ended at byte ${this.pos}, before ${this.end + 1}`));
      this.pos += n;
      this.push(n === length ? buf : buf.subarray(0, n));
    });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    close(this.fd, () => callback(err));
  }

  /**
   * Writes the whole range into `sink` (without ending it) with two recycled buffers: one being read
   * while the other is being written. Use instead of reading the stream, not as well.
   */
  async pumpInto(sink: Writable): Promise<void> {
    if (this.pumping || this.readableDidRead) throw new Error('pumpInto: stream already in use');
    this.pumping = true;
    const bufs = [takeBuffer(), takeBuffer()];
    const writes: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
    try {
      for (let i = 0; this.pos <= this.end; i ^= 1) {
        await writes[i];
        if (sink.destroyed) throw new Error('client went away');
        const length = Math.min(CHUNK, this.end - this.pos + 1);
        const n = await readAt(this.fd, bufs[i]!, length, this.pos);
        if (n === 0) throw new Error(`file ended at byte ${this.pos}, before ${this.end + 1}`);
        this.pos += n;
        const chunk = bufs[i]!.subarray(0, n);
        writes[i] = new Promise((resolve, reject) => {
          sink.write(chunk, (err) => (err ? reject(err) : resolve()));
        });
        writes[i]!.catch(() => undefined); // awaited on the next turn or below
      }
      await Promise.all(writes);
      for (const b of bufs) giveBuffer(b);
    } finally {
      // On failure a buffer may still sit in the socket's queue: those are not returned to the pool.
      this.destroy();
    }
  }
}

export function isPumpable(stream: unknown): stream is FileRangeStream {
  return stream instanceof FileRangeStream;
}
