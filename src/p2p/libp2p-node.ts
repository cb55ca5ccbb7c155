// The libp2p node inside every `layerd serve` that has --p2p-listen: TCP, noise, yamux, identify,
// ping, and a Kademlia DHT of layerd's own; optionally a pre-shared-key private network (@libp2p/pnet,
// applied to every connection before anything else is said) and an allow-list of peer ids. The settings
// below each answer a trap measured with js-libp2p 3 / kad-dht 16:
//  - kad-dht stays a client (answers no queries) unless clientMode is false: every node must serve;
//  - its default peer-info mapper drops private and loopback addresses, leaving a LAN cluster's routing
//    table empty: the passthrough mapper keeps them;
//  - its own protocol prefix keeps it off the public IPFS DHT;
//  - queries do not wait for the first self-query, which runs a random few seconds after start (below);
//  - its routing table takes in only peers connected to this node, never dialling one to ping it
//    (routing-table-contacts.ts).
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { bootstrap } from '@libp2p/bootstrap';
import { identify } from '@libp2p/identify';
import type { preSharedKey } from '@libp2p/pnet';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht';
import { ping } from '@libp2p/ping';
import { prometheusMetrics } from '@libp2p/prometheus-metrics';
import type { Registry } from 'prom-client';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { allowListGater, type RefusedPeer } from './allow-list.js';
import { connectionWatch, type ConnectionWatch, type SilentPeer } from './connection-watch.js';
import { IDLE_KEEPALIVE } from './liveness.js';
import { admitConnectedContactsOnly } from './routing-table-contacts.js';
import type { SwarmKey } from './swarm-key.js';
import { quietLogger } from './quiet-logger.js';

export const DHT_PROTOCOL = '/layerd/kad/1.0.0';
/** The largest receive window a yamux stream of this node grows to (see createP2PNode). */
export const YAMUX_MAX_WINDOW = 4 * 1024 * 1024;

export interface P2PNodeOptions {
  privateKey: PrivateKey;
  listen: string[];
  announce: string[];
  bootstrap: string[];
  /** How long a provider record is valid (this node re-provides at about half of it: DhtContentRouter). */
  providerTtlMs: number;
  /** Where libp2p's own Prometheus metrics go (the node's /metrics). */
  metricsRegistry?: Registry;
  /** A private network: every connection is encrypted with this key first, so peers without it never get in. */
  swarmKey?: SwarmKey;
  /** When given, the only peers this node connects to, either way. */
  allowPeers?: string[];
  onRefused?: (refused: RefusedPeer) => void;
  /** A redial of a bootstrap peer failed (e.g. it has another swarm key, or refused this node). */
  onBootstrapDialFailed?: (addr: string, reason: string) => void;
  /** A connection was closed because its peer fell silent (a host that vanished: see liveness.ts). */
  onSilentPeer?: (silent: SilentPeer) => void;
  /** Start at once (default), or leave it to the caller's start() (a node starts its subsystems in order). */
  start?: boolean;
}

/** How often the DHT walks for its own id and refreshes its routing table's buckets once started. */
export const DHT_MAINTENANCE_MS = 30 * 60_000;
/** How often the DHT re-tags its closest peers (kept connected) from what its table learnt. */
export const CLOSEST_PEER_TAGS_MS = 60_000;
/**
 * Every libp2p TCP socket, either way: the kernel's keep-alive watches an idle connection (liveness.ts), and
 * @libp2p/tcp's inactivity timeout is off. That timeout closed a connection after 2 minutes without a byte,
 * so idle connections had to be pinged to stay open (a ping per connection per 45 s, waking both ends), and
 * an idle peer would otherwise drop out of the connected peers that claims and rollouts choose from. Node
 * also keeps no timer per socket for it then.
 */
