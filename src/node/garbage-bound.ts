// A bound on the garbage a busy node carries. layerd runs node with a 128 MiB first heap (cli.ts's #! line) so
// that a transfer's garbage dies young; the price is that V8 runs no full collection while the old generation
// stays under that, so what the scavenges promote and then drops stays in memory, and the byte buffers among it
// keep their malloc'd bytes (V8 counts those as external memory) until a full collection. A rollout's origin,
// which also fetches from the seed and hears every node's reports, promoted ~0.3 MiB a second this way and
// ended a 32-host rollout at 211 MiB RSS (the others at ~148, issue 16's bound is 160).
//
// Every few seconds this reads what a full collection could free (the V8 heap in use and the external memory)
// and runs one once that is more than a slack above its lowest reading since the last one: V8's own
// collections lower that floor too, so a node whose V8 keeps up is never collected by this. A forced collection of
// a relaying node's 25-40 MiB heap takes some tens of ms; at 16 MiB of slack the origin needs one a minute or so.
import { getHeapStatistics } from 'node:v8';
import { collectFully } from './full-collection.js';
import type { Service } from './lifecycle.js';

/** How often the reading is taken: one wake-up of an idle node every 10 s (each costs 0.3-0.7 ms on a loaded box). */
const EVERY_MS = 10_000;
/** Garbage a node may carry above its floor before it is collected. */
const SLACK_BYTES = 16 * 1024 * 1024;

/** When a collection is due, from readings of the memory a full collection may free (bytes). */
export class GarbageWatch {
  private floor = Infinity;

  constructor(private readonly slackBytes: number) {}

  /** A reading: true when it is more than the slack above the lowest since the last collection. */
  due(bytes: number): boolean {
    this.floor = Math.min(this.floor, bytes);
    return bytes - this.floor > this.slackBytes;
  }

  /** The reading right after a collection: the new floor (what was live then). */
  collected(bytes: number): void {
    this.floor = bytes;
  }
}

export interface GarbageBoundOptions {
  everyMs?: number;
  slackBytes?: number;
  /** The memory a full collection may free, now (default: V8's heap in use plus its external memory). */
  read?: () => number;
  collect?: () => void;
  /** Told of each collection this ran: the readings before and after, and how long it took (ms). */
  onCollect?: (before: number, after: number, ms: number) => void;
}

export function boundGarbage(opts: GarbageBoundOptions = {}): Service {
  const read = opts.read ?? collectable;
  const collect = opts.collect ?? collectFully;
  const watch = new GarbageWatch(opts.slackBytes ?? SLACK_BYTES);
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    const before = read();
    if (!watch.due(before)) return;
    const t0 = performance.now();
    collect();
    const ms = performance.now() - t0;
    const after = read();
    watch.collected(after);
    opts.onCollect?.(before, after, ms);
  };
  return {
    name: 'garbage bound',
    async start() {
      timer = setInterval(check, opts.everyMs ?? EVERY_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
}

/** V8's own counters (process.memoryUsage() would also read /proc for the RSS at every wake-up). */
function collectable(): number {
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}
