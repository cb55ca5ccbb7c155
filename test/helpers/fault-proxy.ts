// An HTTP proxy in front of a registry whose behaviour tests switch at runtime, to make a seed registry
// fail the ways real ones do: go down, send wrong bytes, trickle, or hang. It also counts requests by kind,
// which tells a test what a mirror asked of its upstream. Bodies are streamed both ways, never buffered.
//
// This file also holds the forwarding plumbing that token-auth-proxy.ts reuses.
import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

// ---------- forwarding, shared with token-auth-proxy.ts ----------

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function copyHeaders(headers: IncomingMessage['headers'], drop: string[] = []): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !drop.includes(name)) out[name] = value;
  }
  return out;
}

export interface ForwardOptions {
  /** Backend base URL, e.g. http://127.0.0.1:5000. */
  backend: string;
  /** This proxy's own base URL: a Location that points at the backend is rewritten to point here. */
  self: string;
  /** Request headers not to pass on (lower case), e.g. the proxy's own Authorization. */
  dropRequestHeaders?: string[];
  /** A stream the response body is piped through (to corrupt or slow it); it must keep the length. */
  bodyTransform?: (req: IncomingMessage, upRes: IncomingMessage) => Transform | undefined;
}

/** Relays `req` to the backend and streams the answer into `res`; a failure on either side ends both. */
export function forward(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions): void {
  const backend = new URL(opts.backend);
  const headers = copyHeaders(req.headers, ['host', ...(opts.dropRequestHeaders ?? [])]);
  // The backend sees its own host name, so URLs it builds (upload Locations) name the backend; they are
  // rewritten on the way back, as a reverse proxy does.
  headers.host = backend.host;
  const up = httpRequest({ host: backend.hostname, port: backend.port, method: req.method, path: req.url, headers, agent: false }, (upRes) => {
    const out = copyHeaders(upRes.headers);
    const loc = upRes.headers.location;
    if (typeof loc === 'string' && loc.startsWith(backend.origin)) out.location = opts.self.replace(/\/$/, '') + loc.slice(backend.origin.length);
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out);
    const transform = opts.bodyTransform?.(req, upRes);
    (transform ? upRes.pipe(transform) : upRes).pipe(res);
    // A backend body that breaks off must break the client's response too, not end it as if complete.
    upRes.on('error', () => res.destroy());
    upRes.on('aborted', () => res.destroy());
    transform?.on('error', () => res.destroy());
  });
  up.on('error', (err) => {
    if (res.headersSent) res.destroy(err);
    else sendJsonError(res, 502, 'UNAVAILABLE', `test proxy: backend ${backend.origin}: ${err.message}`);
  });
  // The client went away before the end: stop the backend transfer too.
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}

export function sendJsonError(res: ServerResponse, status: number, code: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message }] }));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': body.length,
    'docker-distribution-api-version': 'registry/2.0',
    ...headers,
  });
  // A HEAD answer carries the headers of the GET answer but no body.
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** Keeps every open connection of a server, so a test can cut them all (idle keep-alive ones too). */
export function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

/** Listens on 127.0.0.1, on `port` or else any free one, and resolves with the port. */
export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}

export function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}

/** What a registry request is, for counting. */
export type RequestKind = 'base' | 'manifest-get' | 'manifest-head' | 'blob-get' | 'blob-head' | 'upload' | 'other';

