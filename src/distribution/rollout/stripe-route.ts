// A node's side of a striped rollout: whom it takes each stripe from (the parents the order gives, then
// what the origin's repoints say), and what it reports of its stripes (bytes by stripe, the parents that
// failed it). The fetcher reads the parents at every chunk, so a repoint takes effect at the next one.
import type { StripeRoute } from '../peers/index.js';
import type { Repoint, StripeProgress, StripeShape } from './view.js';

/** What the peer fetcher reads of a route: defined there, where it is used. */
export type { StripeRoute };

/** Parents a node names as failing it, at most (the report carries them all). */
const MAX_SUSPECTS = 64;
/**
 * Chunks in a row a stripe's parent may fail before it is named to the keeper. A chunk that stalls once
 * (a parent whose own parent lagged, a burst on its link) is fetched from the fallback and the parent
 * kept: on 32 hosts, naming a parent at its first stall repointed 229 times, each move stalling the
 * moved node's children in turn.
 */
const STRIKES = 3;

export class NodeStripes implements StripeRoute {
  readonly k: number;
  readonly chunkBytes: number;
  private readonly parents: string[];
  private readonly report: StripeProgress;
  /** `${stripe}/${parent}` → the chunks in a row that parent failed in that stripe. */
  private readonly strikes = new Map<string, number>();
  /**
   * Called when a parent is named for the first time: the node reports at once rather than at its next
   * paced report (every N ÷ 8 s: 125 s at 1,000 nodes, when the trees work on a seconds' scale).
   */
  onSuspect?: () => void;

  /** `fallback`: asked for a chunk a parent failed (the origin: it waits on no one). */
  constructor(
    shape: StripeShape,
    parents: readonly string[],
    readonly fallback?: string,
  ) {
    if (parents.length !== shape.k) throw new Error(`want ${shape.k} parents, not ${parents.length}`);
    this.k = shape.k;
    this.chunkBytes = shape.chunkBytes;
    this.parents = [...parents];
    this.report = { have: new Array<number>(shape.k).fill(0), suspects: [] };
  }

  parent(stripe: number): string {
    const p = this.parents[stripe];
    if (p === undefined) throw new Error(`no stripe ${stripe}`);
    return p;
  }

  got(stripe: number, bytes: number): void {
    this.report.have[stripe] = (this.report.have[stripe] ?? 0) + bytes;
  }

  failed(stripe: number, parent: string): void {
    const key = `${stripe}/${parent}`;
    const n = (this.strikes.get(key) ?? 0) + 1;
    this.strikes.set(key, n);
    if (n >= STRIKES) this.suspect(stripe, parent);
  }

  served(stripe: number, parent: string): void {
    this.strikes.delete(`${stripe}/${parent}`);
  }

  /** Names a parent to the keeper as failing it in stripe s (once). */
  suspect(stripe: number, parent: string): void {
    const { suspects } = this.report;
    if (suspects.length >= MAX_SUSPECTS || suspects.some((s) => s.stripe === stripe && s.parent === parent)) return;
    suspects.push({ stripe, parent });
    this.onSuspect?.();
  }

  /** The origin's repoint; false when it names no stripe of this route. */
  repoint(r: Repoint): boolean {
    if (r.stripe >= this.k) return false;
    this.parents[r.stripe] = r.parent;
    return true;
  }

  /** A copy for a progress report. */
  progress(): StripeProgress {
    return { have: [...this.report.have], suspects: this.report.suspects.map((s) => ({ ...s })) };
  }
}
