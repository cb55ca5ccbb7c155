// The node's peer-to-peer side, when --p2p-listen is given: the libp2p node, content routing over the
// DHT, fetch claims and the fetcher that downloads from peers. The blob and rollout protocols serve
// what distribution holds, so they are built with it (distribution.ts).
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { PeerFetcher, PeerScores, type Observations } from '../distribution/index.js';
import { DhtContentRouter, FetchClaims, MEET_MAX_NODES, PeerAccess, RolloutTransport, createP2PNode, fetchFromPeer, loadOrCreateIdentity, scheduleMeeting, type LayerdLibp2p } from '../p2p/index.js';
import { collectFully } from './full-collection.js';
import type { Service } from './lifecycle.js';
import { StripeRoutes } from './stripe-routes.js';
import type { Registry } from 'prom-client';

export interface P2P {
  libp2p: LayerdLibp2p;
  router: DhtContentRouter;
  fetcher: PeerFetcher;
  /** Sends rollouts to peers; answers them once the rollout protocol starts (distribution.ts). */
  rollouts: RolloutTransport;
  /** Who fetches a blob nodes miss together: claims, or a rollout's order (p2p/fetch-claims.ts). */
  claims: FetchClaims;
  /** The blobs striped rollouts here take by stripes, for the fetcher. */
  stripes: StripeRoutes;
  access: PeerAccess;
  /** The ids of the peers connected now. */
  connectedPeers(): string[];
  /** The libp2p node, then the claim protocol on it. */
  services: Service[];
}

/**
 * How long a dial to a provider may take: LAN dials take milliseconds, and a provider gone in a scale-down
 * must not hold a fetch for libp2p's 10 s before live holders are asked. Not less: on a 2-core box running
 * 32 nodes a handshake took seconds, and a live peer whose dial times out is left out for 2 minutes.
 */
const PEER_DIAL_TIMEOUT_MS = 5_000;

/** `metricsRegistry`: where libp2p's own metrics go (the node's /metrics), when config.libp2pMetrics is on. */
export async function createP2P(config: Config, dataDir: string, observed: Observations, metricsRegistry: Registry, logger: Logger): Promise<P2P> {
  const privateKey = await loadOrCreateIdentity(join(dataDir, 'p2p', 'identity.key'));
  const log = logger.child({ component: 'p2p' });
  const access = new PeerAccess({ keyFile: config.pskFile, allowPeers: config.allowPeer, bootstrap: config.bootstrap }, log);
  const scores = new PeerScores();
  const libp2p = await createP2PNode({
    start: false,
    privateKey,
    listen: config.p2pListen,
    announce: config.announce,
    bootstrap: config.bootstrap,
    providerTtlMs: 2 * config.reprovideInterval,
    // Off by default: @libp2p/prometheus-metrics registers ~100 metrics at start and counts every connection,
    // stream and byte, ~5% of a lone node's start and ~12% of the CPU a node spends meeting a 32-node cluster.
    metricsRegistry: config.libp2pMetrics ? metricsRegistry : undefined,
    swarmKey: config.pskFile?.key,
    allowPeers: config.allowPeer,
    onRefused: (r) => access.refused(r),
    onBootstrapDialFailed: (addr, reason) => access.bootstrapDialFailed(addr, reason),
    // A vanished host's provider records live on: one that failed us while we waited on it is left out of
    // rankings as one whose dial failed. An idle one only loses its connection: if it is gone the next dial
    // says so within 5 s, and if it was only starved (seen on a full 2-core box) it is not shunned for minutes.
    onSilentPeer: (silent) => {
      if (silent.busy) scores.unreachable(silent.peer);
      const why = silent.by === 'ping' ? 'a ping unanswered' : 'TCP timed out: keep-alive or retransmissions unanswered';
      log.warn(silent, silent.busy ? `a peer fell silent (${why}): its connection closed, the peer left out of rankings` : `a peer fell silent (${why}): its idle connection closed`);
    },
  });
  const router = new DhtContentRouter(libp2p, { log, expectPeers: config.bootstrap.length > 0, reprovideIntervalMs: config.reprovideInterval });
  const claims = new FetchClaims(libp2p, { log, maxInboundStreams: config.maxStreamsPerPeer });
  const stripes = new StripeRoutes();
  const fetcher = new PeerFetcher(
    {
      router,
      fetch: (peer, digest, range, signal) => fetchFromPeer(libp2p, peer, digest, range, signal, { idleTimeoutMs: config.peerIdleTimeout, dialTimeoutMs: PEER_DIAL_TIMEOUT_MS }),
      whoFetches: (digest, failed) => claims.whoFetches(digest, failed),
      // Once the DHT knows: see DhtContentRouter.announced (provides are paced, a pull's layers queue).
      releaseClaim: (digest) => router.announced(digest).then(() => claims.release(digest)),
      headsOrder: (digest) => claims.headsOrder(digest),
      stripeRoute: (digest) => stripes.get(digest),
    },
    scores,
    {
      lookupTimeoutMs: config.peerLookupTimeout,
      onLookup: (ms, found) => observed.emit('lookup', { ms, found }),
      onRangeFetched: (peer, bytes) => observed.emit('peer-download', { peer, bytes }),
      log,
    },
  );
  const node: Service = {
    name: 'libp2p',
    async start() {
      await libp2p.start(); // a start that fails stops what it started (libp2p does)
      logger.info({ peerId: libp2p.peerId.toString(), multiaddrs: libp2p.getMultiaddrs().map((a) => a.toString()), ...access.summary() }, 'p2p started');
    },
    stop: async () => libp2p.stop(),
  };
  const claimProtocol: Service = { name: 'claim protocol', start: () => claims.start(), stop: () => claims.stop() };
  const rollouts = new RolloutTransport(libp2p, { maxInboundStreams: config.maxStreamsPerPeer });
  return {
    libp2p,
    router,
    fetcher,
    access,
    claims,
    stripes,
    rollouts,
    connectedPeers: () => [...new Set(libp2p.getConnections().map((c) => c.remotePeer.toString()))],
    services: [node, claimProtocol, clusterMeeting(rollouts)],
  };
}

/** The node's one meeting of the cluster (p2p/cluster-meeting.ts), then a full collection. */
function clusterMeeting(rollouts: RolloutTransport): Service {
  let cancel = () => undefined as void;
  return {
    name: 'cluster meeting',
    start: async () => {
      cancel = scheduleMeeting(async () => {
        await rollouts.cluster({ maxNodes: MEET_MAX_NODES });
        // A connection to every node is start-up garbage too, made after the start-up collection ran (20-50 s
        // in, against its 30 s): 3 of 32 idle nodes stayed at 96-101 MiB without this one.
        collectFully();
      });
    },
    stop: async () => cancel(),
  };
}
