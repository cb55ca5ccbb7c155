// A layerd node: the stores, the registry and mirror over them, the peer-to-peer layer when it is
// configured, and the HTTP endpoint, wired from a Config.
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, type Config } from './config.js';
import { Announcer } from '../distribution/index.js';
import { BlobSharing } from '../distribution/index.js';
import { RepositoryVisibility } from '../distribution/index.js';
import { AccessPolicy, isLoopbackHost } from '../http/index.js';
import { AuthGuard, CredentialsFileError, ReloadingCredentials } from '../http/index.js';
import { Distribution } from '../distribution/index.js';
import { Mirror } from '../distribution/index.js';
import { MirrorListings } from '../distribution/index.js';
import { PeerFetcher } from '../distribution/index.js';
import { PeerScores } from '../distribution/index.js';
import { Registry } from '../distribution/index.js';
import { NodeStats } from '../distribution/index.js';
import { DiskKeeper } from '../distribution/index.js';
import { Inventory } from '../distribution/index.js';
import { progressFrom, Rollouts, specFrom, type RolloutJournal, type RolloutNetwork, type RolloutSpec } from '../distribution/index.js';
import { RolloutTransport } from '../p2p/index.js';
import { JsonRecords } from '../store/index.js';
import type { NodeApi, Viewer } from '../http/index.js';
import type { Check, StatusAnswer } from '../http/index.js';
import { NodeMetrics, routeOf } from './node-metrics.js';
import { TrackedBlobStore } from '../store/index.js';
import { GuardedRepositoryStore } from '../store/index.js';
import { FSYNC, readdirOrEmpty, removeStaleTempFiles } from '../store/index.js';
import { buildHttpServer } from '../http/index.js';
import { fetchFromPeer, handleBlobProtocol, storeLookup, type BlobLookup } from '../p2p/index.js';
import { FetchClaims } from '../p2p/index.js';
import type { Digest } from '../oci/index.js';
import { UploadThrottle } from '../p2p/index.js';
import { UploadSessions } from '../distribution/index.js';
import { DhtContentRouter } from '../p2p/index.js';
import { loadOrCreateIdentity } from '../p2p/index.js';
import { createP2PNode, type LayerdLibp2p } from '../p2p/index.js';
import { PeerAccess } from '../p2p/index.js';
import { FsBlobStore } from '../store/index.js';
import { FsRepositoryStore } from '../store/index.js';
import type { RepositoryStore } from '../store/index.js';
import { HttpSeedRegistry } from '../seed/index.js';
import { USER_AGENT, VERSION } from '../version.js';

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
  router: DhtContentRouter;
  fetcher: PeerFetcher;
  rollouts: RolloutTransport;
  /** Who fetches a blob nodes miss together: claims, or a rollout's order (p2p/fetch-claims.ts). */
  claims: FetchClaims;
  access: PeerAccess;
  /** Serves blobs to peers: what `held` finds in the store, else what `relay` is fetching from the seed now. */
  serve(held: BlobLookup, relay: BlobLookup): Promise<void>;
}

/** How long requests in flight may run on after a shutdown begins. */
const SHUTDOWN_GRACE_MS = 5_000;

/** How long a peer's request waits for this node's seed download of the blob to start writing. */
const RELAY_WAIT_MS = 30_000;
/** How often a peer's question polls for a download a rollout here is about to start. */
const RELAY_POLL_MS = 50;

