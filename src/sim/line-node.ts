// Today's rollout, as a simulated node runs it: the daemon's own decisions, with the I/O simulated.
// Real code: the blob lanes (blobLanes: one large blob at a time in the manifest's sequence, small ones
// beside), whom to follow (RolloutOrders.predecessor: the node before this one in the origin's order,
// passing over failed ones), when to give up on a predecessor (ChainPlace.retry: three failures, then
// the seed). Simulated: the streams themselves (the cluster), a failure's detection (the cluster's
// crashDetectMs), and a chain head that lost its predecessors taking the blob whole from the best
// ranked holder instead of the DHT lookup and ranged download the daemon would do.
import { blobLanes, ChainPlace, PeerScores } from '../distribution/index.js';
import type { RolloutOrders } from '../p2p/index.js';
import type { SimBlob } from './image.js';
import type { RunContext, SimNode } from './run-context.js';

/** The daemon's defaults (RolloutOptions.parallel, orderedParallel). */
const PARALLEL = 6;
const ORDERED_PARALLEL = 1;

export class LineNode implements SimNode {
  private lanesLeft = 0;
  private readonly scores: PeerScores;

  constructor(
    private readonly ctx: RunContext,
    private readonly host: number,
    private readonly orders: RolloutOrders,
  ) {
    this.scores = new PeerScores({ now: () => ctx.now });
  }

  start(): void {
    const lanes = blobLanes(this.ctx.image.blobs, true, PARALLEL, ORDERED_PARALLEL);
    const queues = [...Array.from({ length: lanes.largeWorkers }, () => lanes.large), ...(lanes.small.length > 0 ? [lanes.small] : [])];
    // Workers of one lane share its queue (the daemon's shift() from one array): copy each lane once.
    const copies = new Map<unknown, SimBlob[]>();
    this.lanesLeft = queues.length;
    for (const q of queues) {
      if (!copies.has(q)) copies.set(q, [...q]);
      this.next(copies.get(q)!);
    }
  }

  private get id(): string {
    return this.ctx.ids[this.host]!;
  }

  private next(queue: SimBlob[]): void {
    if (!this.ctx.cluster.alive[this.host]) return;
    const blob = queue.shift();
    if (!blob) {
      if (--this.lanesLeft === 0) this.ctx.finished(this.host);
      return;
    }
    this.fetch(blob, new ChainPlace(), () => this.next(queue));
  }

  /** One blob: from the predecessor the order names, passing over those that failed, else the seed. */
  private fetch(blob: SimBlob, place: ChainPlace, done: () => void): void {
    const stream = blob.streams[0]!;
    if (this.ctx.cluster.complete(this.host, stream)) return done();
    const pred = this.orders.predecessor(blob.digest, this.id, place.failed);
    let src = 0;
    if (pred !== undefined && pred !== this.id) {
      place.follow(pred);
      src = this.ctx.hostOf(pred);
    } else {
      place.lead();
      if (place.failed.length > 0) src = this.holder(blob) ?? 0;
    }
    const t = this.ctx.cluster.open(src, this.host, stream);
    t.onDone = done;
    t.onBroken = () => {
      if (src !== 0) this.scores.failure(this.ctx.ids[src]!);
      if (place.retry()) this.fetch(blob, place, done);
      else {
        // Given up on peers: the rest from the seed, from where it broke.
        const rest = this.ctx.cluster.open(0, this.host, stream);
        rest.onDone = done;
      }
    };
  }

  /** A live node holding the whole blob, best ranked, for a head whose predecessors all failed. */
  private holder(blob: SimBlob): number | undefined {
    const holders = this.ctx.ids
      .map((id, h) => ({ id, h }))
      .filter(({ h }) => h > 0 && h !== this.host && this.ctx.cluster.alive[h] && this.ctx.holds(h, blob));
    return this.scores.rank(holders)[0]?.h;
  }
}
