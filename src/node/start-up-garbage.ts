// One full garbage collection once a node's start-up is over. layerd runs node with a 128 MiB first heap
// (cli.ts's #! line) so that a rollout's garbage dies young; the price is that V8 runs no full collection
// while the old generation stays below it, so what start-up left behind (module loading, the first DHT
// walks, the peers' handshakes) stayed in an idle node's memory for good: 4 idle nodes measured 121-128
// MiB RSS each without this collection, 97 MiB after it (scripts/bench/idle.mjs).
import { collectFully } from './full-collection.js';
import type { Service } from './lifecycle.js';

/** Long enough for a node's first DHT walks and its cluster's handshakes; a node busy by then is not hurt by one collection. */
const AFTER_START_MS = 30_000;

export function collectStartUpGarbage(afterMs = AFTER_START_MS): Service {
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'start-up garbage collection',
    async start() {
      timer = setTimeout(collectFully, afterMs);
      timer.unref();
    },
    async stop() {
      clearTimeout(timer);
    },
  };
}
