// The dashboard at `/`: one HTML page, its script and its stylesheet, read once from ./dashboard/ next
// to this module (the build copies them into dist/). The page draws everything from the /api endpoints.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

interface Asset {
  route: string;
  file: string;
  type: string;
}

export const DASHBOARD_ASSETS: readonly Asset[] = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/dashboard.js', file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { route: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
];

export const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));

// The page loads nothing but its own script and stylesheet and talks only to this node: a name that
// slipped past the page's text-only rendering still could not run a script.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function registerDashboardRoutes(app: FastifyInstance, dir: string = DASHBOARD_DIR): void {
  for (const asset of DASHBOARD_ASSETS) {
    let body: Buffer | undefined;
    let missing = '';
    try {
      body = readFileSync(`${dir}/${asset.file}`);
    } catch (err) {
      // A build that skipped the copy must not stop the registry from serving: say what is wrong at `/`.
      missing = `layerd dashboard: ${asset.file} is missing from ${dir} (${(err as Error).message}); run npm run build\n`;
    }
    app.get(asset.route, async (_request, reply) => {
      if (!body) return reply.code(503).type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(missing);
      reply
        .type(asset.type)
        // Revalidate every time: a node upgraded in place serves the new page on the next load.
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CSP)
        .send(body);
    });
  }
}
