// A small OCI Distribution client for integration tests. It uses node:http rather than fetch so that
// request paths go out byte for byte: fetch's URL parser would resolve `..` and `%2e%2e` segments
// before the server ever saw them, and the path-traversal tests need the server to see them.
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { expect } from 'vitest';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type DigestAlg = 'sha256' | 'sha512';

export function digestOf(data: Buffer | string, alg: DigestAlg = 'sha256'): string {
  return `${alg}:${createHash(alg).update(data).digest('hex')}`;
}

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

/** JSON bytes; `indent` lets a test push non-canonical bytes to prove the registry stores them verbatim. */
export function jsonBytes(value: unknown, indent?: number): Buffer {
  return Buffer.from(JSON.stringify(value, null, indent));
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export function descriptor(mediaType: string, data: Buffer, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length, ...extra };
}

export interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  header(name: string): string | undefined;
  json<T = any>(): T;
}

export interface ReqOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export class RegistryClient {
  /** `baseUrl` may be a function, read on every request, for a client made before its registry is started. */
  constructor(private readonly base: string | (() => string)) {}

  get baseUrl(): string {
    return typeof this.base === 'function' ? this.base() : this.base;
  }

  /** `path` is sent as is; an absolute URL (a Location header from the server) is reduced to its path and query. */
  async req(method: string, path: string, opts: ReqOptions = {}): Promise<Res> {
    const base = new URL(this.baseUrl);
    const rawPath = /^https?:\/\//.test(path) ? pathOf(path) : path;
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
    const headers: Record<string, string> = { ...opts.headers };
    // Always state the length of a request that may carry a body, so no test depends on chunked encoding.
    if (body !== undefined || ['POST', 'PUT', 'PATCH'].includes(method)) {
      headers['content-length'] ??= String(body?.length ?? 0);
    }
    return new Promise<Res>((resolve, reject) => {
      const r = httpRequest(
        { host: base.hostname, port: base.port, method, path: rawPath, headers, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const buf = Buffer.concat(chunks);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: buf,
              header: (name) => {
                const v = res.headers[name.toLowerCase()];
                return Array.isArray(v) ? v.join(', ') : v;
              },
              json: () => JSON.parse(buf.toString('utf8')),
            });
          });
        },
      );
      r.setTimeout(30_000, () => r.destroy(new Error(`${method} ${rawPath} timed out`)));
      r.on('error', reject);
      r.end(body);
    });
  }

  /**
   * Pushes a blob in two steps: an empty POST, then one PUT with the bytes. (pushBlob sends the bytes with
   * the POST; distribution answers that 202 without reading them and closes, so the client's write races
   * the close and sometimes fails with ECONNRESET.) Throws with the registry's answer on a failure.
   */
  async putBlob(repo: string, data: Buffer): Promise<string> {
    const digest = digestOf(data);
    const post = await this.req('POST', `/v2/${repo}/blobs/uploads/`);
    if (post.status !== 202) throw new Error(`POST upload to ${repo}: ${post.status} ${post.body.toString().slice(0, 300)}`);
    const put = await this.req('PUT', withQuery(post.header('location')!, `digest=${digest}`), { headers: { 'content-type': 'application/octet-stream' }, body: data });
    if (put.status !== 201) throw new Error(`PUT ${digest} to ${repo}: ${put.status} ${put.body.toString().slice(0, 300)}`);
    return digest;
  }

  /** Pushes a blob with a single POST ?digest=; falls back to POST then PUT if the registry answers 202. */
  async pushBlob(repo: string, data: Buffer, alg: DigestAlg = 'sha256'): Promise<string> {
    const digest = digestOf(data, alg);
    const octet = { 'content-type': 'application/octet-stream' };
    let res: Res;
    try {
      res = await this.req('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { headers: octet, body: data });
    } catch (err) {
      // distribution 2.8 answers a monolithic POST with 202 without reading the body and may close
      // the connection under the write: start a session with an empty POST instead.
      if (!['ECONNRESET', 'EPIPE'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      res = await this.req('POST', `/v2/${repo}/blobs/uploads/`, { headers: octet });
    }
    if (res.status === 202) {
      res = await this.req('PUT', withQuery(res.header('location')!, `digest=${digest}`), { headers: octet, body: data });
    }
    if (res.status !== 201) throw new Error(`push blob ${digest} to ${repo}: ${res.status} ${res.body.toString()}`);
    return digest;
  }

  async putManifest(repo: string, reference: string, body: Buffer, mediaType: string): Promise<Res> {
    return this.req('PUT', `/v2/${repo}/manifests/${reference}`, { headers: { 'content-type': mediaType }, body });
  }

  /** putManifest that must succeed; returns the manifest digest. */
  async pushManifest(repo: string, reference: string, body: Buffer, mediaType: string): Promise<string> {
    const res = await this.putManifest(repo, reference, body, mediaType);
    if (res.status !== 201) throw new Error(`push manifest ${repo}:${reference}: ${res.status} ${res.body.toString()}`);
    return digestOf(body);
  }

  /** Pushes a config and `layers` random layers, then an image manifest of the given format under `tag`. */
  async pushImage(repo: string, tag: string, opts: { format?: 'oci' | 'docker'; layers?: number; layerSize?: number } = {}): Promise<PushedImage> {
    const docker = opts.format === 'docker';
    const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBlob(8).toString('hex') });
    const layers = Array.from({ length: opts.layers ?? 1 }, () => randomBlob(opts.layerSize ?? 1024));
    await this.pushBlob(repo, config);
    for (const l of layers) await this.pushBlob(repo, l);
    const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
    const manifest = jsonBytes({
      schemaVersion: 2,
      mediaType,
      config: descriptor(docker ? MT.dockerConfig : MT.ociConfig, config),
      layers: layers.map((l) => descriptor(docker ? MT.dockerLayer : MT.ociLayer, l)),
    });
    const digest = await this.pushManifest(repo, tag, manifest, mediaType);
    return { manifest, digest, mediaType, config, layers };
  }
}