async function startP2P(config: Config, dataDir: string, stats: NodeStats, metrics: NodeMetrics, logger: Logger): Promise<P2P> {
  const privateKey = await loadOrCreateIdentity(join(dataDir, 'p2p', 'identity.key'));
  const log = logger.child({ component: 'p2p' });
  const access = new PeerAccess({ keyFile: config.pskFile, allowPeers: config.allowPeer, bootstrap: config.bootstrap }, log);
  const libp2p = await createP2PNode({
    privateKey,
    listen: config.p2pListen,
    announce: config.announce,
    bootstrap: config.bootstrap,
    providerTtlMs: 2 * config.reprovideInterval,
    metricsRegistry: metrics.registry,
    swarmKey: config.pskFile?.key,
    allowPeers: config.allowPeer,
    onRefused: (r) => access.refused(r),
    onBootstrapDialFailed: (addr, reason) => access.bootstrapDialFailed(addr, reason),
  });
  const router = new DhtContentRouter(libp2p, { log, expectPeers: config.bootstrap.length > 0 });
  const claims = new FetchClaims(libp2p, { log, maxInboundStreams: config.maxStreamsPerPeer });
  await claims.start();
  const fetcher = new PeerFetcher(
    {
      router,
      fetch: (peer, digest, range, signal) => fetchFromPeer(libp2p, peer, digest, range, signal, { idleTimeoutMs: config.peerIdleTimeout }),
      whoFetches: (digest, failed) => claims.whoFetches(digest, failed),
      releaseClaim: (digest) => claims.release(digest),
      headsOrder: (digest) => claims.headsOrder(digest),
    },
    new PeerScores(),
    {
      lookupTimeoutMs: config.peerLookupTimeout,
      onLookup: (ms, found) => {
        stats.lookup(ms, found);
        metrics.lookupSeconds.observe(ms / 1000);
      },
      onRangeFetched: (peer, bytes) => stats.downloaded(peer, bytes),
      log,
    },
  );
  const serve = (held: BlobLookup, relay: BlobLookup) =>
    handleBlobProtocol(libp2p, async (digest) => (await held(digest)) ?? relay(digest), {
      maxUploadsPerPeer: config.maxUploadsPerPeer,
      maxInboundStreams: config.maxStreamsPerPeer,
      idleTimeoutMs: config.peerIdleTimeout,
      throttle: new UploadThrottle({ totalRate: config.maxUploadRate, perPeerRate: config.maxUploadRatePerPeer }),
      onServed: (peer, _digest, bytes) => stats.uploaded(peer, bytes),
    });
  logger.info({ peerId: libp2p.peerId.toString(), multiaddrs: libp2p.getMultiaddrs().map((a) => a.toString()), ...access.summary() }, 'p2p started');
  return { libp2p, router, fetcher, serve, access, claims, rollouts: new RolloutTransport(libp2p, { maxInboundStreams: config.maxStreamsPerPeer }) };
}

/** Rollouts over libp2p, or, with P2P off, a cluster of one. */
function rolloutNetwork(transport: RolloutTransport | undefined, claims: FetchClaims | undefined): RolloutNetwork {
  if (!transport || !claims) return { self: 'this-node', selfAddrs: () => [], peers: async () => [], offer: async () => undefined, report: async () => undefined };
  return {
    self: transport.self,
    selfAddrs: () => transport.selfAddrs(),
    peers: () => transport.peers(),
    offer: (peer, spec) => transport.offer(peer, spec),
    report: (spec, progress) => transport.report({ id: spec.origin, addrs: spec.originAddrs }, progress),
    followOrder: (digests, order, rollout) => claims.followOrder(digests, order, rollout),
  };
}

/** Running rollouts, kept as JSON files so a restarted node resumes them. */
class JsonRecordsJournal implements RolloutJournal {
  private readonly records: JsonRecords<unknown>;
  constructor(dir: string) {
    this.records = new JsonRecords(dir);
  }
  save(spec: RolloutSpec): Promise<void> {
    return this.records.save(spec.id, spec);
  }
  remove(id: string): Promise<void> {
    return this.records.remove(id);
  }
  load(): Promise<unknown[]> {
    return this.records.load();
  }
}

function connectedPeerIds(libp2p: LayerdLibp2p): string[] {
  return [...new Set(libp2p.getConnections().map((c) => c.remotePeer.toString()))];
}

