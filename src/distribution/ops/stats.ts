// Counters a node keeps about where its bytes come from and go to; /api/status shows them, /metrics
// exports them, and the dashboard draws them. Plain numbers, no I/O.
import type { Digest } from '../../oci/index.js';
import type { Source } from '../answers.js';
import type { Observations } from './observations.js';

const LOOKUP_BUCKETS_MS = [5, 10, 20, 50, 100, 250, 500, 1000, 2500, 5000];
/** Recent pulls kept for the dashboard and `layerd ls`. */
const RECENT_PULLS = 100;
/** Peers whose traffic is remembered; a new peer past this many makes the one seen first forgotten. */
const MAX_PEERS_TRACKED = 1000;

/** One client request for a manifest or blob, as the dashboard lists it. */
export interface PullEvent {
  at: string;
  kind: 'manifest' | 'blob';
  /** The registry the request meant (its ?ns=, else the default), or "local" for content pushed here. */
  registry: string;
  repository: string;
  /** The tag or digest asked for. */
  reference: string;
  digest: Digest;
  size: number;
  source: Source;
}

export interface PeerTraffic {
  /** Bytes this node sent the peer over the blob protocol. */
  uploaded: number;
  /** Bytes this node fetched from the peer. */
  downloaded: number;
}

/**
 * The counters as /api/status shows them (NodeStats' JSON form): the class's own fields, picked, so that a
 * counter's type is written once.
 */
export type StatsSnapshot = Pick<
  NodeStats,
  'fetches' | 'served' | 'servedBytes' | 'lookups' | 'uploadedToPeers' | 'singleFlightJoins' | 'hitRatio' | 'bytesSavedVsSeed'
>;

export class NodeStats {
  /** Blobs fetched into the store, and their bytes, by where they came from. */
  readonly fetches: Record<Exclude<Source, 'local'>, { count: number; bytes: number }> = { peer: { count: 0, bytes: 0 }, upstream: { count: 0, bytes: 0 } };
  /** Blob responses to clients (GET and HEAD) by source. */
  readonly served: Record<Source, number> = { local: 0, peer: 0, upstream: 0 };
  /** Blob body bytes sent to clients by the source of the answer. */
  readonly servedBytes: Record<Source, number> = { local: 0, peer: 0, upstream: 0 };
  readonly lookups = { count: 0, found: 0, totalMs: 0, buckets: LOOKUP_BUCKETS_MS.map((le) => ({ le, count: 0 })) };
  /** Bytes this node sent to peers over the blob protocol. */
  uploadedToPeers = 0;
  /** Clients that joined a download already running for the same blob instead of starting one. */
  singleFlightJoins = 0;
  readonly peers = new Map<string, PeerTraffic>();
  private readonly pulls: PullEvent[] = [];

  /** Counts what the node observes, from now on. */
  countFrom(observed: Observations): void {
    observed.on('lookup', (e) => this.lookup(e.ms, e.found));
    observed.on('peer-download', (e) => this.downloaded(e.peer, e.bytes));
    observed.on('peer-upload', (e) => this.uploaded(e.peer, e.bytes));
    observed.on('single-flight-join', () => this.singleFlightJoins++);
    observed.on('fetched', (e) => this.fetched(e.source, e.size));
    observed.on('blob-served', (e) => this.blobServed(e.source, e.bytes));
    observed.on('pulled', (e) => this.pulled(e));
  }

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

  uploaded(peer: string, bytes: number): void {
    this.uploadedToPeers += bytes;
    this.peer(peer).uploaded += bytes;
  }

  downloaded(peer: string, bytes: number): void {
    this.peer(peer).downloaded += bytes;
  }

  private peer(id: string): PeerTraffic {
    let t = this.peers.get(id);
    if (!t) {
      if (this.peers.size >= MAX_PEERS_TRACKED) this.peers.delete(this.peers.keys().next().value!);
      this.peers.set(id, (t = { uploaded: 0, downloaded: 0 }));
    }
    return t;
  }

  /** A blob answer to a client; `bytes` is what its body carries (0 for a HEAD). */
  blobServed(source: Source, bytes: number): void {
    this.served[source]++;
    this.servedBytes[source] += bytes;
  }

  pulled(event: Omit<PullEvent, 'at'>): void {
    this.pulls.push({ at: new Date().toISOString(), ...event });
    if (this.pulls.length > RECENT_PULLS) this.pulls.shift();
  }

  /** Newest first. */
  recentPulls(): PullEvent[] {
    return [...this.pulls].reverse();
  }

  /** Blob answers served from this node's own store, of all blob answers (0 before any). */
  get hitRatio(): number {
    const total = this.served.local + this.served.peer + this.served.upstream;
    return total === 0 ? 0 : this.served.local / total;
  }

  /** Blob bytes clients got that this node did not fetch from a seed: what the seeds were spared. */
  get bytesSavedVsSeed(): number {
    const sent = this.servedBytes.local + this.servedBytes.peer + this.servedBytes.upstream;
    return Math.max(0, sent - this.fetches.upstream.bytes);
  }

  toJSON(): StatsSnapshot {
    return {
      fetches: this.fetches,
      served: this.served,
      servedBytes: this.servedBytes,
      lookups: this.lookups,
      uploadedToPeers: this.uploadedToPeers,
      singleFlightJoins: this.singleFlightJoins,
      hitRatio: this.hitRatio,
      bytesSavedVsSeed: this.bytesSavedVsSeed,
    };
  }
}
