// A layerd node: the stores, the registry and mirror over them, the peer-to-peer layer when it is
// configured, and the HTTP endpoint, wired from a Config. Each subsystem is built by its factory from
// its section of the config and what it depends on, in the order below (each gets only what is already
// built); what runs is then started in one declared order and stopped in the reverse (lifecycle.ts).
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { BlobSharing, Inventory, NodeStats, Observations } from '../distribution/index.js';
import { FSYNC } from '../store/index.js';
import { openAccess } from './access.js';
import { nodeApi } from './api.js';
import { keepDisk } from './disk-keeping.js';
import { createDistribution } from './distribution.js';
import { httpEndpoint, ListenAddress } from './http.js';
import { startInOrder, type Service } from './lifecycle.js';
import { collectStartUpGarbage } from './start-up-garbage.js';
import { boundGarbage } from './garbage-bound.js';
import { NodeMetrics } from './node-metrics.js';
import { createP2P } from './p2p.js';
import { openStorage, RepositoryDirs, type Storage } from './storage.js';

export interface RunningNode {
  /** The address the HTTP endpoint is bound to, e.g. http://127.0.0.1:5000 */
  url: string;
  logger: Logger;
  close(): Promise<void>;
}

export function createLogger(level: Config['logLevel']): Logger {
  // Request logs carry method, url, status and source only; credentials are never logged.
  return pino({ level, base: { name: 'layerd' }, redact: ['req.headers.authorization', '*.password', '*.token'] });
}

export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningNode> {
  const dataDir = resolve(config.dataDir);
  const access = await openAccess(config, logger);
  // What the node observes (pulls, peer traffic, lookups, requests) is told to one bus; the counters subscribe.
  const observed = new Observations();
  const stats = new NodeStats();
  stats.countFrom(observed);
  const metrics = new NodeMetrics(stats);
  metrics.countFrom(observed);
  const dirs = await RepositoryDirs.open(dataDir, config.upstream.map((u) => u.name));
  // Which blobs peers may have: the links of pushed repositories and of every seed's cache decide.
  const sharing = new BlobSharing({ visibility: access.visibility, sharePrivate: config.sharePrivateBlobs, stores: () => dirs.all() });
  const p2p = config.p2pListen.length > 0 ? await createP2P(config, dataDir, observed, metrics.registry, logger) : undefined;
  const storage = await openStorage(dataDir, dirs, sharing, p2p?.router);
  const { tracked } = storage;
  const dist = createDistribution(config, { storage, sharing, visibility: access.visibility, p2p, observed, logger });
  const disk = keepDisk(config, storage, logger);
  metrics.collectFrom({
    store: () => ({ bytes: tracked.index.bytes, blobs: tracked.index.count, maxBytes: config.maxDiskBytes }),
    evictions: () => ({ count: disk.keeper.evictions, bytes: disk.keeper.evictedBytes }),
    connectedPeers: () => (p2p ? p2p.connectedPeers().length : 0),
    provides: () => p2p?.router.counts ?? { provides: 0, failures: 0 },
    liveness: () => p2p?.libp2p.services.watch.counts ?? { probes: 0, closed: 0, timedOut: 0 },
  });
  const inventory = new Inventory(tracked, async () => [{ registry: 'local', repos: storage.repos }, ...(await storage.allCaches())]);
  const address = new ListenAddress();
  const api = nodeApi({ config, dataDir, url: () => address.url, p2p, stats, metrics, tracked, keeper: disk.keeper, sharing, visibility: access.visibility, inventory, rollouts: dist.rollouts, seeds: dist.seeds });
  const http = httpEndpoint(config, {
    distribution: dist.distribution,
    api,
    access: access.v2Access,
    observed,
    logger,
    listening: (url) => {
      address.listening(url);
      // Names only: an upstream's credentials are never logged.
      logger.info({ url, dataDir, upstreams: dist.seeds, defaultRegistry: config.defaultRegistry, maxDiskBytes: config.maxDiskBytes }, 'layerd listening');
      if (!FSYNC) logger.warn({ env: 'LAYERD_UNSAFE_NO_FSYNC' }, 'fsync is off: a power cut can lose pushes this node acknowledged (for benchmarks only)');
      access.logPolicy(url);
    },
  });
  const lifecycle = await startInOrder(
    [
      dist.seedClients,
      ...(p2p?.services ?? []), // the libp2p node, then the claim protocol
      ...dist.protocols, // blobs and rollouts, served to peers
      disk.leftovers, // what a crash left goes before anything is served
      http,
      disk.collections,
      ...announcing(storage, logger),
      dist.rolloutRuns,
      collectStartUpGarbage(),
      boundGarbage({ onCollect: (before, after, ms) => logger.info({ beforeMiB: toMiB(before), afterMiB: toMiB(after), ms: Math.round(ms) }, 'garbage bound: a full collection') }),
    ],
    (service, err) => logger.warn({ service, reason: (err as Error).message }, 'stopping failed'),
  );
  return { url: address.url, logger, close: () => lifecycle.stop() };
}

/** With P2P on: the blobs held are announced once the node serves, and changes until it stops. */
function announcing({ announcing }: Storage, logger: Logger): Service[] {
  if (!announcing) return [];
  return [
    {
      name: 'announce held blobs',
      async start() {
        const announced = await announcing.announceAll();
        logger.info({ blobs: announced }, 'announcing held blobs');
      },
      // Before libp2p stops: no commit or delete from here on is told to a router that is going.
      stop: async () => announcing.stop(),
    },
  ];
}

const toMiB = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
