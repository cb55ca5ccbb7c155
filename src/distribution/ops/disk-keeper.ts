// Keeps a node's disk use under its quota and its store tidy. Policy only: what may go and in what
// order; the stores do the I/O.
//  - Eviction: when the blobs pass the high watermark, the least recently used go until they are under
//    the low one. Never a blob being read (a client or peer is streaming it), never one committed in
//    the last moments (it may not be linked yet), and never content pushed to this node itself (a seed's
//    own repositories) unless evictPushed is set: this node is its only home. An eviction is a delete
//    through the store, whose change stream withdraws the blob from the DHT.
//  - Collection (at start, periodically, and on `layerd gc`): upload areas that no live writer or
//    resumable upload session owns (what kill -9 leaves of a download), and blobs that no repository,
//    pushed or mirrored, links any more. One collection at a time; a request during one gets the next.
// Both list what the repositories link and then remove what is not in the list: over thousands of
// repositories the listing takes seconds, and pushes go on meanwhile. So each run is a sweep of the
// store's CollectionGuard, begun before the listing: what is committed or linked after that, or held
// by a push between its commit and its link, is spared, checked right before each delete.
// The settle window stays for content fetched for pulls: a download commits the blob and the mirror
// links it into the seed's cache afterwards, without a hold; a blob that fresh is not yet linked.
import type { Digest } from '../../oci/index.js';
import type { RepositoryStore, Sweep, TrackedBlobStore, UsageEntry } from '../../store/index.js';

export interface DiskKeeperOptions {
  /** The quota for blobs, in bytes; undefined: no quota. */
  maxBytes?: number;
  /** Eviction starts above this fraction of maxBytes… */
  highWatermark: number;
  /** …and stops at or below this one. */
  lowWatermark: number;
  evictPushed: boolean;
  /** Repositories of content pushed to this node. */
  pushed: RepositoryStore;
  /** Every seed cache's repositories. */
  caches: () => Promise<RepositoryStore[]>;
  /** Upload areas a client may still resume (an open upload session younger than the upload TTL). */
  uploadSessionAlive: (id: string, modifiedMs: number) => Promise<boolean>;
  collectUploads: (keep: (id: string, modifiedMs: number) => Promise<boolean>) => Promise<number>;
  /** Removes files a crash left half written outside the blob store (records written via a temp name). */
  collectTempFiles?: () => Promise<number>;
  onEvicted?: (entry: UsageEntry) => void;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  now?: () => number;
  /** A blob used more recently than this is left alone: its repository links may not exist yet. */
  settleMs?: number;
}

export interface GcReport {
  /** Upload areas and temp files a crash left. */
  removedUploads: number;
  removedBlobs: number;
  freedBytes: number;
  evicted: number;
}

export class DiskKeeper {
  evictions = 0;
  evictedBytes = 0;
  private running: Promise<number> | undefined;
  private again = false;
  private collecting: Promise<GcReport> | undefined;
  private nextCollection: Promise<GcReport> | undefined;
  private readonly now: () => number;
  private readonly settleMs: number;

  constructor(
    private readonly store: TrackedBlobStore,
    private readonly o: DiskKeeperOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.settleMs = o.settleMs ?? 2_000;
  }

  get highBytes(): number | undefined {
    return this.o.maxBytes === undefined ? undefined : Math.floor(this.o.maxBytes * this.o.highWatermark);
  }

  get lowBytes(): number | undefined {
    return this.o.maxBytes === undefined ? undefined : Math.floor(this.o.maxBytes * this.o.lowWatermark);
  }

