// The upload pace on a fake clock: a sleep moves the clock on at once, so the waits the bucket asks for
// are read exactly, with no real time spent.
import { describe, expect, it } from 'vitest';
import { TokenBucket, type Clock } from '../../../src/p2p/token-bucket.js';
import { UploadThrottle } from '../../../src/p2p/upload-throttle.js';

class FakeClock implements Clock {
  t = 0;
  sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then paces takes at the rate', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1000, 100, clock);
    await bucket.take(100);
    expect(clock.t).toBe(0);
    await bucket.take(500);
    expect(clock.t).toBe(500);
    await bucket.take(250);
    expect(clock.t).toBe(750);
  });

  it('keeps the long-run rate exact whatever the chunk sizes, larger than the burst too', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1_000_000, 65_536, clock);
    const sizes = [1, 65_536, 300_000, 7, 1_048_576, 12_345, 500_000];
    let total = 0;
    for (let round = 0; round < 20; round++) {
      for (const n of sizes) {
        await bucket.take(n);
        total += n;
      }
    }
    // Everything beyond the first burst is paid for at 1 MB/s.
    expect(clock.t).toBeCloseTo(((total - 65_536) / 1_000_000) * 1000, 6);
  });

  it('saves no more than the burst while idle', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1000, 100, clock);
    await bucket.take(100);
    clock.t += 60_000; // a minute idle refills 60,000 tokens' worth, capped at 100
    await bucket.take(100);
    expect(clock.sleeps).toEqual([]);
    await bucket.take(100);
    expect(clock.sleeps).toEqual([100]);
  });

  it('queues concurrent takers in turn: each waits for the debt before it', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1000, 100, clock);
    expect(bucket.debit(100)).toBe(0);
    expect(bucket.debit(200)).toBe(200);
    expect(bucket.debit(300)).toBe(500);
  });

  it('refuses a rate or burst of zero', () => {
    expect(() => new TokenBucket(0, 10)).toThrow();
    expect(() => new TokenBucket(10, 0)).toThrow();
  });
});

describe('UploadThrottle', () => {
  it('is no limit when no rate is set', async () => {
    const clock = new FakeClock();
    const throttle = new UploadThrottle({ clock });
    expect(throttle.limited).toBe(false);
    const t = throttle.transfer('a');
    await t.take(10_000_000);
    expect(clock.t).toBe(0);
  });

  it('paces each peer on its own bucket and all of them on the total', async () => {
    const clock = new FakeClock();
    const throttle = new UploadThrottle({ perPeerRate: 1_000_000, totalRate: 10_000_000, clock });
    const a = throttle.transfer('a');
    const b = throttle.transfer('b');
    // Per peer: a's second megabyte waits for a's own bucket; b is not held up by a.
    const burst = 250_000; // a quarter second of 1 MB/s
    await a.take(burst);
    expect(clock.t).toBe(0);
    await a.take(1_000_000);
    expect(clock.t).toBeCloseTo(1000, 6);
    const before = clock.t;
    await b.take(burst);
    expect(clock.t).toBe(before);
    a.done();
    b.done();
  });

  it('holds the total rate across peers', async () => {
    const clock = new FakeClock();
    const throttle = new UploadThrottle({ totalRate: 1_000_000, clock });
    const peers = ['a', 'b', 'c', 'd'].map((p) => throttle.transfer(p));
    let sent = 0;
    for (let i = 0; i < 25; i++) {
      for (const p of peers) {
        await p.take(64 * 1024);
        sent += 64 * 1024;
      }
    }
    // The first quarter second of the rate is the burst; the rest goes at 1 MB/s for all four together.
    expect(clock.t).toBeCloseTo(((sent - 250_000) / 1_000_000) * 1000, 6);
  });
});
