// A byte range of an open file as a Readable, with a faster way out for the common case of sending it
// straight to a socket: pumpInto() reads into recycled buffers from the process's serve budget
// (serve-buffers.ts) and reuses each one only after the socket has taken it. Serving a 1 GiB layer through
// an ordinary read stream allocates a fresh 1 MiB buffer per read, and in a process of layerd's heap size
// that external churn cost a full GC every ~30 MiB; recycling removes it (measured in
// scripts/bench/blob-serve.mjs), and the budget keeps 500 clients at once from needing 500 MiB of buffers.
import { close, read } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pumpInto } from './serve-buffers.js';

const CHUNK = 1024 * 1024;

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

  /** Writes the whole range into `sink` (without ending it). Use instead of reading the stream, not as well. */
  async pumpInto(sink: Writable): Promise<void> {
    if (this.pumping || this.readableDidRead) throw new Error('pumpInto: stream already in use');
    this.pumping = true;
    try {
      await pumpInto(sink, async (buf) => {
        const length = Math.min(buf.length, this.end - this.pos + 1);
        if (length <= 0) return 0;
        const n = await readAt(this.fd, buf, length, this.pos);
        if (n === 0) throw new Error(`file ended at byte ${this.pos}, before ${this.end + 1}`);
        this.pos += n;
        return n;
      });
    } finally {
      this.destroy();
    }
  }
}

/** A body that can send itself into a socket through the serve budget's recycled buffers. */
export interface Pumpable {
  pumpInto(sink: Writable): Promise<void>;
}

export function isPumpable(stream: unknown): stream is Readable & Pumpable {
  return typeof (stream as Partial<Pumpable> | undefined)?.pumpInto === 'function';
}
