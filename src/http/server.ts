// The node's HTTP face: fastify with no body parsing (bodies stay streams), one log line per request,
// and every error rendered by errors.ts.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Distribution } from '../distribution/index.js';
import { OciError } from '../oci/index.js';
import { registerApiRoutes, type NodeApi } from './api-routes.js';
import { STRICT_AJV } from './api-schema.js';
import { answerClientError, answerExpectation } from './client-errors.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { sendError } from './errors.js';
import { cutIdleClients, headersDeadline } from './idle-clients.js';
import { API_VERSION_HEADER, SOURCE_HEADER, registerV2Routes, type ServeObserver } from './v2-routes.js';
import type { AccessPolicy } from './access.js';
import { registerBrowserGuard } from './browser-guard.js';

export interface HttpServerOptions {
  distribution: Distribution;
  logger: Logger | false;
  api: NodeApi;
  /** Told of every answered request (for metrics). */
  requestDone?: (method: string, url: string, status: number) => void;
  /** Told of every manifest and blob answer (GET or HEAD, 2xx) and where its bytes came from. */
  observe?: ServeObserver;
  /** Cut a client silent this long mid-request (or not reading its answer); also its headers' deadline. 0: off. */
  idleTimeoutMs?: number;
  /** Who may push and read private repositories (and write through /api); absent: everyone may do everything. */
  access?: AccessPolicy;
  /** The listener is loopback only: Host must be a loopback name (or one of allowHosts), against DNS rebinding. */
  loopback?: boolean;
  /** Host names a loopback listener answers to besides localhost, 127.x and [::1]. */
  allowHosts?: readonly string[];
}

export function buildHttpServer(opts: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger || undefined,
    logController: new OneLinePerRequest(),
    exposeHeadRoutes: false,
    // Registry clients keep connections open between layers; blobs are streamed, never buffered, so no
    // request timeout applies to their duration here.
    keepAliveTimeout: 65_000,
    requestTimeout: 0,
    routerOptions: { ignoreTrailingSlash: false },
    // A URL fastify cannot decode (e.g. a stray %ff) still gets the spec's error body.
    // A request the HTTP parser refuses (or an Expect it cannot meet) gets the OCI error body too.
    clientErrorHandler: answerClientError,
    // node would answer an HTTP/1.1 request without Host with a bare 400 of its own; the hook below
    // gives the same 400 with the OCI body. The idle timeout is also the deadline for a request's headers.
    http: { requireHostHeader: false, ...headersDeadline(opts.idleTimeoutMs ?? 0) },
    // Route schemas (the /api bodies) check what was sent as sent: no coercion, no silent dropping.
    ajv: STRICT_AJV,
    frameworkErrors: (err, request, reply) => {
      reply.headers(API_VERSION_HEADER);
      sendError(new OciError('NAME_INVALID', `malformed request path: ${err.message}`), request, reply);
    },
  }) as unknown as FastifyInstance;
  cutIdleClients(app.server, opts.idleTimeoutMs ?? 0);

  // Bodies are left unread for the handlers: blobs stream to disk, manifests are read with a bound.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.server.on('checkExpectation', answerExpectation);
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) throw new OciError('UNSUPPORTED', 'an HTTP/1.1 request needs a Host header', { status: 400 });
  });
  // Before any route runs: Host (DNS rebinding), cross-site Origin, /api content type and /api writes' credentials.
  registerBrowserGuard(app, { loopback: opts.loopback ?? false, allowHosts: opts.allowHosts, access: opts.access });
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply.headers(API_VERSION_HEADER);
    sendError(notFound(request.url), request, reply);
  });

  registerV2Routes(app, opts.distribution, opts.observe, opts.access);
  // /api reads are filtered by the /v2 read rule: a caller sees private repositories only with credentials.
  const access = opts.access;
  registerApiRoutes(app, opts.api, access ? (request, reply) => access.authorize(request, reply, { action: 'catalog' }) : undefined);
  registerDashboardRoutes(app);
  if (opts.requestDone) {
    const done = opts.requestDone;
    app.addHook('onResponse', async (request, reply) => done(request.method, request.url, reply.statusCode));
  }
  return app;
}

/** One log line per request, when it completes: method, url, status, time. Never headers (credentials). */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    const line: Record<string, unknown> = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    const source = reply.getHeader(SOURCE_HEADER);
    if (source) line.source = source;
    if (error) request.log.warn({ ...line, err: error.message }, 'request');
    else request.log.info(line, 'request');
  }
}

function notFound(url: string) {
  return Object.assign(new Error(`no such endpoint: ${url.slice(0, 200)}`), { statusCode: 404 });
}
