// A token bucket: `rate` tokens (bytes) a second, up to `burst` saved while idle. A taker may overdraw
// it (a chunk larger than what is in the bucket) and then waits until the debt is paid off, so takers
// queue in the order they came and the long-run rate is exact whatever the chunk sizes. Pure: the
// clock and the wait are injected, so tests run on a fake clock.

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    /** Tokens per second. */
    readonly rate: number,
    /** Most tokens kept while nobody takes any. */
    readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    if (!(rate > 0) || !(burst > 0)) throw new Error('rate and burst must be above 0');
    this.tokens = burst;
    this.at = clock.now();
  }

  /** Takes `n` tokens, resolving once they are paid for (at once while the bucket holds enough). */
  async take(n: number): Promise<void> {
    const wait = this.debit(n);
    if (wait > 0) await this.clock.sleep(wait);
  }

  /** Takes `n` tokens now and returns how many ms until they are paid for (0: already). */
  debit(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
  }
}

/** A burst of a quarter second of the rate (at least 64 KiB): a pause in sending (a slow disk read, a busy CPU) shorter than that is made up for afterwards, so the long-run rate holds. */
export function defaultBurst(rate: number): number {
  return Math.max(64 * 1024, Math.round(rate / 4));
}
