// The stripe-trees prototype (distribution/rollout/stripe-trees.ts) as simulated nodes run it. Real code:
// the trees (StripeTrees: who follows whom per stripe, demotions and whom orphans go to), the judgement of
// a parent (StripeWatch: stalled or slow), and the blob lanes' split of small blobs (blobLanes).
// Simulated: the streams; the progress reports a node gets from its parent (read straight from the
// cluster; a crashed host's last report stands for `SILENT_MS`, then it counts as silent); and one shared
// StripeTrees standing for the origin that would keep the trees, hear every node's progress and tell the
// nodes a change affects. How soon that origin hears of a failing parent is `KeeperHearing`: at once (the
// prototype's view), or, as the daemon does, with the child's next paced report.
import { blobLanes, STRIPE_WATCH_DEFAULTS, StripeTrees, StripeWatch, type HeldShare, type StripeView } from '../distribution/index.js';
import type { Transfer } from './cluster.js';
import type { SimBlob } from './image.js';
import type { RunContext, SimNode } from './run-context.js';

/** How often a node compares its stripes (and a parent would report its progress). */
const CHECK_MS = 100;
/** Reports missed this long make a node silent: a few report intervals. */
const SILENT_MS = 3 * CHECK_MS;

/**
 * How the origin's keeper hears what a node finds of its parents. 'direct': at once, and a dead node is
 * silent to all after SILENT_MS (the prototype's view). 'paced': as the daemon does: a node's suspects go
 * in its next paced report (every `everyMs`: 125 s at 1,000 nodes), and a dead node is silent to the keeper
 * only after `deadAfterMs`; its children find it by their streams (no byte) alone. 'at-once': the same,
 * but a report naming a new suspect goes at once.
 */
export interface KeeperHearing {
  mode: 'direct' | 'paced' | 'at-once';
  everyMs: number;
  deadAfterMs: number;
}

export class StripeSetup {
  readonly trees: StripeTrees;
  readonly nodes = new Map<number, StripeNode>();
  /** The large blobs, which go down the trees stripe by stripe; the small ones go whole beside them. */
  readonly large: readonly SimBlob[];
  readonly small: readonly SimBlob[];
  private readonly laneSizes: number[];

  constructor(
    readonly ctx: RunContext,
    order: readonly string[],
    readonly k: number,
    readonly hearing: KeeperHearing = { mode: 'direct', everyMs: CHECK_MS, deadAfterMs: SILENT_MS },
  ) {
    this.trees = new StripeTrees(order, k);
    const lanes = blobLanes(ctx.image.blobs, true, 6, 1);
    this.large = lanes.large;
    this.small = lanes.small;
    this.laneSizes = Array.from({ length: k }, (_, s) => this.large.reduce((n, b) => n + ctx.cluster.streamSizes[b.streams[s]!]!, 0));
  }

  /** Tells the nodes whose parent changed in `stripe` (a round trip later, as the keeper's word would come). */
  repoint(stripe: number, ids: readonly string[]): void {
    const delay = 2 * this.ctx.cluster.s.latencyMs;
    for (const id of ids) {
      const node = this.nodes.get(this.ctx.hostOf(id));
      this.ctx.cluster.clock.after(delay, () => node?.follow(stripe));
    }
  }

  /** When the keeper hears what `host` (started at `startedAt`) finds now: at once, or with its next report. */
  heardIn(startedAt: number): number {
    if (this.hearing.mode !== 'paced') return 0;
    const every = this.hearing.everyMs;
    return every - ((this.ctx.now - startedAt) % every);
  }

  /** Demotes `parent` in `stripe` and re-points the nodes that moved; false when no one moved. */
  demote(stripe: number, parent: string, alsoMe?: string, idle = true): boolean {
    const moved = this.trees.demote(stripe, parent, this.held(stripe), idle);
    if (moved.length === 0 && alsoMe === undefined) return false;
    this.repoint(stripe, alsoMe === undefined ? moved : [alsoMe, ...moved]);
    return moved.length > 0;
  }

  /** `node`'s own link is too slow to relay any stripe: it becomes a leaf in every tree. False when no one moved. */
  relieve(node: string): boolean {
    const moved = this.trees.remove(node, (s) => this.held(s));
    moved.forEach((ids, s) => this.repoint(s, ids));
    return moved.some((ids) => ids.length > 0);
  }

  /**
   * Whether `node` lags its own parents (by the watch's lag) in most stripes: its link is slow. Else it is
   * starved by its parents, and a child that finds its intake low has the wrong node.
   */
  fallsBehind(node: string): boolean {
    const margin = STRIPE_WATCH_DEFAULTS.lagBytes / Math.max(1, Math.min(...this.laneSizes));
    return this.trees.fallsBehind(node, (s) => this.held(s), margin);
  }

  /** What `host` last reported holding of each stripe (all blobs); undefined once it has been silent SILENT_MS. */
  progress(host: number): StripeView[] | undefined {
    const c = this.ctx.cluster;
    const died = c.crashedAt[host];
    const silentMs = this.hearing.mode === 'direct' ? SILENT_MS : this.hearing.deadAfterMs;
    if (died !== undefined && c.clock.now() - died >= silentMs) return undefined;
    return this.laneSizes.map((size, s) => ({ have: this.large.reduce((n, b) => n + c.has(host, b.streams[s]!), 0), size }));
  }

  /** The keeper's view of who holds how much of a stripe, from the reports. */
  private held(stripe: number): HeldShare {
    return (id) => {
      const p = this.progress(this.ctx.hostOf(id));
      return p && p[stripe]!.have / p[stripe]!.size;
    };
  }
}

