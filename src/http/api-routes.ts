// The node's own API (/api, /healthz, /readyz, /metrics): what an operator, a script, the dashboard or
// Prometheus asks a node about itself. The node supplies the answers; this module only speaks HTTP.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/errors.js';
import { isPlatform } from '../oci/manifest.js';
import { readBounded } from './body.js';

export interface NodeStatus {
  version: string;
  url: string;
  peerId?: string;
  multiaddrs: string[];
  connectedPeers: number;
  [key: string]: unknown;
}

export interface Check {
  ok: boolean;
  detail?: string;
}

/** Who asks, as far as /api answers go: whether private repositories' names and content may be shown. */
export interface Viewer {
  seesPrivate: boolean;
}

export interface NodeApi {
  status(): NodeStatus;
  images(viewer: Viewer): Promise<object[]>;
  blobs(viewer: Viewer): Promise<object[]>;
  pulls(viewer: Viewer): object[];
  gc(): Promise<object>;
  /** Liveness: the process runs and its store takes writes. */
  health(): Promise<Record<string, Check>>;
  /** Readiness: healthy, the store is loaded and, when peers are expected, one is connected. */
  readiness(): Promise<Record<string, Check>>;
  metrics(): Promise<{ contentType: string; body: string }>;
  rollouts: {
    /** Starts (or joins the running) rollout of an image; throws an OciError for a bad request. */
    create(image: string, platform?: string): Promise<object>;
    get(id: string, viewer: Viewer): object | undefined;
    list(viewer: Viewer): object[];
  };
}

/** The largest request body an /api call reads. */
const MAX_API_BODY = 64 * 1024;

/**
 * `viewerOf` says who asks (the same credentials as /v2, and the same 401 for bad ones): every answer
 * that names repositories or digests is filtered by it. Absent: everyone sees everything.
 */
export function registerApiRoutes(app: FastifyInstance, api: NodeApi, viewerOf: (request: FastifyRequest, reply: FastifyReply) => Promise<Viewer> = async () => ({ seesPrivate: true })): void {
  const json = (body: object) => JSON.stringify(body);
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/') || request.url === '/healthz' || request.url === '/readyz') reply.header('cache-control', 'no-store');
    return payload;
  });
  app.get('/api/status', async (_request, reply) => {
    reply.type('application/json').send(json(api.status()));
  });
  app.get('/api/images', async (request, reply) => {
    reply.type('application/json').send(json({ images: await api.images(await viewerOf(request, reply)) }));
  });
  app.get('/api/blobs', async (request, reply) => {
    reply.type('application/json').send(json({ blobs: await api.blobs(await viewerOf(request, reply)) }));
  });
  app.get('/api/pulls', async (request, reply) => {
    reply.type('application/json').send(json({ pulls: api.pulls(await viewerOf(request, reply)) }));
  });
  app.post('/api/gc', async (_request, reply) => {
    reply.type('application/json').send(json(await api.gc()));
  });
  app.post('/api/rollouts', async (request, reply) => {
    let doc: { image?: unknown; platform?: unknown };
    try {
      doc = JSON.parse((await readBounded(request, MAX_API_BODY)).toString('utf8') || '{}') as typeof doc;
    } catch (err) {
      if (err instanceof OciError) throw err;
      throw new OciError('NAME_INVALID', 'want a JSON body {"image": "registry/repository:tag", "platform"?: "os/arch"}', { status: 400 });
    }
    if (typeof doc?.image !== 'string' || (doc.platform !== undefined && typeof doc.platform !== 'string')) {
      throw new OciError('NAME_INVALID', 'want a JSON body {"image": "registry/repository:tag", "platform"?: "os/arch"}', { status: 400 });
    }
    if (doc.platform !== undefined && !isPlatform(doc.platform)) {
      throw new OciError('NAME_INVALID', `invalid platform ${JSON.stringify(doc.platform.slice(0, 100))}: want os/arch[/variant]`, { status: 400 });
    }
    reply.code(202).type('application/json').send(json(await api.rollouts.create(doc.image, doc.platform)));
  });
  app.get('/api/rollouts', async (request, reply) => {
    reply.type('application/json').send(json({ rollouts: api.rollouts.list(await viewerOf(request, reply)) }));
  });
  app.get<{ Params: { id: string } }>('/api/rollouts/:id', async (request, reply) => {
    const view = api.rollouts.get(request.params.id, await viewerOf(request, reply));
    if (!view) throw new OciError('NAME_UNKNOWN', `no rollout ${request.params.id.slice(0, 100)} on this node`);
    reply.type('application/json').send(json(view));
  });
  const probe = (ok: string, fail: string, run: () => Promise<Record<string, Check>>) => async (_request: unknown, reply: { code(n: number): { type(t: string): { send(b: string): void } } }) => {
    const checks = await run();
    const good = Object.values(checks).every((c) => c.ok);
    reply.code(good ? 200 : 503).type('application/json').send(json({ status: good ? ok : fail, checks }));
  };
  app.get('/healthz', probe('ok', 'fail', () => api.health()));
  app.get('/readyz', probe('ready', 'not-ready', () => api.readiness()));
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await api.metrics();
    reply.type(contentType).send(body);
  });
}
