// Moving a blob's bytes from the nodes that hold it: from a sole holder in one stream (its bytes go to
// the writer as they arrive), from several in ranges at once, in order, with only bounded buffers held
// (parallel × rangeBytes, or the stream's own window). Which range goes to whom, and when one is hedged,
// is RangePlan's to say (range-plan.ts); this opens the streams, keeps time and collects the bytes.
import { Readable } from 'node:stream';
import { failureOf, type ByteRange } from '../../oci/index.js';
import { PeerFetchError, type PeerBlob, type Provider } from '../../p2p/index.js';
import type { FetchedBody } from '../download/index.js';
import { ImpossibleClaimError, type ClaimJudge } from './claims.js';
import type { FetcherSettings, PeerNetwork, Wanted } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';
import { HolderLoad, RangePlan } from './range-plan.js';

/** How long to wait before asking a provider that answered busy again (if no slot frees sooner). */
const BUSY_RETRY_MS = 100;

/** A range's bytes, as they arrived, and the blob's size its holder gave. */
interface RangeBytes {
  data: Buffer[];
  size: number;
}

/** Downloads from holders, one per fetcher: the holders' load is counted across all of its downloads. */
export class RangeDownloader {
  readonly load = new HolderLoad();
  private capacityWaiters: Array<() => void> = [];

  constructor(
    readonly net: PeerNetwork,
    readonly scores: PeerScores,
    readonly judge: ClaimJudge,
    readonly o: FetcherSettings,
  ) {}

  /**
   * The blob from the providers, from byte `start` on (0: the whole blob; more: the rest of a transfer
   * that failed at that byte). One provider: one stream for all of it (see whole()). Several: ranges
   * spread over them, hedged when one lags.
   */
  async download(want: Wanted, providers: Provider[], start: number): Promise<FetchedBody> {
    if (providers.length === 1) {
      const body = await this.whole(want, providers[0]!, start);
      if (body) return body;
    }
    return new RangedTransfer(this, want, providers, start).open();
  }

  /** Wakes the ranges waiting for a holder's slot. */
  released(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when some provider's load drops (or after a short pause, so a busy answer is retried). */
  freed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, BUSY_RETRY_MS);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
      this.capacityWaiters.push(done);
    });
  }

  /**
   * One stream from one provider for the whole blob (or all of it from `start`): the cheapest way to move
   * it (each stream more on a connection costs both ends CPU per byte, and ranges cost a request and a
   * response each), and its bytes go to the writer as they arrive. A stall is the blob protocol's idle
   * timeout; a failure mid-way fails the download, whose caller resumes from where it broke or goes to the
   * next source. Undefined when the provider answered busy (the ranged path waits for its slots).
   */
  private async whole(want: Wanted, peer: Provider, start: number): Promise<FetchedBody | undefined> {
    const { digest } = want;
    const load = this.load;
    load.take(peer.id);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      load.give(peer.id);
      this.released();
    };
    const started = Date.now();
    let blob: PeerBlob;
    try {
      blob = await this.net.fetch(peer, digest, start > 0 ? { start, end: Number.MAX_SAFE_INTEGER } : undefined);
    } catch (err) {
      release();
      if (failureOf(err) === 'busy') return undefined;
      blame(this.scores, peer.id, err);
      throw new Error(`no provider could send ${digest}: ${(err as Error).message}`);
    }
    try {
      this.judge.judge(digest, peer.id, blob.size, want.expected);
      if (blob.start !== start) throw new Error(`peer ${peer.id} answered from byte ${blob.start}, not ${start}`);
    } catch (err) {
      blob.body.destroy();
      release();
      throw err;
    }
    want.contributors.add(peer.id);
    let done = false;
    blob.body.once('end', () => {
      done = true;
      release();
      // A clean end short of the announced length is no complete answer (the download fails on it too).
      if (blob.received && blob.received() !== blob.length) return this.scores.failure(peer.id);
      this.scores.success(peer.id, blob.length, Date.now() - started);
      this.o.onRangeFetched?.(peer.id, blob.length);
    });
    blob.body.once('close', () => {
      if (done) return;
      release();
      // A body its consumer dropped is no failure of the peer's; one that errored is.
      if (blob.body.errored) this.scores.failure(peer.id);
    });
    return { size: blob.size, start, stream: blob.body };
  }
}

