// The bookkeeping of a blob taken in ranges from several holders, with no I/O: which ranges are planned,
// in flight and done, which holder each is asked of (the least loaded, best ranked, not yet tried for
// it), when a range lags enough to hedge, and when a range has no holder left. The code that opens
// streams and moves the bytes (range-download.ts) asks it and tells it what happened, so every decision
// here can be tested without a network or a clock.
import type { ByteRange } from '../../oci/index.js';
import type { Provider } from '../../p2p/index.js';

/** Busy answers one range tolerates before it gives up on peers. */
const MAX_BUSY_ANSWERS = 50;

/**
 * Ranges in flight per holder, across every download of this node: a pull fetches several layers at
 * once, and each holder serves a peer only so many transfers (--max-uploads-per-peer).
 */
export class HolderLoad {
  private readonly ranges = new Map<string, number>();

  of(id: string): number {
    return this.ranges.get(id) ?? 0;
  }

  take(id: string): void {
    this.ranges.set(id, (this.ranges.get(id) ?? 0) + 1);
  }

  give(id: string): void {
    this.ranges.set(id, (this.ranges.get(id) ?? 1) - 1);
  }
}

export interface RangePlanSettings {
  /** Size of one range. */
  readonly rangeBytes: number;
  /** Ranges started ahead of the one being handed on. */
  readonly parallel: number;
  /** Ranges one holder is asked for at once (across downloads: see HolderLoad). */
  readonly perPeer: number;
  /** A range running longer than this (and twice the typical range time) is hedged. */
  readonly hedgeAfterMs: number;
}

/** planned: due, not asked of anyone yet (or every holder asked failed); in-flight: some holder is sending it. */
export type RangePhase = 'planned' | 'in-flight' | 'done';

interface RangeState {
  phase: RangePhase;
  /** Holders asked for this range (a busy one is taken off again: it may be asked once a slot frees). */
  readonly tried: Set<string>;
  /** Busy answers so far. */
  busy: number;
  /** Holders sending it now (two while it is hedged). */
  running: number;
}

export class RangePlan {
  private readonly ranges = new Map<number, RangeState>();
  /** Range count, once the first range told the blob's size. */
  private total: number | undefined;
  private size: number | undefined;
  /** The next range to plan. */
  private next = 0;
  /** How long ranges took, for what is typical. */
  private readonly durations: number[] = [];

  constructor(
    private readonly holders: readonly Provider[],
    /** The byte the download starts at (more than 0: the rest of a transfer that broke there). */
    private readonly from: number,
    private readonly s: RangePlanSettings,
    private readonly load: HolderLoad,
    /** Usable holders best first (PeerScores.rank). */
    private readonly rank: (holders: Provider[]) => Provider[],
  ) {}

  /** Plans the first range, which also tells the blob's size: its index. */
  head(): number {
    if (this.next !== 0) throw new Error('the first range is planned already');
    return this.plan();
  }

  /** The blob's size, as the first range came with it. */
  sized(size: number): void {
    this.size = size;
    this.total = Math.ceil((size - this.from) / this.s.rangeBytes);
  }

  /** Ranges in all (once sized). */
  get count(): number {
    if (this.total === undefined) throw new Error('the blob has no size yet');
    return this.total;
  }

  /** The bytes of range `index`; before the size is known it may reach past the blob's end. */
  range(index: number): ByteRange {
    const start = this.from + index * this.s.rangeBytes;
    const end = start + this.s.rangeBytes;
    return { start, end: (this.size === undefined ? end : Math.min(this.size, end)) - 1 };
  }

  /**
   * The next range to start while range `emitting` is the one being handed on, planned now; undefined
   * once `parallel` ranges run ahead of it (the window bounds the bytes held) or all are planned.
   */
  nextDue(emitting: number): number | undefined {
    if (this.next < this.count && this.next <= emitting + this.s.parallel) return this.plan();
    return undefined;
  }

  /** The holder to ask for the range now: untried for it, under its limit, least loaded, then best ranked. */
  pick(index: number): Provider | undefined {
    const { tried } = this.state(index);
    return this.rank(this.holders.filter((p) => !tried.has(p.id) && this.load.of(p.id) < this.s.perPeer)).sort((a, b) => this.load.of(a.id) - this.load.of(b.id))[0];
  }

  /**
   * A holder to ask for the range as well, while the one asked lags (the first copy wins): another
   * than those asked already; undefined when none is free.
   */
  hedge(index: number): Provider | undefined {
    return this.pick(index);
  }

  /** When pick() found none: whether to wait for a slot (untried holders are all at their limit) rather than give up. */
  worthWaiting(index: number): boolean {
    const { tried, busy } = this.state(index);
    return this.holders.some((p) => !tried.has(p.id)) && busy <= MAX_BUSY_ANSWERS;
  }

  /** How long the range may run before it counts as lagging: the setting, or twice the typical range time. */
  lagsAfterMs(): number {
    const d = this.durations;
    const typical = d.length ? d.slice().sort((a, b) => a - b)[Math.floor(d.length / 2)]! : 0;
    return Math.max(this.s.hedgeAfterMs, 2 * typical);
  }

  asked(index: number, holder: Provider): void {
    const r = this.state(index);
    r.tried.add(holder.id);
    r.running++;
    if (r.phase === 'planned') r.phase = 'in-flight';
    this.load.take(holder.id);
  }

  /** The holder sent the whole range in `ms`. */
  arrived(index: number, holder: Provider, ms: number): void {
    this.ended(index, holder).phase = 'done';
    this.durations.push(ms);
  }

  /**
   * The holder did not send the range (failed, lied, or was given up when another copy won). `busy`:
   * it is serving others, and may be asked again once a slot frees.
   */
  failed(index: number, holder: Provider, busy: boolean): void {
    const r = this.ended(index, holder);
    if (busy) {
      r.tried.delete(holder.id);
      r.busy++;
    }
    if (r.phase === 'in-flight' && r.running === 0) r.phase = 'planned';
  }

  phase(index: number): RangePhase | undefined {
    return this.ranges.get(index)?.phase;
  }

  private plan(): number {
    const index = this.next++;
    this.ranges.set(index, { phase: 'planned', tried: new Set(), busy: 0, running: 0 });
    return index;
  }

  private ended(index: number, holder: Provider): RangeState {
    const r = this.state(index);
    r.running--;
    this.load.give(holder.id);
    return r;
  }

  private state(index: number): RangeState {
    const r = this.ranges.get(index);
    if (!r) throw new Error(`range ${index} is not planned`);
    return r;
  }
}
