import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { landingSink } from '../../../src/store/landing-sink.js';

/** Chunks of assorted sizes (some larger than a slab, some tiny), as sockets and noise frames deliver them. */
function chunksOf(total: number, seed = 1): Buffer[] {
  const data = randomBytes(total);
  const out: Buffer[] = [];
  let x = seed;
  for (let pos = 0; pos < total; ) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = Math.min(total - pos, 1 + (x % 70_000));
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

const sha = (bufs: Buffer[]) => bufs.reduce((h, b) => h.update(b), createHash('sha256')).digest('hex');

/** A file stand-in: records every write's bytes (copied, as the kernel copies them) and lands each after `delayMs`. */
function recorder(delayMs = 0, failOnWrite?: number) {
  const landedBytes: Buffer[] = [];
  const written: Buffer[] = [];
  const slabsSeen = new Set<ArrayBufferLike>();
  let writes = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const write = async (regions: Buffer[]) => {
    writes++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      for (const r of regions) slabsSeen.add(r.buffer);
      const copy = Buffer.concat(regions);
      await new Promise((r) => setTimeout(r, delayMs));
      if (failOnWrite === writes) throw new Error('EIO: disk gone');
      written.push(copy);
    } finally {
      inFlight--;
    }
  };
  const landed = (regions: Buffer[]) => landedBytes.push(Buffer.concat(regions));
  return { write, landed, written, landedBytes, slabsSeen, stats: () => ({ writes, maxInFlight }) };
}

describe('landingSink', () => {
  it('lands every byte once and in order, one write at a time, across slab boundaries', async () => {
    const chunks = chunksOf(3_000_000);
    const r = recorder(1);
    const { sink } = landingSink(r.write, r.landed, { slabBytes: 64 * 1024, maxSlabs: 4 });
    await pipeline(Readable.from(chunks), sink);
    expect(sha(r.written)).toBe(sha(chunks));
    expect(sha(r.landedBytes)).toBe(sha(chunks));
    expect(r.stats().maxInFlight).toBe(1);
  });

  it('reuses its slabs: never more than maxSlabs buffers, however many bytes pass', async () => {
    const chunks = chunksOf(2_000_000, 7);
    const r = recorder(2);
    const { sink } = landingSink(r.write, r.landed, { slabBytes: 32 * 1024, maxSlabs: 3 });
    await pipeline(Readable.from(chunks), sink);
    expect(sha(r.written)).toBe(sha(chunks));
    expect(r.slabsSeen.size).toBeLessThanOrEqual(3);
  });

  it('holds the source back while every slab waits on the disk (backpressure)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const written: Buffer[] = [];
    const { sink } = landingSink(
      async (regions) => {
        await gate;
        written.push(Buffer.concat(regions));
      },
      () => undefined,
      { slabBytes: 1024, maxSlabs: 2 },
    );
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 100; i++) {
          pulled += 1024;
          yield Buffer.alloc(1024, i);
        }
      })(),
    );
    const done = pipeline(source, sink);
    await new Promise((r) => setTimeout(r, 50));
    // Two slabs, the Writable's own one-slab buffer and the source's read-ahead (16 objects): far below 100 KiB.
    expect(pulled).toBeLessThan(24 * 1024);
    release();
    await done;
    expect(Buffer.concat(written).length).toBe(100 * 1024);
  });

  it('a write that fails ends the pipeline with its error; what failed is never reported landed', async () => {
    const chunks = chunksOf(1_000_000, 3);
    const r = recorder(1, 3);
    const landing = landingSink(r.write, r.landed, { slabBytes: 16 * 1024, maxSlabs: 2 });
    await expect(pipeline(Readable.from(chunks), landing.sink)).rejects.toThrow('EIO: disk gone');
    await landing.settled();
    expect(r.landedBytes.length).toBe(2);
    expect(Buffer.concat(r.landedBytes)).toEqual(Buffer.concat(r.written));
  });

  it('a source that fails leaves settled() waiting for the write under way, and the bytes landed are a prefix', async () => {
    const data = randomBytes(200_000);
    const r = recorder(20);
    const landing = landingSink(r.write, r.landed, { slabBytes: 64 * 1024, maxSlabs: 4 });
    const source = Readable.from(
      (async function* () {
        yield data.subarray(0, 100_000);
        await new Promise((res) => setTimeout(res, 5));
        throw new Error('peer went away');
      })(),
    );
    await expect(pipeline(source, landing.sink)).rejects.toThrow('peer went away');
    await landing.settled();
    const landed = Buffer.concat(r.landedBytes);
    expect(landed.length).toBeGreaterThan(0);
    expect(landed).toEqual(data.subarray(0, landed.length));
  });
});
