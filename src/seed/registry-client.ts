// The HTTP client of one seed registry: requests to its /v2 API, with the auth a real registry asks for
// (anonymous, basic, or the bearer-token dance of Docker Hub and distribution's token auth), bounded
// retries with backoff, and timeouts. What the requests mean (and their answers) is HttpSeedRegistry's.
// Credentials never leave this module except in the Authorization header of a request to the seed or
// its token realm.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { errnoOf } from '../oci/index.js';
import { SeedError } from './errors.js';
import { keepAliveAgents, readBody, responseUrl, send, TimeoutError, type Agents } from './http.js';
import { parseChallenge, type Challenge } from './www-authenticate.js';

export interface SeedClientOptions {
  name: string;
  url: string;
  username?: string;
  password?: string;
  timeoutMs: number;
  retries: number;
  userAgent: string;
  /** Base of the backoff between retries; doubles each time, with jitter. */
  backoffMs?: number;
}

interface Token {
  value: string;
  expiresAt: number;
}

const RETRY_STATUS = new Set([500, 502, 503, 504]);
const MAX_TOKEN_BYTES = 64 * 1024;

export class SeedClient {
  readonly name: string;
  private readonly base: URL;
  private readonly agents: Agents = keepAliveAgents();
  private readonly tokens = new Map<string, Token>();
  private readonly pendingTokens = new Map<string, Promise<Token>>();
  /** Set once the seed asked for Basic: from then on credentials go with every request. */
  private basic = false;

  constructor(private readonly opts: SeedClientOptions) {
    this.name = opts.name;
    this.base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  }

  /**
   * A GET or HEAD of `/v2/<repo>/<rest>`. Resolves with any HTTP answer (the caller reads the status);
   * throws SeedError only when no answer could be had after the retries.
   */
  async request(method: 'GET' | 'HEAD', repo: string, rest: string, headers: OutgoingHttpHeaders = {}): Promise<IncomingMessage> {
    const url = new URL(`v2/${repo}/${rest}`, this.base);
    const scope = `repository:${repo}:pull`;
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      if (attempt > 0) await delay(this.backoff(attempt));
      try {
        const res = await this.withAuth(method, url, headers, scope);
        if (RETRY_STATUS.has(res.statusCode ?? 0) && attempt < this.opts.retries) {
          res.resume();
          lastError = new SeedError(this.name, 'status', `answered ${res.statusCode}`, res.statusCode);
          continue;
        }
        return res;
      } catch (err) {
        lastError = err;
      }
    }
    throw this.asSeedError(lastError);
  }

  private backoff(attempt: number): number {
    const base = (this.opts.backoffMs ?? 200) * 2 ** (attempt - 1);
    return base / 2 + Math.random() * base;
  }

  private asSeedError(err: unknown): SeedError {
    if (err instanceof SeedError) return err;
    if (err instanceof TimeoutError) return new SeedError(this.name, 'timeout', err.message);
    const code = errnoOf(err) ?? (err as Error)?.message ?? String(err);
    return new SeedError(this.name, 'unreachable', `cannot connect (${code})`);
  }

  private headers(extra: OutgoingHttpHeaders, auth: string | undefined): OutgoingHttpHeaders {
    const h: OutgoingHttpHeaders = { 'user-agent': this.opts.userAgent, ...extra };
    if (auth) h.authorization = auth;
    return h;
  }

  private async withAuth(method: string, url: URL, extra: OutgoingHttpHeaders, scope: string): Promise<IncomingMessage> {
    const res = await send(method, url, this.headers(extra, this.cachedAuth(scope)), this.opts.timeoutMs, this.agents);
    if (res.statusCode !== 401) return res;
    // A 401 from another origin (where the seed redirected us, e.g. object storage) is not the seed's
    // challenge: its realm is not one the seed named, so neither credentials nor a token dance go there.
    if (responseUrl(res)?.origin !== this.base.origin) return res;
    const challenge = parseChallenge(headerOf(res, 'www-authenticate'));
    res.resume();
    this.tokens.delete(scope); // whatever we sent was not good enough: re-run the dance once
    let auth: string | undefined;
    if (challenge?.scheme === 'bearer') auth = `Bearer ${(await this.token(challenge, scope)).value}`;
    else if (challenge?.scheme === 'basic' && this.hasCredentials()) {
      this.basic = true;
      auth = this.basicAuth();
    }
    if (!auth) return res; // nothing more to try: the caller reports the 401 (its body was drained above)
    return send(method, url, this.headers(extra, auth), this.opts.timeoutMs, this.agents);
  }

  private cachedAuth(scope: string): string | undefined {
    const token = this.tokens.get(scope);
    if (token && token.expiresAt > Date.now()) return `Bearer ${token.value}`;
    if (this.basic) return this.basicAuth();
    return undefined;
  }

  private hasCredentials(): boolean {
    return this.opts.username !== undefined && this.opts.password !== undefined;
  }

  private basicAuth(): string {
    return `Basic ${Buffer.from(`${this.opts.username}:${this.opts.password}`).toString('base64')}`;
  }

  /** One token request per scope at a time; concurrent pulls share it. */
  private token(challenge: Challenge, scope: string): Promise<Token> {
    let pending = this.pendingTokens.get(scope);
    if (!pending) {
      pending = this.fetchToken(challenge, scope).finally(() => this.pendingTokens.delete(scope));
      this.pendingTokens.set(scope, pending);
    }
    return pending;
  }

  private async fetchToken(challenge: Challenge, scope: string): Promise<Token> {
    const realm = challenge.params.realm;
    if (!realm) throw new SeedError(this.name, 'protocol', 'bearer challenge without a realm');
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? scope);
    const headers: OutgoingHttpHeaders = { 'user-agent': this.opts.userAgent };
    if (this.hasCredentials()) headers.authorization = this.basicAuth();
    const res = await send('GET', url, headers, this.opts.timeoutMs, this.agents);
    const body = await readBody(res, MAX_TOKEN_BYTES);
    if (res.statusCode !== 200) {
      throw new SeedError(this.name, 'status', `token endpoint answered ${res.statusCode}`, res.statusCode === 401 ? 401 : res.statusCode);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc;
    } catch {
      throw new SeedError(this.name, 'protocol', 'token endpoint answered something other than JSON');
    }
    const value = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
    if (!value) throw new SeedError(this.name, 'protocol', 'token endpoint gave no token');
    // The token spec's default lifetime is 60 s. Renew at 90% of it, so a token never expires in flight.
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const issued = typeof doc.issued_at === 'string' ? Date.parse(doc.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    const token = { value, expiresAt: start + lifetime * 900 };
    this.tokens.set(scope, token);
    return token;
  }

  close(): void {
    this.agents.destroy();
  }
}

export function headerOf(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
