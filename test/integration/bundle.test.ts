// The shipped bin is the single-module bundle (scripts/bundle.mjs, issue 16: loading ~870 modules was most of a
// node's start-up) and it runs: --version, and `serve` up to /healthz and the dashboard, whose files the bundle
// reads from beside itself. The other integration tests run the same bin (test/helpers/processes.ts).
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NodeSet } from '../helpers/nodes.js';
import { layerdBin, repoRoot } from '../helpers/processes.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const nodes = new NodeSet('layerd-bundle-');

afterAll(async () => {
  await nodes.stopAll('SIGTERM');
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
    // Built-ins are reached through require(), node:module's createRequire the one import (scripts/bundle.mjs).
    expect(new Set(imports)).toEqual(new Set(['node:module']));
  });

  it("loads without reading node:http's lazy exports: Node's bundled undici (fetch, WebSocket) is not loaded at start", () => {
    // An ES module's import of node:http reads every export, and WebSocket's getter loads undici (~0.1 CPU s).
    const report = 'process.on("exit", () => console.error(JSON.stringify(process.moduleLoadList.filter((m) => m.includes("undici")))))';
    const res = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(report)}`, layerdBin, '--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(res.stderr.trim().split('\n').pop()!)).toEqual([]);
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
