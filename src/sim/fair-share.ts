// Rates for flows that share capacities (links each way, CPU), max-min fair: each resource splits what
// it has equally among the flows that want it, a flow held back elsewhere leaves its share to the rest.
// Solved by a few rounds of per-resource water-filling (each round a resource sees what the others
// allowed each flow in the round before), then scaled into every capacity, so the answer is always
// feasible and, for the few resources a flow crosses here, within a percent or so of the exact optimum.

/** One flow's use of a resource: `weight` units of the resource per byte (1 for a link, CPU s per byte). */
export interface Use {
  resource: number;
  weight: number;
}

export interface FairFlow {
  /** Resources this flow crosses. */
  uses: Use[];
  /** At most this many bytes per second, whatever the resources allow (Infinity: no own limit). */
  cap: number;
  /** The answer: bytes per second. */
  rate: number;
}

const ROUNDS = 4;

export class FairShare {
  /** Per resource, the flows on it (rebuilt when the set of flows changes). */
  private onResource: FairFlow[][] = [];
  private level: Float64Array;

  constructor(private readonly capacity: Float64Array) {
    this.level = new Float64Array(capacity.length);
  }

  /** The flows whose rates are to be found from now on (call again when flows come or go). */
  index(flows: readonly FairFlow[]): void {
    this.onResource = Array.from({ length: this.capacity.length }, () => []);
    for (const f of flows) for (const u of f.uses) this.onResource[u.resource]!.push(f);
  }

  /** Sets every flow's rate. */
  allocate(flows: readonly FairFlow[]): void {
    this.level.fill(Infinity);
    const next = new Float64Array(this.level.length);
    for (let round = 0; round < ROUNDS; round++) {
      for (let r = 0; r < this.capacity.length; r++) next[r] = this.waterLevel(r);
      this.level.set(next);
    }
    for (const f of flows) f.rate = this.allowed(f, -1);
    this.fitInto();
  }

  /** What the flow may take: its cap and every resource's level but `except`'s. */
  private allowed(f: FairFlow, except: number): number {
    let rate = f.cap;
    for (const u of f.uses) if (u.resource !== except && u.weight > 0) rate = Math.min(rate, this.level[u.resource]! / u.weight);
    return rate;
  }

  /** The share (in the resource's units) no flow on resource r may pass, given what the others allow. */
  private waterLevel(r: number): number {
    const flows = this.onResource[r]!;
    if (flows.length === 0) return Infinity;
    const wants: number[] = [];
    let sum = 0;
    for (const f of flows) {
      const w = f.uses.find((u) => u.resource === r)!.weight;
      const want = this.allowed(f, r) * w;
      wants.push(want);
      sum += want;
    }
    let left = this.capacity[r]!;
    // Not full: a level above every want, with the spare room on top (Infinity here made the rounds
    // swing between "no limit" and "full" when the wants summed to the capacity exactly).
    if (sum <= left) return Math.max(...wants) + (left - sum);
    wants.sort((a, b) => a - b);
    let n = wants.length;
    for (const want of wants) {
      if (want * n > left) return left / n;
      left -= want;
      n--;
    }
    return Infinity;
  }

  /** Rounds may not have settled: scale each over-used resource's flows down into it. */
  private fitInto(): void {
    for (let r = 0; r < this.capacity.length; r++) {
      const flows = this.onResource[r]!;
      let used = 0;
      for (const f of flows) used += f.rate * f.uses.find((u) => u.resource === r)!.weight;
      const cap = this.capacity[r]!;
      if (used <= cap * (1 + 1e-9)) continue;
      const k = cap / used;
      for (const f of flows) f.rate *= k;
    }
  }
}