export interface PushedImage {
  manifest: Buffer;
  digest: string;
  mediaType: string;
  config: Buffer;
  layers: Buffer[];
}

function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

/** Appends a query parameter to an upload Location, which may already carry query parameters of its own. */
export function withQuery(location: string, query: string): string {
  return location + (location.includes('?') ? '&' : '?') + query;
}

/** The error codes of an OCI error body, asserting on the way that it is JSON of the spec's shape. */
export function errorCodes(res: Res): string[] {
  expect(res.header('content-type') ?? '', `content-type of a ${res.status} error`).toMatch(/^application\/json\b/);
  const body = res.json<{ errors: Array<{ code: string; message?: string }> }>();
  expect(Array.isArray(body.errors), `errors array in ${res.body.toString()}`).toBe(true);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const e of body.errors) {
    expect(e.code).toMatch(/^[A-Z_]+$/);
    expect(typeof (e.message ?? '')).toBe('string');
  }
  return body.errors.map((e) => e.code);
}

/** Asserts an error response: status, JSON content type and an OCI error body whose first code is one of `codes`. */
export function expectError(res: Res, status: number | number[], codes: string | string[]): void {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `status of ${res.body.toString().slice(0, 300)}`).toContain(res.status);
  const wanted = Array.isArray(codes) ? codes : [codes];
  const got = errorCodes(res)[0];
  expect(wanted, `error code ${got} (${res.body.toString().slice(0, 200)})`).toContain(got);
}

/** A client that sends one Authorization header with every request (undefined: anonymous). */
export class AuthClient extends RegistryClient {
  constructor(
    base: string,
    private readonly authorization: string | undefined,
  ) {
    super(base);
  }

  override req(method: string, path: string, opts: ReqOptions = {}): Promise<Res> {
    const auth: Record<string, string> = this.authorization ? { authorization: this.authorization } : {};
    return super.req(method, path, { ...opts, headers: { ...auth, ...opts.headers } });
  }
}

/** An Authorization header value for HTTP Basic. */
export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
