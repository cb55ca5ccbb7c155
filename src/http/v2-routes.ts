// The OCI distribution API (/v2). Repository names contain slashes, so one wildcard route takes every
// /v2 request and a small table matches the path's tail; names are matched on the raw, undecoded path
// so that percent-encoded tricks (%2e%2e, %2f) can never turn into path segments.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  contentRange,
  MAX_MANIFEST_BYTES,
  MediaType,
  OciError,
  parseChunkRange,
  parseDigest,
  parseManifestReference,
  parseRangeHeader,
  parseRegistryName,
  parseRepositoryName,
  parseTag,
  uploadedRange,
  type ByteRange,
  type Digest,
  type ManifestReference,
  type RepositoryName,
  type Tag,
} from '../oci/index.js';
import type { Distribution, Page, LocalRegistry, Source } from '../distribution/index.js';
import { isPumpable } from '../io/index.js';
import { contentLength, hasBody, readBounded } from './body.js';
import type { AccessPolicy, Grant, V2Action } from './access.js';

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

interface Ctx {
  request: FastifyRequest;
  reply: FastifyReply;
  query: URLSearchParams;
  /** The path's captures after /v2/: [name, second] as matched by the route's pattern. */
  name: RepositoryName;
  param: string;
  /** What the access policy granted the caller. */
  grant: Grant;
}

type Handler = (ctx: Ctx) => Promise<void>;

interface Route {
  pattern: RegExp;
  /** Whether the first capture is a repository name. */
  named: boolean;
  methods: Partial<Record<Method, Handler>>;
}

/** Says where a manifest's or blob's bytes came from: local, peer or upstream. */
export const SOURCE_HEADER = 'x-layerd-source';

export const API_VERSION_HEADER = { 'docker-distribution-api-version': 'registry/2.0' };

/** What an answer from what the node knew, because the seed could not be reached, carries. */
const STALE_HEADERS = { warning: '110 - "Response is Stale"', 'x-layerd-stale': 'true' };

/** Told of every manifest and blob answer (2xx) a client gets: what, from where, how big. */
export interface ServeObserver {
  (event: { kind: 'manifest' | 'blob'; head: boolean; registry: string; repository: RepositoryName; reference: string; digest: Digest; size: number; bytes: number; source: Source }): void;
}

export function registerV2Routes(app: FastifyInstance, distribution: Distribution, observe?: ServeObserver, access?: AccessPolicy): void {
  const h = new V2Handlers(distribution, observe, access);
  const authorize = async (request: FastifyRequest, reply: FastifyReply, action: V2Action, name?: RepositoryName, ns?: string | null): Promise<Grant> => {
    if (!access) return { seesPrivate: true };
    let registry: string | undefined;
    try {
      registry = name === undefined ? undefined : distribution.targetOf(ns ?? null);
    } catch {
      registry = undefined; // a malformed ?ns= is refused by the handler
    }
    return access.authorize(request, reply, { action, name, registry });
  };
  const routes: Route[] = [
    { pattern: /^_catalog$/, named: false, methods: { GET: (c) => h.catalog(c) } },
    { pattern: /^(.+)\/tags\/list$/, named: true, methods: { GET: (c) => h.tags(c) } },
    {
      pattern: /^(.+)\/manifests\/([^/]+)$/,
      named: true,
      methods: { GET: (c) => h.getManifest(c), HEAD: (c) => h.getManifest(c), PUT: (c) => h.putManifest(c), DELETE: (c) => h.deleteManifest(c) },
    },
    { pattern: /^(.+)\/blobs\/uploads\/$/, named: true, methods: { POST: (c) => h.startUpload(c) } },
    {
      pattern: /^(.+)\/blobs\/uploads\/([^/]+)$/,
      named: true,
      methods: { GET: (c) => h.uploadStatus(c), PATCH: (c) => h.patchUpload(c), PUT: (c) => h.putUpload(c), DELETE: (c) => h.cancelUpload(c) },
    },
    {
      pattern: /^(.+)\/blobs\/([^/]+)$/,
      named: true,
      methods: { GET: (c) => h.getBlob(c), HEAD: (c) => h.getBlob(c), DELETE: (c) => h.deleteBlob(c) },
    },
    { pattern: /^(.+)\/referrers\/([^/]+)$/, named: true, methods: { GET: (c) => h.referrers(c) } },
  ];

  const dispatch = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    reply.headers(API_VERSION_HEADER);
    const raw = request.raw.url ?? '/';
    const q = raw.indexOf('?');
    const path = q >= 0 ? raw.slice(0, q) : raw;
    const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    if (path === '/v2/' || path === '/v2') {
      if (request.method !== 'GET' && request.method !== 'HEAD') throw unsupportedMethod(reply, request.method, ['GET', 'HEAD']);
      await authorize(request, reply, 'ping');
      reply.code(200).header('content-type', 'application/json');
      return reply.send(request.method === 'HEAD' ? undefined : '{}');
    }
    const tail = path.slice('/v2/'.length);
    for (const route of routes) {
      const m = route.pattern.exec(tail);
      if (!m) continue;
      const handler = route.methods[request.method as Method];
      if (!handler) throw unsupportedMethod(reply, request.method, Object.keys(route.methods));
      const name = (route.named ? parseRepositoryName(m[1]!) : '') as RepositoryName;
      const param = route.named && m[2] !== undefined ? decodeSegment(m[2]) : '';
      // An upload session's GET is part of a push.
      const write = (request.method !== 'GET' && request.method !== 'HEAD') || tail.includes('/blobs/uploads/');
      const action: V2Action = !route.named ? 'catalog' : write ? 'write' : 'read';
      const ns = route.named && !write ? namespaceOf(query) : undefined;
      if (ns !== undefined) reply.header('oci-namespace', ns);
      const grant = await authorize(request, reply, action, route.named ? name : undefined, query.get('ns'));
      await handler({ request, reply, query, name, param, grant });
      // An async fastify handler must hand back the reply once it has sent it (a stream is still
      // flowing when the handler returns); otherwise fastify would answer a second time.
      return reply;
    }
    if (tail.includes('/blobs/') || tail.includes('/manifests/')) {
      throw new OciError('NAME_INVALID', 'invalid repository name or reference in path');
    }
    throw new OciError('UNSUPPORTED', `no such endpoint: ${path.slice(0, 200)}`, { status: 404 });
  };

  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2', handler: dispatch });
  app.route({ method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', handler: dispatch });
}

/** 405, with the Allow header RFC 9110 requires. */
function unsupportedMethod(reply: FastifyReply, method: string, allowed: string[]): OciError {
  reply.header('allow', allowed.join(', '));
  return new OciError('UNSUPPORTED', `method ${method} is not supported on this endpoint`);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // left as is; the grammar of whatever it should be will reject it
  }
}