/**
 * One blob in ranges from several holders: the first range alone (it tells the size), then the rest with
 * up to `parallel` ahead of the one being handed on. A range whose holder fails moves to another; a range
 * that lags is hedged on an idle holder and the first copy wins. Abandoning the stream stops them all.
 */
class RangedTransfer {
  private readonly run = new AbortController();
  private readonly plan: RangePlan;

  constructor(
    private readonly io: RangeDownloader,
    private readonly want: Wanted,
    holders: Provider[],
    private readonly start: number,
  ) {
    this.plan = new RangePlan(holders, start, io.o, io.load, (ps) => io.scores.rank(ps));
  }

  async open(): Promise<FetchedBody> {
    const { plan, start } = this;
    let head: RangeBytes;
    try {
      head = await this.fetchRange(plan.head());
    } catch (err) {
      throw new Error(`no provider could send ${this.want.digest}: ${(err as Error).message}`);
    }
    plan.sized(head.size);
    if (plan.count <= 1) return { size: head.size, start, stream: Readable.from(head.data, { objectMode: false }) };
    // One range of read-ahead: the parallel window, not Readable.from's default of 16 items, bounds how
    // many ranges are held in memory.
    return { size: head.size, start, stream: Readable.from(this.assemble(head.size, head.data), { highWaterMark: 1 }) };
  }

  private async *assemble(size: number, head: Buffer[]): AsyncGenerator<Buffer> {
    const plan = this.plan;
    const chunks: Array<Promise<Buffer[]> | undefined> = [Promise.resolve(head)];
    try {
      for (let i = 0; i < plan.count; i++) {
        for (let next = plan.nextDue(i); next !== undefined; next = plan.nextDue(i)) {
          // Every later range's holder must agree with the size the first one gave.
          const p = this.fetchRange(next, size).then((r) => r.data);
          p.catch(() => undefined);
          chunks[next] = p;
        }
        const data = await chunks[i]!;
        chunks[i] = undefined;
        yield* data;
      }
    } finally {
      this.run.abort();
    }
  }

  /**
   * One range, from the holder the plan picks; moved on failure, hedged when it lags, given up when the
   * download is abandoned. `agreed`: the size the blob's first range came with, for the later ranges.
   */
  private async fetchRange(index: number, agreed?: number): Promise<RangeBytes> {
    const { plan, run } = this;
    const range = plan.range(index);
    let lastError: unknown = new Error(`no provider left for ${this.want.digest} bytes ${range.start}-${range.end}`);
    for (;;) {
      if (run.signal.aborted) throw lastError;
      const peer = plan.pick(index);
      if (!peer) {
        // Untried providers that are all at their limit: wait for a slot rather than overrun them.
        if (!plan.worthWaiting(index)) throw lastError;
        await this.io.freed(run.signal);
        continue;
      }
      const primary = new AbortController();
      const first = this.attempt(index, range, peer, primary.signal, agreed);
      try {
        return await raceWithHedge(first, plan.lagsAfterMs(), () => {
          const spare = plan.hedge(index);
          if (!spare) return undefined;
          const hedge = new AbortController();
          return { promise: this.attempt(index, range, spare, hedge.signal, agreed), abort: () => hedge.abort() };
        }, () => primary.abort());
      } catch (err) {
        lastError = err;
      }
    }
  }

