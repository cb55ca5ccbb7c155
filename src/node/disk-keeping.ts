// Keeping the disk: the quota enforced after every commit, what a crash left collected before anything
// is served, and garbage collection every --gc-interval.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { DiskKeeper } from '../distribution/index.js';
import { removeStaleTempFiles } from '../store/index.js';
import type { Service } from './lifecycle.js';
import type { Storage } from './storage.js';

export interface DiskKeeping {
  keeper: DiskKeeper;
  /** Collects what a crash or kill -9 left (downloads cut short, abandoned uploads); nothing to stop. */
  leftovers: Service;
  /** Collects every --gc-interval from start to stop. */
  collections: Service;
}

export function keepDisk(config: Config, storage: Storage, logger: Logger): DiskKeeping {
  const { dataDir, mirrorDir, tracked, repos, fsBlobs, allCaches } = storage;
  const keeper = new DiskKeeper(tracked, {
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
  return { keeper, leftovers: { name: 'leftover collection', start: async () => void (await diskKeeper.collect()) }, collections: collectEvery(config.gcInterval, keeper, logger) };
}

function collectEvery(intervalMs: number, keeper: DiskKeeper, logger: Logger): Service {
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'garbage collection',
    async start() {
      if (intervalMs <= 0) return;
      timer = setInterval(() => void keeper.collect().catch((err: Error) => logger.warn({ reason: err.message }, 'garbage collection failed')), intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
}
