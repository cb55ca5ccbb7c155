// The route label of layerd_http_requests_total: few values whatever the URL, so a scrape stays small.
import { describe, expect, it } from 'vitest';
import { routeOf } from '../../../src/node/node-metrics.js';

describe('routeOf', () => {
  it.each([
    ['/v2/', 'v2'],
    ['/v2', 'v2'],
    ['/v2/_catalog?n=10', 'catalog'],
    ['/v2/a/b/c/tags/list', 'tags'],
    ['/v2/team/app/manifests/v1?ns=docker.io', 'manifest'],
    ['/v2/team/app/manifests/sha256:abc', 'manifest'],
    ['/v2/team/app/blobs/sha256:abc', 'blob'],
    ['/v2/team/app/blobs/uploads/', 'upload'],
    ['/v2/team/app/blobs/uploads/0b7e7c38-5b7e-4c8a-9a8f-1f2e3d4c5b6a?digest=sha256:x', 'upload'],
    ['/v2/team/app/referrers/sha256:abc', 'referrers'],
    ['/v2/team/app/whatever', 'v2-other'],
    ['/api/status', 'api'],
    ['/metrics', 'metrics'],
    ['/healthz', 'healthz'],
    ['/readyz', 'readyz'],
    ['/', 'dashboard'],
    ['/dashboard.js', 'dashboard'],
    ['/etc/passwd', 'other'],
  ])('%s counts as %s', (url, route) => {
    expect(routeOf(url)).toBe(route);
  });
});
