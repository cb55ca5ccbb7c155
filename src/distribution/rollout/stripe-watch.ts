// How a node of the stripe trees (stripe-trees.ts) judges the parent of each stripe it takes, from what
// it holds of each stripe and what the parent last reported holding. Pure: the node passes the time in.
//
// Two faults, two rules:
// - Stalled: the stripe got no byte for `stallMs` while the parent holds more of it than this node (its
//   report says so), or the parent's reports stopped (dead). A crash is then found in well under a
//   second, not after the stream's idle timeout, and it works on a node's last stripe too, which has no
//   faster sibling to be compared with.
// - Slow: the stripe grows at under `slowShare` of the node's best stripe rate (the unfinished stripes'
//   rates and the mean rate each finished stripe arrived at, so a lagging last stripe is still compared
//   with something), lags the node's furthest stripe, and the parent is the cause: it holds more than it
//   sent, its own link is slow (the most it has taken in over a window, all stripes together, is under
//   `slowShare` of the most this node has), or it is behind this node on every stripe. Not judged in the
//   node's first `graceMs` (streams open at different times) nor within a window of a change of parent.
//   A parent whose link is slow cannot relay any stripe at the trees' rate: `linkSlow` tells the node so,
//   and the keeper makes it a leaf in every tree, not only the one it was judged in.

/** What a node holds of one stripe (of the whole image: a stripe runs through the blobs one after another). */
export interface StripeView {
  have: number;
  size: number;
}

export type ParentVerdict = 'ok' | 'slow' | 'stalled';

export interface StripeWatchSettings {
  /** A stripe this far behind the node's furthest (and by its parent's fault) may be slow. */
  lagBytes: number;
  /**
   * A parent this far behind the node on its furthest stripe has a slow link. Wider than `lagBytes`: at
   * 8 MiB, healthy parents whose own parents were slow were demoted too (100 hosts, 5 slow: 58 demotions,
   * the trees ran out of leaves and the rollout took 11×).
   */
  behindBytes: number;
  /** Slow: growing at under this share of the node's best stripe rate. */
  slowShare: number;
  /** Stalled: no byte for this long while the parent holds more. */
  stallMs: number;
  /** Bytes the parent must hold beyond this node for a stall to be its fault (a relay holds back a chunk). */
  stallMarginBytes: number;
  /** Rates are measured over this window. */
  windowMs: number;
  /**
   * No slow verdicts this soon after the node starts: one rate window. It was 1.5 s, and at 1 Gbit/s the
   * children of a slow node fell 0.2 of the link bound behind before it was found out, which no tree with
   * every uplink busy can win back (1,000 hosts, 5% slow: the rest took 1.55–1.65×).
   */
  graceMs: number;
}

export const STRIPE_WATCH_DEFAULTS: StripeWatchSettings = {
  lagBytes: 8 * 1024 * 1024,
  behindBytes: 32 * 1024 * 1024,
  slowShare: 0.5,
  stallMs: 500,
  stallMarginBytes: 1024 * 1024,
  windowMs: 500,
  graceMs: 500,
};

interface Sample {
  at: number;
  have: number[];
}

export class StripeWatch {
  private readonly s: StripeWatchSettings;
  private samples: Sample[] = [];
  private startedAt: number | undefined;
  /** Per stripe: when it last grew (or was given a new parent), and since when its rate counts. */
  private readonly grewAt: number[];
  private readonly judgedFrom: number[];
  /** Per stripe: its rate over the last window; a finished stripe, the mean it arrived at (the lower). */
  private readonly rates: number[];
  private readonly done: boolean[];
  private current: StripeView[] = [];
  /** The most this node took in over a window so far; per stripe, the same of its parent since it follows it. */
  private readonly intake: Intake;
  private readonly parentIntake: Intake[];

  constructor(
    readonly k: number,
    settings: Partial<StripeWatchSettings> = {},
  ) {
    this.s = { ...STRIPE_WATCH_DEFAULTS, ...settings };
    this.grewAt = new Array<number>(k).fill(0);
    this.judgedFrom = new Array<number>(k).fill(0);
    this.rates = new Array<number>(k).fill(0);
    this.done = new Array<boolean>(k).fill(false);
    this.intake = new Intake(this.s.windowMs);
    this.parentIntake = Array.from({ length: k }, () => new Intake(this.s.windowMs));
  }

