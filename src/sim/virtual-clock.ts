// Virtual time for the simulator: timers fire in order of their due time (ties in the order they were
// set), and time jumps from one timer to the next, so an hour of a cluster runs in however long its
// events take to compute. It is the Clock seam's twin (now, sleep) as well, so policy code that waits
// on a clock runs on it unchanged.
import { MinHeap } from '../p2p/index.js';

export interface Timer {
  cancel(): void;
}

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock {
  private t: number;
  private seq = 0;
  /** Timers by (at, seq). */
  private readonly heap = new MinHeap<Entry>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  /** Events run so far. */
  fired = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Runs `fn` `ms` from now (at once, after what is already due now, when ms ≤ 0). */
  after(ms: number, fn: () => void): Timer {
    const entry: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.heap.push(entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** When the next timer is due (Infinity: none). */
  nextAt(): number {
    while (this.heap.peek()?.cancelled) this.heap.pop();
    return this.heap.peek()?.at ?? Infinity;
  }

  /**
   * Moves time on to `to` with nothing run (a time-stepped model between timers); refused if a timer is
   * due before `to`, which would then run late.
   */
  advance(to: number): void {
    if (this.nextAt() < to) throw new Error(`a timer is due at ${this.nextAt()}, before ${to}`);
    if (to > this.t) this.t = to;
  }

  /** Timers still due (cancelled ones may be counted until they reach the top). */
  get pending(): number {
    return this.heap.size;
  }

  /**
   * Runs timers in order until none is left, virtual time passes `until`, or `stop()` says so. Between
   * timers it lets the microtask queue drain (a real event loop turn), so async policy code that awaits
   * a timer's promise runs before the next timer fires.
   */
  async run(opts: { until?: number; stop?: () => boolean } = {}): Promise<void> {
    const until = opts.until ?? Infinity;
    for (;;) {
      if (opts.stop?.()) return;
      const next = this.pop(until);
      if (!next) {
        // Work the microtasks may still schedule (a promise chain that sets a timer) before deciding it is over.
        await turn();
        const first = this.heap.peek();
        if (!first || first.at > until) return;
        continue;
      }
      this.t = next.at;
      this.fired++;
      next.fn();
      await turn();
    }
  }

  private pop(until: number): Entry | undefined {
    for (let top = this.heap.peek(); top && top.at <= until; top = this.heap.peek()) {
      this.heap.pop();
      if (!top.cancelled) return top;
    }
    return undefined;
  }
}

/** One macrotask turn: every microtask queued so far (and those they queue) runs first. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
