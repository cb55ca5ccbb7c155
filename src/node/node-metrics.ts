// layerd's Prometheus metrics (layerd_*), in a registry of the node's own that libp2p's metrics join
// too. Most values are read from the node's counters at scrape time, so there is one set of numbers
// (NodeStats, the usage index) behind /api/status, the dashboard and /metrics alike.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeStats, Observations, Source } from '../distribution/index.js';

/** What the gauges read at scrape time from the subsystems built after the metrics (see collectFrom). */
export interface MetricSources {
  store: () => { bytes: number; blobs: number; maxBytes?: number };
  evictions: () => { count: number; bytes: number };
  connectedPeers: () => number;
  provides: () => { provides: number; failures: number };
  /** The connection watch's pings of silent connections, and the connections it closed (p2p/connection-watch.ts). */
  liveness: () => { probes: number; closed: number; timedOut: number };
}

type Read<T> = () => T;

/** A counter whose values, by labels, are read at scrape time. */
const counterOf = (registry: Registry) => (name: string, help: string, labelNames: string[], read: Read<Array<[Record<string, string>, number]>>) =>
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });

/** A gauge read at scrape time. */
const gaugeOf = (registry: Registry) => (name: string, help: string, read: Read<number>) =>
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });

/** How often the event-loop lag histogram takes a sample (see below). */
export const EVENT_LOOP_SAMPLE_MS = 10_000;

export class NodeMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly lookupSeconds: Histogram;

  /**
   * The metrics of the node's counters (NodeStats), ready for the subsystems built next: libp2p adds
   * its own to the registry. Lookups and requests come as observations (countFrom); what the
   * subsystems hold is read through collectFrom once they exist.
   */
  constructor(stats: NodeStats) {
    const registers = [this.registry];
    // The event-loop lag histogram samples once every 10 s, not every 10 ms (prom-client's default): each
    // sample is a wake-up of an otherwise idle process. At 10 ms its timer alone cost 4.5 ms of CPU per second
    // (0.45% of a core; layerd's idle target is 0.2%); at 1 s it was still two fifths of an idle node's CPU on
    // the loaded 2-core box (a wake-up cost 0.3-0.7 ms there: two nodes, `perf stat`, 27 → 13 ms per 40 s
    // without it). A stall of 10 s or more is always measured whole, a shorter one when it covers a sample;
    // nodejs_eventloop_lag_seconds is still measured at each scrape.
    collectDefaultMetrics({ register: this.registry, prefix: 'layerd_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    this.httpRequests = new Counter({ name: 'layerd_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['method', 'route', 'status'], registers });
    this.lookupSeconds = new Histogram({
      name: 'layerd_dht_lookup_seconds',
      help: 'DHT provider lookups: time to the answer',
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    const counter = counterOf(this.registry);
    const gauge = gaugeOf(this.registry);
    const fetchSources = ['peer', 'upstream'] as const;
    const sources: Source[] = ['local', 'peer', 'upstream'];
    counter('layerd_blob_fetches_total', 'Blobs fetched into the store, by source', ['source'], () => fetchSources.map((s) => [{ source: s }, stats.fetches[s].count]));
    counter('layerd_blob_fetched_bytes_total', 'Bytes of blobs fetched into the store, by source', ['source'], () => fetchSources.map((s) => [{ source: s }, stats.fetches[s].bytes]));
    counter('layerd_blob_served_total', 'Blob answers to clients, by where the bytes came from', ['source'], () => sources.map((s) => [{ source: s }, stats.served[s]]));
    counter('layerd_blob_served_bytes_total', 'Blob bytes sent to clients, by where they came from', ['source'], () => sources.map((s) => [{ source: s }, stats.servedBytes[s]]));
    counter('layerd_peer_uploaded_bytes_total', 'Bytes sent to peers over the blob protocol', [], () => [[{}, stats.uploadedToPeers]]);
    counter('layerd_single_flight_joins_total', 'Client requests that joined a download already running for the same blob', [], () => [[{}, stats.singleFlightJoins]]);
    gauge('layerd_cache_hit_ratio', 'Blob answers served from the local store, of all blob answers', () => stats.hitRatio);
    gauge('layerd_bytes_saved_vs_seed', 'Blob bytes clients got that this node did not fetch from a seed', () => stats.bytesSavedVsSeed);
  }

  /** Observes the lookups' times and the HTTP requests answered, from now on. */
  countFrom(observed: Observations): void {
    observed.on('lookup', (e) => this.lookupSeconds.observe(e.ms / 1000));
    observed.on('request', (e) => this.httpRequests.inc({ method: e.method, route: routeOf(e.url), status: String(e.status) }));
  }

  /** Gauges and counters of what the store, the disk keeper and the libp2p node hold, read at scrape time. */
  collectFrom(src: MetricSources): void {
    const counter = counterOf(this.registry);
    const gauge = gaugeOf(this.registry);
    counter('layerd_dht_provides_total', 'DHT provides made (announcements and re-announcements at start)', [], () => [[{}, src.provides().provides]]);
    counter('layerd_dht_provide_failures_total', 'DHT provides that failed', [], () => [[{}, src.provides().failures]]);
    counter('layerd_evictions_total', 'Blobs evicted to keep under the disk quota', [], () => [[{}, src.evictions().count]]);
    counter('layerd_evicted_bytes_total', 'Bytes evicted to keep under the disk quota', [], () => [[{}, src.evictions().bytes]]);
    counter('layerd_peer_probes_total', 'Pings sent by the connection watch: on busy connections silent for a while, and once as a connection opens or turns idle', [], () => [[{}, src.liveness().probes]]);
    counter('layerd_peer_silent_closes_total', 'Connections closed because their peer answered nothing (a host that vanished): a ping unanswered, or TCP timed out', [], () => { const { closed, timedOut } = src.liveness(); return [[{}, closed + timedOut]]; });
    gauge('layerd_peers_connected', 'Peers connected over libp2p', () => src.connectedPeers());
    gauge('layerd_store_bytes', 'Bytes of blobs held', () => src.store().bytes);
    gauge('layerd_store_blobs', 'Blobs held', () => src.store().blobs);
    gauge('layerd_store_max_bytes', 'The disk quota for blobs (0: none)', () => src.store().maxBytes ?? 0);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** The route a request counts under: coarse, so label values stay few. */
export function routeOf(url: string): string {
  const path = url.split('?')[0]!;
  if (path === '/v2' || path === '/v2/') return 'v2';
  if (path.startsWith('/v2/')) {
    if (path.endsWith('/_catalog')) return 'catalog';
    if (path.endsWith('/tags/list')) return 'tags';
    if (/\/manifests\/[^/]+$/.test(path)) return 'manifest';
    if (/\/blobs\/uploads\//.test(path)) return 'upload';
    if (/\/blobs\/[^/]+$/.test(path)) return 'blob';
    if (/\/referrers\/[^/]+$/.test(path)) return 'referrers';
    return 'v2-other';
  }
  if (path.startsWith('/api/')) return 'api';
  if (path === '/metrics' || path === '/healthz' || path === '/readyz') return path.slice(1);
  if (path === '/' || /^\/[\w.-]+\.(?:js|css)$/.test(path)) return 'dashboard';
  return 'other';
}