/** The store takes writes: a small file is written and removed in its data dir. */
async function storeWritable(dataDir: string): Promise<Check> {
  const probe = join(dataDir, `.healthz-${process.pid}`);
  try {
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
    return { ok: true, detail: `${dataDir} is writable` };
  } catch (err) {
    return { ok: false, detail: `${dataDir} is not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

/**
 * The users and tokens of --htpasswd and --token-file, followed as the files change; a malformed file
 * stops the node at start like a bad option, and is reported (the last good set kept) later.
 */
async function loadCredentials(config: Config, logger: Logger): Promise<ReloadingCredentials> {
  try {
    return await ReloadingCredentials.open(
      { htpasswd: config.htpasswd, tokenFile: config.tokenFile },
      ({ ok, detail, users, tokens }) => (ok ? logger.info({ users, tokens }, detail) : logger.warn({ users, tokens }, detail)),
      new AuthGuard({ maxFailuresPerMinute: config.maxAuthFailures }),
    );
  } catch (err) {
    if (!(err instanceof CredentialsFileError)) throw err;
    throw new ConfigError(err.file === config.htpasswd ? 'htpasswd' : 'token-file', err.message);
  }
}

export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningNode> {
  const dataDir = resolve(config.dataDir);
  const credentials = await loadCredentials(config, logger);
  const visibility = new RepositoryVisibility(config.privateRepos);
  const v2Access = new AccessPolicy({ credentials, visibility, exposed: !isLoopbackHost(config.listen.host) });
  // Which blobs peers may have: the links of pushed repositories and of every seed's cache decide.
  const sharing = new BlobSharing({
    visibility,
    sharePrivate: config.sharePrivateBlobs,
    stores: async () => [repos, ...(await allCaches()).map((c) => c.repos)],
  });
  const watched = (store: RepositoryStore): RepositoryStore => {
    sharing.follow(store);
    return store;
  };
  const stats = new NodeStats();
  let keeper: DiskKeeper | undefined;
  let p2p: P2P | undefined;
  let blobs: TrackedBlobStore | undefined;
  const metrics: NodeMetrics = new NodeMetrics({
    stats,
    store: () => ({ bytes: blobs?.index.bytes ?? 0, blobs: blobs?.index.count ?? 0, maxBytes: config.maxDiskBytes }),
    evictions: () => ({ count: keeper?.evictions ?? 0, bytes: keeper?.evictedBytes ?? 0 }),
    connectedPeers: () => (p2p ? connectedPeerIds(p2p.libp2p).length : 0),
    provides: () => p2p?.router.counts ?? { provides: 0, failures: 0 },
  });
  const fsBlobs = await new FsBlobStore(dataDir).init();
  p2p = config.p2pListen.length > 0 ? await startP2P(config, dataDir, stats, metrics, logger) : undefined;
  // Every commit is announced to the cluster when P2P is on, whoever made it; every read and write is
  // accounted for the disk quota.
  // The announcer subscribes first: it is told of a commit before the usage index and the quota check.
  const announcing: Announcer | undefined = p2p ? new Announcer(fsBlobs, p2p.router, sharing) : undefined;
  const tracked: TrackedBlobStore = await new TrackedBlobStore(fsBlobs).init();
  blobs = tracked;
  // Every link written is marked for collections running meanwhile (see CollectionGuard).
  const repos = new GuardedRepositoryStore(watched(await new FsRepositoryStore(dataDir).init()), tracked.guard);
  const registry = new Registry(tracked, repos, {
    guard: tracked.guard,
    maxUploadBytes: config.maxUploadBytes,
    sessions: new UploadSessions({ max: config.maxUploadSessions, idleMs: config.uploadTtl }),
  });

  const upstreams = new Map<string, HttpSeedRegistry>();
  for (const u of config.upstream) {
    upstreams.set(u.name, new HttpSeedRegistry({ ...u, timeoutMs: config.upstreamTimeout, retries: config.upstreamRetries, userAgent: USER_AGENT }));
  }
  const caches = new Map<string, Promise<RepositoryStore>>();
  const mirrorDir = join(dataDir, 'mirror');
  // Each seed's cache lives apart from pushed content: data/mirror/<registry>/repositories/...
  const cacheFor = (name: string) => {
    let cache = caches.get(name);
    if (!cache) caches.set(name, (cache = new FsRepositoryStore(join(mirrorDir, encodeURIComponent(name))).init().then((c) => new GuardedRepositoryStore(watched(c), tracked.guard))));
    return cache;
  };
  /** Every seed cache: of the configured seeds, and of any other found on disk (a seed since removed). */
  const allCaches = async (): Promise<Array<{ registry: string; repos: RepositoryStore }>> => {
    const names = new Set([...upstreams.keys(), ...(await readdirOrEmpty(mirrorDir)).map((n) => decodeURIComponent(n))]);
    return Promise.all([...names].sort().map(async (registry) => ({ registry, repos: await cacheFor(registry) })));
  };
  const mirror = new Mirror({
    blobs: tracked,
    seeds: upstreams,
    cacheFor,
    tagTtlMs: config.tagTtl,
    serveStale: config.serveStale,
    log: logger,
    peers: p2p?.fetcher,
    onJoin: () => stats.singleFlightJoins++,
    onManifestFetched: (digest) => tracked.setSource(digest, 'upstream'),
    onBlobFetched: (digest, size, source) => {
      stats.fetched(source, size);
      tracked.setSource(digest, source);
    },
    offersToPeers: sharing.active ? (name, repo) => !visibility.isPrivate(name, repo) : undefined,
    heldForPeers: (digest) => sharing.publiclyLinked(digest),
  });
  const held = storeLookup(tracked);
  const heldShared: BlobLookup = async (digest) => ((await sharing.shareable(digest)) ? held(digest) : undefined);
  // Set once the rollouts exist (below): whether this node's running rollouts will fetch the blob.
  let rolloutWillFetch: (digest: Digest) => boolean = () => false;
  await p2p?.serve(heldShared, async (digest) => {
    // The node after this one in a rollout's order asks for each blob as soon as it knows the image, maybe
    // before this node's own download of it has begun: while a rollout here is to fetch the blob, the
    // question waits for that download (or the blob held) instead of being answered not-found, which
    // would send the asker up the order, onto another node's uplink.
    const deadline = Date.now() + RELAY_WAIT_MS;
    for (;;) {
      const found = await mirror.relay(digest, Math.max(0, deadline - Date.now()));
      if (found || !rolloutWillFetch(digest) || Date.now() >= deadline) return found ?? heldShared(digest);
      await new Promise((r) => setTimeout(r, RELAY_POLL_MS));
      const now = await heldShared(digest);
      if (now) return now;
    }
  });
  const useMirror = upstreams.size > 0 || p2p !== undefined;
  const listings = new MirrorListings({ seeds: upstreams, cacheFor, tagTtlMs: config.tagTtl, serveStale: config.serveStale, log: logger });
  const distribution = new Distribution(registry, useMirror ? mirror : undefined, config.defaultRegistry, upstreams.size > 0 ? listings : undefined);

  const rollouts = new Rollouts(distribution, rolloutNetwork(p2p?.rollouts, p2p?.claims), new JsonRecordsJournal(join(dataDir, 'rollouts')), {
    defaultRegistry: config.defaultRegistry,
    log: logger,
  });
  await p2p?.rollouts.start({
    checkOffer: (raw) => specFrom(raw),
    checkReport: progressFrom,
    offer: (spec, from) => {
      rollouts.accept(spec, from);
    },
    report: (progress) => rollouts.onReport(progress),
  });
  p2p?.rollouts.onPeer((peer) => rollouts.offerRunning(peer));
  rolloutWillFetch = (digest) => rollouts.willFetch(digest);

  keeper = new DiskKeeper(tracked, {
    maxBytes: config.maxDiskBytes,
    highWatermark: config.diskHighWatermark,
    lowWatermark: config.diskLowWatermark,
    evictPushed: config.evictPushed,
    pushed: repos,
    caches: async () => (await allCaches()).map((c) => c.repos),
    uploadSessionAlive: async (id, modified) => {
      if (Date.now() - modified >= config.uploadTtl) return false;
      return repos.hasUploadInAnyRepository(id);
    },
    collectUploads: (keep) => fsBlobs.collectUploads(keep),
    // A record mid-write is younger than a minute; anything older was left by a crash.
    collectTempFiles: async () => (await removeStaleTempFiles(join(dataDir, 'repositories'), 60_000)) + (await removeStaleTempFiles(mirrorDir, 60_000)) + (await removeStaleTempFiles(join(dataDir, 'rollouts'), 60_000)),
    log: logger,
  });
  const diskKeeper = keeper;
  // A commit may take the store over its quota (the index is updated before this listener runs).
  tracked.subscribe((change) => {
    if (change.kind === 'committed') void diskKeeper.enforce();
  });
  // What a crash or kill -9 left (downloads cut short, abandoned uploads) goes before anything is served.
  await diskKeeper.collect();
  const gcTimer = config.gcInterval > 0 ? setInterval(() => void diskKeeper.collect().catch((err: Error) => logger.warn({ reason: err.message }, 'garbage collection failed')), config.gcInterval) : undefined;
  gcTimer?.unref();

  const inventory = new Inventory(tracked, async () => [{ registry: 'local', repos }, ...(await allCaches())]);
  let url = '';
  const status = (): StatusAnswer => {
    const peers = p2p ? connectedPeerIds(p2p.libp2p) : [];
    return {
      version: VERSION,
      url,
      peerId: p2p?.libp2p.peerId.toString(),
      multiaddrs: p2p?.libp2p.getMultiaddrs().map((a) => a.toString()) ?? [],
      connectedPeers: peers.length,
      ...(p2p?.access.status() ?? { privateNetwork: false, allowList: 0, refusedPeers: 0 }),
      peers: peers.map((id) => ({
        id,
        addrs: p2p!.libp2p.getConnections().filter((c) => c.remotePeer.toString() === id).map((c) => c.remoteAddr.toString()),
        uploaded: stats.peers.get(id)?.uploaded ?? 0,
        downloaded: stats.peers.get(id)?.downloaded ?? 0,
      })),
      upstreams: [...upstreams.keys()],
      defaultRegistry: config.defaultRegistry,
      store: {
        bytes: tracked.index.bytes,
        blobs: tracked.index.count,
        maxBytes: config.maxDiskBytes ?? null,
        highWatermarkBytes: diskKeeper.highBytes ?? null,
        lowWatermarkBytes: diskKeeper.lowBytes ?? null,
        evictions: diskKeeper.evictions,
      },
      stats: stats.toJSON(),
    };
  };
  const health = async (): Promise<Record<string, Check>> => ({ process: { ok: true, detail: `pid ${process.pid}` }, store: await storeWritable(dataDir) });
  // /api answers name repositories and digests: a caller without credentials (once /v2 asks for them:
  // the grant says) sees none that only a private repository holds, as on /v2.
  const listed = (viewer: Viewer, repository: string) => viewer.seesPrivate || !visibility.isPrivate(repository);
  const rolloutListed = (viewer: Viewer, id: string) => {
    const subject = rollouts.subject(id);
    return viewer.seesPrivate || (subject !== undefined && !visibility.isPrivate(subject.repository));
  };
  const api: NodeApi = {
    status,
    images: async (viewer) => (await inventory.images()).filter((i) => listed(viewer, i.repository)),
    blobs: async (viewer) => {
      // Digests too: a digest held only for private repositories is not shown (one walk of the links).
      const open = viewer.seesPrivate || !visibility.hasPrivate ? undefined : await sharing.publicDigests();
      return tracked.index
        .leastRecentlyUsed()
        .reverse()
        .filter((e) => !open || open.has(e.digest))
        .slice(0, 1000)
        .map((e) => ({ digest: e.digest, size: e.size, source: e.source ?? 'unknown', lastAccess: new Date(e.lastUse).toISOString() }));
    },
    pulls: (viewer) => stats.recentPulls().filter((p) => listed(viewer, p.repository)),
    gc: () => diskKeeper.collect(),
    health,
    readiness: async () => {
      const checks = await health();
      checks.index = { ok: true, detail: `${tracked.index.count} blobs, ${tracked.index.bytes} bytes` };
      if (config.bootstrap.length > 0) {
        const n = p2p ? connectedPeerIds(p2p.libp2p).length : 0;
        checks.peers = { ok: n > 0, detail: n > 0 ? `${n} connected` : 'no peer connected yet (bootstrap peers are configured)' };
      }
      return checks;
    },
    metrics: () => metrics.render(),
    rollouts: {
      create: async (image, platform) => rollouts.view((await rollouts.create(image, platform)).id)!,
      get: (id, viewer) => (rolloutListed(viewer, id) ? rollouts.view(id) : undefined),
      list: (viewer) => rollouts.list().filter((v) => rolloutListed(viewer, v.id)),
    },
  };
  const app = buildHttpServer({
    distribution,
    logger,
    api,
    idleTimeoutMs: config.httpIdleTimeout,
    access: v2Access,
    loopback: isLoopbackHost(config.listen.host),
    allowHosts: config.allowHost,
    requestDone: (method, reqUrl, code) => metrics.httpRequests.inc({ method, route: routeOf(reqUrl), status: String(code) }),
    observe: (e) => {
      if (e.kind === 'blob') stats.blobServed(e.source, e.bytes);
      if (!e.head) stats.pulled({ kind: e.kind, registry: e.registry, repository: e.repository, reference: e.reference, digest: e.digest, size: e.size, source: e.source });
    },
  });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  url = `http://${host}:${port}`;
  // Names only: an upstream's credentials are never logged.
  logger.info({ url, dataDir, upstreams: [...upstreams.keys()], defaultRegistry: config.defaultRegistry, maxDiskBytes: config.maxDiskBytes }, 'layerd listening');
  if (!FSYNC) logger.warn({ env: 'LAYERD_UNSAFE_NO_FSYNC' }, 'fsync is off: a power cut can lose pushes this node acknowledged (for benchmarks only)');
  if (v2Access.readOnly) {
    logger.warn({ url }, 'the /v2 endpoint listens beyond loopback with no --htpasswd or --token-file: it is read-only for the network (pushes and private reads are refused)');
  }
  if (v2Access.enforced || visibility.hasPrivate) {
    logger.info({ ...credentials.counts, privateRepos: config.privateRepos, sharePrivateBlobs: config.sharePrivateBlobs }, 'access policy');
  }
  if (announcing) {
    const announced = await announcing.announceAll();
    logger.info({ blobs: announced }, 'announcing held blobs');
  }
  const resumed = await rollouts.resume();
  if (resumed > 0) logger.info({ rollouts: resumed }, 'resuming rollouts');
  return {
    url,
    logger,
    async close() {
      clearInterval(gcTimer);
      rollouts.close();
      // Stop accepting; give transfers in flight a grace period, then cut them. Nothing half written is
      // ever under a blob's name, and what downloads leave in uploads/ is collected at the next start.
      const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await app.close();
      clearTimeout(cut);
      await p2p?.libp2p.stop();
      for (const u of upstreams.values()) u.close();
    },
  };
}