  /** What the node holds of each stripe now. Call it every check, before `judge`. */
  observe(nowMs: number, mine: readonly StripeView[]): void {
    if (mine.length !== this.k) throw new Error(`want ${this.k} stripes, not ${mine.length}`);
    if (this.startedAt === undefined) {
      this.startedAt = nowMs;
      this.grewAt.fill(nowMs);
      this.judgedFrom.fill(nowMs + this.s.graceMs);
    }
    const last = this.samples.at(-1);
    mine.forEach((v, i) => {
      if (last && v.have > last.have[i]!) this.grewAt[i] = nowMs;
    });
    this.samples.push({ at: nowMs, have: mine.map((v) => v.have) });
    this.intake.heard(nowMs, mine);
    // Keep one sample at or before the window's start, for the rate over the whole window.
    while (this.samples.length > 2 && this.samples[1]!.at <= nowMs - this.s.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const span = (nowMs - first.at) / 1000;
    mine.forEach((v, i) => {
      // A finished stripe counts at the mean rate it arrived at: its last window may have been a burst
      // (alone on the link at the end), and would make a sibling sharing the link look slow.
      if (v.have < v.size) {
        if (span > 0) this.rates[i] = (v.have - first.have[i]!) / span;
      } else if (!this.done[i]) {
        this.done[i] = true;
        this.rates[i] = Math.min(this.rates[i]!, (v.size * 1000) / Math.max(1, nowMs - this.startedAt!));
      }
    });
    this.current = mine.map((v) => ({ ...v }));
  }

  /** The node took stripe s from a new parent at `nowMs`: it gets a full stall time and window afresh. */
  followed(stripe: number, nowMs: number): void {
    this.grewAt[stripe] = nowMs;
    this.judgedFrom[stripe] = Math.max(this.judgedFrom[stripe]!, nowMs + this.s.windowMs);
    this.parentIntake[stripe] = new Intake(this.s.windowMs);
  }

  /**
   * Whether the parent of stripe s has a slow link, from its reports since this node follows it (as shown
   * to `judge`): over every window, both all it took in and its fastest stripe stayed under `slowShare` of
   * the most this node has taken in so far. The most, not the last: a parent near its end takes in little
   * because it needs little. Both: a parent starved by slow parents of its own in three stripes of four
   * takes in a third of this node, yet its fourth stripe comes as fast as this node's best (100 hosts,
   * seed 2: a healthy node was made a leaf everywhere on its total alone).
   */
  linkSlow(stripe: number): boolean {
    const p = this.parentIntake[stripe]!;
    if (!p.known) return false;
    return p.total < this.s.slowShare * this.intake.total && p.stripe < this.s.slowShare * this.intake.stripe;
  }

  /** The parent of stripe s, as its last report (`undefined`: its reports stopped) shows it. */
  judge(nowMs: number, stripe: number, parent: readonly StripeView[] | undefined): ParentVerdict {
    if (parent) this.parentIntake[stripe]!.heard(nowMs, parent);
    const mine = this.current[stripe];
    if (!mine || mine.have >= mine.size) return 'ok';
    if (this.stalled(nowMs, stripe, parent)) return 'stalled';
    if (nowMs < this.judgedFrom[stripe]! || !this.lags(stripe)) return 'ok';
    if (this.rates[stripe]! >= this.s.slowShare * Math.max(...this.rates)) return 'ok';
    if (parent === undefined || parent[stripe]!.have - mine.have > this.s.lagBytes) return 'slow';
    if (this.linkSlow(stripe)) return 'slow';
    return (furthest(this.current) - furthest(parent)) * mine.size > this.s.behindBytes ? 'slow' : 'ok';
  }


  private stalled(nowMs: number, stripe: number, parent: readonly StripeView[] | undefined): boolean {
    if (nowMs - this.grewAt[stripe]! < this.s.stallMs) return false;
    return parent === undefined || parent[stripe]!.have - this.current[stripe]!.have > this.s.stallMarginBytes;
  }

  /** Stripe s is behind the node's furthest stripe (as a share of the stripe) by more than `lagBytes`. */
  private lags(stripe: number): boolean {
    const mine = this.current[stripe]!;
    return (furthest(this.current) - mine.have / mine.size) * mine.size > this.s.lagBytes;
  }
}

/**
 * The most a node took in over a window of its reports, all stripes together and its fastest stripe
 * (bytes per second): what its link has shown it can do.
 */
class Intake {
  private seen: Sample[] = [];
  total = 0;
  stripe = 0;
  /** A whole window has been seen. */
  known = false;

  constructor(private readonly windowMs: number) {}

  heard(nowMs: number, v: readonly StripeView[]): void {
    this.seen.push({ at: nowMs, have: v.map((x) => x.have) });
    while (this.seen.length > 2 && this.seen[1]!.at <= nowMs - this.windowMs) this.seen.shift();
    const first = this.seen[0]!;
    const span = nowMs - first.at;
    if (span < this.windowMs) return;
    this.known = true;
    const grew = v.map((x, i) => ((x.have - first.have[i]!) * 1000) / span);
    this.total = Math.max(this.total, grew.reduce((n, x) => n + x, 0));
    this.stripe = Math.max(this.stripe, ...grew);
  }
}

/** The share held of the furthest stripe. */
function furthest(v: readonly StripeView[]): number {
  return Math.max(...v.map((x) => x.have / x.size));
}