export function requestKind(method: string | undefined, url: string | undefined): RequestKind {
  const path = (url ?? '').split('?')[0]!;
  if (path === '/v2/' || path === '/v2') return 'base';
  if (/^\/v2\/.+\/blobs\/uploads\//.test(path)) return 'upload';
  const m = /^\/v2\/.+\/(manifests|blobs)\/[^/]+$/.exec(path);
  if (m && (method === 'GET' || method === 'HEAD')) {
    return `${m[1] === 'manifests' ? 'manifest' : 'blob'}-${method === 'GET' ? 'get' : 'head'}` as RequestKind;
  }
  return 'other';
}

export interface LoggedRequest {
  method: string;
  url: string;
  kind: RequestKind;
  /** The proxy's mode when the request arrived. */
  mode: FaultMode;
}

// ---------- the fault proxy ----------

/**
 * - `pass`: forward everything unchanged.
 * - `down`: the listening socket is closed and open connections are cut: connections are refused.
 * - `corrupt-blob`: blob GET bodies (200 and 206) get one byte flipped in the middle; the length stays.
 * - `slow`: every response body trickles at `slowBytesPerSecond`.
 * - `corrupt-slow`: both: blob GET bodies get the middle byte flipped and trickle (a client can arrive
 *   while the bad bytes are still landing).
 * - `hang`: requests are accepted and never answered.
 */
export type FaultMode = 'pass' | 'down' | 'corrupt-blob' | 'corrupt-slow' | 'slow' | 'hang';

export interface FaultProxy {
  url: string;
  port: number;
  mode(): FaultMode;
  /** Switches the behaviour; resolves once it applies (for `down`: once the port refuses connections). */
  setMode(mode: FaultMode): Promise<void>;
  /** Trickle rate of `slow` mode, in bytes per second. */
  slowBytesPerSecond: number;
  /** Every request that reached the proxy, oldest first. */
  requests(): LoggedRequest[];
  /** How many requests of this kind arrived (optionally only those whose URL contains `urlPart`). */
  count(kind: RequestKind, urlPart?: string): number;
  close(): Promise<void>;
}

/** Flips the byte in the middle of a body of `length` bytes, so the length stays and the digest breaks. */
class FlipMiddleByte extends Transform {
  private offset = 0;
  constructor(private readonly target: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const at = this.target - this.offset;
    if (at >= 0 && at < chunk.length) {
      chunk = Buffer.from(chunk); // never write into a buffer another stream may still hold
      chunk[at] = chunk[at]! ^ 0xff;
    }
    this.offset += chunk.length;
    cb(null, chunk);
  }
}

/** Passes bytes on at about `rate` bytes per second, in pieces of 1/20 s (through `flip` first, if given). */
class Throttle extends Transform {
  constructor(
    private readonly rate: number,
    private readonly flip?: FlipMiddleByte,
  ) {
    super();
  }
  override _transform(chunk: Buffer, enc: BufferEncoding, cb: TransformCallback): void {
    if (this.flip) this.flip._transform(chunk, enc, (_err, flipped?: Buffer) => (chunk = flipped ?? chunk));
    const piece = Math.max(1, Math.floor(this.rate / 20));
    let off = 0;
    const next = (): void => {
      if (this.destroyed) return;
      if (off >= chunk.length) return cb();
      const part = chunk.subarray(off, off + piece);
      off += part.length;
      this.push(part);
      setTimeout(next, (part.length / this.rate) * 1000);
    };
    next();
  }
}

export async function startFaultProxy(backend: string, opts: { mode?: FaultMode; slowBytesPerSecond?: number } = {}): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  const log: LoggedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  let self = '';

  const server = createServer((req, res) => {
    log.push({ method: req.method ?? '', url: req.url ?? '', kind: requestKind(req.method, req.url), mode });
    if (mode === 'hang') {
      // Read and drop the request body, and never answer.
      req.resume();
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    forward(req, res, {
      backend,
      self,
      bodyTransform: (r, upRes) => {
        if (mode === 'slow') return new Throttle(proxy.slowBytesPerSecond);
        if ((mode === 'corrupt-blob' || mode === 'corrupt-slow') && requestKind(r.method, r.url) === 'blob-get' && (upRes.statusCode === 200 || upRes.statusCode === 206)) {
          const length = Number(upRes.headers['content-length'] ?? 0);
          const middle = Math.floor(length / 2);
          return mode === 'corrupt-slow' ? new Throttle(proxy.slowBytesPerSecond, new FlipMiddleByte(middle)) : new FlipMiddleByte(middle);
        }
        return undefined;
      },
    });
  });
  server.keepAliveTimeout = 60_000;
  const sockets = trackSockets(server);
  const port = await listen(server);
  self = `http://127.0.0.1:${port}`;

  const proxy: FaultProxy = {
    url: self,
    port,
    slowBytesPerSecond: opts.slowBytesPerSecond ?? 1_000_000,
    mode: () => mode,
    async setMode(next) {
      const prev = mode;
      mode = next;
      if (prev === 'hang' && next !== 'hang') for (const res of hanging) res.destroy();
      if (next === 'down' && server.listening) await closeServer(server, sockets);
      // Back up on the same port, so the upstream URL the node was given is valid again.
      if (next !== 'down' && !server.listening) await listen(server, port);
    },
    requests: () => [...log],
    count: (kind, urlPart) => log.filter((r) => r.kind === kind && (urlPart === undefined || r.url.includes(urlPart))).length,
    async close() {
      for (const res of hanging) res.destroy();
      await closeServer(server, sockets);
    },
  };
  if (opts.mode) await proxy.setMode(opts.mode);
  return proxy;
}
