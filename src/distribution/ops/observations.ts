// What a node observes, as typed events: each source (the mirror, the peer fetcher, the blob server, the
// HTTP endpoint) tells the node's one bus, and whoever counts (NodeStats, the Prometheus metrics)
// subscribes, instead of every source being handed each counter by hand.
import type { Digest } from '../../oci/index.js';
import type { Source } from '../answers.js';
import type { PullEvent } from './stats.js';

export interface Observed {
  /** A DHT provider lookup ended: its time and how many providers it found. */
  lookup: { ms: number; found: number };
  /** Bytes fetched from a peer (one range). */
  'peer-download': { peer: string; bytes: number };
  /** Bytes sent to a peer over the blob protocol (one answer). */
  'peer-upload': { peer: string; bytes: number; digest: Digest };
  /** A client joined a download already running for the same blob. */
  'single-flight-join': Record<string, never>;
  /** A blob fetched into the store, from a peer or the seed. */
  fetched: { digest: Digest; size: number; source: Source };
  /** A blob answer to a client; `bytes` is what its body carries (0 for a HEAD). */
  'blob-served': { source: Source; bytes: number };
  /** A client's GET of a manifest or blob. */
  pulled: Omit<PullEvent, 'at'>;
  /** An HTTP request answered. */
  request: { method: string; url: string; status: number };
}

type Listener<K extends keyof Observed> = (event: Observed[K]) => void;

/** A typed, synchronous event bus. A listener that throws is a bug in it, not the emitter's problem: it propagates. */
export class Observations {
  private readonly listeners: { [K in keyof Observed]?: Array<Listener<K>> } = {};

  on<K extends keyof Observed>(kind: K, listener: Listener<K>): void {
    const list: Array<Listener<K>> = this.listeners[kind] ?? [];
    list.push(listener);
    (this.listeners as Record<K, Array<Listener<K>>>)[kind] = list;
  }

  emit<K extends keyof Observed>(kind: K, event: Observed[K]): void {
    for (const listener of this.listeners[kind] ?? []) listener(event);
  }
}
