// tsc emits only what it compiles: copy the dashboard's HTML, JS and CSS to where the code reads them,
// ./dashboard/ next to the module holding dashboard-routes: dist/http/dashboard/ for the compiled modules
// (tests, dist/cli.js) and dist/dashboard/ for the bundle (dist/layerd.mjs, the shipped bin).
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../src/http/dashboard/', import.meta.url));
for (const dir of ['../dist/http/dashboard/', '../dist/dashboard/']) {
  const to = fileURLToPath(new URL(dir, import.meta.url));
  // Start clean so an asset deleted from src/ does not live on in dist/.
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
}