export const TCP_OPTIONS = {
  inboundSocketInactivityTimeout: 0,
  outboundSocketInactivityTimeout: 0,
  dialOpts: { keepAlive: true, keepAliveInitialDelay: IDLE_KEEPALIVE.idleMs },
  listenOpts: { keepAlive: true, keepAliveInitialDelay: IDLE_KEEPALIVE.idleMs },
} as const;
export type LayerdLibp2p = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown; watch: ConnectionWatch }>;

/**
 * The connection protector of a private network. @libp2p/pnet is loaded only then: its xsalsa20 compiles a
 * WebAssembly module as it loads (V8's wasm compiler paged in, and its code), memory a node without a swarm key
 * would hold for nothing.
 */
async function privateNetwork(key: SwarmKey): Promise<ReturnType<typeof preSharedKey>> {
  const pnet = await import('@libp2p/pnet');
  return pnet.preSharedKey({ psk: key.fileBytes() });
}

export async function createP2PNode(opts: P2PNodeOptions): Promise<LayerdLibp2p> {
  const logger = quietLogger();
  const connectionProtector = opts.swarmKey ? await privateNetwork(opts.swarmKey) : undefined;
  const node = await createLibp2p({
    start: false, // the DHT's timers are set first (below)
    ...(logger ? { logger } : {}),
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen, announce: opts.announce },
    transports: [tcp(TCP_OPTIONS)],
    ...(opts.metricsRegistry ? { metrics: prometheusMetrics({ registry: opts.metricsRegistry, collectDefaultMetrics: false, preserveExistingMetrics: true }) } : {}),
    ...(connectionProtector ? { connectionProtector } : {}),
    ...(opts.allowPeers && opts.allowPeers.length > 0 ? { connectionGater: allowListGater(opts.allowPeers, opts.onRefused) } : {}),
    connectionEncrypters: [noise()],
    // A stream's receive window grows to 4 MiB, not yamux's 16: on the bare stack (p2p-raw-peer.mjs,
    // LAYERD_BENCH_YAMUX) the receiver then spent ~3.4 CPU s/GiB instead of ~4.7 at the same speed, and
    // 64 MiB cost ~1.8x. Only what this node grants its senders changes (window updates), so nodes with
    // other settings still interoperate; 4 MiB per stream still fills ~200 MB/s at a 20 ms round trip.
    // No yamux keep-alive: it pinged every connection from both sides on a timer each, and never closed one
    // whose ping went unanswered. The connection watch (services.watch) pings only a busy connection that
    // has been silent, and closes it when nothing answers; idle ones are the kernel's (TCP_OPTIONS).
    streamMuxers: [yamux({ enableKeepAlive: false, streamOptions: { maxStreamWindowSize: YAMUX_MAX_WINDOW } })],
    // Dial bootstrap peers at once: a joining node is useful only once it has a routing-table peer.
    peerDiscovery: opts.bootstrap.length > 0 ? [bootstrap({ list: opts.bootstrap, timeout: 0 })] : [],
    // A cluster starts all its nodes at once (a DaemonSet rollout): libp2p's default of 5 inbound
    // connections per host per second left later nodes isolated for good.
    connectionManager: { maxConnections: 512, inboundConnectionThreshold: 1_000, maxIncomingPendingConnections: 256 },
    // No connection monitor: it opened a ping stream on every connection every 10 s (multistream-select,
    // 32 bytes each way, close: ~10 noise frames a ping, so an idle node's traffic grew with its peers), and
    // it never closed a connection whose ping failed: a ping that misses its deadline on a loaded host must
    // not abort every blob transfer on it. A peer whose process dies is seen at once (its kernel closes the
    // socket); a host that vanishes without closing anything is the connection watch's (services.watch).
    connectionMonitor: { enabled: false },
    services: {
      watch: connectionWatch({ onSilent: opts.onSilentPeer }),
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        // The self-query is how a joiner meets the rest of the cluster (its walk dials ~20 peers and they
        // dial it back): in a 32-node cluster started at once that mesh was ~2/3 of a node's start-up CPU
        // (~1.9 of 2.9 CPU s: 30 connections, each a noise handshake, identify and kad answers), all in the
        // same seconds, so nodes that were ready answered /readyz only once the mesh had formed. Each node
        // walks at its own random moment instead, and queries do not wait for it (queriesSkipFirstSelfQuery):
        // a lookup starts from the bootstrap peer, which knows the cluster. A routing-table peer is still
        // waited for (allowQueryWithZeroPeers, and DhtContentRouter.ready before a lookup).
        initialQuerySelfInterval: firstSelfQueryDelay(),
        // After the first self-queries, a LAN cluster's table changes by joins (a joiner's own self-query
        // puts it in its neighbours' tables) more than by drift: walk for self every 30 min, not 5.
        querySelfInterval: DHT_MAINTENANCE_MS,
        allowQueryWithZeroPeers: false,
        providers: { provideValidity: Math.round(opts.providerTtlMs / 1000) },
        // Provides and re-provides are DhtContentRouter's own (a region sweep sending ADD_PROVIDER itself),
        // which refreshes this node's own record of each key at every announcement (at least every 1.5
        // intervals, i.e. 3/4 of the record's life). kad-dht's reprovider redoes own records older than 7/8
        // of their life, one at a time: a safety net for keys the sweep failed to announce for long. It is
        // also the only expiry js kad-dht has: every `interval` it deletes the records other nodes stored
        // here once older than `validity`.
        reprovide: { validity: opts.providerTtlMs, threshold: Math.round(opts.providerTtlMs / 8), interval: Math.min(3_600_000, Math.round(opts.providerTtlMs / 4)), concurrency: 1 },
      }),
    },
  });
  const layerd = node as unknown as LayerdLibp2p;
  slowDhtMaintenance(layerd.services.dht, DHT_MAINTENANCE_MS, CLOSEST_PEER_TAGS_MS);
  deferFirstTableRefresh(layerd.services.dht, firstTableRefreshDelay);
  queriesSkipFirstSelfQuery(layerd.services.dht);
  admitConnectedContactsOnly(layerd.services.dht, (peer) => layerd.getConnections(peer).some((c) => c.status === 'open'));
  redialBootstrapWhileAlone(layerd, opts.bootstrap, opts.onBootstrapDialFailed);
  if (opts.start ?? true) await layerd.start();
  return layerd;
}