  /** The range from one holder, its bytes collected; its outcome told to the plan and the scores. */
  private async attempt(index: number, range: ByteRange, peer: Provider, own: AbortSignal, agreed: number | undefined): Promise<RangeBytes> {
    const { io, plan } = this;
    const { digest } = this.want;
    const signal = AbortSignal.any([own, this.run.signal]);
    plan.asked(index, peer);
    const started = Date.now();
    let ms: number | undefined;
    let busy = false;
    try {
      const blob = await io.net.fetch(peer, digest, range, signal);
      try {
        io.judge.judge(digest, peer.id, blob.size, this.want.expected);
        // Without a descriptor, which of the two lies is unknown: this range just moves to another provider.
        if (agreed !== undefined && blob.size !== agreed) throw new Error(`peer ${peer.id} claimed ${blob.size} bytes, another provider ${agreed}`);
      } catch (err) {
        blob.body.destroy();
        throw err;
      }
      const length = Math.max(0, Math.min(range.end, blob.size - 1) - range.start + 1);
      if (blob.start !== range.start || blob.length !== length) throw new Error('peer answered another range');
      const data = await collect(blob.body, length);
      ms = Date.now() - started;
      io.scores.success(peer.id, length, ms);
      io.o.onRangeFetched?.(peer.id, length);
      this.want.contributors.add(peer.id);
      return { data, size: blob.size };
    } catch (err) {
      ms = undefined;
      if (err instanceof ImpossibleClaimError) {
        // penalized already (judge)
      } else if (failureOf(err) === 'busy') {
        // Not a failure: the provider is serving others. It may be asked again once a slot frees.
        busy = true;
      } else if (!signal.aborted) blame(io.scores, peer.id, err);
      throw err;
    } finally {
      if (ms === undefined) plan.failed(index, peer, busy);
      else plan.arrived(index, peer, ms);
      io.released();
    }
  }
}

/** A failed request counts against the peer; one that could not even reach it leaves it out for a while. */
function blame(scores: PeerScores, id: string, err: unknown): void {
  if (err instanceof PeerFetchError && err.status === 'unreachable') scores.unreachable(id);
  else scores.failure(id);
}

/**
 * Waits for `first`; if it is still running after `afterMs`, starts a hedge and takes whichever
 * succeeds first, aborting the other. Rejects only when every started attempt failed.
 */
async function raceWithHedge<T>(
  first: Promise<T>,
  afterMs: number,
  startHedge: () => { promise: Promise<T>; abort: () => void } | undefined,
  abortFirst: () => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hedgeReady = new Promise<{ promise: Promise<T>; abort: () => void } | undefined>((resolve) => {
    timer = setTimeout(() => resolve(startHedge()), afterMs);
  });
  try {
    const winner = await Promise.race([first.then((b) => ({ b })), hedgeReady.then((h) => ({ h }))]);
    if ('b' in winner) return winner.b;
    const hedge = winner.h;
    if (!hedge) return await first;
    try {
      const result = await Promise.any([first, hedge.promise]);
      abortFirst();
      hedge.abort();
      return result;
    } catch (err) {
      throw (err as AggregateError).errors?.[0] ?? err;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A range's bytes as the chunks they arrived in: they are fresh buffers of this stream alone, so they are
 * kept as they are (copying 8 MiB ranges into one buffer cost a fifth of a fetching node's CPU). Read with
 * 'data' events, not an async iterator: the iterator's read() joins everything the body holds into one
 * new buffer each time (Readable's fromList), which cost a fetching node 17% of its CPU with 8 MiB ranges.
 */
function collect(body: Readable, length: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let at = 0;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) {
        body.destroy();
        reject(err);
      } else resolve(chunks);
    };
    body.on('data', (c: Buffer) => {
      if (at + c.length > length) return settle(new Error('peer sent more bytes than it announced'));
      chunks.push(c);
      at += c.length;
    });
    body.once('end', () => settle(at === length ? undefined : new Error(`peer sent ${at} of ${length} bytes`)));
    body.once('error', (err) => settle(err));
    body.once('close', () => settle(new Error(`peer sent ${at} of ${length} bytes`)));
  });
}
