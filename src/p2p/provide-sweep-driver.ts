// Runs a ProvideSweep: asks it what is due, walks a region when its walk is stale, announces the keys,
// and paces it all through a token bucket of requests, so provides never burst above the rate however
// many keys arrive at once. The network side is an executor: kad-dht in the daemon, the simulated DHT in
// src/sim/dht. Time comes from an injected clock, so it runs on a virtual one unchanged.
import type { KadKey } from './keyspace.js';
import type { ProvideSweep, SweepBatch } from './provide-sweep.js';
import { TokenBucket } from './token-bucket.js';

export interface SweepExecutor {
  /**
   * One walk for the region: toward its middle, or toward `key`, one of its keys (kad-dht walks only
   * toward keys it hashes itself). The peers closest to it, and the requests the walk sent.
   */
  walk?(region: number, key: string): Promise<{ peers: string[]; requests: number }>;
  /**
   * Announces the keys: to `peers` (the region's walk) when the sweep walked, else however the executor
   * can (a full provide per key). Returns the keys that failed and the requests sent, of which `prepaid`
   * were paid for through SweepDriver.pay before they went (an extra walk).
   */
  announce(keys: string[], peers: string[] | undefined): Promise<{ failed: string[]; requests: number; prepaid?: number }>;
}

export interface SweepClock {
  now(): number;
  after(ms: number, fn: () => void): { cancel(): void };
}

export interface SweepDriverOptions {
  /** Requests a second this host spends on provides, on average and at most over any second. */
  maxRequestsPerSecond: number;
  /** Requests one key's announcement is expected to cost, charged before it is sent (the rest after). */
  requestsPerKey: number;
  /** Requests a region walk is expected to cost. */
  walkRequests: number;
  onError?: (err: Error) => void;
}

export class SweepDriver {
  private readonly bucket: TokenBucket;
  private readonly waiting = new Map<string, Array<() => void>>();
  private wake: (() => void) | undefined;
  private running = false;
  /** Requests sent so far (walks and announcements). */
  requests = 0;

  constructor(
    private readonly sweep: ProvideSweep,
    private readonly exec: SweepExecutor,
    private readonly clock: SweepClock,
    private readonly o: SweepDriverOptions,
  ) {
    const sleep = (ms: number) => new Promise<void>((resolve) => clock.after(ms, resolve));
    // Half a second's worth saved while idle, or one key's announcement if more: after a quiet spell a
    // key goes at once, and no second sees more than the rate plus that.
    const burst = Math.max(o.maxRequestsPerSecond / 2, o.requestsPerKey, 1);
    this.bucket = new TokenBucket(o.maxRequestsPerSecond, burst, { now: () => clock.now(), sleep });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.wake?.();
    for (const key of [...this.waiting.keys()]) this.settle(key);
  }

  /** Schedules the key; resolves once its first announcement was tried (or it was removed, or the driver stopped). */
  add(key: string, kadKey: KadKey, fresh = true): Promise<void> {
    const known = this.sweep.has(key);
    this.sweep.add(key, kadKey, this.clock.now(), fresh);
    this.wake?.(); // its turn may come before the one the loop sleeps for
    if (known || !fresh) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiting.get(key) ?? [];
      list.push(resolve);
      this.waiting.set(key, list);
    });
  }

  /** Resolves once the key's first announcement was tried: at once when none is waiting. */
  announced(key: string): Promise<void> {
    if (!this.waiting.has(key)) return Promise.resolve();
    return new Promise((resolve) => this.waiting.get(key)!.push(resolve));
  }

  remove(key: string): void {
    this.sweep.remove(key);
    this.settle(key);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const batch = this.sweep.next(this.clock.now());
      if (!batch) await this.idle(this.sweep.nextDue());
      else await this.run(batch).catch((err: Error) => this.o.onError?.(err));
    }
  }

  private async run(batch: SweepBatch): Promise<void> {
    let peers: string[] | undefined;
    if (this.exec.walk) {
      peers = this.sweep.walkOf(batch.region, this.clock.now());
      if (!peers) {
        await this.bucket.take(this.o.walkRequests);
        const walked = await this.exec.walk(batch.region, batch.keys[0]!);
        this.charge(walked.requests, this.o.walkRequests);
        this.sweep.walked(batch.region, walked.peers, this.clock.now());
        peers = walked.peers;
      }
    }
    const expected = batch.keys.length * this.o.requestsPerKey;
    await this.bucket.take(expected);
    const keys = batch.keys.filter((k) => this.sweep.has(k)); // withdrawn while waiting for tokens
    let failed: string[] = keys;
    try {
      const result = await this.exec.announce(keys, peers);
      this.requests += result.prepaid ?? 0;
      this.charge(result.requests - (result.prepaid ?? 0), expected);
      failed = result.failed;
    } finally {
      this.sweep.failed(failed, this.clock.now());
      for (const key of batch.keys) this.settle(key);
    }
  }

  /** Waits until `n` more requests are paid for: an executor's extra work (a walk) goes at the rate too. */
  pay(n: number): Promise<void> {
    return this.bucket.take(n);
  }

  /** Counts the requests sent; what went beyond the estimate is owed to the bucket (the next take waits). */
  private charge(actual: number, expected: number): void {
    this.requests += actual;
    if (actual > expected) this.bucket.debit(actual - expected);
  }

  private idle(due: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = due === undefined ? undefined : this.clock.after(due - this.clock.now(), () => done());
      const done = () => {
        timer?.cancel();
        this.wake = undefined;
        resolve();
      };
      this.wake = done;
    });
  }

  private settle(key: string): void {
    const list = this.waiting.get(key);
    this.waiting.delete(key);
    for (const resolve of list ?? []) resolve();
  }
}
