// The /v2 access policy as a table: what needs credentials, by where the node listens and what is configured.
import { describe, expect, it } from 'vitest';
import { RepositoryVisibility } from '../../../src/distribution/sharing/repository-visibility.js';
import { AccessPolicy, isLoopbackHost, type AccessRequest } from '../../../src/http/access.js';
import { Credentials, parseTokens } from '../../../src/http/credentials.js';
import type { RepositoryName } from '../../../src/oci/reference.js';

const withToken = new Credentials(new Map(), parseTokens('a-token-of-16-chars-or-more'));
const none = new Credentials();
const visibility = new RepositoryVisibility(['team/secret', 'library/internal']);
const name = (n: string) => n as RepositoryName;

const ping: AccessRequest = { action: 'ping' };
const catalog: AccessRequest = { action: 'catalog' };
const push: AccessRequest = { action: 'write', name: name('team/app') };
const readPublic: AccessRequest = { action: 'read', name: name('team/app') };
const readPrivate: AccessRequest = { action: 'read', name: name('team/secret/app') };
/** Docker Hub's short name: private through its normalized name library/internal. */
const readHubShort: AccessRequest = { action: 'read', name: name('internal'), registry: 'docker.io' };

describe('access policy', () => {
  it.each([
    // exposed, credentials, request, needs credentials
    ['loopback, nothing configured: all open', false, none, [ping, catalog, push, readPublic, readPrivate], false],
    ['loopback with credentials: pushes', false, withToken, [push], true],
    ['loopback with credentials: private reads and the ping', false, withToken, [readPrivate, readHubShort, ping], true],
    ['loopback with credentials: public reads and the catalog stay open', false, withToken, [readPublic, catalog], false],
    ['exposed, nothing configured: pushes and private reads', true, none, [push, readPrivate], true],
    ['exposed, nothing configured: public reads, catalog and ping', true, none, [readPublic, catalog, ping], false],
    ['exposed with credentials: pushes, private reads, ping', true, withToken, [push, readPrivate, readHubShort, ping], true],
    ['exposed with credentials: public reads and the catalog', true, withToken, [readPublic, catalog], false],
  ] as const)('%s', (_what, exposed, credentials, requests, needs) => {
    const policy = new AccessPolicy({ credentials, visibility, exposed });
    for (const r of requests) expect(policy.needsCredentials(r), JSON.stringify(r)).toBe(needs);
  });

  it('is read-only for the network only when exposed with no credentials', () => {
    expect(new AccessPolicy({ credentials: none, visibility, exposed: true }).readOnly).toBe(true);
    expect(new AccessPolicy({ credentials: withToken, visibility, exposed: true }).readOnly).toBe(false);
    expect(new AccessPolicy({ credentials: none, visibility, exposed: false }).readOnly).toBe(false);
    expect(new AccessPolicy({ credentials: none, visibility, exposed: false }).enforced).toBe(false);
  });

  it('hides private repositories from a catalog caller who may not see them', () => {
    const policy = new AccessPolicy({ credentials: withToken, visibility, exposed: true });
    const repos = ['team/app', 'team/secret', 'team/secret/app', 'team/secretive'].map(name);
    expect(repos.filter((r) => policy.visible({ seesPrivate: false }, r))).toEqual(['team/app', 'team/secretive']);
    expect(repos.filter((r) => policy.visible({ seesPrivate: true }, r))).toEqual(repos);
  });

  it('knows loopback listen hosts', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', 'LOCALHOST']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.7', 'node1', '128.0.0.1', '192.168.1.127']) expect(isLoopbackHost(h), h).toBe(false);
  });
});
