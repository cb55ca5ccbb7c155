// Disk quota and garbage collection policy over in-memory stores with a fake clock: what is evicted,
// in what order, and what is never touched (blobs being read, pushed content, blobs just written).
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DiskKeeper, type DiskKeeperOptions } from '../../../../src/distribution/ops/disk-keeper.js';
import { digestOf, type Digest } from '../../../../src/oci/digest.js';
import type { RepositoryName } from '../../../../src/oci/reference.js';
import { MemoryBlobStore } from '../../../../src/store/memory-blob-store.js';
import { MemoryRepositoryStore } from '../../../../src/store/memory-repository-store.js';
import { TrackedBlobStore } from '../../../../src/store/tracked-blob-store.js';
import { GuardedRepositoryStore } from '../../../../src/store/collection-guard.js';
import type { RepositoryStore } from '../../../../src/store/repository-store.js';

const KB = 1000;
const REPO = 'team/app' as RepositoryName;

async function setup(opts: Partial<DiskKeeperOptions> = {}) {
  let now = 1_000_000;
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const store = new TrackedBlobStore(new MemoryBlobStore(), clock.now);
  await store.init();
  const pushed = new MemoryRepositoryStore();
  const cache = new MemoryRepositoryStore();
  const evicted: Digest[] = [];
  const uploadsAsked: string[] = [];
  const keeper = new DiskKeeper(store, {
    maxBytes: 100 * KB,
    highWatermark: 0.9,
    lowWatermark: 0.5,
    evictPushed: false,
    pushed,
    caches: async () => [cache],
    uploadSessionAlive: async (id) => id === 'alive',
    collectUploads: async (keep) => {
      let removed = 0;
      for (const id of ['alive', 'dead-1', 'dead-2']) {
        uploadsAsked.push(id);
        if (!(await keep(id, clock.now()))) removed++;
      }
      return removed;
    },
    onEvicted: (e) => evicted.push(e.digest),
    now: clock.now,
    settleMs: 1_000,
    ...opts,
  });
  /** Puts a blob of `size` bytes (distinct content per n), then lets time pass. */
  const put = async (n: number, size = 10 * KB, link: 'cache' | 'pushed' | 'none' = 'cache') => {
    const bytes = Buffer.alloc(size, n);
    const digest = digestOf(bytes);
    await store.put(Readable.from([bytes]), digest);
    if (link === 'cache') await cache.linkBlob(REPO, digest);
    if (link === 'pushed') await pushed.linkBlob(REPO, digest);
    clock.advance(2_000);
    return digest;
  };
  return { clock, store, keeper, pushed, cache, evicted, uploadsAsked, put };
}

