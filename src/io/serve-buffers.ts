// Buffers for sending blob bytes to clients, shared by every response in the process under one memory
// budget. A response reads into a buffer, hands it to the socket and reuses it once the socket has taken
// it. A fixed 1 MiB per buffer would cost 2 GiB of buffers for 1,000 clients at once (measured: 500
// clients on one blob drove the node's RSS past 1 GiB); here the chunk size halves as responses multiply
// (down to 64 KiB), so the buffers in use stay near the budget while a few responses still get large reads
// (fewer syscalls per GiB). Past the budget (many responses, or a crowd arriving after a few took 1 MiB
// buffers) each response gets one 64 KiB buffer at a time: buffers in use stay below budget + 64 KiB x
// responses, e.g. 95 MiB for 500 at once with the default 64 MiB.
import type { Writable } from 'node:stream';

export const MIN_CHUNK = 64 * 1024;
export const MAX_CHUNK = 1024 * 1024;
/** Each response double-buffers: one buffer being read while the other is being written. */
const BUFFERS_PER_STREAM = 2;
/** The default budget: 64 MiB of buffers shared by all responses. */
export const DEFAULT_SERVE_BUDGET = 64 * 1024 * 1024;

export class ServeBuffers {
  private streams = 0;
  private readonly free: Buffer[] = [];
  private freeSize = MAX_CHUNK;
  /** Bytes of buffers handed out and not yet given back (for tests and metrics). */
  inUseBytes = 0;
  /** Bytes of buffers ever allocated: what recycling saves shows here (for tests). */
  allocatedBytes = 0;

  constructor(readonly budgetBytes: number = DEFAULT_SERVE_BUDGET) {}

  /** Responses currently sending. */
  get active(): number {
    return this.streams;
  }

  /** A response starts sending: it counts towards the share until it calls the returned leave(). */
  enter(): () => void {
    this.streams++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.streams--;
    };
  }

  /**
   * The size of the next buffer: a power of two in [64 KiB, 1 MiB], no more than each response's share of
   * the budget nor than what is left of it (responses that took 1 MiB buffers while they were few still
   * hold them when many more arrive).
   */
  chunkSize(): number {
    const share = this.budgetBytes / (BUFFERS_PER_STREAM * Math.max(1, this.streams));
    const left = this.budgetBytes - this.inUseBytes;
    let size = MAX_CHUNK;
    while (size > MIN_CHUNK && (size > share || size > left)) size /= 2;
    return size;
  }

  /** Whether the buffers in use have reached the budget. */
  overBudget(): boolean {
    return this.inUseBytes >= this.budgetBytes;
  }

  take(): Buffer {
    const size = this.chunkSize();
    if (size !== this.freeSize) {
      // The share changed: buffers of the old size go to the garbage collector, not back into use.
      this.free.length = 0;
      this.freeSize = size;
    }
    let buf = this.free.pop();
    if (!buf) {
      buf = Buffer.allocUnsafeSlow(size);
      this.allocatedBytes += size;
    }
    this.inUseBytes += buf.length;
    return buf;
  }

  /**
   * Gives a buffer back once nothing refers to it any more (the socket has taken its bytes). It is kept for
   * reuse while buffers in use and kept stay within the bound (budget + 64 KiB per response): past the
   * budget, dropping every returned buffer made each read allocate a new one, and 500 clients of one
   * 256 MiB blob left ~700 MiB of dropped buffers waiting for the garbage collector (measured: RSS 861 MiB).
   */
  give(buf: Buffer): void {
    this.inUseBytes -= buf.length;
    const bound = this.budgetBytes + MIN_CHUNK * this.streams;
    if (buf.length === this.freeSize && this.inUseBytes + (this.free.length + 1) * buf.length <= bound) this.free.push(buf);
  }

  /** A buffer that was lost with a failed write (it may still sit in a dead socket's queue): stop counting it. */
  forget(buf: Buffer): void {
    this.inUseBytes -= buf.length;
  }
}

/** The process's one pool: every response of every route draws from it. */
export const serveBuffers = new ServeBuffers();

/**
 * Sends bytes into `sink` (without ending it) through buffers of `pool`: `fill` reads into the buffer it is given
 * and says how many bytes it put there, 0 at the end. One buffer is being filled while the one before is being
 * written; a buffer goes back to the pool only once the socket has taken its bytes (the write's callback).
 */
export async function pumpInto(sink: Writable, fill: (buf: Buffer) => Promise<number>, pool: ServeBuffers = serveBuffers): Promise<void> {
  const leave = pool.enter();
  const writes: Array<Promise<void>> = [];
  // A write whose socket is destroyed may never call back: the sink closing fails the writes still out.
  // (Not a race against one long-lived "closed" promise per write: every race left a reaction on it, and
  // 500 clients of a 256 MiB blob piled up millions of them, ~650 MiB of RSS.)
  const outstanding = new Set<() => void>();
  const onClose = () => {
    for (const fail of [...outstanding]) fail();
  };
  sink.once('close', onClose);
  try {
    for (;;) {
      // Over budget, a response waits for its last write before it takes another buffer (one buffer each).
      while (writes.length > (pool.overBudget() ? 0 : BUFFERS_PER_STREAM - 1)) await writes.shift();
      if (sink.destroyed) throw new Error('client went away');
      const buf = pool.take();
      let n: number;
      try {
        n = await fill(buf);
      } catch (err) {
        pool.give(buf);
        throw err;
      }
      if (n === 0) {
        pool.give(buf);
        break;
      }
      const written = new Promise<void>((resolve, reject) => {
        let done = false;
        const settle = (err?: Error | null) => {
          if (done) return;
          done = true;
          outstanding.delete(fail);
          if (err) {
            pool.forget(buf); // it may still sit in the dead socket's queue
            reject(err);
          } else {
            pool.give(buf);
            resolve();
          }
        };
        const fail = () => settle(new Error('client went away'));
        outstanding.add(fail);
        sink.write(n === buf.length ? buf : buf.subarray(0, n), settle);
      });
      written.catch(() => undefined); // awaited above or below
      writes.push(written);
    }
    await Promise.all(writes);
  } finally {
    sink.off('close', onClose);
    leave();
  }
}
