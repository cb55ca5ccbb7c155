// What a web page may make a browser do to a node (issue 13 items 8 and 11). A page on any site can
// send requests to 127.0.0.1:5000; it cannot read the answers (no CORS headers are ever sent) unless it
// rebinds its own DNS name to 127.0.0.1, and it cannot set Host or Origin. So:
//   - a loopback listener answers only to loopback Host names (and --allow-host ones): a rebound name
//     gets 403 for everything, so the page reads nothing;
//   - writes (/v2 pushes, upload sessions) and every /api call refuse a cross-site Origin: a page cannot
//     open upload sessions until pushes get 429, nor start rollouts;
//   - /api POSTs want `content-type: application/json`, which no form can send and which a cross-site
//     fetch can send only after a CORS preflight (that this node never grants);
//   - /api writes (POST, DELETE: gc, rollouts) need the credentials of a push, wherever pushes do.
// Registry clients (containerd, docker, podman, skopeo) send no Origin and the Host they were configured
// with (127.0.0.1:5000, localhost:5000), so none of this touches them.
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OciError } from '../oci/index.js';
import type { AccessPolicy } from './access.js';

export interface BrowserGuardOptions {
  /** The listener is loopback only: Host must then be a loopback name or one of `allowHosts`. */
  loopback: boolean;
  /** Host names (lower case, no port) a loopback listener answers to besides the loopback ones. */
  allowHosts?: readonly string[];
  /** Who may write through /api (the credentials of a push); absent: anyone. */
  access?: AccessPolicy;
}

/** A Host header's name (lower case, without brackets or a trailing dot) and port; undefined if malformed. */
export function parseHostHeader(value: string): { name: string; port?: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  if (m[1] !== undefined && !isIPv6(m[1])) return undefined;
  const name = (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, '');
  return m[3] === undefined ? { name } : { name, port: Number(m[3]) };
}

/** Whether a host name (as parseHostHeader gives it) can only mean this machine's loopback. */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name === '::1') return true;
  if (isIPv4(name)) return name.startsWith('127.');
  return /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name) || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(name);
}

/**
 * Whether `origin` (an Origin header) is this node as the request reached it: the same host and port as
 * the Host header, or a loopback origin on the port the request came in on (the dashboard opened as
 * http://localhost:5000 calling http://127.0.0.1:5000). `null` and anything unparsable are cross-site.
 */
export function isSameOrigin(origin: string, host: string | undefined, localPort: number | undefined): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || (url.pathname !== '/' && url.pathname !== '')) return false;
  const name = url.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const h = host === undefined ? undefined : parseHostHeader(host);
  // A Host without a port: the client used its scheme's default, the one its Origin names.
  if (h && h.name === name && (h.port ?? port) === port) return true;
  return isLoopbackName(name) && port === localPort;
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether a Content-Type header says JSON: application/json, parameters allowed. */
function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

export function registerBrowserGuard(app: FastifyInstance, o: BrowserGuardOptions): void {
  const allowed = new Set(o.allowHosts ?? []);
  app.addHook('onRequest', async (request, reply) => {
    const host = request.headers.host;
    if (o.loopback && host !== undefined) {
      const h = parseHostHeader(host);
      if (!h || !(isLoopbackName(h.name) || allowed.has(h.name))) {
        throw new OciError('DENIED', `this node listens on loopback and answers only to Host localhost, 127.x.x.x or [::1] (or a name given with --allow-host), not ${JSON.stringify(host.slice(0, 100))}`);
      }
    }
    const route = request.routeOptions.url ?? '';
    const api = route.startsWith('/api/');
    const path = request.raw.url ?? '';
    const v2Write = (route === '/v2' || route === '/v2/*') && (WRITE_METHODS.has(request.method) || path.includes('/blobs/uploads/'));
    if (!api && !v2Write) return;
    const origin = request.headers.origin;
    if (origin !== undefined && !isSameOrigin(origin, host, request.socket.localPort)) {
      reply.header('vary', 'Origin');
      throw new OciError('DENIED', `cross-site request refused: Origin ${JSON.stringify(origin.slice(0, 100))} is not this node`);
    }
    if (!api || !WRITE_METHODS.has(request.method)) return;
    if (request.method !== 'DELETE' && !isJson(request.headers['content-type'])) {
      throw new OciError('UNSUPPORTED', 'an /api request body must be sent with content-type: application/json', { status: 415 });
    }
    await authorizeApiWrite(o.access, request, reply);
  });
}

/** /api writes need what a push needs: nothing on an open loopback node, else a user or token (403 if none exist). */
async function authorizeApiWrite(access: AccessPolicy | undefined, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (access) await access.authorize(request, reply, { action: 'api-write' });
}
