// What keeps a flood of bogus credentials from costing the node its CPU (issue 13 item 6). Each wrong
// Basic password costs a bcrypt check (~90 ms of CPU at cost 10 in bcryptjs); 32 clients sending random
// ones took a legitimate pull from 5 ms to 10 s. So:
//   - an address that fails too often is answered 429 with no bcrypt work (FailureLimiter);
//   - bcrypt runs on one worker thread, never on the event loop, with a bounded queue (BcryptPool):
//     anonymous reads and remembered credentials never wait behind it;
//   - results are remembered briefly (RecentKeys, in credentials.ts) so a repeated password is no work.
import { createRequire } from 'node:module';
import { isIPv6 } from 'node:net';
import { Worker } from 'node:worker_threads';

/** The address a limit applies to: an IPv4 address, or an IPv6 /64 (one host usually has the whole /64). */
export function clientKey(ip: string): string {
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!isIPv6(ip)) return ip;
  const [head, tail] = ip.toLowerCase().split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export interface FailureLimiterOptions {
  /** Failures an address may make per minute, in a burst or spread out; 0: no limit. */
  perMinute: number;
  /** Addresses tracked at once; past it the oldest is forgotten. */
  maxAddresses?: number;
  now?: () => number;
}

/**
 * A token bucket of failed authentications per client address: `perMinute` of them at once, refilled at
 * `perMinute` a minute. A check that may fail takes a token first (so concurrent attempts cannot pass
 * the limit together) and gives it back if the credentials were right.
 */
export class FailureLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly max: number;
  private readonly now: () => number;
  /** Addresses that were refused at least once since they were last full: each is logged once. */
  private readonly announced = new Set<string>();

  constructor(private readonly o: FailureLimiterOptions) {
    this.max = o.maxAddresses ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.o.perMinute > 0;
  }

  /**
   * Takes one attempt for `client`: 0 if it may go on, else the seconds until it may try again.
   * `firstRefusal` is set the first time an address is refused since it last had attempts left.
   */
  take(client: string): { retryAfter: number; firstRefusal: boolean } {
    if (!this.enabled) return { retryAfter: 0, firstRefusal: false };
    const key = clientKey(client);
    const b = this.bucket(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.announced.delete(key);
      return { retryAfter: 0, firstRefusal: false };
    }
    const first = !this.announced.has(key);
    if (first) {
      if (this.announced.size >= this.max) this.announced.clear();
      this.announced.add(key);
    }
    return { retryAfter: Math.max(1, Math.ceil(((1 - b.tokens) * 60) / this.o.perMinute)), firstRefusal: first };
  }

  /**
   * Whether the address has no failures outstanding (never failed, or its bucket has refilled): its
   * password checks go before those of addresses that keep failing.
   */
  clean(client: string): boolean {
    if (!this.enabled) return true;
    const b = this.buckets.get(clientKey(client));
    return b === undefined || b.tokens + ((this.now() - b.at) / 60_000) * this.o.perMinute >= this.o.perMinute;
  }

  /** Gives back the attempt `take` took: the credentials were right. */
  refund(client: string): void {
    if (!this.enabled) return;
    const b = this.bucket(clientKey(client));
    b.tokens = Math.min(this.o.perMinute, b.tokens + 1);
  }

  private bucket(key: string): { tokens: number; at: number } {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.o.perMinute, b.tokens + ((now - b.at) / 60_000) * this.o.perMinute);
      b.at = now;
      return b;
    }
    if (this.buckets.size >= this.max) this.prune(now);
    b = { tokens: this.o.perMinute, at: now };
    this.buckets.set(key, b);
    return b;
  }

  /** Drops buckets that have refilled (they say nothing), then the oldest if that is not enough. */
  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 60_000) * this.o.perMinute >= this.o.perMinute) this.buckets.delete(key);
    }
    while (this.buckets.size >= this.max) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/** Keys (hashes, never secrets) remembered for a while, at most `max` of them, the oldest dropped first. */
export class RecentKeys {
  private readonly at = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly max: number,
    private readonly now: () => number = Date.now,
  ) {}

  has(key: string): boolean {
    const t = this.at.get(key);
    if (t === undefined) return false;
    if (this.now() - t < this.ttlMs) return true;
    this.at.delete(key);
    return false;
  }

  add(key: string): void {
    this.at.delete(key); // re-inserted last: the oldest stays first
    while (this.at.size >= this.max) this.at.delete(this.at.keys().next().value!);
    this.at.set(key, this.now());
  }
}

/** bcryptjs's path, for the worker (an eval'd worker resolves nothing relative to this module). */
const BCRYPTJS = createRequire(import.meta.url).resolve('bcryptjs');
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const bcrypt = require(${JSON.stringify(BCRYPTJS)});
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch {}
  parentPort.postMessage({ id, ok });
});`;

interface Job {
  id: number;
  password: string;
  hash: string;
  resolve(ok: boolean): void;
  reject(err: Error): void;
}

/**
 * bcrypt compares, one at a time, on a worker thread: the event loop never runs bcrypt, so requests that
 * need none are never slowed by those that do, and at most one core goes to it. Compares for addresses
 * with a clean record go first: in a flood from many addresses, each of which keeps failing, a new
 * client's first login waits for one compare, not for the flood's. At most `maxWaiting` compares wait in
 * each line; past that `compare` answers undefined (too busy) at once. The line depends only on the
 * caller's own address, never on the user named, so it tells nothing about which users exist.
 */
export class BcryptPool {
  private worker: Worker | undefined;
  private readonly urgent: Job[] = [];
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  private nextId = 1;

  constructor(private readonly maxWaiting = 16) {}

  /** Whether the password matches the hash; undefined if too many compares are waiting already in its line. */
  compare(password: string, hash: string, urgent = false): Promise<boolean | undefined> {
    const line = urgent ? this.urgent : this.queue;
    if (line.length >= this.maxWaiting) return Promise.resolve(undefined);
    return new Promise<boolean>((resolve, reject) => {
      line.push({ id: this.nextId++, password, hash, resolve, reject });
      this.pump();
    });
  }

  /** Stops the worker (tests; a node's process ends with it anyway). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }

  private pump(): void {
    if (this.running) return;
    const job = this.urgent.shift() ?? this.queue.shift();
    if (!job) return;
    this.running = job;
    this.ensureWorker().postMessage({ id: job.id, password: job.password, hash: job.hash });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_CODE, { eval: true });
    w.unref(); // never what keeps a process alive
    w.on('message', (m: { id: number; ok: boolean }) => {
      const job = this.running;
      if (!job || job.id !== m.id) return;
      this.running = undefined;
      job.resolve(m.ok === true);
      this.pump();
    });
    const fail = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const job = this.running;
      this.running = undefined;
      job?.reject(err);
      this.pump(); // the next compare gets a new worker
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`bcrypt worker exited with code ${code}`)));
    this.worker = w;
    return w;
  }
}
