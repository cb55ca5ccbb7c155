// Who may do what on /v2. Credentials are asked for when the endpoint is exposed (it listens beyond
// loopback) or when any are configured:
//   - writes (uploads, manifest PUTs, deletes) need a valid user or token; exposed with no credentials
//     configured, the node is read-only for the network and refuses them (403 DENIED);
//   - reads of a private repository (--private-repos) need the same; the catalog hides private
//     repositories from anonymous callers;
//   - reads of other repositories are open: a mirror serves anonymous pulls;
//   - the base endpoint /v2/ answers 401 to anonymous callers once credentials are configured, as
//     distribution does, so `docker login` checks a password and clients learn the Basic challenge.
// On loopback with nothing configured, everything stays open, as it always was.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { normalizeRepository, OciError, type RepositoryName } from '../oci/index.js';
import type { RepositoryVisibility } from '../distribution/index.js';
import type { CredentialCheck } from './credentials.js';

export const AUTH_REALM = 'layerd';
const CHALLENGE = `Basic realm="${AUTH_REALM}", charset="UTF-8"`;

/** What a request does; 'api-write' is a POST or DELETE of the node's own /api (gc, rollouts): a push's credentials. */
export type V2Action = 'ping' | 'catalog' | 'read' | 'write' | 'api-write';

export interface AccessRequest {
  action: V2Action;
  /** The repository, for reads and writes. */
  name?: RepositoryName;
  /** The registry the request means (containerd's ?ns=, else the default): private prefixes also match its normalized name. */
  registry?: string;
}

export interface Grant {
  /** Whether the caller may see private repositories (authenticated, or nothing is asked of anyone). */
  seesPrivate: boolean;
}

export interface AccessPolicyOptions {
  credentials: CredentialCheck;
  visibility: RepositoryVisibility;
  /** The endpoint listens beyond loopback. */
  exposed: boolean;
}

/** Whether a listen host is loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export class AccessPolicy {
  constructor(private readonly o: AccessPolicyOptions) {}

  /** Whether anything is asked of callers at all. */
  get enforced(): boolean {
    return this.o.exposed || this.o.credentials.configured;
  }

  /** Nobody can push: exposed with no credentials to push with. */
  get readOnly(): boolean {
    return this.o.exposed && !this.o.credentials.configured;
  }

  /** What the request needs: nothing, or a valid user or token. Pure: the unit tests' table. */
  needsCredentials(req: AccessRequest): boolean {
    if (!this.enforced) return false;
    switch (req.action) {
      case 'write':
      case 'api-write':
        return true;
      case 'ping':
        return this.o.credentials.configured;
      case 'catalog':
        return false; // filtered instead
      case 'read':
        return this.isPrivate(req);
    }
  }

  private isPrivate(req: AccessRequest): boolean {
    if (!this.o.visibility.hasPrivate || req.name === undefined) return false;
    const names: string[] = [req.name];
    if (req.registry) names.push(normalizeRepository(req.registry, req.name));
    return this.o.visibility.isPrivate(...names);
  }

  /** Lets the request on, or throws the OciError to answer with (401 with a challenge, or 403). */
  async authorize(request: FastifyRequest, reply: FastifyReply, req: AccessRequest): Promise<Grant> {
    if (!this.enforced) return { seesPrivate: true };
    const needed = this.needsCredentials(req);
    if (!this.o.credentials.configured) {
      if (!needed) return { seesPrivate: false };
      const what = req.action === 'write' ? 'pushes are refused' : req.action === 'api-write' ? 'writes to /api are refused' : `repository ${req.name} is private`;
      throw new OciError('DENIED', `${what}: this node listens beyond loopback and has no --htpasswd or --token-file configured`);
    }
    const result = await this.o.credentials.check(request.headers.authorization, request.ip);
    if (result.kind === 'user') return { seesPrivate: true };
    if (result.kind === 'limited') {
      // Once per address and episode, not once per request: a flood must not flood the log too.
      if (result.firstRefusal) request.log.warn({ ip: request.ip, retryAfter: result.retryAfter }, 'too many failed authentications: refusing this address for a while');
      throw new OciError('TOOMANYREQUESTS', `${result.reason}: try again in ${result.retryAfter} s`, { retryAfter: result.retryAfter });
    }
    if (result.kind === 'invalid') {
      // The reason names the scheme or the user, never the password or token.
      request.log.warn({ method: request.method, url: request.url.slice(0, 200), ip: request.ip, reason: result.reason }, 'authentication failed');
      reply.header('www-authenticate', CHALLENGE);
      throw new OciError('UNAUTHORIZED', 'authentication failed');
    }
    if (!needed) return { seesPrivate: false };
    reply.header('www-authenticate', CHALLENGE);
    const what = req.action === 'write' ? 'pushing' : req.action === 'api-write' ? 'writes to /api' : req.action === 'ping' ? 'this registry' : `repository ${req.name}`;
    throw new OciError('UNAUTHORIZED', `authentication required for ${what}`);
  }

  /** Whether a caller with `grant` may see the repository in the catalog. */
  visible(grant: Grant, repo: RepositoryName): boolean {
    return grant.seesPrivate || !this.o.visibility.isPrivate(repo);
  }
}
