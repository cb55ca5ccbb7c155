// The dashboard's routes over fastify's inject(): the page and its assets with their content types and
// caching, every asset the page references actually served, and a readable 503 when a build lost them.
import Fastify from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DASHBOARD_ASSETS, registerDashboardRoutes } from '../../../src/http/dashboard-routes.js';

function appWith(dir?: string) {
  const app = Fastify();
  registerDashboardRoutes(app, dir);
  return app;
}

describe('dashboard routes', () => {
  const app = appWith();
  afterAll(() => app.close());

  it.each([
    ['/', /^text\/html\b/],
    ['/dashboard.js', /^text\/javascript\b/],
    ['/dashboard.css', /^text\/css\b/],
  ])('%s answers 200 with its content type, revalidated on every load', async (url, type) => {
    const res = await app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(type);
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.body.length).toBeGreaterThan(100);
  });

  it('the page references only assets that are served', async () => {
    const html = (await app.inject({ method: 'GET', url: '/' })).body;
    const refs = [...html.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]);
    expect(refs.sort()).toEqual(['/dashboard.css', '/dashboard.js']);
    const served = new Set(DASHBOARD_ASSETS.map((a) => a.route));
    for (const r of refs) expect(served.has(r!), r).toBe(true);
  });

  it('the page has the elements its script and the tests address by id', async () => {
    const html = (await app.inject({ method: 'GET', url: '/' })).body;
    for (const id of ['peer-id', 'multiaddrs', 'connected-peers', 'peers', 'hit-ratio', 'bytes-saved', 'sources', 'images', 'blobs', 'pulls', 'updated']) {
      expect(html, id).toContain(`id="${id}"`);
    }
  });

  it('assets missing from a broken build give a 503 naming the file, not a crash', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'layerd-dash-'));
    const broken = appWith(empty);
    try {
      const res = await broken.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain('index.html is missing');
    } finally {
      await broken.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});
