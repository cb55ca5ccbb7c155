// A blob taken as k interleaved stripes, each from its own parent (a rollout's stripe trees): chunk i
// comes from the parent of stripe i mod k. Each parent serves a chunk from its own download as soon as the
// chunk's bytes land there, so a stripe flows down its tree while every node is still receiving.
// The stripes run independently, as the simulator has them: each chunk is written at its offset in the
// download's file as its bytes arrive (PositionalSink), whatever the other stripes do, so a slow parent
// holds back its own stripe and nothing else, here or below. The download hashes the chunks once the
// bytes before them are in, and checks the digest over the whole blob before it is kept or served whole.
// Memory: the first chunk (it tells the size), then at most HOLD_BYTES per chunk in flight
// (k × CHUNKS_AHEAD of them), never the blob.
//
// A parent that fails a chunk (gone, refused, stalled mid-chunk) is passed over for the rest of that
// chunk: the route's fallback (the rollout's origin) is asked. The route is told (failed), and names the
// parent to the keeper, who may repoint the stripe, only once it failed several chunks in a row. With
// no one left to send a chunk the download fails part way, and the fetcher goes on from the bytes written
// in order by its usual path (the chain, holders, the seed).
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { PeerFetchError, type PeerBlob } from '../../p2p/index.js';
import type { ByteRange } from '../../oci/index.js';
import type { FetchedBody, PositionalSink } from '../download/index.js';
import type { ClaimJudge } from './claims.js';
import type { FetcherSettings, PeerNetwork, StripeRoute, Wanted } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';

/** Chunks of one stripe asked at once (the next is asked while one is sent: no gap per chunk on the link). */
const CHUNKS_AHEAD = 2;
/** The least time between two questions to a parent that answered 'pending'. */
const PENDING_PAUSE_MS = 500;
/** A chunk's bytes held before they are written: its parent's stream waits past this until the write lands. */
const HOLD_BYTES = 512 * 1024;

/** Where a chunk's bytes go as they arrive: the file (or, for the first chunk, memory). */
type Put = (position: number, data: Buffer[]) => Promise<void>;

/** A chunk being fetched: the next byte it needs, and its last. */
interface ChunkState {
  index: number;
  at: number;
  end: number;
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
  /** The blob's size, as the first chunk's parent gave it (every later answer must agree). */
  private size: number | undefined;

  constructor(
    private readonly d: StripeDeps,
    private readonly want: Wanted,
    private readonly route: StripeRoute,
    private readonly from: number,
  ) {
    this.layout = new StripeLayout(route.k, route.chunkBytes);
  }

  /** The first chunk, in memory: its answer tells the size. The rest land through the sink (landAt). */
  async open(): Promise<FetchedBody> {
    const first = this.layout.chunkOf(this.from);
    const head: Buffer[] = [];
    await this.chunk(first, async (_at, data) => void head.push(...data));
    const size = this.size!;
    return { size, start: this.from, stream: Readable.from([]), landAt: (sink) => this.land(sink, first, head) };
  }

