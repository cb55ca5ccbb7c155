// DHT requests counted per host per second: what each host sends (kept as it goes: the simulator runs
// one host's schedule at a time, in time order) and what each receives (a per-second table over one
// window, as receipts come from every host's run in turn).

export interface RateSummary {
  /** Requests per host per second over the window, averaged over hosts. */
  meanPerSecond: number;
  /** The busiest second of any host. */
  maxPerSecond: number;
  /** The busiest second, averaged over hosts (a typical host's worst second). */
  meanMaxPerSecond: number;
  total: number;
}

export class TrafficWindow {
  private readonly received: Uint16Array;
  private readonly seconds: number;
  private readonly sent: Array<{ sec: number; n: number; max: number; total: number }>;

  constructor(
    readonly hosts: number,
    /** Window start and end, virtual ms. */
    readonly fromMs: number,
    readonly toMs: number,
    /** Count receipts (a hosts × seconds table). */
    readonly withReceived = true,
  ) {
    this.seconds = Math.ceil((toMs - fromMs) / 1000);
    this.received = new Uint16Array(withReceived ? hosts * this.seconds : 0);
    this.sent = Array.from({ length: hosts }, () => ({ sec: -1, n: 0, max: 0, total: 0 }));
  }

  request(from: number, to: number, atMs: number): void {
    if (atMs < this.fromMs || atMs >= this.toMs) return;
    const sec = Math.floor((atMs - this.fromMs) / 1000);
    const s = this.sent[from]!;
    if (sec !== s.sec) {
      s.sec = sec;
      s.n = 0;
    }
    s.n++;
    s.total++;
    if (s.n > s.max) s.max = s.n;
    if (this.withReceived) {
      const at = to * this.seconds + sec;
      if (this.received[at]! < 0xffff) this.received[at]!++;
    }
  }

  sentSummary(hosts?: Iterable<number>): RateSummary {
    const picked = hosts ? [...hosts].map((h) => this.sent[h]!) : this.sent;
    return summarise(
      picked.map((s) => s.total),
      picked.map((s) => s.max),
      this.seconds,
    );
  }

  receivedSummary(): RateSummary {
    const totals: number[] = [];
    const maxes: number[] = [];
    for (let h = 0; h < this.hosts; h++) {
      let total = 0;
      let max = 0;
      for (let s = h * this.seconds, end = s + this.seconds; s < end; s++) {
        const n = this.received[s]!;
        total += n;
        if (n > max) max = n;
      }
      totals.push(total);
      maxes.push(max);
    }
    return summarise(totals, maxes, this.seconds);
  }
}

function summarise(totals: number[], maxes: number[], seconds: number): RateSummary {
  const total = totals.reduce((a, b) => a + b, 0);
  const n = Math.max(1, totals.length);
  return {
    meanPerSecond: total / n / seconds,
    maxPerSecond: Math.max(0, ...maxes),
    meanMaxPerSecond: maxes.reduce((a, b) => a + b, 0) / n,
    total,
  };
}