/** The `n` and `last` query parameters of the listing endpoints. */
function pageParams(query: URLSearchParams): { n?: number; last?: string } {
  const out: { n?: number; last?: string } = {};
  const n = query.get('n');
  if (n !== null && n !== '') {
    if (!/^\d{1,9}$/.test(n)) throw new OciError('PAGINATION_NUMBER_INVALID', `invalid n: ${n.slice(0, 40)}`);
    out.n = Number(n);
  }
  const last = query.get('last');
  if (last !== null && last !== '') out.last = last;
  return out;
}

function linkHeader(path: string, n: number | undefined, page: Page<string>): string | undefined {
  if (page.next === undefined || n === undefined) return undefined;
  return `<${path}?n=${n}&last=${encodeURIComponent(page.next)}>; rel="next"`;
}

/**
 * The `ns` a read is scoped by, for the spec's OCI-Namespace answer header: its value as sent, when it
 * names a registry (a malformed one scopes nothing: the request is refused).
 */
function namespaceOf(query: URLSearchParams): string | undefined {
  const ns = query.get('ns');
  if (ns === null || ns === '' || !/^[\x21-\x7e]{1,300}$/.test(ns)) return undefined;
  try {
    parseRegistryName(ns);
    return ns;
  } catch {
    return undefined;
  }
}

/** The next page's link, keeping the request's `ns` so that the page is of the same registry. */
function nextLink(path: string, next: URLSearchParams, ns: string | null): string {
  const q = new URLSearchParams(next);
  if (ns !== null && ns !== '') q.set('ns', ns);
  return `<${path}?${q}>; rel="next"`;
}

/** The spec SHOULD: at least 10 tags per push by digest; beyond this many, 414 as it allows. */
const MAX_TAG_PARAMS = 100;

/** The `tag` parameters of a push by digest, each checked and deduplicated (the spec's end-7b). */
function tagParams(query: URLSearchParams, ref: ManifestReference): Tag[] {
  const raw = query.getAll('tag');
  if (raw.length === 0) return [];
  if (ref.kind !== 'digest') throw new OciError('TAG_INVALID', 'tag parameters are only taken with a push by digest');
  if (raw.length > MAX_TAG_PARAMS) throw new OciError('TAG_INVALID', `at most ${MAX_TAG_PARAMS} tag parameters per push`, { status: 414 });
  // All or nothing: one malformed tag refuses the push before anything is stored.
  return [...new Set(raw.map((t) => parseTag(t)))];
}

/** A GET or HEAD names a manifest; one by a malformed reference is not there (end-3 lists only 404). */
function readReference(param: string): ManifestReference {
  try {
    return parseManifestReference(param);
  } catch (err) {
    if (err instanceof OciError) throw new OciError('MANIFEST_UNKNOWN', `manifest unknown: ${err.message}`);
    throw err;
  }
}