export class StripeNode implements SimNode {
  /** Per stripe: the place in `large` of the blob it takes now, and its open stream. */
  private readonly at: number[];
  private readonly open: Array<Transfer | undefined>;
  private lanesLeft = 0;
  private readonly watch: StripeWatch;
  private startedAt = 0;
  /** `${stripe}/${parent}` named to the keeper and not yet acted on (a paced report is on its way). */
  private readonly named = new Set<string>();

  constructor(
    private readonly setup: StripeSetup,
    private readonly host: number,
  ) {
    setup.nodes.set(host, this);
    this.at = new Array<number>(setup.k).fill(0);
    this.open = new Array<Transfer | undefined>(setup.k).fill(undefined);
    this.watch = new StripeWatch(setup.k);
  }

  private get ctx(): RunContext {
    return this.setup.ctx;
  }

  private get id(): string {
    return this.ctx.ids[this.host]!;
  }

  start(): void {
    this.startedAt = this.ctx.now;
    // Each stripe its own lane through the large blobs, so one held back holds back no other.
    this.lanesLeft = this.setup.k + (this.setup.small.length > 0 ? 1 : 0);
    for (let s = 0; s < this.setup.k; s++) this.follow(s);
    // Small blobs beside: whole, from the seed's tree 0 parent like stripe 0.
    if (this.setup.small.length > 0) this.small([...this.setup.small]);
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

  private laneDone(): void {
    if (--this.lanesLeft === 0) this.ctx.finished(this.host);
  }

  /** (Re)opens stripe s of its current blob from the tree's parent, from what this node holds. */
  follow(stripe: number): void {
    if (!this.ctx.cluster.alive[this.host]) return;
    const blob = this.setup.large[this.at[stripe]!];
    if (!blob) return;
    const stream = blob.streams[stripe]!;
    const parentId = this.setup.trees.parent(stripe, this.id);
    const src = parentId === undefined ? 0 : this.ctx.hostOf(parentId);
    const old = this.open[stripe];
    if (old && !old.closed && old.src === src) return;
    if (old) this.ctx.cluster.close(old);
    if (old && old.src !== src) this.watch.followed(stripe, this.ctx.now);
    const t = this.ctx.cluster.open(src, this.host, stream);
    this.open[stripe] = t;
    t.onDone = () => this.stripeDone(stripe);
    // The stream's idle timeout (or a reset) found the parent dead: demote it, and follow whoever is next.
    t.onBroken = () => this.tell(stripe, parentId!, () => void this.setup.demote(stripe, parentId!, this.id));
  }

  private stripeDone(stripe: number): void {
    this.open[stripe] = undefined;
    this.at[stripe]!++;
    if (this.at[stripe]! < this.setup.large.length) this.follow(stripe);
    else this.laneDone();
  }

  /**
   * Names `parent` as failing stripe s to the keeper, which acts when it hears (heardIn); once per parent
   * and stripe until then. True when it was named now.
   */
  private tell(stripe: number, parent: string, act: () => unknown): boolean {
    const key = `${stripe}/${parent}`;
    if (this.named.has(key)) return false;
    this.named.add(key);
    this.ctx.cluster.clock.after(this.setup.heardIn(this.startedAt), () => {
      this.named.delete(key);
      act();
    });
    return true;
  }

  /** The parent holds more of stripe s than this node by the watch's lag. */
  private holdsMore(stripe: number, parent: readonly StripeView[] | undefined): boolean {
    const mine = this.setup.progress(this.host)![stripe]!.have;
    return parent !== undefined && parent[stripe]!.have - mine > STRIPE_WATCH_DEFAULTS.lagBytes;
  }

  /** Every CHECK_MS: a stripe stalled or slow by its parent's fault has the parent demoted. */
  private check(): void {
    if (!this.ctx.cluster.alive[this.host] || this.at.every((b) => b >= this.setup.large.length)) return;
    const now = this.ctx.now;
    this.watch.observe(now, this.setup.progress(this.host)!);
    for (let s = 0; s < this.setup.k; s++) {
      const parentId = this.setup.trees.parent(s, this.id);
      if (parentId === undefined) continue;
      const verdict = this.watch.judge(now, s, this.setup.progress(this.ctx.hostOf(parentId)));
      if (verdict === 'ok') continue;
      const parent = this.setup.progress(this.ctx.hostOf(parentId));
      // A silent parent is gone (judged stalled or slow): out of every tree at once, as the keeper takes a node
      // whose reports stopped. Demoted as merely slow to relay, it still counted as loading its parents'
      // uplinks, and its orphans went to full ones (1,000 hosts, 1% crash: 1.41× against 1.21×).
      const gone = parent === undefined;
      const linkSlow = verdict === 'slow' && this.watch.linkSlow(s);
      const ls = linkSlow && this.setup.fallsBehind(parentId);
      // Low intake but keeping up with its own parents: starved, not slow. Demoted in this stripe only if
      // it holds more than it sends (its uplink is the cause); else its own parent is, and is judged above.
      if (linkSlow && !ls && !this.holdsMore(s, parent)) continue;
      const act = () => (gone || ls ? this.setup.relieve(parentId) : this.setup.demote(s, parentId, undefined, verdict !== 'slow'));
      const moved = this.setup.hearing.mode === 'direct' ? act() : this.tell(s, parentId, act);
      if (moved) this.ctx.demotions++;
    }
    this.ctx.cluster.clock.after(CHECK_MS, () => this.check());
  }
}