  /** Evicts if the store is over its high watermark; one run at a time (a call during one runs again after). */
  enforce(): Promise<number> {
    if (this.highBytes === undefined || this.store.index.bytes <= this.highBytes) return this.running ?? Promise.resolve(0);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    // Callers fire and forget (after each commit): a failure is logged here, never left unhandled.
    this.running = this.evict()
      .catch((err: Error) => {
        this.o.log?.warn({ reason: err.message }, 'disk quota: eviction failed');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          void this.enforce();
        }
      });
    return this.running;
  }

  private async evict(): Promise<number> {
    const sweep = this.store.guard.begin();
    try {
      return await this.evictIn(sweep);
    } finally {
      sweep.end();
    }
  }

  private async evictIn(sweep: Sweep): Promise<number> {
    const low = this.lowBytes!;
    let evicted = 0;
    const protectedDigests = this.o.evictPushed ? new Set<Digest>() : await linkedBy([this.o.pushed]);
    for (const entry of this.store.index.leastRecentlyUsed()) {
      if (this.store.index.bytes <= low) break;
      if (!this.evictable(entry, protectedDigests)) continue;
      if (await this.remove(sweep, entry)) {
        evicted++;
        this.evictions++;
        this.evictedBytes += entry.size;
        this.o.onEvicted?.(entry);
      }
    }
    if (this.store.index.bytes > this.highBytes!) {
      // Blobs skipped only for being fresh can go once they have settled: look again then.
      setTimeout(() => void this.enforce(), this.settleMs).unref();
      this.o.log?.warn({ bytes: this.store.index.bytes, high: this.highBytes }, 'disk quota: still over the high watermark (the rest is pushed content, in use, or just written)');
    } else if (evicted > 0) this.o.log?.info({ evicted, bytes: this.store.index.bytes }, 'disk quota: evicted least recently used blobs');
    return evicted;
  }

  private evictable(entry: UsageEntry, protectedDigests: Set<Digest>): boolean {
    return !this.store.isReading(entry.digest) && this.now() - entry.lastUse >= this.settleMs && !protectedDigests.has(entry.digest);
  }

  private async remove(sweep: Sweep, entry: UsageEntry): Promise<boolean> {
    // Checked again right before: a read may have started, or a push held or linked the blob, while
    // the protected set was computed.
    if (this.store.isReading(entry.digest)) return false;
    try {
      return await this.store.guard.remove(sweep, entry.digest, () => this.store.delete(entry.digest));
    } catch (err) {
      this.o.log?.warn({ digest: entry.digest, reason: (err as Error).message }, 'could not remove a blob');
      return false;
    }
  }

  /**
   * Stale uploads, unlinked blobs, then the quota. One collection runs at a time: a call while one runs
   * gets the next, which begins after it (so it sees everything unlinked before the call).
   */
  collect(): Promise<GcReport> {
    if (!this.collecting) return this.startCollection();
    this.nextCollection ??= this.collecting
      .catch(() => undefined)
      .then(() => {
        this.nextCollection = undefined;
        return this.startCollection();
      });
    return this.nextCollection;
  }

  private startCollection(): Promise<GcReport> {
    const run = this.collectOnce().finally(() => {
      if (this.collecting === run) this.collecting = undefined;
    });
    this.collecting = run;
    return run;
  }

  private async collectOnce(): Promise<GcReport> {
    const removedUploads = (await this.o.collectUploads((id, modified) => this.o.uploadSessionAlive(id, modified))) + ((await this.o.collectTempFiles?.()) ?? 0);
    // Begun before the listing: anything linked after the listing passed its repository is marked.
    const sweep = this.store.guard.begin();
    let removedBlobs = 0;
    let freedBytes = 0;
    try {
      const linked = await linkedBy([this.o.pushed, ...(await this.o.caches())]);
      for (const entry of this.store.index.leastRecentlyUsed()) {
        if (linked.has(entry.digest) || this.store.isReading(entry.digest) || this.now() - entry.lastUse < this.settleMs) continue;
        if (await this.remove(sweep, entry)) {
          removedBlobs++;
          freedBytes += entry.size;
        }
      }
    } finally {
      sweep.end();
    }
    const before = this.evictedBytes;
    const evicted = await this.enforce();
    freedBytes += this.evictedBytes - before;
    const report = { removedUploads, removedBlobs, freedBytes, evicted };
    if (removedUploads + removedBlobs + evicted > 0) this.o.log?.info(report, 'garbage collected');
    return report;
  }
}

/** Every digest the repositories link: blobs, and manifests (whose bytes live in the blob store). */
async function linkedBy(stores: RepositoryStore[]): Promise<Set<Digest>> {
  const out = new Set<Digest>();
  for (const repos of stores) {
    for (const repo of await repos.listRepositories()) {
      for (const d of await repos.listLinked(repo)) out.add(d);
    }
  }
  return out;
}
