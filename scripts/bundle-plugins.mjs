// esbuild plugins for the bundle (scripts/bundle.mjs): each drops memory that libraries, as written, load or
// keep in every node without using it (issue 16: an idle node's RSS). Rewrites of a library's source check
// that they found what they replace, so a library update that changes it fails the build instead of
// slipping through.
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname } from 'node:path';

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
export const builtinsByRequire = {
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

export const codeUnitSorts = {
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

/**
 * @chainsafe/libp2p-noise encrypts frames under 1200 bytes with a WebAssembly ChaCha20-Poly1305, and loads
 * a WebAssembly SHA-256 it does not use on Node: both are compiled as the library loads, which pages in V8's
 * WebAssembly compilers and keeps their code. Here every frame goes through node:crypto's ChaCha20-Poly1305
 * (OpenSSL), as frames of 1200 bytes and more already do: the same bytes on the wire. A small frame costs
 * ~15 us more CPU; an idle node sends a few a second, and a transfer's frames are large.
 * Measured (node-start.mjs --idle 45, 3 rounds): a lone idle node 82.4 -> 76.0 MiB RSS.
 */
export const noiseWithoutWasm = {
  name: 'noise-without-wasm',
  setup(b) {
    b.onLoad({ filter: /node_modules\/@chainsafe\/libp2p-noise\/dist\/src\/crypto\/index\.js$/ }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      const cut = (text, by = '') => {
        if (source.split(text).length !== 2) throw new Error(`${args.path}: expected ${JSON.stringify(text)} once: has the library changed?`);
        source = source.replace(text, by);
      };
      cut("import { newInstance, ChaCha20Poly1305 } from '@chainsafe/as-chacha20poly1305';");
      cut("import { digest } from '@chainsafe/as-sha256';");
      cut('const ctx = newInstance();');
      cut('const asImpl = new ChaCha20Poly1305(ctx);');
      // The WebAssembly implementation (seal/open, digest) becomes node:crypto's, for every size.
      const [from, to] = [source.indexOf('export const asCrypto = {'), source.indexOf('export const defaultCrypto = {')];
      if (from < 0 || to < from) throw new Error(`${args.path}: asCrypto then defaultCrypto not found: has the library changed?`);
      source = `${source.slice(0, from)}export const asCrypto = nodeCrypto;\n${source.slice(to)}`;
      if (/asImpl|newInstance|(?<!\.)\bdigest\(/.test(source)) throw new Error(`${args.path}: the WebAssembly implementation is still used`);
      return { contents: source, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};
