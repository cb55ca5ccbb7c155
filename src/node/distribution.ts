// The node's distribution: the registry for pushes, the mirror of the seeds (through peers when P2P is
// on), the rollouts, and the two protocols that serve them to peers: blobs and rollouts.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { Distribution, Mirror, MirrorListings, LocalRegistry, Rollouts, UploadSessions, progressFrom, repointFrom, specFrom, type BlobSharing, type Observations, type RepositoryVisibility } from '../distribution/index.js';
import { BlobServer, UploadThrottle, storeLookup, type BlobLookup } from '../p2p/index.js';
import { HttpSeedRegistry } from '../seed/index.js';
import { USER_AGENT } from '../version.js';
import type { Service } from './lifecycle.js';
import type { P2P } from './p2p.js';
import { relayWhileRolloutFetches } from './relay.js';
import { JsonRecordsJournal, rolloutNetwork } from './rollout-network.js';
import type { Storage } from './storage.js';

export interface DistributionDeps {
  storage: Storage;
  sharing: BlobSharing;
  visibility: RepositoryVisibility;
  p2p: P2P | undefined;
  observed: Observations;
  logger: Logger;
}

export interface NodeDistribution {
  distribution: Distribution;
  rollouts: Rollouts;
  /** The seeds' names, as configured. */
  seeds: string[];
  /** Closes the seed clients (nothing to start): first in the order, so stopped last. */
  seedClients: Service;
  /** The blob and rollout protocols (none with P2P off). */
  protocols: Service[];
  /** Resumes the rollouts a restart interrupted; stops every rollout running here. */
  rolloutRuns: Service;
}

export function createDistribution(config: Config, deps: DistributionDeps): NodeDistribution {
  const { storage, sharing, visibility, p2p, observed, logger } = deps;
  const { tracked, repos, cacheFor } = storage;
  const registry = new LocalRegistry(tracked, repos, {
    guard: tracked.guard,
    maxUploadBytes: config.maxUploadBytes,
    sessions: new UploadSessions({ max: config.maxUploadSessions, idleMs: config.uploadTtl }),
  });
  const seeds = new Map<string, HttpSeedRegistry>();
  for (const u of config.upstream) {
    seeds.set(u.name, new HttpSeedRegistry({ ...u, timeoutMs: config.upstreamTimeout, retries: config.upstreamRetries, userAgent: USER_AGENT }));
  }
  const mirror = new Mirror({
    blobs: tracked,
    seeds,
    cacheFor,
    tagTtlMs: config.tagTtl,
    serveStale: config.serveStale,
    log: logger,
    peers: p2p?.fetcher,
    onJoin: () => observed.emit('single-flight-join', {}),
    onManifestFetched: (digest) => tracked.setSource(digest, 'upstream'),
    onBlobFetched: (digest, size, source) => {
      observed.emit('fetched', { digest, size, source });
      tracked.setSource(digest, source);
    },
    offersToPeers: sharing.active ? (name, repo) => !visibility.isPrivate(name, repo) : undefined,
    heldForPeers: (digest) => sharing.publiclyLinked(digest),
  });
  const useMirror = seeds.size > 0 || p2p !== undefined;
  const listings = new MirrorListings({ seeds, cacheFor, tagTtlMs: config.tagTtl, serveStale: config.serveStale, log: logger });
  const distribution = new Distribution(registry, useMirror ? mirror : undefined, config.defaultRegistry, seeds.size > 0 ? listings : undefined);
  const rollouts = new Rollouts(distribution, rolloutNetwork(p2p?.rollouts, p2p?.claims, p2p?.stripes), new JsonRecordsJournal(join(storage.dataDir, 'rollouts')), {
    defaultRegistry: config.defaultRegistry,
    stripesFrom: config.rolloutStripesFrom,
    stripes: config.rolloutStripes,
    log: logger,
  });
  const held = storeLookup(tracked);
  const heldShared: BlobLookup = async (digest) => ((await sharing.shareable(digest)) ? held(digest) : undefined);
  const relay = relayWhileRolloutFetches({ mirror, heldShared, willFetch: (digest) => rollouts.willFetch(digest) });
  return {
    distribution,
    rollouts,
    seeds: [...seeds.keys()],
    seedClients: { name: 'seed clients', stop: async () => seeds.forEach((u) => u.close()) },
    protocols: p2p ? peerProtocols(config, p2p, rollouts, observed, heldShared, relay) : [],
    rolloutRuns: {
      name: 'rollouts',
      async start() {
        const resumed = await rollouts.resume();
        if (resumed > 0) logger.info({ rollouts: resumed }, 'resuming rollouts');
      },
      stop: async () => rollouts.close(),
    },
  };
}

/** Serves peers: blobs, what `held` finds in the store, else what `relay` is fetching from the seed now; and rollouts. */
function peerProtocols(config: Config, p2p: P2P, rollouts: Rollouts, observed: Observations, held: BlobLookup, relay: BlobLookup): Service[] {
  const blobs = new BlobServer(p2p.libp2p, async (digest) => (await held(digest)) ?? relay(digest), {
    maxUploadsPerPeer: config.maxUploadsPerPeer,
    maxInboundStreams: config.maxStreamsPerPeer,
    idleTimeoutMs: config.peerIdleTimeout,
    throttle: new UploadThrottle({ totalRate: config.maxUploadRate, perPeerRate: config.maxUploadRatePerPeer }),
    onServed: (peer, digest, bytes) => observed.emit('peer-upload', { peer, digest, bytes }),
  });
  const rolloutProtocol: Service = {
    name: 'rollout protocol',
    async start() {
      await p2p.rollouts.start({
        checkOffer: (raw) => specFrom(raw),
        checkReport: progressFrom,
        offer: (spec, from) => {
          rollouts.accept(spec, from);
        },
        report: (progress) => rollouts.onReport(progress),
        checkRepoint: repointFrom,
        repoint: (repoint, from) => rollouts.onRepoint(repoint, from),
      });
      p2p.rollouts.onPeer((peer) => rollouts.offerRunning(peer));
    },
    stop: () => p2p.rollouts.stop(),
  };
  return [{ name: 'blob protocol', start: () => blobs.start(), stop: () => blobs.stop() }, rolloutProtocol];
}
