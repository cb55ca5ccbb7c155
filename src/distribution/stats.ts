// Counters a node keeps about where its bytes come from; /api/status shows them (and issue 6's
// Prometheus metrics will read the same numbers).
import type { Source } from './answers.js';

const LOOKUP_BUCKETS_MS = [5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000];

export class NodeStats {
  /** Blobs fetched into the store, and their bytes, by where they came from. */
  readonly fetches: Record<Exclude<Source, 'local'>, { count: number; bytes: number }> = { peer: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  /** Blob responses to clients by source. */
  readonly served: Record<Source, number> = { local: 0, peer: 0, upstream: 0 };
  readonly lookups = { count: 0, found: 0, totalMs: 0, buckets: LOOKUP_BUCKETS_MS.map((le) => ({ le, count: 0 })) };
  /** Bytes this node sent to peers over the blob protocol. */
  uploadedToPeers = 0;

  fetched(source: Source, bytes: number): void {
    if (source === 'local') return;
    this.fetches[source].count++;
    this.fetches[source].bytes += bytes;
  }

  lookup(ms: number, found: number): void {
    this.lookups.count++;
    if (found > 0) this.lookups.found++;
    this.lookups.totalMs += ms;
    for (const b of this.lookups.buckets) if (ms <= b.le) b.count++;
  }
}
