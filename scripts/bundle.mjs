// The shipped `layerd` bin: the compiled CLI (dist/cli.js) and everything it imports, libraries included, as
// ONE module, dist/layerd.mjs. Loading ~870 separate modules (resolution, a file read and a compile each) was
// most of a node's start-up CPU and ~90 MiB of its base memory (issue 16).
// Run by `npm run build` after tsc; `node scripts/bundle.mjs --metafile F` also writes esbuild's metafile.
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname } from 'node:path';
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

const BUILTINS = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));

/**
 * Built-in modules are loaded with require(), never through an ES `import`. Node builds an ES module's
 * facade of a built-in by reading every export, lazy getters included: on Node 24, `import http from
 * 'node:http'` alone loaded undici (fetch, web streams) and http2, `node:process` the report and tty
 * modules, `node:fs` fs/promises (72, 42 and 31 more built-ins than require() of each). Every built-in
 * loaded stays: its source pages in the node binary and its compiled code in the heap. An `import` of a
 * built-in becomes a CommonJS module holding require()'s answer (esbuild's interop reads its exports
 * only when the code uses them).
 */
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_\/0-9]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (!BUILTINS.has(name)) return undefined;
      const lazy = LAZY_BUILTINS.some(([importer, module]) => module === name && importer.test(args.importer));
      if (lazy) return { path: name, namespace: 'lazy-builtin' };
      if (args.kind === 'require-call') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(`node:${args.path}`)});`, loader: 'js' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({ contents: lazyModule(`node:${args.path}`), loader: 'js' }));
  },
};

/**
 * Built-ins that libraries require at load time for code paths a node never runs: fastify's http2 and https
 * servers (layerd serves plain http/1.1), prom-client's push gateway (layerd is scraped). Each is loaded on
 * its first use instead. [importer, built-in]: only these requires are deferred. (The push gateway's zlib is
 * not: it destructures gzipSync at load, which would load it anyway; it is small.)
 */
const LAZY_BUILTINS = [
  [/node_modules\/fastify\/lib\/server\.js$/, 'http2'],
  [/node_modules\/fastify\/lib\/server\.js$/, 'https'],
  [/node_modules\/prom-client\/lib\/pushgateway\.js$/, 'https'],
];

/** A CommonJS module standing for built-in `name`, which it requires the first time anything reads it. */
function lazyModule(name) {
  return `let loaded;
const load = () => (loaded ??= require(${JSON.stringify(name)}));
module.exports = new Proxy({}, {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
  ownKeys: () => Reflect.ownKeys(load()),
  getOwnPropertyDescriptor: (_, key) => {
    const d = Reflect.getOwnPropertyDescriptor(load(), key);
    return d && { ...d, configurable: true };
  },
});`;
}

/**
 * libp2p's peer store sorts protocol names, metadata keys and addresses with String.prototype.localeCompare
 * only to keep them in a fixed order, and its peer record compares two address lists sorted so. localeCompare
 * is ICU's collator: its first call maps ~3 MiB of collation code and data into every node, for ASCII
 * strings. Code-unit order (JavaScript's `<`) is as fixed; these sorts use it. [file, calls replaced]: the
 * build fails if a library update changes them.
 */
const CODE_UNIT_SORTS = [
  [/node_modules\/@libp2p\/peer-store\/dist\/src\/utils\/to-peer-pb\.js$/, 2],
  [/node_modules\/@libp2p\/peer-store\/dist\/src\/utils\/dedupe-addresses\.js$/, 1],
  [/node_modules\/@libp2p\/peer-record\/dist\/src\/peer-record\/utils\.js$/, 1],
];
const LOCALE_COMPARE = /([\w$.]+(?:\(\))?)\.localeCompare\(([\w$.]+(?:\(\))?)\)/g;

const codeUnitSorts = {
  name: 'code-unit-sorts',
  setup(b) {
    b.onLoad({ filter: /node_modules\/@libp2p\/peer-(store|record)\/dist\/src\/.*\.js$/ }, async (args) => {
      const rule = CODE_UNIT_SORTS.find(([file]) => file.test(args.path));
      if (!rule) return undefined;
      const source = await readFile(args.path, 'utf8');
      let replaced = 0;
      const contents = source.replace(LOCALE_COMPARE, (_, x, y) => (replaced++, `byCodeUnits(${x}, ${y})`));
      if (replaced !== rule[1] || contents.includes('localeCompare')) {
        throw new Error(`${args.path}: expected ${rule[1]} localeCompare calls to replace, replaced ${replaced}: has the library changed?`);
      }
      // Appended, so the lines keep their numbers (a declaration is hoisted).
      return { contents: `${contents}\nfunction byCodeUnits(x, y) { return x < y ? -1 : x > y ? 1 : 0; }\n`, loader: 'js', resolveDir: dirname(args.path) };
    });
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
  plugins: [builtinsByRequire, codeUnitSorts],
  metafile: values.metafile !== undefined,
  logLevel: 'warning',
});
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
