// The stripe-trees prototype (distribution/rollout/stripe-trees.ts) as simulated nodes run it. Real code:
// the trees (StripeTrees: who follows whom per stripe, demotions) and the judgement of a slow parent
// (StripeTrees.parentIsSlow), and the blob lanes (blobLanes). Simulated: the streams, the progress a node
// learns of its parent (read straight from the cluster, or "no answer" when it is dead), and one shared
// StripeTrees standing for the origin that would keep the trees and tell the nodes a change affects.
import { blobLanes, StripeTrees, type StripeView } from '../distribution/index.js';
import type { Transfer } from './cluster.js';
import type { SimBlob } from './image.js';
import type { RunContext, SimNode } from './run-context.js';

/** How often a node compares its stripes. */
const CHECK_MS = 100;
/**
 * A stripe this far behind the node's best (and by the parent's fault) gets its parent demoted: about half
 * a second of a stripe at 1 Gbit/s over 4 stripes (4 MiB demoted healthy parents for the unevenness of
 * fair sharing on full uplinks).
 */
const LAG_BYTES = 16 * 1024 * 1024;

export class StripeSetup {
  readonly trees: StripeTrees;
  readonly nodes = new Map<number, StripeNode>();

  constructor(
    readonly ctx: RunContext,
    order: readonly string[],
    readonly k: number,
  ) {
    this.trees = new StripeTrees(order, k);
  }

  /** Tells the nodes whose parent changed in `stripe` (a round trip later, as the keeper's word would come). */
  repoint(stripe: number, ids: readonly string[]): void {
    const delay = 2 * this.ctx.cluster.s.latencyMs;
    for (const id of ids) {
      const node = this.nodes.get(this.ctx.hostOf(id));
      this.ctx.cluster.clock.after(delay, () => node?.follow(stripe));
    }
  }

  /** The stripes' progress of `host` in `blob`, as it would answer; undefined when it is dead. */
  progress(host: number, blob: SimBlob): StripeView[] | undefined {
    if (!this.ctx.cluster.alive[host]) return undefined;
    const c = this.ctx.cluster;
    return blob.streams.map((s) => ({ have: c.has(host, s), size: c.streamSizes[s]!, rate: 0 }));
  }
}

export class StripeNode implements SimNode {
  private current: SimBlob | undefined;
  private readonly open = new Map<number, Transfer>();
  private lanesLeft = 0;
  /** What each stripe of the current blob held at the last check, for its rate. */
  private lastHave: number[] = [];
  private onBlobDone: (() => void) | undefined;

  constructor(
    private readonly setup: StripeSetup,
    private readonly host: number,
  ) {
    setup.nodes.set(host, this);
  }

  private get ctx(): RunContext {
    return this.setup.ctx;
  }

  private get id(): string {
    return this.ctx.ids[this.host]!;
  }

  start(): void {
    const lanes = blobLanes(this.ctx.image.blobs, true, 6, 1);
    const large = [...lanes.large];
    this.lanesLeft = lanes.largeWorkers + (lanes.small.length > 0 ? 1 : 0);
    for (let w = 0; w < lanes.largeWorkers; w++) this.nextLarge(large);
    // Small blobs beside: whole, from the seed's tree 0 parent like stripe 0.
    if (lanes.small.length > 0) this.small([...lanes.small]);
    this.check();
  }

  private small(queue: SimBlob[]): void {
    const blob = queue.shift();
    if (!blob) return this.laneDone();
    const parent = this.setup.trees.parent(0, this.id);
    const t = this.ctx.cluster.open(parent === undefined ? 0 : this.ctx.hostOf(parent), this.host, blob.streams[0]!);
    t.onDone = () => this.small(queue);
    t.onBroken = () => this.small([blob, ...queue]);
  }

  private nextLarge(queue: SimBlob[]): void {
    if (!this.ctx.cluster.alive[this.host]) return;
    const blob = queue.shift();
    this.current = blob;
    this.lastHave = [];
    if (!blob) return this.laneDone();
    this.onBlobDone = () => this.nextLarge(queue);
    for (let s = 0; s < blob.streams.length; s++) this.follow(s);
  }

  private laneDone(): void {
    if (--this.lanesLeft === 0) this.ctx.finished(this.host);
  }

  /** (Re)opens stripe s of the current blob from the tree's parent, from what this node holds. */
  follow(stripe: number): void {
    const blob = this.current;
    if (!blob || !this.ctx.cluster.alive[this.host]) return;
    const stream = blob.streams[stripe]!;
    if (this.ctx.cluster.complete(this.host, stream)) return;
    const parentId = this.setup.trees.parent(stripe, this.id);
    const src = parentId === undefined ? 0 : this.ctx.hostOf(parentId);
    const old = this.open.get(stripe);
    if (old && !old.closed && old.src === src) return;
    if (old) this.ctx.cluster.close(old);
    const t = this.ctx.cluster.open(src, this.host, stream);
    this.open.set(stripe, t);
    t.onDone = () => this.stripeDone(blob);
    t.onBroken = () => this.setup.repoint(stripe, [this.id, ...this.setup.trees.demote(stripe, parentId!)]);
  }

  private stripeDone(blob: SimBlob): void {
    if (blob !== this.current || !this.ctx.holds(this.host, blob)) return;
    this.open.clear();
    this.onBlobDone?.();
  }

  /** Every CHECK_MS: a stripe lagging by its parent's fault has the parent demoted. */
  private check(): void {
    const blob = this.current;
    if (!blob || !this.ctx.cluster.alive[this.host]) return;
    const mine = this.setup.progress(this.host, blob)!;
    mine.forEach((v, s) => (v.rate = ((v.have - (this.lastHave[s] ?? v.have)) * 1000) / CHECK_MS));
    this.lastHave = mine.map((v) => v.have);
    for (let s = 0; s < blob.streams.length; s++) {
      const parentId = this.setup.trees.parent(s, this.id);
      if (parentId === undefined) continue;
      const theirs = this.setup.progress(this.ctx.hostOf(parentId), blob);
      if (!StripeTrees.parentIsSlow(mine, s, theirs, LAG_BYTES)) continue;
      const moved = this.setup.trees.demote(s, parentId);
      if (moved.length === 0) continue;
      this.ctx.demotions++;
      this.setup.repoint(s, moved);
    }
    this.ctx.cluster.clock.after(CHECK_MS, () => this.check());
  }
}
