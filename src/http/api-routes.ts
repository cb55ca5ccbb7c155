// The node's own API (/api, /healthz, /readyz, /metrics): what an operator, a script, the dashboard or
// Prometheus asks a node about itself. The node supplies the answers; this module only speaks HTTP.
// What each request and answer holds is declared in api-schema.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPlatform, OciError } from '../oci/index.js';
import {
  gcBody,
  jsonBody,
  rolloutBody,
  type BlobAnswer,
  type BlobsAnswer,
  type Check,
  type GcAnswer,
  type ImageAnswer,
  type ImagesAnswer,
  type ProbeAnswer,
  type PullAnswer,
  type PullsAnswer,
  type RolloutAnswer,
  type RolloutParams,
  type RolloutRequest,
  type RolloutsAnswer,
  type StatusAnswer,
} from './api-schema.js';

/** Who asks, as far as /api answers go: whether private repositories' names and content may be shown. */
export interface Viewer {
  seesPrivate: boolean;
}

export interface NodeApi {
  status(): StatusAnswer;
  images(viewer: Viewer): Promise<ImageAnswer[]>;
  blobs(viewer: Viewer): Promise<BlobAnswer[]>;
  pulls(viewer: Viewer): PullAnswer[];
  gc(): Promise<GcAnswer>;
  /** Liveness: the process runs and its store takes writes. */
  health(): Promise<Record<string, Check>>;
  /** Readiness: healthy, the store is loaded and, when peers are expected, one is connected. */
  readiness(): Promise<Record<string, Check>>;
  metrics(): Promise<{ contentType: string; body: string }>;
  rollouts: {
    /** Starts (or joins the running) rollout of an image; throws an OciError for a bad request. */
    create(image: string, platform?: string): Promise<RolloutAnswer>;
    get(id: string, viewer: Viewer): RolloutAnswer | undefined;
    list(viewer: Viewer): RolloutAnswer[];
  };
}

/**
 * `viewerOf` says who asks (the same credentials as /v2, and the same 401 for bad ones): every answer
 * that names repositories or digests is filtered by it. Absent: everyone sees everything.
 */
export function registerApiRoutes(app: FastifyInstance, api: NodeApi, viewerOf: (request: FastifyRequest, reply: FastifyReply) => Promise<Viewer> = async () => ({ seesPrivate: true })): void {
  // Typed per call site (json<StatusAnswer>(...)): an answer that drifts from its schema type fails to compile.
  const json = <T>(body: T) => JSON.stringify(body);
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/') || request.url === '/healthz' || request.url === '/readyz') reply.header('cache-control', 'no-store');
    return payload;
  });
  app.get('/api/status', async (_request, reply) => {
    reply.type('application/json').send(json<StatusAnswer>(api.status()));
  });
  app.get('/api/images', async (request, reply) => {
    reply.type('application/json').send(json<ImagesAnswer>({ images: await api.images(await viewerOf(request, reply)) }));
  });
  app.get('/api/blobs', async (request, reply) => {
    reply.type('application/json').send(json<BlobsAnswer>({ blobs: await api.blobs(await viewerOf(request, reply)) }));
  });
  app.get('/api/pulls', async (request, reply) => {
    reply.type('application/json').send(json<PullsAnswer>({ pulls: api.pulls(await viewerOf(request, reply)) }));
  });
  // The body is checked (jsonBody) though gc reads nothing of it: an option it lacks is refused.
  app.post('/api/gc', jsonBody(gcBody), async (_request, reply) => {
    reply.type('application/json').send(json<GcAnswer>(await api.gc()));
  });
  app.post<{ Body: RolloutRequest }>('/api/rollouts', jsonBody(rolloutBody), async (request, reply) => {
    const { image, platform } = request.body;
    if (platform !== undefined && !isPlatform(platform)) {
      throw new OciError('NAME_INVALID', `invalid platform ${JSON.stringify(platform)}: want os/arch[/variant]`, { status: 400 });
    }
    reply.code(202).type('application/json').send(json<RolloutAnswer>(await api.rollouts.create(image, platform)));
  });
  app.get('/api/rollouts', async (request, reply) => {
    reply.type('application/json').send(json<RolloutsAnswer>({ rollouts: api.rollouts.list(await viewerOf(request, reply)) }));
  });
  app.get<{ Params: RolloutParams }>('/api/rollouts/:id', async (request, reply) => {
    const view = api.rollouts.get(request.params.id, await viewerOf(request, reply));
    if (!view) throw new OciError('NAME_UNKNOWN', `no rollout ${request.params.id.slice(0, 100)} on this node`);
    reply.type('application/json').send(json<RolloutAnswer>(view));
  });
  const probe = (ok: ProbeAnswer['status'], fail: ProbeAnswer['status'], run: () => Promise<Record<string, Check>>) => async (_request: unknown, reply: { code(n: number): { type(t: string): { send(b: string): void } } }) => {
    const checks = await run();
    const good = Object.values(checks).every((c) => c.ok);
    reply.code(good ? 200 : 503).type('application/json').send(json<ProbeAnswer>({ status: good ? ok : fail, checks }));
  };
  app.get('/healthz', probe('ok', 'fail', () => api.health()));
  app.get('/readyz', probe('ready', 'not-ready', () => api.readiness()));
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await api.metrics();
    reply.type(contentType).send(body);
  });
}