  /** The first chunk written, then every stripe's chunks, each stripe on its own; one failing stops them all. */
  private async land(sink: PositionalSink, first: number, head: Buffer[]): Promise<void> {
    const put: Put = (at, data) => sink.write(at, data);
    try {
      if (head.length > 0) await put(this.from, head);
      const count = this.layout.count(this.size!);
      const lanes = Array.from({ length: this.layout.k }, (_, s) =>
        this.lane(s, first + 1, count, put).catch((err: unknown) => {
          this.run.abort(err);
          throw err;
        }),
      );
      const outcomes = await Promise.allSettled(lanes);
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) throw failed.reason;
    } finally {
      this.run.abort(new Error('striped download ended'));
    }
  }

  /** Stripe s's chunks from `from` to `count` in order, CHUNKS_AHEAD at a time. */
  private async lane(stripe: number, from: number, count: number, put: Put): Promise<void> {
    const mine: number[] = [];
    for (let i = from; i < count; i++) if (this.layout.stripeOf(i) === stripe) mine.push(i);
    let next = 0;
    const worker = async () => {
      while (next < mine.length) {
        if (this.run.signal.aborted) throw this.run.signal.reason as Error;
        await this.chunk(mine[next++]!, put);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHUNKS_AHEAD, mine.length) }, worker));
  }

  /** Chunk `index` from its stripe's parent, the rest of it from the fallback if that parent fails it. */
  private async chunk(index: number, put: Put): Promise<void> {
    const stripe = this.layout.stripeOf(index);
    const range = this.layout.range(index, this.from);
    const state: ChunkState = { index, at: range.start, end: this.size === undefined ? range.end : Math.min(range.end, this.size - 1) };
    const reasons: string[] = [];
    for (const parent of this.layout.candidates(this.route.parent(stripe), this.route.fallback)) {
      if (this.run.signal.aborted) throw this.run.signal.reason as Error;
      try {
        await this.fromParent(parent, state, put);
        this.route.served?.(stripe, parent);
        return;
      } catch (err) {
        if (this.run.signal.aborted) throw err;
        reasons.push(`${parent}: ${(err as Error).message}`);
        this.route.failed?.(stripe, parent);
        this.d.o.log?.warn({ digest: this.want.digest, stripe, chunk: index, parent, reason: (err as Error).message }, 'a stripe parent could not send a chunk: asking another');
      }
    }
    throw new Error(`no stripe parent could send chunk ${index} of ${this.want.digest}: ${reasons.join('; ')}`);
  }

  /** The chunk's rest from one parent, asked again while it answers 'pending' (not landed there yet) or busy. */
  private async fromParent(parent: string, state: ChunkState, put: Put): Promise<void> {
    const until = Date.now() + this.d.o.followPendingMs;
    for (;;) {
      const t = Date.now();
      try {
        return await this.once(parent, state, put);
      } catch (err) {
        if (!waitable(err) || Date.now() >= until) throw err;
      }
      await sleep(Math.max(0, PENDING_PAUSE_MS - (Date.now() - t)), undefined, { signal: this.run.signal });
    }
  }

  private async once(parent: string, state: ChunkState, put: Put): Promise<void> {
    const { net, judge, scores, o } = this.d;
    const ask = new AbortController();
    const onRun = () => ask.abort(this.run.signal.reason);
    this.run.signal.addEventListener('abort', onRun, { once: true });
    // The answer has followAnswerMs; then each byte has stripeStallMs (see pour).
    const answer = setTimeout(() => ask.abort(new Error(`no answer in ${o.followAnswerMs} ms`)), o.followAnswerMs);
    const started = Date.now();
    const from = state.at;
    let blob: PeerBlob | undefined;
    try {
      blob = await net.fetch({ id: parent, addrs: [] }, this.want.digest, { start: state.at, end: state.end }, ask.signal);
      clearTimeout(answer);
      judge.judge(this.want.digest, parent, blob.size, this.want.expected);
      if (this.size !== undefined && blob.size !== this.size) throw new Error(`parent ${parent} claimed ${blob.size} bytes, the blob has ${this.size}`);
      this.size ??= blob.size;
      state.end = Math.min(state.end, blob.size - 1);
      if (blob.start !== state.at || blob.length !== state.end - state.at + 1) throw new Error(`parent ${parent} answered another range`);
      this.want.contributors.add(parent);
      await this.pour(blob, state, put, ask);
      scores.success(parent, state.at - from, Date.now() - started);
      o.onRangeFetched?.(parent, state.at - from);
    } catch (err) {
      blob?.body.destroy();
      if (!this.run.signal.aborted && !waitable(err)) scores.failure(parent);
      throw ask.signal.aborted && !this.run.signal.aborted ? (ask.signal.reason as Error) : err;
    } finally {
      clearTimeout(answer);
      this.run.signal.removeEventListener('abort', onRun);
    }
  }

  /**
   * The parent's bytes into `put` as they arrive, one write at a time, each taking all that came while the
   * one before it ran; `state.at` moves past each write once it landed (a failover goes on from there). No
   * byte for stripeStallMs (while no write of ours is under way) aborts the ask. A failure settles only once
   * the write under way has landed: a failover started earlier would ask from a `state.at` about to move.
   */
  private pour(blob: PeerBlob, state: ChunkState, put: Put, ask: AbortController): Promise<void> {
    const stallMs = this.d.o.stripeStallMs;
    const stripe = this.layout.stripeOf(state.index);
    const body = blob.body;
    return new Promise((resolve, reject) => {
      let held: Buffer[] = [];
      let heldBytes = 0;
      let received = 0;
      let writing = false;
      let ended = false;
      let settled = false;
      let failure: Error | undefined;
      let lastByte = Date.now();
      const watch = setInterval(() => {
        if (!writing && Date.now() - lastByte > stallMs) ask.abort(new Error(`stalled: no byte for ${stallMs} ms`));
      }, Math.max(50, stallMs / 4));
      const onAbort = () => body.destroy(ask.signal.reason as Error);
      ask.signal.addEventListener('abort', onAbort, { once: true });
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        ask.signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const fail = (err: Error) => {
        failure ??= err;
        body.destroy();
        if (!writing) settle(failure);
      };
      const flush = () => {
        if (writing || settled) return;
        if (failure) return settle(failure);
        if (heldBytes === 0) return ended ? settle() : undefined;
        const batch = held;
        const n = heldBytes;
        held = [];
        heldBytes = 0;
        writing = true;
        put(state.at, batch).then(
          () => {
            writing = false;
            lastByte = Date.now();
            state.at += n;
            this.route.got?.(stripe, n);
            if (body.isPaused()) body.resume();
            flush();
          },
          (err: Error) => {
            writing = false;
            fail(err);
          },
        );
      };
      const length = blob.length;
      body.on('data', (c: Buffer) => {
        lastByte = Date.now();
        received += c.length;
        if (received > length) return fail(new Error('parent sent more bytes than it announced'));
        held.push(c);
        heldBytes += c.length;
        if (heldBytes >= HOLD_BYTES) body.pause();
        flush();
      });
      body.once('end', () => {
        ended = true;
        if (received !== length) return fail(new Error(`parent sent ${received} of ${length} bytes`));
        flush();
      });
      body.once('error', (err) => fail(err));
      body.once('close', () => {
        if (!ended) fail(body.errored ?? new Error("the parent's stream closed early"));
      });
    });
  }
}

/** A parent alive but not sending yet: the chunk has not landed there ('pending'), or it serves others ('busy'). */
function waitable(err: unknown): boolean {
  return err instanceof PeerFetchError && (err.status === 'pending' || err.status === 'busy');
}