function digestParam(value: string | null): Digest {
  if (value === null || value === '') throw new OciError('DIGEST_INVALID', 'digest query parameter is required');
  return parseDigest(value);
}

class V2Handlers {
  private readonly registry: LocalRegistry;

  constructor(
    private readonly distribution: Distribution,
    private readonly observe?: ServeObserver,
    private readonly access?: AccessPolicy,
  ) {
    this.registry = distribution.registry;
  }

  async catalog({ reply, query, grant }: Ctx): Promise<void> {
    const { n, last } = pageParams(query);
    const access = this.access;
    const page = await this.registry.catalog(n, last, access ? (repo) => access.visible(grant, repo) : undefined);
    const link = linkHeader('/v2/_catalog', n, page);
    if (link) reply.header('link', link);
    reply.code(200).header('content-type', 'application/json').send(JSON.stringify({ repositories: page.items }));
  }

  async tags({ reply, query, name }: Ctx): Promise<void> {
    const { n, last } = pageParams(query);
    const ns = query.get('ns');
    const answer = await this.distribution.tags(name, n, last, ns);
    if (answer.next) reply.header('link', nextLink(`/v2/${name}/tags/list`, new URLSearchParams({ n: String(answer.next.n), last: answer.next.last }), ns));
    if (answer.stale) reply.headers(STALE_HEADERS);
    reply.code(200).header('content-type', 'application/json').send(JSON.stringify({ name, tags: answer.tags }));
  }

  async getManifest({ request, reply, query, name, param }: Ctx): Promise<void> {
    const ref = readReference(param);
    // The stored type is served whatever Accept says: answering 404 for content we hold would only
    // make a client fall back to a slower source. Clients check the Content-Type they get.
    const m = await this.distribution.manifest(name, ref, query.get('ns'));
    reply.code(200).headers(manifestHeaders(m.record.mediaType, m.record.digest, m.bytes.length)).header(SOURCE_HEADER, m.source);
    if (m.stale) reply.headers(STALE_HEADERS);
    const head = request.method === 'HEAD';
    this.observe?.({ kind: 'manifest', head, registry: m.registry ?? 'local', repository: name, reference: param, digest: m.record.digest, size: m.bytes.length, bytes: head ? 0 : m.bytes.length, source: m.source });
    reply.send(head ? undefined : m.bytes);
  }

  async putManifest({ request, reply, query, name, param }: Ctx): Promise<void> {
    const ref = parseManifestReference(param);
    const tags = tagParams(query, ref);
    const bytes = await readBounded(request, MAX_MANIFEST_BYTES);
    const record = await this.distribution.putManifest(name, ref, bytes, request.headers['content-type']);
    if (tags.length > 0) await this.registry.tagManifest(name, record.digest, tags);
    reply.code(201).headers({ location: `/v2/${name}/manifests/${record.digest}`, 'docker-content-digest': record.digest });
    // One OCI-Tag field line per tag created (RFC 9110 lets a client read them as one list).
    if (tags.length > 0) reply.header('oci-tag', tags);
    if (record.subject) reply.header('oci-subject', record.subject);
    reply.send();
  }

  async deleteManifest({ reply, name, param }: Ctx): Promise<void> {
    await this.registry.deleteManifest(name, parseManifestReference(param));
    reply.code(202).send();
  }

