// What this node has learned about its peers as blob providers: how fast they were, how often they
// failed, and whether they sent bytes that did not verify. Ranking uses it; penalties fade with time,
// so a peer that recovers is tried again.
export interface PeerScoreOptions {
  /** How long a peer that sent bad bytes is avoided. */
  corruptPenaltyMs?: number;
  /** How long a failure counts against a peer. */
  failureMemoryMs?: number;
  /**
   * How long a peer that could not be dialled is left out (a host gone in a scale-down still has provider
   * records out for up to their lifetime: each lookup names it again).
   */
  unreachableMs?: number;
  now?: () => number;
}

interface Score {
  /** Bytes per millisecond, smoothed. */
  speed: number;
  failures: number[];
  corruptUntil: number;
  unreachableUntil: number;
}

export class PeerScores {
  private readonly scores = new Map<string, Score>();
  private readonly corruptPenaltyMs: number;
  private readonly failureMemoryMs: number;
  private readonly unreachableMs: number;
  private readonly now: () => number;

  constructor(opts: PeerScoreOptions = {}) {
    this.corruptPenaltyMs = opts.corruptPenaltyMs ?? 10 * 60_000;
    this.failureMemoryMs = opts.failureMemoryMs ?? 60_000;
    this.unreachableMs = opts.unreachableMs ?? 2 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  private score(id: string): Score {
    let s = this.scores.get(id);
    if (!s) this.scores.set(id, (s = { speed: 0, failures: [], corruptUntil: 0, unreachableUntil: 0 }));
    return s;
  }

  success(id: string, bytes: number, ms: number): void {
    const s = this.score(id);
    const speed = bytes / Math.max(1, ms);
    s.speed = s.speed === 0 ? speed : 0.7 * s.speed + 0.3 * speed;
    s.unreachableUntil = 0;
  }

  failure(id: string): void {
    this.score(id).failures.push(this.now());
  }

  corrupt(id: string): void {
    this.score(id).corruptUntil = this.now() + this.corruptPenaltyMs;
  }

  /**
   * A peer that took a place in a fetch chain and then never answered the node following it: avoided as
   * long as a corrupt one, so it can stall each of this node's pulls once, not once per blob.
   */
  unresponsive(id: string): void {
    this.corrupt(id);
  }

  /** A dial to the peer failed: it is left out of rankings for a while, so live holders are asked first. */
  unreachable(id: string): void {
    this.failure(id);
    this.score(id).unreachableUntil = this.now() + this.unreachableMs;
  }

  isUnreachable(id: string): boolean {
    return (this.scores.get(id)?.unreachableUntil ?? 0) > this.now();
  }

  /** Peers avoided right now. */
  banned(): string[] {
    const t = this.now();
    return [...this.scores].filter(([, s]) => s.corruptUntil > t).map(([id]) => id);
  }

  isBanned(id: string): boolean {
    return (this.scores.get(id)?.corruptUntil ?? 0) > this.now();
  }

  recentFailures(id: string): number {
    const s = this.scores.get(id);
    if (!s) return 0;
    const since = this.now() - this.failureMemoryMs;
    s.failures = s.failures.filter((t) => t > since);
    return s.failures.length;
  }

  /** Usable peers (not banned, not recently unreachable), best first: fewest recent failures, then fastest; unknown peers rank as average. */
  rank<T extends { id: string }>(peers: T[]): T[] {
    const known = peers.map((p) => this.scores.get(p.id)?.speed ?? 0).filter((v) => v > 0);
    const average = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
    return peers
      .filter((p) => !this.isBanned(p.id) && !this.isUnreachable(p.id))
      .map((p) => ({ p, f: this.recentFailures(p.id), v: this.scores.get(p.id)?.speed || average }))
      .sort((a, b) => a.f - b.f || b.v - a.v)
      .map((x) => x.p);
  }
}
