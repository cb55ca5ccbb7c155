// A registry that demands bearer tokens the way Docker Hub does, built as a proxy in front of a plain
// docker-registry: a /v2 request without a valid token gets 401 and a `WWW-Authenticate: Bearer realm=...,
// service=...,scope=...` challenge; the client then asks the realm (GET /token?service=&scope=, optionally
// with Basic credentials; or the OAuth2 POST form) for a token and retries with `Authorization: Bearer`.
// Tokens are scoped to repositories and expire server-side, and every token request and every 401 is
// counted, so tests can assert that the dance happened, that tokens are reused, and refreshed on expiry.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, forward, listen, requestKind, sendJsonError, trackSockets, type LoggedRequest } from './fault-proxy.js';

export interface TokenAuthProxyOptions {
  /** The registry behind the proxy. */
  backend: string;
  /** Seconds a token is valid (enforced here, and reported as expires_in). Default 300. */
  tokenLifetimeSeconds?: number;
  /** When set, these Basic credentials get tokens with pull and push access. */
  username?: string;
  password?: string;
  /** Whether a token request without credentials gets a (pull-only) token. Default: true. */
  allowAnonymous?: boolean;
  /** The `service` of the challenge. Default `test-registry`. */
  service?: string;
}

export interface TokenRequest {
  method: 'GET' | 'POST';
  service: string | null;
  scopes: string[];
  /** The user name presented, or null for an anonymous request. */
  user: string | null;
  granted: boolean;
}

export interface TokenAuthProxy {
  url: string;
  port: number;
  /** Every request to the token endpoint, oldest first. */
  tokenRequests(): TokenRequest[];
  /** How many /v2 requests were answered 401 with a challenge. */
  challenges(): number;
  /** The /v2 requests that carried a valid token and went on to the registry. */
  proxied(): LoggedRequest[];
  /** How many issued tokens have not expired yet: lets a test wait for expiry as a condition. */
  liveTokens(): number;
  /** Changes the lifetime of tokens issued from now on. */
  setTokenLifetime(seconds: number): void;
  close(): Promise<void>;
}

interface Grant {
  expiresAt: number;
  /** `<repository>:<action>` pairs, e.g. `library/alpine:pull`. */
  access: Set<string>;
}

/** What a /v2 request needs: the scope to name in the challenge and the grants that satisfy it. */
function neededAccess(method: string, path: string): { scope?: string; needs: string[] } {
  if (path === '/v2/' || path === '/v2') return { needs: [] }; // any valid token will do
  if (path === '/v2/_catalog') return { scope: 'registry:catalog:*', needs: ['registry:catalog:*'] };
  const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)\//.exec(path);
  if (!m) return { needs: ['*'] }; // nothing grants this; the registry would 404 it anyway
  const name = m[1]!;
  const actions = method === 'GET' || method === 'HEAD' ? ['pull'] : ['pull', 'push'];
  return { scope: `repository:${name}:${actions.join(',')}`, needs: actions.map((a) => `${name}:${a}`) };
}

/** Parses `Authorization: Basic ...`; undefined when absent, null when malformed. */
function basicCredentials(header: string | undefined): { user: string; password: string } | null | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(\S+)$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenAuthProxy(opts: TokenAuthProxyOptions): Promise<TokenAuthProxy> {
  const service = opts.service ?? 'test-registry';
  const allowAnonymous = opts.allowAnonymous ?? true;
  let lifetime = opts.tokenLifetimeSeconds ?? 300;
  const grants = new Map<string, Grant>();
  const tokenLog: TokenRequest[] = [];
  const proxiedLog: LoggedRequest[] = [];
  let challenges = 0;
  let self = '';

  /** Issues a token for `scopes`, given who asked (null: anonymous); undefined if refused. */
  function issue(user: { user: string; password: string } | null, scopes: string[]): { token: string; issuedAt: Date } | undefined {
    const authenticated = user !== null && opts.username !== undefined && user.user === opts.username && user.password === opts.password;
    if (user !== null && !authenticated) return undefined; // wrong credentials are refused, not downgraded
    if (user === null && !allowAnonymous) return undefined;
    const allowed = authenticated ? ['pull', 'push'] : ['pull'];
    const access = new Set<string>();
    for (const scope of scopes) {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name || !actions) continue;
      for (const a of actions.split(',')) if (allowed.includes(a)) access.add(`${name}:${a}`);
    }
    const token = randomBytes(24).toString('base64url');
    const issuedAt = new Date();
    grants.set(token, { expiresAt: issuedAt.getTime() + lifetime * 1000, access });
    return { token, issuedAt };
  }

  function sendToken(res: ServerResponse, issued: { token: string; issuedAt: Date }): void {
    const body = JSON.stringify({ token: issued.token, access_token: issued.token, expires_in: lifetime, issued_at: issued.issuedAt.toISOString() });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }

  function refuse(res: ServerResponse): void {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ details: 'incorrect username or password' }));
  }

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method === 'POST') {
      // The OAuth2 form some clients (containerd) try first when they have credentials.
      const form = new URLSearchParams(await readBody(req));
      const user = form.get('grant_type') === 'password' ? { user: form.get('username') ?? '', password: form.get('password') ?? '' } : null;
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const issued = user ? issue(user, scopes) : undefined;
      tokenLog.push({ method: 'POST', service: form.get('service'), scopes, user: user?.user ?? null, granted: issued !== undefined });
      return issued ? sendToken(res, issued) : refuse(res);
    }
    const creds = basicCredentials(req.headers.authorization);
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const issued = creds === null ? undefined : issue(creds ?? null, scopes);
    tokenLog.push({ method: 'GET', service: url.searchParams.get('service'), scopes, user: creds?.user ?? null, granted: issued !== undefined });
    return issued ? sendToken(res, issued) : refuse(res);
  }

  function registryEndpoint(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const { scope, needs } = neededAccess(req.method ?? 'GET', url.pathname);
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const grant = m ? grants.get(m[1]!) : undefined;
    const valid = grant !== undefined && grant.expiresAt > Date.now();
    if (valid && needs.every((n) => grant.access.has(n))) {
      proxiedLog.push({ method: req.method ?? '', url: req.url ?? '', kind: requestKind(req.method, req.url), mode: 'pass' });
      forward(req, res, { backend: opts.backend, self, dropRequestHeaders: ['authorization'] });
      return;
    }
    challenges++;
    let challenge = `Bearer realm="${self}/token",service="${service}"`;
    if (scope) challenge += `,scope="${scope}"`;
    // As distribution's token auth does: say why a presented token was not good enough.
    if (m) challenge += valid ? ',error="insufficient_scope"' : ',error="invalid_token"';
    req.resume(); // a request body (an upload) is not read by anyone
    sendJsonError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': challenge });
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', self);
    if (url.pathname === '/token') {
      tokenEndpoint(req, res, url).catch(() => res.destroy());
    } else if (url.pathname.startsWith('/v2')) {
      registryEndpoint(req, res, url);
    } else {
      sendJsonError(res, 404, 'NOT_FOUND', 'not a registry path');
    }
  });
  const sockets = trackSockets(server);
  const port = await listen(server);
  self = `http://127.0.0.1:${port}`;

  return {
    url: self,
    port,
    tokenRequests: () => [...tokenLog],
    challenges: () => challenges,
    proxied: () => [...proxiedLog],
    liveTokens: () => [...grants.values()].filter((g) => g.expiresAt > Date.now()).length,
    setTokenLifetime: (seconds) => {
      lifetime = seconds;
    },
    close: () => closeServer(server, sockets),
  };
}
