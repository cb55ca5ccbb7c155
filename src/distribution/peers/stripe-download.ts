// A blob taken as k interleaved stripes, each from its own parent (a rollout's stripe trees): chunk i
// comes from the parent of stripe i mod k. Each parent serves the chunk from its own download as the bytes
// land (the relay that chains use), so a stripe flows down its tree while every node is still receiving.
// The chunks are handed on in order, a few per stripe ahead, so the download lands like any other: one
// running hash, the digest checked over the whole blob before it is kept or served whole, and memory bound
// by the window (k × CHUNKS_AHEAD chunks), never the blob.
//
// A parent that fails a chunk (gone, refused, stalled on the chunk being handed on) is passed over for
// that chunk: the route's fallback (the rollout's origin) is asked. The keeper is told (route.suspect) and
// may repoint the stripe. With no parent left the download fails part way, and
// the fetcher goes on from the byte written by its usual path (the chain, holders, the seed).
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { PeerFetchError, type PeerBlob } from '../../p2p/index.js';
import type { ByteRange } from '../../oci/index.js';
import type { FetchedBody } from '../download/index.js';
import type { ClaimJudge } from './claims.js';
import type { FetcherSettings, PeerNetwork, StripeRoute, Wanted } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';

/** Chunks asked ahead of the one handed on, per stripe. */
const CHUNKS_AHEAD = 2;
/** The least time between two questions to a parent that answered 'pending'. */
const PENDING_PAUSE_MS = 500;

interface Chunk {
  data: Buffer[];
  size: number;
}

/** What one striped download needs: the fetcher's network, scores, claim judge and settings. */
export interface StripeDeps {
  net: PeerNetwork;
  scores: PeerScores;
  judge: ClaimJudge;
  o: FetcherSettings;
}

/** The chunks of stripes in order: which chunk a byte is in and which stripe a chunk is. Pure. */
export class StripeLayout {
  constructor(
    readonly k: number,
    readonly chunkBytes: number,
  ) {
    if (!Number.isInteger(k) || k < 1 || !Number.isInteger(chunkBytes) || chunkBytes < 1) throw new Error('bad stripe layout');
  }

  chunkOf(byte: number): number {
    return Math.floor(byte / this.chunkBytes);
  }

  stripeOf(chunk: number): number {
    return chunk % this.k;
  }

  /** Chunk `index`'s bytes from `from` on (the server cuts the end at the blob's size). */
  range(index: number, from: number): ByteRange {
    return { start: Math.max(from, index * this.chunkBytes), end: (index + 1) * this.chunkBytes - 1 };
  }

  /** Chunks in a blob of `size` bytes. */
  count(size: number): number {
    return Math.ceil(size / this.chunkBytes);
  }

  /** Whom to ask for a chunk of stripe s: its parent, then the fallback (see StripeRoute.fallback). */
  candidates(parent: string, fallback: string | undefined): string[] {
    return fallback === undefined || fallback === parent ? [parent] : [parent, fallback];
  }
}

/** The blob from byte `from` on, by stripes: see the top of this file. */
export async function stripedDownload(deps: StripeDeps, want: Wanted, route: StripeRoute, from: number): Promise<FetchedBody> {
  return new StripedTransfer(deps, want, route, from).open();
}

class StripedTransfer {
  private readonly run = new AbortController();
  private readonly layout: StripeLayout;

  constructor(
    private readonly d: StripeDeps,
    private readonly want: Wanted,
    private readonly route: StripeRoute,
    private readonly from: number,
  ) {
    this.layout = new StripeLayout(route.k, route.chunkBytes);
  }

  async open(): Promise<FetchedBody> {
    const first = this.layout.chunkOf(this.from);
    const head = await this.chunk(first, true);
    const count = this.layout.count(head.size);
    const stream = first + 1 >= count ? Readable.from(head.data) : Readable.from(this.assemble(first, count, head.data), { highWaterMark: 1 });
    return { size: head.size, start: this.from, stream };
  }

  /** The chunks in order, CHUNKS_AHEAD per stripe asked ahead; abandoning the stream stops them all. */
  private async *assemble(first: number, count: number, head: Buffer[]): AsyncGenerator<Buffer> {
    const ahead = new Map<number, Promise<Chunk>>();
    let next = first + 1;
    const window = this.layout.k * CHUNKS_AHEAD;
    try {
      yield* head;
      for (let i = first + 1; i < count; i++) {
        for (; next < count && next <= i + window; next++) {
          const p = this.chunk(next, false);
          p.catch(() => undefined); // awaited in turn, or dropped with the stream
          ahead.set(next, p);
        }
        const current = ahead.get(i)!;
        ahead.delete(i);
        this.urgent = i;
        this.urgentAt = Date.now();
        yield* (await current).data;
      }
    } finally {
      this.run.abort(new Error('striped download ended'));
    }
  }

