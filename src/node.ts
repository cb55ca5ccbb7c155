// A layerd node: the stores, the registry and mirror over them, and the HTTP endpoint, wired from a Config.
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { Distribution } from './distribution/distribution.js';
import { Mirror } from './distribution/mirror.js';
import { Registry } from './distribution/registry.js';
import { buildHttpServer } from './http/server.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { FsRepositoryStore } from './store/fs-repository-store.js';
import type { RepositoryStore } from './store/repository-store.js';
import { UpstreamRegistry } from './upstream/registry-client.js';
import { USER_AGENT } from './version.js';

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
  const blobs = await new FsBlobStore(dataDir).init();
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
  });
  const distribution = new Distribution(registry, upstreams.size > 0 ? mirror : undefined, config.defaultRegistry);

  const app = buildHttpServer({ distribution, logger });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host}:${port}`;
  // Names only: an upstream's credentials are never logged.
  logger.info({ url, dataDir, upstreams: [...upstreams.values()].map((u) => u.name), defaultRegistry: config.defaultRegistry }, 'layerd listening');
  return {
    url,
    logger,
    async close() {
      await app.close();
      for (const u of upstreams.values()) u.close();
    },
  };
}
