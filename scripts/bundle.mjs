// The shipped `layerd` bin: the compiled CLI (dist/cli.js) and everything it imports, libraries included, as
// ONE module, dist/layerd.mjs. Loading ~870 separate modules (resolution, a file read and a compile each) was
// most of a node's start-up CPU and ~90 MiB of its base memory (issue 16).
// Run by `npm run build` after tsc; `node scripts/bundle.mjs --metafile F` also writes esbuild's metafile.
import { readFileSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({ options: { metafile: { type: 'string' } } });

/** The oldest Node the package supports (engines.node, ">=N"): what the bundle's syntax may assume. */
function nodeTarget() {
  const engines = JSON.parse(readFileSync(`${root}package.json`, 'utf8')).engines?.node ?? '';
  const major = /(\d+)/.exec(engines)?.[1];
  if (!major) throw new Error(`package.json engines.node (${JSON.stringify(engines)}) names no Node major version`);
  return `node${major}`;
}

/**
 * Node's built-in modules reached through require(), not `import`: an ES module's import of a built-in gets
 * an ESM facade whose exports are copied from the module's, every one read, and reading node:http's
 * WebSocket, CloseEvent and MessageEvent loads and compiles Node's whole bundled undici. A lone node's
 * start spent ~0.1 CPU s on that alone (CPU profile), for a fetch client the daemon never used at start.
 * require() hands back the module object as it is, its lazy getters left unread until something reads them.
 */
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/0-9]+$/ }, (args) => (args.kind === 'import-statement' && isBuiltin(args.path) ? { path: args.path, namespace: 'builtin' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

const result = await build({
  // tsc's output, not src/: the bundle runs exactly the JavaScript the tests and type checks saw. Its
  // .js.map files are read, so the bundle's source map points at src/*.ts.
  entryPoints: [`${root}dist/cli.js`],
  outfile: `${root}dist/layerd.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: nodeTarget(),
  // A separate .map file, read only under --enable-source-maps (or NODE_OPTIONS=--enable-source-maps): stack
  // traces in src/ terms when wanted. Not on by default: node parses the whole map at start (measured: +36 MiB
  // RSS and +0.3 CPU s per start).
  sourcemap: 'linked',
  // Bundling renames clashing top-level names (Foo → Foo2); pino logs an error's constructor name as its
  // type, and some libraries test fn.constructor.name: keep every name as written.
  keepNames: true,
  // Whitespace and comments out, names kept (stack traces still name every function). This also keeps the
  // bundle ASCII: a comment with one character past Latin-1 (libraries' JSDoc has ⋅ and —) made V8 hold the
  // whole 5 MB source as a two-byte string. Measured (scripts/bench/node-start.mjs): 7 MiB less RSS and
  // ~0.1 CPU s less per start than the bundle as written.
  minifyWhitespace: true,
  minifySyntax: true,
  // The libraries' licence comments go to dist/layerd.mjs.LEGAL.txt, not into the module (one of them is not ASCII).
  legalComments: 'linked',
  // CommonJS libraries call require(); an ES module has none, so give the bundle one (for node: built-ins
  // and bcryptjs's path, which the auth worker loads itself).
  banner: { js: "import { createRequire as __layerdCreateRequire } from 'node:module';\nconst require = __layerdCreateRequire(import.meta.url);" },
  plugins: [builtinsThroughRequire],
  metafile: values.metafile !== undefined,
  logLevel: 'warning',
});
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
