// The serve budget: however many responses send at once, the buffers they hold stay near one budget,
// and every buffer comes back once its socket took it.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_CHUNK, MIN_CHUNK, ServeBuffers, pumpInto } from '../../../src/io/serve-buffers.js';

const MiB = 1024 * 1024;

/** A sink that takes each write only when the test says so (a slow client). */
function slowSink() {
  const pending: Array<() => void> = [];
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: 0,
    write(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      pending.push(() => done());
    },
  });
  return { sink, bytes: () => bytes, release: () => pending.splice(0).forEach((f) => f()), waiting: () => pending.length };
}

/** A fill of `total` bytes of 7s. */
function source(total: number) {
  let left = total;
  return async (buf: Buffer) => {
    const n = Math.min(buf.length, left);
    buf.fill(7, 0, n);
    left -= n;
    return n;
  };
}

describe('ServeBuffers', () => {
  it('gives few responses 1 MiB chunks and many responses smaller ones, never below 64 KiB', () => {
    const pool = new ServeBuffers(64 * MiB);
    expect(pool.chunkSize()).toBe(MAX_CHUNK);
    const leaves = Array.from({ length: 32 }, () => pool.enter());
    expect(pool.chunkSize()).toBe(MAX_CHUNK); // 32 x 2 x 1 MiB = 64 MiB
    leaves.push(pool.enter());
    expect(pool.chunkSize()).toBe(512 * 1024);
    while (leaves.length < 5000) leaves.push(pool.enter());
    expect(pool.chunkSize()).toBe(MIN_CHUNK);
    for (const leave of leaves) leave();
    expect(pool.active).toBe(0);
    expect(pool.chunkSize()).toBe(MAX_CHUNK);
  });

  it('keeps 500 slow responses near the budget, one small buffer each past it, and gets every buffer back', async () => {
    const pool = new ServeBuffers(64 * MiB);
    const size = MiB / 2;
    const clients = Array.from({ length: 500 }, () => slowSink());
    const pumps = clients.map((c) => pumpInto(c.sink, source(size), pool));
    let peak = 0;
    // Let each slow client take one write at a time until all are done, watching what the pool holds.
    while (clients.some((c) => c.bytes() < size || c.waiting() > 0)) {
      await new Promise((r) => setImmediate(r));
      peak = Math.max(peak, pool.inUseBytes);
      for (const c of clients) c.release();
    }
    await Promise.all(pumps);
    for (const c of clients) expect(c.bytes()).toBe(size);
    expect(peak).toBeGreaterThan(0);
    // The budget, plus one 64 KiB buffer per response past it (a fixed 2 x 1 MiB each would be 1000 MiB).
    expect(peak).toBeLessThanOrEqual(64 * MiB + 500 * MIN_CHUNK);
    expect(pool.inUseBytes).toBe(0);
    expect(pool.active).toBe(0);
  });

  it('reuses buffers past the budget instead of allocating one per read', async () => {
    const pool = new ServeBuffers(16 * MiB);
    const size = MiB;
    // 400 clients that each take a write on the next turn: steady state, the pool stays past its budget.
    const sinks = Array.from({ length: 400 }, () => new Writable({ highWaterMark: 0, write: (_c, _e, done) => setImmediate(done) }));
    await Promise.all(sinks.map((sink) => pumpInto(sink, source(size), pool)));
    expect(pool.inUseBytes).toBe(0);
    // 400 x 1 MiB went through 64 KiB buffers: allocating one per read would be 400 MiB.
    expect(pool.allocatedBytes).toBeLessThanOrEqual(16 * MiB + 400 * MIN_CHUNK + 16 * MAX_CHUNK);
  });

  it('stops and lets go of the response when the client goes away', async () => {
    const pool = new ServeBuffers(8 * MiB);
    const c = slowSink();
    const pumped = pumpInto(c.sink, source(100 * MiB), pool);
    await new Promise((r) => setImmediate(r));
    c.sink.destroy();
    await expect(pumped).rejects.toThrow();
    expect(pool.active).toBe(0);
    expect(pool.inUseBytes).toBeLessThanOrEqual(2 * MAX_CHUNK); // at most what sat in the dead socket's queue
  });
});
