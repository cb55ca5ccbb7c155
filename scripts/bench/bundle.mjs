#!/usr/bin/env node
// An experiment for issue 16's start-up: the built layerd (dist/) as ONE module, to measure what loading
// ~870 separate ES modules costs a node's start (resolution, file reads, one compile each). Writes
// .out/bundle/dist/cli.js (with package.json one level up and the dashboard beside it, where the code
// reads them), to compare with `node scripts/bench/idle.mjs --bin this=dist/cli.js --bin bundle=.out/bundle/dist/cli.js`.
// It uses rolldown, which the dev dependencies already bring (vitest → vite); it is not how layerd ships.
import { cpSync, copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rolldown } from 'rolldown';
import { repoRoot } from './lib.mjs';

const out = join(repoRoot, '.out', 'bundle');
rmSync(out, { recursive: true, force: true });
const bundle = await rolldown({ input: join(repoRoot, 'dist', 'cli.js'), platform: 'node', logLevel: 'warn' });
await bundle.write({ dir: join(out, 'dist'), format: 'esm', codeSplitting: false });
copyFileSync(join(repoRoot, 'package.json'), join(out, 'package.json'));
mkdirSync(join(out, 'dist', 'dashboard'), { recursive: true });
cpSync(join(repoRoot, 'dist', 'http', 'dashboard'), join(out, 'dist', 'dashboard'), { recursive: true });
console.log(join(out, 'dist', 'cli.js'));
