// Preloaded into a layerd process (node --import) by the p2p benchmarks to try other PeerFetcher settings
// without editing src/: LAYERD_BENCH_PEER_FETCHER='{"rangeBytes":16777216,"parallel":4,"perPeer":4}'.
// The settings are not options of `layerd serve`, so this patches the built class: every fetcher copies the
// overrides into its settings the first time it looks providers up (before any range is planned).
// LAYERD_BENCH_DIST names the dist/ directory of the build being run, so the patched module is the one it loads.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const overrides = JSON.parse(process.env.LAYERD_BENCH_PEER_FETCHER || '{}');
const dist = process.env.LAYERD_BENCH_DIST;
if (!dist) throw new Error('LAYERD_BENCH_DIST is not set');
const { PeerFetcher } = await import(pathToFileURL(join(dist, 'distribution', 'peers', 'peer-fetcher.js')).href);
const providers = PeerFetcher.prototype.providers;
let said = false;
PeerFetcher.prototype.providers = function (...args) {
  if (!this.o) throw new Error('PeerFetcher has no `o` field any more: update peer-fetcher-overrides.mjs');
  Object.assign(this.o, overrides); // `o` holds the resolved options (a private field in the TypeScript source)
  if (!said) process.stderr.write(`peer-fetcher-overrides: ${JSON.stringify(overrides)} applied\n`);
  said = true;
  return providers.apply(this, args);
};