describe('DiskKeeper: eviction', () => {
  it('does nothing at or under the high watermark', async () => {
    const t = await setup();
    for (let n = 1; n <= 9; n++) await t.put(n);
    expect(t.store.index.bytes).toBe(90 * KB);
    expect(await t.keeper.enforce()).toBe(0);
    expect(t.evicted).toEqual([]);
  });

  it('evicts least recently used blobs, oldest first, until under the low watermark', async () => {
    const t = await setup();
    const ds: Digest[] = [];
    for (let n = 1; n <= 10; n++) ds.push(await t.put(n));
    // reading blob 1 makes it recently used
    const { stream } = await t.store.open(ds[0]!);
    stream.resume();
    await new Promise((r) => stream.once('close', r));
    t.clock.advance(2_000);
    expect(await t.keeper.enforce()).toBe(5);
    expect(t.evicted).toEqual([ds[1], ds[2], ds[3], ds[4], ds[5]]);
    expect(t.store.index.bytes).toBe(50 * KB);
    expect(await t.store.stat(ds[0]!)).toBeDefined();
    expect(await t.store.stat(ds[1]!)).toBeUndefined();
    expect(t.keeper.evictions).toBe(5);
    expect(t.keeper.evictedBytes).toBe(50 * KB);
  });

  it('never evicts a blob while it is being read, and does once the read is over', async () => {
    const t = await setup({ lowWatermark: 0.05 });
    const ds: Digest[] = [];
    for (let n = 1; n <= 10; n++) ds.push(await t.put(n));
    const { stream } = await t.store.open(ds[0]!); // opened, not yet read: a client is on it
    t.clock.advance(2_000);
    expect(await t.keeper.enforce()).toBe(9);
    expect(t.evicted).not.toContain(ds[0]);
    expect(await t.store.stat(ds[0]!)).toBeDefined();
    stream.destroy();
    await new Promise((r) => stream.once('close', r));
    for (let n = 11; n <= 19; n++) await t.put(n); // over the high watermark again
    await t.keeper.enforce();
    expect(t.evicted).toContain(ds[0]);
  });

  it('leaves content pushed to this node alone unless evictPushed is set', async () => {
    const t = await setup();
    const pushedDigests: Digest[] = [];
    for (let n = 1; n <= 6; n++) pushedDigests.push(await t.put(n, 10 * KB, 'pushed'));
    for (let n = 7; n <= 10; n++) await t.put(n);
    await t.keeper.enforce();
    for (const d of pushedDigests) expect(await t.store.stat(d)).toBeDefined();
    expect(t.evicted).toHaveLength(4);
    // Over the high watermark still: what is left is pushed content.
    await t.put(11);
    await t.put(12);
    await t.put(13);
    await t.put(14);
    const t2 = await setup({ evictPushed: true });
    const ds: Digest[] = [];
    for (let n = 1; n <= 10; n++) ds.push(await t2.put(n, 10 * KB, 'pushed'));
    expect(await t2.keeper.enforce()).toBe(5);
    expect(t2.evicted).toEqual(ds.slice(0, 5));
  });

  it('leaves a blob written moments ago alone (its links may not exist yet)', async () => {
    const t = await setup({ lowWatermark: 0.1 });
    for (let n = 1; n <= 9; n++) await t.put(n);
    const bytes = Buffer.alloc(10 * KB, 99);
    await t.store.put(Readable.from([bytes]), digestOf(bytes)); // no time passes
    await t.keeper.enforce();
    expect(t.evicted).not.toContain(digestOf(bytes));
    expect(await t.store.stat(digestOf(bytes))).toBeDefined();
  });

  it('runs one eviction at a time: a call during a run shares it', async () => {
    const t = await setup();
    for (let n = 1; n <= 10; n++) await t.put(n);
    const [a, b] = await Promise.all([t.keeper.enforce(), t.keeper.enforce()]);
    expect(a).toBe(5);
    expect(b).toBe(5);
    expect(t.evicted).toHaveLength(5);
  });

  it('has no watermarks without a quota, and never evicts', async () => {
    const t = await setup({ maxBytes: undefined });
    for (let n = 1; n <= 12; n++) await t.put(n);
    expect(t.keeper.highBytes).toBeUndefined();
    expect(await t.keeper.enforce()).toBe(0);
  });
});

