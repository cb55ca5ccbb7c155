// The pace of blob bytes this node sends to peers: a total rate for all of them and a rate for each one,
// both token buckets (token-bucket.ts). A sender takes tokens for a chunk before it sends the chunk, so
// a throttled transfer simply reads its file more slowly: nothing piles up in memory.
import { defaultBurst, realClock, TokenBucket, type Clock } from './token-bucket.js';

export interface UploadThrottleOptions {
  /** Bytes a second to all peers together; undefined: no limit. */
  totalRate?: number;
  /** Bytes a second to each peer; undefined: no limit. */
  perPeerRate?: number;
  clock?: Clock;
}

export class UploadThrottle {
  private readonly total?: TokenBucket;
  /** A bucket for each peer with a transfer under way; dropped when its last transfer ends. */
  private readonly peers = new Map<string, { bucket: TokenBucket; users: number }>();
  private readonly clock: Clock;

  constructor(private readonly opts: UploadThrottleOptions) {
    this.clock = opts.clock ?? realClock;
    if (opts.totalRate !== undefined) this.total = new TokenBucket(opts.totalRate, defaultBurst(opts.totalRate), this.clock);
  }

  get limited(): boolean {
    return this.total !== undefined || this.opts.perPeerRate !== undefined;
  }

  /** For one transfer to `peer`: `take(n)` before each n bytes sent, `done()` when it ends. */
  transfer(peer: string): { take(n: number): Promise<void>; done(): void } {
    const rate = this.opts.perPeerRate;
    let entry = rate === undefined ? undefined : this.peers.get(peer);
    if (rate !== undefined && !entry) this.peers.set(peer, (entry = { bucket: new TokenBucket(rate, defaultBurst(rate), this.clock), users: 0 }));
    if (entry) entry.users++;
    let ended = false;
    return {
      take: async (n) => {
        // Both debts are taken at once and the longer wait served: the two limits do not add up.
        const wait = Math.max(entry?.bucket.debit(n) ?? 0, this.total?.debit(n) ?? 0);
        if (wait > 0) await this.clock.sleep(wait);
      },
      done: () => {
        if (ended || !entry) return;
        ended = true;
        if (--entry.users === 0) this.peers.delete(peer);
      },
    };
  }
}
