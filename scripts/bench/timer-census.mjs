// Counts the timers a node fires, by where they were set, for the idle bench (idle.mjs --census): loaded
// with `node --import ./scripts/bench/timer-census.mjs`, it wraps setTimeout and setInterval, and on
// SIGUSR2 writes {site: fires} since the last SIGUSR2 to $LAYERD_TIMER_CENSUS (a JSON file). A site is the
// first stack frame outside node's internals and this file. Measuring only: it slows every timer a little.
import { writeFileSync } from 'node:fs';

const out = process.env.LAYERD_TIMER_CENSUS;
let fires = new Map();

function siteOf() {
  const frames = (new Error().stack ?? '').split('\n').slice(2);
  const frame = frames.find((f) => !f.includes('node:internal') && !f.includes('timer-census.mjs')) ?? frames[0] ?? '?';
  return frame.trim().replace(/^at /, '').replace(/file:\/\/\S*node_modules\//, '').replace(/file:\/\/\S*\/dist\//, 'dist/');
}

function wrap(original) {
  return function wrapped(fn, ...rest) {
    if (typeof fn !== 'function') return original.call(this, fn, ...rest);
    const site = siteOf();
    return original.call(
      this,
      function counted(...args) {
        fires.set(site, (fires.get(site) ?? 0) + 1);
        return fn.apply(this, args);
      },
      ...rest,
    );
  };
}

if (out) {
  globalThis.setTimeout = wrap(globalThis.setTimeout);
  globalThis.setInterval = wrap(globalThis.setInterval);
  process.on('SIGUSR2', () => {
    writeFileSync(out, JSON.stringify(Object.fromEntries([...fires].sort((a, b) => b[1] - a[1])), null, 1));
    fires = new Map();
  });
}
