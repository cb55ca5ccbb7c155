// A layerd node: the stores, the registry over them and the HTTP endpoint, wired from a Config.
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config.js';
import { Registry } from './distribution/registry.js';
import { buildHttpServer } from './http/server.js';
import { FsBlobStore } from './store/fs-blob-store.js';
import { FsRepositoryStore } from './store/fs-repository-store.js';

export interface RunningNode {
  /** The address the HTTP endpoint is bound to, e.g. http://127.0.0.1:5000 */
  url: string;
  logger: Logger;
  close(): Promise<void>;
}

export function createLogger(level: Config['logLevel']): Logger {
  // Authorization headers and credentials are never logged: request logs carry method, url and status only.
  return pino({ level, base: { name: 'layerd' }, redact: ['req.headers.authorization', '*.password', '*.token'] });
}

export async function startNode(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningNode> {
  const dataDir = resolve(config.dataDir);
  const blobs = await new FsBlobStore(dataDir).init();
  const repos = await new FsRepositoryStore(dataDir).init();
  const registry = new Registry(blobs, repos);
  const app = buildHttpServer({ registry, logger });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, dataDir }, 'layerd listening');
  return {
    url,
    logger,
    close: () => app.close(),
  };
}
