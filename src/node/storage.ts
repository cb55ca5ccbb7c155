// The node's storage: the blob store (announcing to peers when P2P is on, accounted for the disk
// quota) and the repository stores, pushed content and one cache per seed, under the data dir.
import { join } from 'node:path';
import { Announcer, type BlobSharing } from '../distribution/index.js';
import type { ContentRouter } from '../p2p/index.js';
import { FsBlobStore, FsRepositoryStore, GuardedRepositoryStore, TrackedBlobStore, readdirOrEmpty, type RepositoryStore } from '../store/index.js';

/**
 * The repository stores as they are on disk, nothing wrapped around them: pushed content in
 * data/repositories, each seed's cache apart in data/mirror/<registry>/repositories. What only reads
 * links (which blobs peers may have) reads these; writers get them wrapped (openStorage).
 */
export class RepositoryDirs {
  readonly mirrorDir: string;
  private readonly caches = new Map<string, Promise<RepositoryStore>>();

  private constructor(
    readonly pushed: RepositoryStore,
    dataDir: string,
    /** The configured seeds' names. */
    private readonly seeds: readonly string[],
  ) {
    this.mirrorDir = join(dataDir, 'mirror');
  }

  static async open(dataDir: string, seeds: readonly string[]): Promise<RepositoryDirs> {
    return new RepositoryDirs(await new FsRepositoryStore(dataDir).init(), dataDir, seeds);
  }

  /** A seed's cache, opened once. */
  cache(name: string): Promise<RepositoryStore> {
    let cache = this.caches.get(name);
    if (!cache) this.caches.set(name, (cache = new FsRepositoryStore(join(this.mirrorDir, encodeURIComponent(name))).init()));
    return cache;
  }

  /** Every seed with a cache: the configured seeds, and any other found on disk (a seed since removed). */
  async seedNames(): Promise<string[]> {
    return [...new Set([...this.seeds, ...(await readdirOrEmpty(this.mirrorDir)).map((n) => decodeURIComponent(n))])].sort();
  }

  /** Pushed content and every seed's cache: the stores whose links say which blobs peers may have. */
  async all(): Promise<RepositoryStore[]> {
    return [this.pushed, ...(await Promise.all((await this.seedNames()).map((name) => this.cache(name))))];
  }
}

export interface Storage {
  dataDir: string;
  mirrorDir: string;
  fsBlobs: FsBlobStore;
  /** Present when P2P is on: announces held blobs (announceAll at start). */
  announcing: Announcer | undefined;
  /** The blob store everything above uses. */
  tracked: TrackedBlobStore;
  /** Pushed repositories. */
  repos: RepositoryStore;
  /** A seed's cache. */
  cacheFor(name: string): Promise<RepositoryStore>;
  /** Every seed cache: of the configured seeds, and of any other found on disk (a seed since removed). */
  allCaches(): Promise<Array<{ registry: string; repos: RepositoryStore }>>;
}

/** Opens the blob store over `dataDir` and wraps the repository stores for writers. Nothing to start or stop. */
export async function openStorage(dataDir: string, dirs: RepositoryDirs, sharing: BlobSharing, router: ContentRouter | undefined): Promise<Storage> {
  // The sharing policy follows every repository store's link changes.
  const watched = (store: RepositoryStore): RepositoryStore => {
    sharing.follow(store);
    return store;
  };
  const fsBlobs = await new FsBlobStore(dataDir).init();
  // Every commit is announced to the cluster when P2P is on, whoever made it; every read and write is
  // accounted for the disk quota.
  // The announcer subscribes first: it is told of a commit before the usage index and the quota check.
  const announcing: Announcer | undefined = router ? new Announcer(fsBlobs, router, sharing) : undefined;
  const tracked: TrackedBlobStore = await new TrackedBlobStore(fsBlobs).init();
  // Every link written is marked for collections running meanwhile (see CollectionGuard).
  const repos = new GuardedRepositoryStore(watched(dirs.pushed), tracked.guard);
  const caches = new Map<string, Promise<RepositoryStore>>();
  const cacheFor = (name: string) => {
    let cache = caches.get(name);
    if (!cache) caches.set(name, (cache = dirs.cache(name).then((c) => new GuardedRepositoryStore(watched(c), tracked.guard))));
    return cache;
  };
  const allCaches = async () => Promise.all((await dirs.seedNames()).map(async (registry) => ({ registry, repos: await cacheFor(registry) })));
  return { dataDir, mirrorDir: dirs.mirrorDir, fsBlobs, announcing, tracked, repos, cacheFor, allCaches };
}
