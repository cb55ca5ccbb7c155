// The node's answers to /api, /healthz, /readyz and /metrics: http's NodeApi seam, filled from the
// subsystems the node is made of.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import type { BlobSharing, DiskKeeper, Inventory, NodeStats, RepositoryVisibility, Rollouts } from '../distribution/index.js';
import type { Check, NodeApi, StatusAnswer, Viewer } from '../http/index.js';
import type { TrackedBlobStore } from '../store/index.js';
import { VERSION } from '../version.js';
import type { NodeMetrics } from './node-metrics.js';
import type { P2P } from './p2p.js';

export interface ApiDeps {
  config: Config;
  dataDir: string;
  /** Where the HTTP endpoint listens ('' until it does). */
  url: () => string;
  p2p: P2P | undefined;
  stats: NodeStats;
  metrics: NodeMetrics;
  tracked: TrackedBlobStore;
  keeper: DiskKeeper;
  sharing: BlobSharing;
  visibility: RepositoryVisibility;
  inventory: Inventory;
  rollouts: Rollouts;
  /** The configured seeds' names. */
  seeds: string[];
}

export function nodeApi(deps: ApiDeps): NodeApi {
  const { config, dataDir, p2p, stats, tracked, keeper, sharing, visibility, inventory, rollouts } = deps;
  const health = async (): Promise<Record<string, Check>> => ({ process: { ok: true, detail: `pid ${process.pid}` }, store: await storeWritable(dataDir) });
  // /api answers name repositories and digests: a caller without credentials (once /v2 asks for them:
  // the grant says) sees none that only a private repository holds, as on /v2.
  const listed = (viewer: Viewer, repository: string) => viewer.seesPrivate || !visibility.isPrivate(repository);
  const rolloutListed = (viewer: Viewer, id: string) => {
    const subject = rollouts.subject(id);
    return viewer.seesPrivate || (subject !== undefined && !visibility.isPrivate(subject.repository));
  };
  return {
    status: () => statusOf(deps),
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
    gc: () => keeper.collect(),
    health,
    readiness: async () => {
      const checks = await health();
      checks.index = { ok: true, detail: `${tracked.index.count} blobs, ${tracked.index.bytes} bytes` };
      if (config.bootstrap.length > 0) {
        const n = p2p ? p2p.connectedPeers().length : 0;
        checks.peers = { ok: n > 0, detail: n > 0 ? `${n} connected` : 'no peer connected yet (bootstrap peers are configured)' };
      }
      return checks;
    },
    metrics: () => deps.metrics.render(),
    rollouts: {
      create: async (image, platform) => rollouts.view((await rollouts.create(image, platform)).id)!,
      get: (id, viewer) => (rolloutListed(viewer, id) ? rollouts.view(id) : undefined),
      list: (viewer) => rollouts.list().filter((v) => rolloutListed(viewer, v.id)),
    },
  };
}

function statusOf({ config, url, p2p, stats, tracked, keeper, seeds }: ApiDeps): StatusAnswer {
  const peers = p2p ? p2p.connectedPeers() : [];
  return {
    version: VERSION,
    url: url(),
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
    upstreams: seeds,
    defaultRegistry: config.defaultRegistry,
    store: {
      bytes: tracked.index.bytes,
      blobs: tracked.index.count,
      maxBytes: config.maxDiskBytes ?? null,
      highWatermarkBytes: keeper.highBytes ?? null,
      lowWatermarkBytes: keeper.lowBytes ?? null,
      evictions: keeper.evictions,
    },
    stats: stats.toJSON(),
  };
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