describe('DiskKeeper: garbage collection', () => {
  it('removes upload areas nobody can resume, and keeps a live upload session', async () => {
    const t = await setup({ maxBytes: undefined });
    const report = await t.keeper.collect();
    expect(t.uploadsAsked).toEqual(['alive', 'dead-1', 'dead-2']);
    expect(report.removedUploads).toBe(2);
  });

  it('removes blobs no repository links (pushed or cached), keeps linked ones and manifests', async () => {
    const t = await setup({ maxBytes: undefined });
    const cached = await t.put(1, 1 * KB, 'cache');
    const pushed = await t.put(2, 2 * KB, 'pushed');
    const orphan = await t.put(3, 3 * KB, 'none');
    const manifestBytes = Buffer.from('{"schemaVersion":2}');
    const manifest = digestOf(manifestBytes);
    await t.store.put(Readable.from([manifestBytes]), manifest);
    await t.cache.putManifest(REPO, { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifestBytes.length });
    t.clock.advance(2_000);
    const report = await t.keeper.collect();
    expect(report).toEqual({ removedUploads: 2, removedBlobs: 1, freedBytes: 3 * KB, evicted: 0 });
    expect(await t.store.stat(orphan)).toBeUndefined();
    for (const d of [cached, pushed, manifest]) expect(await t.store.stat(d)).toBeDefined();
  });

  it('leaves an unlinked blob alone while it is fresh or being read', async () => {
    const t = await setup({ maxBytes: undefined });
    const reading = await t.put(1, KB, 'none');
    const { stream } = await t.store.open(reading);
    const fresh = Buffer.alloc(KB, 7);
    await t.store.put(Readable.from([fresh]), digestOf(fresh));
    expect((await t.keeper.collect()).removedBlobs).toBe(0);
    stream.destroy();
    await new Promise((r) => stream.once('close', r));
    t.clock.advance(2_000);
    expect((await t.keeper.collect()).removedBlobs).toBe(2);
  });

  it('ends with the quota: an over-full store is evicted too, and the freed bytes add up', async () => {
    const t = await setup();
    for (let n = 1; n <= 10; n++) await t.put(n);
    await t.put(11, 5 * KB, 'none');
    const report = await t.keeper.collect();
    expect(report.removedBlobs).toBe(1);
    expect(report.evicted).toBeGreaterThan(0);
    expect(report.freedBytes).toBe(5 * KB + report.evicted * 10 * KB);
    expect(t.store.index.bytes).toBeLessThanOrEqual(50 * KB);
  });

  it('spares a blob committed before the listing and linked after it passed, however old it is by the delete', async () => {
    // The pushed repositories, as node.ts wires them: every link is marked for running collections.
    let late: (() => Promise<void>) | undefined;
    const inner = new MemoryRepositoryStore();
    const listing: RepositoryStore = new Proxy(inner, {
      get(target, prop) {
        // Right after the repositories are listed, a push links its blob into a new one.
        if (prop === 'listRepositories') return async () => {
          const names = await target.listRepositories();
          await late?.();
          return names;
        };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const t = await setup({ maxBytes: undefined, pushed: listing });
    const pushedRepos = new GuardedRepositoryStore(listing, t.store.guard);
    const bytes = Buffer.alloc(KB, 42);
    const digest = digestOf(bytes);
    await t.store.put(Readable.from([bytes]), digest);
    t.clock.advance(10_000); // past the settle window: only the mark can save it
    late = async () => {
      late = undefined;
      await pushedRepos.linkBlob('team/new' as RepositoryName, digest);
    };
    expect((await t.keeper.collect()).removedBlobs).toBe(0);
    expect(await t.store.stat(digest)).toBeDefined();
    expect(await inner.listLinked('team/new' as RepositoryName)).toEqual([digest]);
  });

  it('a commit of a digest being deleted waits for the delete, and a held digest is not deleted', async () => {
    const t = await setup({ maxBytes: undefined });
    const orphan = await t.put(1, KB, 'none');
    const sweep = t.store.guard.begin();
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const deleting = t.store.guard.remove(sweep, orphan, async () => {
      await gate;
      return t.store.delete(orphan);
    });
    const bytes = Buffer.alloc(KB, 1);
    let committed = false;
    const commit = t.store.put(Readable.from([bytes]), orphan).then(() => (committed = true));
    // Let the commit go as far as it can: it must stop before its rename, at the running delete.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(committed).toBe(false);
    finish();
    expect(await deleting).toBe(true);
    await commit;
    expect(await t.store.stat(orphan)).toBeDefined();
    // Committed during the sweep: marked, so this sweep spares it.
    expect(await t.store.guard.remove(sweep, orphan, () => t.store.delete(orphan))).toBe(false);
    sweep.end();
    const release = t.store.guard.hold(orphan);
    const next = t.store.guard.begin();
    expect(await t.store.guard.remove(next, orphan, () => t.store.delete(orphan))).toBe(false);
    release();
    next.end();
    const last = t.store.guard.begin();
    expect(await t.store.guard.remove(last, orphan, () => t.store.delete(orphan))).toBe(true);
    last.end();
  });
});