  async getBlob({ request, reply, query, name, param }: Ctx): Promise<void> {
    const digest = parseDigest(param);
    const info = await this.distribution.blob(name, digest, query.get('ns'), request.method === 'HEAD');
    reply.header(SOURCE_HEADER, info.source);
    const rangeReq = parseRangeHeader(request.headers.range, info.size);
    reply.headers({
      'docker-content-digest': digest,
      'accept-ranges': 'bytes',
      etag: `"${digest}"`,
      'cache-control': 'max-age=31536000, immutable',
      'content-type': 'application/octet-stream',
    });
    if (rangeReq.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${info.size}`);
      throw new OciError('RANGE_INVALID', `range not satisfiable for ${info.size} bytes`);
    }
    const range: ByteRange | undefined = rangeReq.kind === 'range' ? rangeReq.range : undefined;
    const length = range ? range.end - range.start + 1 : info.size;
    const head = request.method === 'HEAD';
    this.observe?.({ kind: 'blob', head, registry: info.registry ?? 'local', repository: name, reference: digest, digest, size: info.size, bytes: head ? 0 : length, source: info.source });
    reply.code(range ? 206 : 200).header('content-length', String(length));
    if (range) reply.header('content-range', contentRange(range, info.size));
    if (request.method === 'HEAD') return void reply.send();
    await sendStream(reply, await info.open(range));
  }

  async deleteBlob({ reply, name, param }: Ctx): Promise<void> {
    await this.registry.deleteBlob(name, parseDigest(param));
    reply.code(202).send();
  }

  async startUpload({ request, reply, query, name }: Ctx): Promise<void> {
    const mount = query.get('mount');
    const from = query.get('from');
    if (mount !== null && from !== null) {
      const digest = parseDigest(mount);
      if (await this.registry.mountBlob(name, digest, from)) {
        reply.code(201).headers({ location: `/v2/${name}/blobs/${digest}`, 'docker-content-digest': digest }).send();
        return;
      }
      // Not mountable: the spec says to fall back to an ordinary upload session.
    }
    const digest = query.get('digest');
    if (digest !== null) {
      const d = parseDigest(digest);
      await this.registry.uploadWhole(name, d, request.raw, contentLength(request));
      reply.code(201).headers({ location: `/v2/${name}/blobs/${d}`, 'docker-content-digest': d }).send();
      return;
    }
    const id = await this.registry.startUpload(name);
    if (hasBody(request)) await this.registry.appendUpload(name, id, request.raw, 0, contentLength(request));
    const size = await this.registry.uploadSize(name, id);
    reply.code(202).headers(uploadHeaders(name, id, size)).send();
  }

  async uploadStatus({ reply, name, param }: Ctx): Promise<void> {
    const size = await this.registry.uploadSize(name, param);
    reply.code(204).headers(uploadHeaders(name, param, size)).send();
  }

  async patchUpload({ request, reply, name, param }: Ctx): Promise<void> {
    const at = chunkStart(request);
    const size = await this.registry.appendUpload(name, param, request.raw, at, contentLength(request));
    reply.code(202).headers(uploadHeaders(name, param, size)).send();
  }

  async putUpload({ request, reply, query, name, param }: Ctx): Promise<void> {
    const digest = digestParam(query.get('digest'));
    const body = hasBody(request) ? request.raw : undefined;
    const info = await this.registry.completeUpload(name, param, digest, body, body ? chunkStart(request) : undefined, body ? contentLength(request) : undefined);
    reply.code(201).headers({ location: `/v2/${name}/blobs/${info.digest}`, 'docker-content-digest': info.digest }).send();
  }

  async cancelUpload({ reply, name, param }: Ctx): Promise<void> {
    await this.registry.cancelUpload(name, param);
    reply.code(204).send();
  }

  async referrers({ reply, query, name, param }: Ctx): Promise<void> {
    const subject = parseDigest(param);
    const ns = query.get('ns');
    const answer = await this.distribution.referrers(name, subject, query, ns);
    if (answer.filtered) reply.header('oci-filters-applied', 'artifactType');
    if (answer.next) reply.header('link', nextLink(`/v2/${name}/referrers/${subject}`, answer.next, ns));
    if (answer.stale) reply.headers(STALE_HEADERS);
    const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: answer.manifests };
    // A Buffer, so that fastify adds no charset: the spec wants this Content-Type exactly.
    reply.code(200).header('content-type', index.mediaType).send(Buffer.from(JSON.stringify(index)));
  }
}

/**
 * Streams a body straight into the socket. A stored file goes through its recycled-buffer pump (see
 * io/file-range-stream.ts); anything else is piped. If the source fails part way (a download that
 * does not verify), the connection is cut: the client never sees the body end.
 */
async function sendStream(reply: FastifyReply, body: Readable): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  try {
    if (isPumpable(body)) {
      await body.pumpInto(res);
      res.end();
    } else {
      await pipeline(body, res);
    }
  } catch (err) {
    res.destroy();
    reply.log.warn({ reason: (err as Error).message }, 'response cut short');
  }
}

/** The start of a PATCH chunk from Content-Range, checked against Content-Length when both are given. */
function chunkStart(request: FastifyRequest): number | undefined {
  const header = request.headers['content-range'];
  if (header === undefined) return undefined;
  const range = parseChunkRange(header);
  const length = contentLength(request);
  if (length !== undefined && length !== range.end - range.start + 1) {
    throw new OciError('BLOB_UPLOAD_INVALID', `Content-Range ${header} does not match Content-Length ${length}`);
  }
  return range.start;
}

function manifestHeaders(mediaType: string, digest: Digest, size: number): Record<string, string> {
  return { 'content-type': mediaType, 'docker-content-digest': digest, 'content-length': String(size), etag: `"${digest}"` };
}

function uploadHeaders(name: RepositoryName, id: string, size: number): Record<string, string> {
  return {
    location: `/v2/${name}/blobs/uploads/${id}`,
    range: uploadedRange(size),
    'docker-upload-uuid': id,
  };
}
