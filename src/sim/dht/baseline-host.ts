// What a host does today, modelled (the code is kad-dht's, not layerd's): every blob is one full
// provide, a walk to the key's k closest peers and then ADD_PROVIDER to each (kad-dht sends those 10
// at a time). New blobs go through DhtContentRouter's queue, 4 provides at once and no rate bound;
// re-provides come from kad-dht's reprovider, which every `checkMs` queues every own record older than
// validity − threshold and runs them 10 at a time: all the blobs provided together come due together.
import type { Rng } from '../rng.js';
import type { SimDhtNetwork } from './network.js';
import type { Blob, RequestSink } from './sweep-host.js';
import { simWalk } from './walk.js';

export interface BaselineOptions {
  intervalMs: number;
  /** kad-dht's reprovider settings as layerd configures them (libp2p-node.ts). */
  checkMs: number;
  /** Provides at once: DhtContentRouter's queue, then kad-dht's reprovide queue. */
  provideConcurrency: number;
  reprovideConcurrency: number;
  alpha: number;
  latencyMs: [number, number];
  untilMs: number;
}

/** kad-dht's own parallelism for the ADD_PROVIDER messages of one provide. */
const PUBLISH_CONCURRENCY = 10;

export function runBaselineHost(net: SimDhtNetwork, host: number, blobs: Blob[], rng: Rng, o: BaselineOptions, sink: RequestSink): { requests: number; walkRequests: number } {
  const counts = { requests: 0, walkRequests: 0 };
  const provideAll = (startMs: number, concurrency: number, list: Blob[]): number[] => {
    const workers = new Array<number>(concurrency).fill(startMs);
    return list.map((b) => {
      const w = workers.indexOf(Math.min(...workers));
      const t0 = workers[w]!;
      const walk = simWalk(net, host, b.hi, b.lo, rng, { alpha: o.alpha, latencyMs: o.latencyMs, startMs: t0, onRequest: sink });
      counts.walkRequests += walk.requests;
      let t = t0 + walk.ms;
      walk.closest.forEach((p, i) => {
        if (i > 0 && i % PUBLISH_CONCURRENCY === 0) t += o.latencyMs[1];
        sink(host, p, t);
      });
      counts.requests += walk.requests + walk.closest.length;
      workers[w] = t + o.latencyMs[1];
      return t; // when the record was (re)made
    });
  };
  // A record made at c is re-provided at the first reprovider check after c + interval (threshold = half the validity).
  let made = provideAll(0, o.provideConcurrency, blobs);
  while (made.length > 0) {
    const due = made.map((c) => Math.floor((c + o.intervalMs) / o.checkMs + 1) * o.checkMs);
    const first = Math.min(...due);
    if (first >= o.untilMs) break;
    const batch = blobs.filter((_, i) => due[i] === first);
    const rest = blobs.filter((_, i) => due[i] !== first);
    const remade = provideAll(first, o.reprovideConcurrency, batch);
    made = [...remade, ...made.filter((_, i) => due[i] !== first)];
    blobs = [...batch, ...rest];
  }
  return counts;
}
