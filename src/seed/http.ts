// One HTTP exchange with a seed, on node:http(s) so the body stays a plain Node stream (no web-stream
// adapter on the hot path). The timeout is the socket's idle time: it bounds connecting, waiting for
// headers and every gap between body bytes, without capping how long a big layer may take.
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type * as Https from 'node:https';
import { createRequire } from 'node:module';

// node:https is loaded on the first https request, not at start: it brings tls (~3 MiB of a node's RSS), and
// a node whose seed is plain http, or that has not needed its seed yet (an idle one), never uses it.
const requireBuiltin = createRequire(import.meta.url);
let httpsModule: typeof Https | undefined;
const https = (): typeof Https => (httpsModule ??= requireBuiltin('node:https') as typeof Https);

export class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** Keep-alive connection pools to seeds, one per scheme. */
export class Agents {
  readonly http = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private httpsAgent: Https.Agent | undefined;

  /** Made on the first https request. */
  get https(): Https.Agent {
    return (this.httpsAgent ??= new (https().Agent)({ keepAlive: true, maxSockets: 64 }));
  }

  destroy(): void {
    this.http.destroy();
    this.httpsAgent?.destroy();
  }
}

export function keepAliveAgents(): Agents {
  return new Agents();
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** The URL each response was answered from, after redirects: who is speaking decides what it may ask for. */
const answeredFrom = new WeakMap<IncomingMessage, URL>();

/** Where a response from send() came from (the last hop of its redirects). */
export function responseUrl(res: IncomingMessage): URL | undefined {
  return answeredFrom.get(res);
}

/**
 * Sends a request without a body and resolves with the response once its headers arrive, following
 * redirects (registries send blob GETs to object storage). Authorization is not carried to another
 * origin, so a storage URL never sees the seed's credentials.
 */
export async function send(method: string, url: URL, headers: OutgoingHttpHeaders, timeoutMs: number, agents: Agents): Promise<IncomingMessage> {
  let current = url;
  let currentHeaders = headers;
  for (let hop = 0; ; hop++) {
    const res = await once(method, current, currentHeaders, timeoutMs, agents);
    answeredFrom.set(res, current);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location || hop >= MAX_REDIRECTS) return res;
    res.resume();
    const next = new URL(location, current);
    if (next.origin !== current.origin) {
      const { authorization: _dropped, ...rest } = currentHeaders;
      currentHeaders = rest;
    }
    current = next;
  }
}

function once(method: string, url: URL, headers: OutgoingHttpHeaders, timeoutMs: number, agents: Agents): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https() : http).request(url, { method, headers, agent: secure ? agents.https : agents.http, timeout: timeoutMs });
    req.on('timeout', () => req.destroy(new TimeoutError(timeoutMs)));
    req.on('error', reject);
    req.on('response', resolve);
    req.end();
  });
}

/** Reads a small response body (token answers, manifests) up to a bound. */
export async function readBody(res: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > max) {
      res.destroy();
      throw new Error(`response larger than ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
