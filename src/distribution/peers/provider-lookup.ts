// Finding the nodes that hold a blob: a DHT walk with a short timeout, its answer reused for a while
// (a pull asks for many blobs at once, and a retry right after a failure should not walk again).
import type { Digest } from '../../oci/index.js';
import type { ContentRouter, Provider } from '../../p2p/index.js';
import type { FetcherSettings } from './peer-network.js';
import type { PeerScores } from './peer-scores.js';

/** After the first provider is found, how long a lookup goes on collecting others. */
const LOOKUP_GRACE_MS = 20;
/** Cached answers beyond this many are all dropped (a bound, not an eviction policy). */
const MAX_CACHED = 1000;

export class ProviderLookup {
  private readonly lookups = new Map<Digest, { at: number; providers: Provider[] }>();

  constructor(
    private readonly router: ContentRouter,
    private readonly scores: PeerScores,
    private readonly o: FetcherSettings,
  ) {}

  /** Providers of the digest, ranked; [] when none answer within the lookup timeout. */
  async providers(digest: Digest): Promise<Provider[]> {
    const cached = this.lookups.get(digest);
    if (cached && Date.now() - cached.at < this.o.lookupCacheMs) return this.scores.rank(cached.providers);
    const started = Date.now();
    const found = await this.walk(digest);
    this.o.onLookup?.(Date.now() - started, found.length);
    if (found.length > 0) {
      if (this.lookups.size > MAX_CACHED) this.lookups.clear();
      this.lookups.set(digest, { at: Date.now(), providers: found });
    }
    return this.scores.rank(found);
  }

  forget(digest: Digest): void {
    this.lookups.delete(digest);
  }

  /** The providers a DHT walk finds within the budget; a timed-out, cut-short or failed walk gives what it found. */
  private async walk(digest: Digest): Promise<Provider[]> {
    const found: Provider[] = [];
    // A walk can take tens of ms after the first provider turns up: give others a short grace, not the
    // whole walk, before the fetch starts.
    // One controller and plain timers: on Node 20 a signal from AbortSignal.any over AbortSignal.timeout
    // can be collected before it fires, and the lookup then never ended (the fuzzer found such a GET).
    const enough = new AbortController();
    const signal = enough.signal;
    const budget = setTimeout(() => enough.abort(new Error('lookup timeout')), this.o.lookupTimeoutMs);
    let grace: NodeJS.Timeout | undefined;
    try {
      // A node that just joined has no routing-table peer yet: wait for one within the same budget.
      await this.router.ready(this.o.lookupTimeoutMs);
      for await (const p of this.router.findProviders(digest, { signal, limit: this.o.maxProviders })) {
        found.push(p);
        grace ??= setTimeout(() => enough.abort(), LOOKUP_GRACE_MS);
      }
    } catch {
      // what was found is still the answer
    } finally {
      clearTimeout(budget);
      clearTimeout(grace);
    }
    return found;
  }
}