  /** The chunk handed on next: only its parent's silence counts as a stall (those ahead may wait on theirs). */
  private urgent = -1;
  private urgentAt = 0;

  /** Chunk `index`, from its stripe's parent, else another stripe's; throws when none could send it. */
  private async chunk(index: number, first: boolean): Promise<Chunk> {
    const stripe = this.layout.stripeOf(index);
    const range = this.layout.range(index, this.from);
    const reasons: string[] = [];
    for (const parent of this.layout.candidates(this.route.parent(stripe), this.route.fallback)) {
      if (this.run.signal.aborted) throw this.run.signal.reason as Error;
      try {
        const got = await this.fromParent(parent, index, range, first);
        this.route.got?.(stripe, got.data.reduce((n, b) => n + b.length, 0));
        return got;
      } catch (err) {
        if (this.run.signal.aborted) throw err;
        reasons.push(`${parent}: ${(err as Error).message}`);
        this.route.suspect?.(stripe, parent);
        this.d.o.log?.warn({ digest: this.want.digest, stripe, chunk: index, parent, reason: (err as Error).message }, 'a stripe parent could not send a chunk: asking another');
      }
    }
    throw new Error(`no stripe parent could send chunk ${index} of ${this.want.digest}: ${reasons.join('; ')}`);
  }

  /** The chunk from one parent, asked again while it answers 'pending' (its own download not begun) or busy. */
  private async fromParent(parent: string, index: number, range: ByteRange, first: boolean): Promise<Chunk> {
    const until = Date.now() + this.d.o.followPendingMs;
    for (;;) {
      const t = Date.now();
      try {
        return await this.once(parent, index, range, first);
      } catch (err) {
        if (!waitable(err) || Date.now() >= until) throw err;
      }
      await sleep(Math.max(0, PENDING_PAUSE_MS - (Date.now() - t)), undefined, { signal: this.run.signal });
    }
  }

  private async once(parent: string, index: number, range: ByteRange, first: boolean): Promise<Chunk> {
    const { net, judge, scores, o } = this.d;
    const ask = new AbortController();
    const onRun = () => ask.abort(this.run.signal.reason);
    this.run.signal.addEventListener('abort', onRun, { once: true });
    // The answer has followAnswerMs; the bytes have stripeStallMs once this chunk is the one handed on.
    const answer = setTimeout(() => ask.abort(new Error(`no answer in ${o.followAnswerMs} ms`)), o.followAnswerMs);
    const started = Date.now();
    let blob: PeerBlob | undefined;
    try {
      blob = await net.fetch({ id: parent, addrs: [] }, this.want.digest, range, ask.signal);
      clearTimeout(answer);
      judge.judge(this.want.digest, parent, blob.size, this.want.expected);
      this.want.contributors.add(parent);
      const data = await this.collect(blob, index, first, ask);
      scores.success(parent, blob.length, Date.now() - started);
      o.onRangeFetched?.(parent, blob.length);
      return { data, size: blob.size };
    } catch (err) {
      blob?.body.destroy();
      if (!this.run.signal.aborted && !waitable(err)) scores.failure(parent);
      throw ask.signal.aborted && !this.run.signal.aborted ? (ask.signal.reason as Error) : err;
    } finally {
      clearTimeout(answer);
      this.run.signal.removeEventListener('abort', onRun);
    }
  }

  /** The chunk's bytes as they arrived; a stall while it is the chunk handed on aborts the ask. */
  private collect(blob: PeerBlob, index: number, first: boolean, ask: AbortController): Promise<Buffer[]> {
    const stallMs = this.d.o.stripeStallMs;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let lastByte = Date.now();
      const watch = setInterval(() => {
        if ((first || this.urgent === index) && Date.now() - Math.max(lastByte, first ? 0 : this.urgentAt) > stallMs) ask.abort(new Error(`stalled: no byte for ${stallMs} ms`));
      }, Math.max(50, stallMs / 4));
      const onAbort = () => blob.body.destroy(ask.signal.reason as Error);
      ask.signal.addEventListener('abort', onAbort, { once: true });
      const settle = (err?: Error) => {
        clearInterval(watch);
        ask.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(chunks);
      };
      blob.body.on('data', (c: Buffer) => {
        chunks.push(c);
        lastByte = Date.now();
      });
      blob.body.once('end', () => settle());
      blob.body.once('error', (err) => settle(err));
      blob.body.once('close', () => {
        if (!blob.body.readableEnded) settle(blob.body.errored ?? new Error('the parent\'s stream closed early'));
      });
    });
  }
}

/** A parent alive but not sending yet: its own download has not begun ('pending'), or it serves others ('busy'). */
function waitable(err: unknown): boolean {
  return err instanceof PeerFetchError && (err.status === 'pending' || err.status === 'busy');
}
