// The shipped bin is the single-module bundle (scripts/bundle.mjs, issue 16: loading ~870 modules was most of a
// node's start-up) and it runs: --version, and `serve` up to /healthz and the dashboard, whose files the bundle
// reads from beside itself. The other integration tests run the same bin (test/helpers/processes.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connected, NodeSet } from '../helpers/nodes.js';
import { layerdBin, removeDir, repoRoot, tempDir } from '../helpers/processes.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const nodes = new NodeSet('layerd-bundle-');
const dirs: string[] = [];

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
  for (const d of dirs) await removeDir(d);
});

/**
 * The specifiers a module imports, static (`import {a as b} from "x"`, minified or not) and dynamic (`import("x")`).
 * A text search: fine for a minified bundle (no comments left to match); dist/cli.js gives its ./ imports.
 */
function importedSpecifiers(source: string): string[] {
  const re = /\bimport\s*(?:[\w$]+\s*|\*\s*as\s+[\w$]+\s*|\{[^}]*\}\s*)from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
  return [...source.matchAll(re)].map((m) => (m[1] ?? m[2])!);
}

describe('the layerd bin', () => {
  it('is the bundle: the package bin and the test helpers name dist/layerd.mjs, an executable that imports nothing but built-in modules', () => {
    expect(pkg.bin.layerd).toBe('dist/layerd.mjs');
    expect(layerdBin).toBe(join(repoRoot, 'dist', 'layerd.mjs'));
    expect(statSync(layerdBin).mode & 0o111).not.toBe(0);
    const source = readFileSync(layerdBin, 'utf8');
    // The node flags layerd ships with stay on its #! line.
    expect(source.split('\n', 1)[0]).toMatch(/^#!\/usr\/bin\/env -S node\b/);
    // ASCII only: one character past Latin-1 anywhere makes V8 hold the whole source as a two-byte string
    // (scripts/bundle.mjs minifies, which drops the comments that had them).
    expect(source.match(/[^\x00-\x7f]/g) ?? []).toEqual([]);
    const imports = importedSpecifiers(source);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.filter((s) => !isBuiltin(s))).toEqual([]);
    // No ICU collation (localeCompare maps ~3 MiB of it into the process): libp2p's peer store sorts by code
    // unit in the bundle (scripts/bundle.mjs), and so does layerd.
    expect(source.split('localeCompare').length - 1, 'localeCompare calls in the bundle').toBe(0);
  });

  it('loads no built-in module a node does not use (http2, https and tls, undici), and compiles no WebAssembly', async () => {
    // Each built-in loaded stays in memory; the bundle requires built-ins (importing one as an ES module loads
    // what its lazy exports stand for: node:http brought undici and http2) and defers what fastify and
    // prom-client require for servers layerd does not run. WebAssembly pages in V8's wasm compilers: noise's
    // small frames use node:crypto, pnet (with its xsalsa20) loads only for a swarm key (scripts/bundle-plugins.mjs).
    const dir = await tempDir('layerd-bundle-probe-');
    dirs.push(dir);
    const [probe, out] = [join(dir, 'probe.mjs'), join(dir, 'seen.json')];
    writeFileSync(
      probe,
      [
        "import { writeFileSync } from 'node:fs';",
        'let wasm = 0;',
        'for (const k of ["compile", "instantiate"]) { const f = WebAssembly[k]; WebAssembly[k] = (...a) => (wasm++, f(...a)); }',
        'WebAssembly.Module = new Proxy(WebAssembly.Module, { construct: (t, a) => (wasm++, new t(...a)) });',
        `process.on('exit', () => writeFileSync(${JSON.stringify(out)}, JSON.stringify({ wasm, modules: process.moduleLoadList })));`,
      ].join('\n'),
    );
    const a = await nodes.start('builtins-a', { p2p: true, env: { NODE_OPTIONS: `--import ${probe}` } });
    const b = await nodes.start('builtins-b', { bootstrap: a });
    await Promise.all([connected(a), connected(b)]);
    await a.stop('SIGTERM');
    const seen = JSON.parse(readFileSync(out, 'utf8')) as { wasm: number; modules: string[] };
    const loaded = seen.modules.filter((l) => l.startsWith('NativeModule ')).map((l) => l.slice('NativeModule '.length));
    expect(loaded).toContain('net');
    expect(loaded.filter((m) => ['http2', 'https', 'tls', 'internal/deps/undici/undici'].includes(m))).toEqual([]);
    expect(seen.wasm, 'WebAssembly modules compiled').toBe(0);
  });

  it('prints the package version and exits 0', () => {
    const res = spawnSync(process.execPath, [layerdBin, '--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(pkg.version);
  });

  it('serves: /healthz answers ok on 127.0.0.1, and the dashboard is found beside the bundle', async () => {
    const node = await nodes.start('bundle', { args: ['--p2p-listen', '/ip4/127.0.0.1/tcp/0'] });
    const health = await fetch(`${node.url}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    for (const path of ['/', '/dashboard.js', '/dashboard.css']) {
      const res = await fetch(`${node.url}${path}`);
      expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
    }
  });
});
