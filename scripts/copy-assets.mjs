// tsc emits only what it compiles: copy the dashboard's HTML, JS and CSS next to the compiled route
// module (dist/http/dashboard/), where it reads them.
import { cpSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../src/http/dashboard/', import.meta.url));
const to = fileURLToPath(new URL('../dist/http/dashboard/', import.meta.url));
// Start clean so an asset deleted from src/ does not live on in dist/.
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
