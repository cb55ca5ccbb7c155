// The node's HTTP endpoint: /v2 for clients, /api and the dashboard for operators, /metrics.
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Distribution, Observations } from '../distribution/index.js';
import { buildHttpServer, isLoopbackHost, type AccessPolicy, type NodeApi } from '../http/index.js';
import type { Service } from './lifecycle.js';

/** How long requests in flight may run on after a shutdown begins. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface HttpDeps {
  distribution: Distribution;
  api: NodeApi;
  access: AccessPolicy;
  observed: Observations;
  logger: Logger;
  /** Told the URL once the endpoint listens (before anything else is). */
  listening: (url: string) => void;
}

/** Where the endpoint listens, once it does: for the answers that name it (/api/status). */
export class ListenAddress {
  private bound = '';
  /** '' until the endpoint listens. */
  get url(): string {
    return this.bound;
  }
  listening(url: string): void {
    this.bound = url;
  }
}

/** The server, built; it listens on start and closes on stop. */
export function httpEndpoint(config: Config, deps: HttpDeps): Service {
  const { observed } = deps;
  const app = buildHttpServer({
    distribution: deps.distribution,
    logger: deps.logger,
    api: deps.api,
    idleTimeoutMs: config.httpIdleTimeout,
    access: deps.access,
    loopback: isLoopbackHost(config.listen.host),
    allowHosts: config.allowHost,
    requestDone: (method, url, status) => observed.emit('request', { method, url, status }),
    observe: (e) => {
      if (e.kind === 'blob') observed.emit('blob-served', { source: e.source, bytes: e.bytes });
      if (!e.head) observed.emit('pulled', { kind: e.kind, registry: e.registry, repository: e.repository, reference: e.reference, digest: e.digest, size: e.size, source: e.source });
    },
  });
  return {
    name: 'http',
    async start() {
      try {
        await app.listen({ host: config.listen.host, port: config.listen.port });
      } catch (err) {
        await app.close(); // a start that fails leaves nothing open
        throw err;
      }
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
      const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
      deps.listening(`http://${host}:${port}`);
    },
    async stop() {
      // Stop accepting; give transfers in flight a grace period, then cut them. Nothing half written is
      // ever under a blob's name, and what downloads leave in uploads/ is collected at the next start.
      const cut = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await app.close();
      clearTimeout(cut);
    },
  };
}