/**
 * libp2p's bootstrap module dials once; a node whose first dials failed (its peers not up yet) would
 * stay alone. While it has no open connection, dial the bootstrap list again every few seconds. Driven
 * by connections opening and closing: a connected node runs no timer for it.
 */
function redialBootstrapWhileAlone(node: LayerdLibp2p, list: string[], onFailed?: (addr: string, reason: string) => void, everyMs = 3_000): void {
  if (list.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  // A closing connection may still be listed when its close event is dispatched.
  const alone = () => !node.getConnections().some((c) => c.status === 'open');
  const stopRedialing = () => {
    clearInterval(timer);
    timer = undefined;
  };
  const redialWhileAlone = () => {
    if (timer !== undefined || node.status !== 'started' || !alone()) return;
    timer = setInterval(() => {
      if (node.status !== 'started' || !alone()) return stopRedialing();
      for (const addr of list) void node.dial(multiaddr(addr)).catch((err: Error) => onFailed?.(addr, err.message));
    }, everyMs);
    timer.unref();
  };
  node.addEventListener('start', redialWhileAlone);
  node.addEventListener('connection:close', redialWhileAlone);
  node.addEventListener('connection:open', stopRedialing);
  node.addEventListener('stop', stopRedialing);
  redialWhileAlone();
}

/** The first self-query's window after start: late enough that a cluster's nodes are up before they mesh. */
export const FIRST_SELF_QUERY_MS = { min: 5_000, max: 30_000 };

/** When a node's first self-query runs: at a random moment of FIRST_SELF_QUERY_MS, so joins do not walk at once. */
export function firstSelfQueryDelay(random: () => number = Math.random): number {
  return Math.round(FIRST_SELF_QUERY_MS.min + (FIRST_SELF_QUERY_MS.max - FIRST_SELF_QUERY_MS.min) * random());
}

interface DhtQueryManager {
  queryManager?: { initialQuerySelfHasRun?: { resolve?: unknown } };
}

/**
 * kad-dht holds every query until the first self-query has run (a promise its query manager awaits; its
 * allowQueryWithZeroPeers option resolves it at once, but also lets a query run with an empty routing
 * table). Resolved here, so a lookup goes as soon as the table has a peer. Returns whether kad-dht still
 * has the field (a unit test checks it).
 */
export function queriesSkipFirstSelfQuery(dht: unknown): boolean {
  const pending = (dht as DhtQueryManager).queryManager?.initialQuerySelfHasRun;
  if (typeof pending?.resolve !== 'function') return false;
  (pending.resolve as () => void)();
  return true;
}

/**
 * When a node's first refresh of its routing table's buckets runs: at a random moment of the second half of
 * the first maintenance interval, so the nodes of a cluster started together do not all walk at once.
 */
export function firstTableRefreshDelay(random: () => number = Math.random): number {
  return Math.round(DHT_MAINTENANCE_MS * (0.5 + random() / 2));
}

interface DhtTableRefresh {
  routingTableRefresh?: { afterStart?: unknown; refreshTable?: unknown; refreshTimeoutId?: unknown };
}

/**
 * kad-dht refreshes every bucket of its routing table as it starts: a random walk per bucket, which on an
 * empty table is one walk, run as soon as the first peer is in, right after the self-query. The self-query
 * is what makes a joining node known to its neighbours and is kept; the bucket walk only widens the table
 * (its target is in the other half of the keyspace), and in a cluster started at once every node's walk
 * lands in the same seconds as the self-queries, each dial a noise handshake and an identify on both sides.
 * That first walk is moved to `delayMs()` after start; later ones follow every refresh interval as before.
 * The timer is kept where kad-dht keeps its own (refreshTimeoutId), so its stop() clears it. Returns
 * whether kad-dht still has the fields (a unit test checks it, so an upgrade that renames them fails there).
 */
export function deferFirstTableRefresh(dht: unknown, delayMs: () => number): boolean {
  const refresh = (dht as DhtTableRefresh).routingTableRefresh;
  if (refresh === undefined || typeof refresh.afterStart !== 'function' || typeof refresh.refreshTable !== 'function') return false;
  const refreshTable = refresh.refreshTable.bind(refresh) as (force: boolean) => void;
  refresh.afterStart = async () => {
    const timer = setTimeout(() => refreshTable(true), delayMs());
    timer.unref();
    refresh.refreshTimeoutId = timer;
  };
  return true;
}

interface DhtTimers {
  routingTableRefresh?: { refreshInterval?: unknown };
  routingTable?: { closestPeerTagger?: { refreshInterval?: unknown } };
}

/**
 * Two kad-dht timers take no option, so they are set here, on the fields they are read from, before the
 * DHT starts: the refresh of every routing-table bucket (every 5 minutes: a walk per bucket, ~6 walks at
 * 32 nodes of a few dozen requests each, and as many answered for the others' walks) goes to `refreshMs`;
 * the tagging of the closest peers (every 5 s: set differences of peer ids, most of an idle node's
 * JavaScript once pings were gone) to `tagMs`. Returns whether both were found (a unit test checks it, so
 * an upgrade that renames them fails there).
 */
export function slowDhtMaintenance(dht: unknown, refreshMs: number, tagMs: number): boolean {
  const { routingTableRefresh, routingTable } = dht as DhtTimers;
  const tagger = routingTable?.closestPeerTagger;
  if (typeof routingTableRefresh?.refreshInterval !== 'number' || typeof tagger?.refreshInterval !== 'number') return false;
  routingTableRefresh.refreshInterval = refreshMs;
  tagger.refreshInterval = tagMs;
  return true;
}
