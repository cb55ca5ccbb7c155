// A layerd node: the stores, the registry and mirror over them, the peer-to-peer layer when it is
// configured, and the HTTP endpoint, wired from a Config.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { AnnouncingBlobStore } from './distribution/announcing-blob-store.js';
import { Distribution } from './distribution/distribution.js';
import { Mirror } from './distribution/mirror.js';
import { PeerFetcher } from './distribution/peer-fetcher.js';
import { PeerScores } from './distribution/peer-scores.js';
import { Registry } from './distribution/registry.js';
import { NodeStats } from './distribution/stats.js';
import type { NodeStatus } from './http/api-routes.js';
import { buildHttpServer } from './http/server.js';
import { fetchFromPeer, handleBlobProtocol, storeLookup, type ServableBlob } from './p2p/blob-protocol.js';
import { FetchClaims } from './p2p/fetch-claims.js';
import type { Digest } from './oci/digest.js';
import { DhtContentRouter } from './p2p/dht-router.js';
import { loadOrCreateIdentity } from './p2p/identity.js';
import { createP2PNode, type LayerdLibp2p } from './p2p/libp2p-node.js';
import type { BlobStore } from './store/blob-store.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { FsRepositoryStore } from './store/fs-repository-store.js';
import type { RepositoryStore } from './store/repository-store.js';
import { UpstreamRegistry } from './upstream/registry-client.js';
import { USER_AGENT, VERSION } from './version.js';

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

interface P2P {
  libp2p: LayerdLibp2p;
  fetcher: PeerFetcher;
  announcing: AnnouncingBlobStore;
  /** Serves blobs to peers: what the store holds, else what `relay` is fetching from the seed now. */
  serve(relay: (digest: Digest) => Promise<ServableBlob | undefined>): Promise<void>;
}

/** How long a peer's request waits for this node's seed download of the blob to start writing. */
const RELAY_WAIT_MS = 30_000;

async function startP2P(config: Config, dataDir: string, store: BlobStore, stats: NodeStats, logger: Logger): Promise<P2P> {
  const privateKey = await loadOrCreateIdentity(join(dataDir, 'p2p', 'identity.key'));
  const libp2p = await createP2PNode({
    privateKey,
    listen: config.p2pListen,
    announce: config.announce,
    bootstrap: config.bootstrap,
    providerTtlMs: 2 * config.reprovideInterval,
  });
  const log = logger.child({ component: 'p2p' });
  const router = new DhtContentRouter(libp2p, { log, expectPeers: config.bootstrap.length > 0 });
  const claims = new FetchClaims(libp2p, { log });
  await claims.start();
  const fetcher = new PeerFetcher(
    {
      router,
      fetch: (peer, digest, range, signal) => fetchFromPeer(libp2p, peer, digest, range, signal),
      whoFetches: (digest, failed) => claims.whoFetches(digest, failed),
    },
    new PeerScores(),
    { lookupTimeoutMs: config.peerLookupTimeout, onLookup: (ms, found) => stats.lookup(ms, found), log },
  );
  const held = storeLookup(store);
  const serve = (relay: (digest: Digest) => Promise<ServableBlob | undefined>) =>
    handleBlobProtocol(
      libp2p,
      async (digest) => (await held(digest)) ?? relay(digest),
      { maxUploadsPerPeer: config.maxUploadsPerPeer, onServed: (_peer, _digest, bytes) => (stats.uploadedToPeers += bytes) },
    );
  logger.info({ peerId: libp2p.peerId.toString(), multiaddrs: libp2p.getMultiaddrs().map((a) => a.toString()) }, 'p2p started');
  return { libp2p, fetcher, announcing: new AnnouncingBlobStore(store, router), serve };
}

export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningNode> {
  const dataDir = resolve(config.dataDir);
  const stats = new NodeStats();
  const fsBlobs = await new FsBlobStore(dataDir).init();
  const p2p = config.p2pListen.length > 0 ? await startP2P(config, dataDir, fsBlobs, stats, logger) : undefined;
  // Every commit is announced to the cluster when P2P is on, whoever made it.
  const blobs: BlobStore = p2p?.announcing ?? fsBlobs;
  const repos = await new FsRepositoryStore(dataDir).init();
  const registry = new Registry(blobs, repos);

  const upstreams = new Map<string, UpstreamRegistry>();
  for (const u of config.upstream) {
    upstreams.set(u.name, new UpstreamRegistry({ ...u, timeoutMs: config.upstreamTimeout, retries: config.upstreamRetries, userAgent: USER_AGENT }));
  }
  const caches = new Map<string, Promise<RepositoryStore>>();
  const mirror = new Mirror({
    blobs,
    upstreams,
    // Each seed's cache lives apart from pushed content: data/mirror/<registry>/repositories/...
    cacheFor: (name) => {
      let cache = caches.get(name);
      if (!cache) caches.set(name, (cache = new FsRepositoryStore(join(dataDir, 'mirror', encodeURIComponent(name))).init()));
      return cache;
    },
    tagTtlMs: config.tagTtl,
    serveStale: config.serveStale,
    log: logger,
    peers: p2p?.fetcher,
    onBlobFetched: (_digest, size, source) => stats.fetched(source, size),
  });
  await p2p?.serve((digest) => mirror.relay(digest, RELAY_WAIT_MS));
  const useMirror = upstreams.size > 0 || p2p !== undefined;
  const distribution = new Distribution(registry, useMirror ? mirror : undefined, config.defaultRegistry);

  let url = '';
  const status = (): NodeStatus => ({
    version: VERSION,
    url,
    peerId: p2p?.libp2p.peerId.toString(),
    multiaddrs: p2p?.libp2p.getMultiaddrs().map((a) => a.toString()) ?? [],
    connectedPeers: p2p ? new Set(p2p.libp2p.getConnections().map((c) => c.remotePeer.toString())).size : 0,
    upstreams: [...upstreams.keys()],
    defaultRegistry: config.defaultRegistry,
    stats,
  });
  const app = buildHttpServer({ distribution, logger, status, onBlobServed: (source) => stats.served[source]++ });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  url = `http://${host}:${port}`;
  // Names only: an upstream's credentials are never logged.
  logger.info({ url, dataDir, upstreams: [...upstreams.keys()], defaultRegistry: config.defaultRegistry }, 'layerd listening');
  if (p2p) {
    const announced = await p2p.announcing.announceAll();
    logger.info({ blobs: announced }, 'announcing held blobs');
  }
  return {
    url,
    logger,
    async close() {
      await app.close();
      await p2p?.libp2p.stop();
      for (const u of upstreams.values()) u.close();
    },
  };
}
